"""A fine-tuning recipe: the PEFT config and optimiser settings one training uses.

Where each value comes from, each layer overriding the one before (docs/FIDELITY.md, "The rule"):
  1. the Recipe defaults below;
  2. the method class's default_recipe (its own knobs: PortLLM rank 8 on all linears, constant 4e-4);
  3. the task's suite: the suite YAML's `recipe`, then its `methods.<name>` section (tasks/suites.py);
  4. the pair's rescaling for its model size (tiny pairs: Pair.recipe_scale);
  5. the user's --set / --config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from bench.core.errors import BenchError

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
ALL_LINEAR = ATTENTION + ("gate_proj", "up_proj", "down_proj")
PEFT_TYPES = ("lora", "dora", "adapter")
# transformers.get_scheduler names that need nothing beyond warm-up and length (reduce_lr_on_plateau needs an
# eval metric, warmup_stable_decay its phase lengths); tests/test_recipes.py checks them against transformers.
SCHEDULES = ("linear", "cosine", "cosine_with_min_lr", "cosine_with_restarts", "polynomial", "constant",
             "constant_with_warmup", "inverse_sqrt")
WARMUP = ("warmup_steps", "warmup_ratio")
OPTIONAL_INTS = ("steps", "max_length")  # None is a value of its own: "the task's budget", "no truncation"


@dataclass(frozen=True)
class Recipe:
    """Fine-tuning recipe at the papers' scale; a suite sets it per task, a pair may rescale it."""

    rank: int = 64           # LoRA rank (Trans-PEFT math/code: 64; commonsense: 32)
    alpha: int = 128         # LoRA alpha (scaling = alpha / rank)
    dropout: float = 0.05    # LoRA dropout (Trans-PEFT's script uses 0.05)
    targets: tuple[str, ...] = ATTENTION  # Trans-PEFT's math script: q, k, v, o
    lr: float = 3e-4         # Trans-PEFT's script
    schedule: str = "cosine"  # a transformers get_scheduler name (SCHEDULES)
    warmup_steps: int = 0    # linear warm-up from 0, in steps ...
    warmup_ratio: float = 0.0  # ... or as a fraction of the training steps (rounded up, as transformers does)
    min_lr_rate: float = 0.0  # cosine_with_min_lr only: where the cosine stops, as a fraction of lr
    epochs: float = 3.0      # passes over the training set (tasks with a fixed budget of steps ignore it)
    steps: int | None = None  # None: the budget from epochs (or the task's fixed steps); a number overrides both
    max_length: int | None = None  # prompt + answer tokens kept, cut at the end; None: no truncation
    batch_size: int = 16
    peft: str = "lora"       # lora | dora (peft, use_dora=True) | adapter (Houlsby bottleneck, models/adapters.py)

    def check(self) -> None:
        if self.peft not in PEFT_TYPES:
            raise BenchError(f"peft must be one of {', '.join(PEFT_TYPES)}, got {self.peft!r}")
        if self.rank <= 0:
            raise BenchError(f"rank must be a positive integer, got {self.rank}")
        if self.lr <= 0 or (self.steps is not None and self.steps <= 0) or self.batch_size <= 0:
            raise BenchError("lr, steps and batch_size must be positive")
        if not math.isfinite(self.lr):  # nan passes `<= 0`; either would train to nan weights
            raise BenchError(f"lr must be a finite number, got {self.lr}")
        if self.alpha <= 0:
            raise BenchError(f"alpha must be a positive integer (LoRA scaling = alpha / rank), got {self.alpha}")
        if self.schedule not in SCHEDULES:
            raise BenchError(f"schedule must be a transformers get_scheduler name ({', '.join(SCHEDULES)}), "
                             f"got {self.schedule!r}")
        if not 0 <= self.dropout < 1:
            raise BenchError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.targets or not all(isinstance(t, str) and t for t in self.targets):
            raise BenchError(f"targets must name modules (e.g. q_proj,v_proj), got {self.targets!r}")
        if self.warmup_steps < 0 or not 0 <= self.warmup_ratio < 1:
            raise BenchError(f"warm-up must be steps >= 0 or a ratio in [0, 1), got {self.warmup_steps} steps, "
                             f"ratio {self.warmup_ratio}")
        if self.warmup_steps and self.warmup_ratio:
            raise BenchError("give warmup_steps or warmup_ratio, not both")
        if self.schedule == "constant" and (self.warmup_steps or self.warmup_ratio):
            raise BenchError("schedule constant has no warm-up (transformers ignores it); use constant_with_warmup")
        if not 0 <= self.min_lr_rate < 1:
            raise BenchError(f"min_lr_rate must be in [0, 1), got {self.min_lr_rate}")
        if self.epochs <= 0 or (self.max_length is not None and self.max_length < 2):
            raise BenchError("epochs must be positive and max_length at least 2 tokens")

    def warmup_for(self, steps: int) -> int:
        """Warm-up steps of a training of `steps` steps (a ratio rounds up, like TrainingArguments)."""
        return self.warmup_steps or math.ceil(self.warmup_ratio * steps)


def layered(*layers: dict) -> dict:
    """Recipe values from several layers, later ones winning. Warm-up is one setting given in either form:
    a layer that gives it as steps clears a ratio from below, and the other way round (PortLLM's
    `warmup_steps: 0` on a suite with `warmup_ratio: 0.03` means no warm-up)."""
    merged: dict = {}
    for layer in layers:
        given = [key for key in WARMUP if key in layer]
        if len(given) == 1:
            merged[next(key for key in WARMUP if key not in given)] = 0
        merged.update(layer)
    return merged


def with_values(recipe: Recipe, values: dict) -> Recipe:
    """`recipe` with `values` (from YAML, --set or --config), each given the type of the field it sets."""
    known = {f.name for f in fields(recipe)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise BenchError(f"no option {unknown[0]!r} (options: {', '.join(sorted(known))})")
    return replace(recipe, **{k: coerce(k, v, getattr(recipe, k)) for k, v in values.items()})


def coerce(key: str, value, default):
    """Give a CLI/config value the type of the option's default (targets: 'q_proj,v_proj' -> tuple)."""
    try:
        if key in OPTIONAL_INTS and value in (None, "none", "None"):
            return None  # back to the task's budget / no truncation
        if key in OPTIONAL_INTS:
            default = 0
        if isinstance(default, tuple):  # 'q_proj,v_proj', or as a YAML list: '[q_proj, v_proj]'
            if isinstance(value, str):
                return tuple(v.strip(" '\"") for v in value.strip().strip("[]").split(",") if v.strip(" '\""))
            return tuple(value)
        if isinstance(value, bool) and not isinstance(default, bool):
            raise ValueError  # `--set rank=true` is not rank 1
        if isinstance(default, int) and not isinstance(default, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        return type(default)(value)
    except (TypeError, ValueError):
        raise BenchError(f"option {key} takes a {type(default).__name__}, got {value!r}") from None
