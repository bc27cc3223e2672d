"""Tuned recipes as data: tuned/<pair>/<method>.yaml (written by `bench tune`, used by `bench run`), each task's
trial table beside it as <method>.<task>.trials.csv. They ship in the wheel (pyproject package-data).

<method>.yaml:
  pair: tiny
  method: trans_peft
  tasks:
    tiny_arith:
      recipe: {lr: 0.004, steps: 620, p_c: 0.12, p_i: 0.03}   # absolute values, as --set takes them
      ...                                                      # how it was tuned (validation score, trials, ...)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from bench.core.errors import BenchError
from bench.core.store import one_line

TUNED_DIR = Path(__file__).parent / "tuned"


def safe_name(pair: str) -> str:
    """A pair's folder name (`--pair org/a,org/b` names no folders)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in pair)


def recipe_file(root: Path, pair: str, method: str) -> Path:
    return Path(root) / safe_name(pair) / f"{method}.yaml"


def read_recipe_file(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise BenchError(f"cannot read tuned recipes {path}: {one_line(error)}") from None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, dict) or not all(isinstance(t, dict) and isinstance(t.get("recipe"), dict)
                                              for t in tasks.values()):
        raise BenchError(f"tuned recipes {path} must hold pair, method and tasks: {{TASK: {{recipe: {{...}}}}}}")
    return data


def tuned_overrides(root: Path, pair: str, known_methods: set[str], known_pairs: set[str]) -> dict[str, dict]:
    """{task: {"METHOD.option": value}} from every <method>.yaml of the pair's folder under `root`.

    Every folder must name a known pair and every file a known method (a typo would otherwise be ignored
    silently); a pair without a folder has no tuned recipes.
    """
    root = Path(root)
    if not root.is_dir():
        raise BenchError(f"tuned recipes directory {root} does not exist")
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        if folder.name not in {safe_name(p) for p in known_pairs}:
            raise BenchError(f"tuned recipes {folder} are for pair {folder.name!r}, which does not exist "
                             "(bench list pairs)")
    per_task: dict[str, dict] = {}
    budgets: dict[str, dict] = {}
    folder = root / safe_name(pair)
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        data = read_recipe_file(path)
        method = path.stem
        if method not in known_methods or data.get("method", method) != method:
            raise BenchError(f"tuned recipes {path} are for method {data.get('method', method)!r}, which does not "
                             "exist here (bench list methods)")
        if data.get("pair", pair) != pair:
            raise BenchError(f"tuned recipes {path} say pair {data.get('pair')!r} but sit in {pair!r}'s folder")
        for task, entry in data["tasks"].items():
            per_task.setdefault(task, {}).update({f"{method}.{k}": v for k, v in entry["recipe"].items()})
            budgets.setdefault(task, {})[method] = (entry.get("search") or {}).get("trials")
    for task, trials in budgets.items():  # fairness: a method tuned harder would win by budget, not by method
        if len(set(trials.values())) > 1:
            raise BenchError(f"tuned recipes in {folder} give {task} unequal trial budgets ("
                             + ", ".join(f"{m} {n}" for m, n in sorted(trials.items()))
                             + "): tune every method with the same --trials")
    return per_task


def write_recipe_file(path: Path, data: dict, header: str) -> None:
    """Atomically (a temporary file renamed over it): a failed write leaves the old file as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=1000))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
