"""Suite recipes as data: each task names its suite, and the suite's YAML holds the recipe every method starts
from on it (`recipe`, the suite-defining paper's) and each method's own paper's knobs (`methods.<name>`).

A value given as a mapping of task names (PortLLM's per-task epochs) is that task's entry; a task the mapping
does not name keeps the value from the layer below. docs/FIDELITY.md says where every value comes from.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

from bench.core.errors import BenchError

HERE = Path(__file__).parent
# Suite name -> its recipe file. A plugin suite adds its own entry.
SUITES: dict[str, Path] = {
    "commonsense": HERE / "papers" / "recipes" / "commonsense.yaml",
    "math": HERE / "papers" / "recipes" / "math.yaml",
    "code": HERE / "papers" / "recipes" / "code.yaml",
    "portllm": HERE / "papers" / "recipes" / "portllm.yaml",
    "tiny": HERE / "tiny" / "recipe.yaml",
    "synth": HERE / "synthetic" / "recipe.yaml",
}


@functools.cache
def load_suite(suite: str) -> dict:
    """The whole YAML of a suite (recipe, methods, and what else it declares, such as its training data)."""
    if suite not in SUITES:
        raise BenchError(f"no recipe file for suite {suite!r} (known: {', '.join(sorted(SUITES))})")
    try:
        return yaml.safe_load(SUITES[suite].read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise BenchError(f"cannot read the {suite} suite's recipe {SUITES[suite]}: {error}") from None


def suite_layers(suite: str, task: str, method: str) -> list[dict]:
    """The suite's two recipe layers for `method` on `task`: its base recipe, then the method's section."""
    if not suite:
        return []  # a task of no suite: the method's own recipe
    data = load_suite(suite)
    return [for_task(data.get("recipe") or {}, task), for_task((data.get("methods") or {}).get(method) or {}, task)]


def for_task(layer: dict, task: str) -> dict:
    """A layer's values for one task: a {task: value} mapping picks the task's entry, or drops out."""
    values = {}
    for key, value in layer.items():
        if isinstance(value, dict):
            if task in value:
                values[key] = value[task]
        else:
            values[key] = value
    return values
