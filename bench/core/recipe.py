"""A fine-tuning recipe: the PEFT config and optimiser settings one training uses.

Methods start from the paper's recipe, a pair may rescale it (tiny pairs: rank 8, lr x33), and the
user overrides any field with --set / --config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.core.errors import BenchError

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
ALL_LINEAR = ATTENTION + ("gate_proj", "up_proj", "down_proj")
PEFT_TYPES = ("lora", "dora", "adapter")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class Recipe:
    """Fine-tuning recipe at the papers' scale; a pair may rescale it (tiny pairs: rank 8, lr x33)."""

    rank: int = 64           # LoRA rank (Trans-PEFT math/code: 64; commonsense: 32)
    alpha: int = 128         # LoRA alpha (scaling = alpha / rank)
    dropout: float = 0.05    # LoRA dropout (Trans-PEFT's script uses 0.05)
    targets: tuple[str, ...] = ATTENTION  # Trans-PEFT's math script: q, k, v, o
    lr: float = 3e-4         # Trans-PEFT's script
    schedule: str = "cosine"  # cosine | constant
    steps: int | None = None  # None: the task's budget (papers: 3 epochs of batch 16; tiny tasks: fixed steps)
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
            raise BenchError(f"schedule must be {' or '.join(SCHEDULES)}, got {self.schedule!r}")
        if not 0 <= self.dropout < 1:
            raise BenchError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.targets or not all(isinstance(t, str) and t for t in self.targets):
            raise BenchError(f"targets must name modules (e.g. q_proj,v_proj), got {self.targets!r}")


def coerce(key: str, value, default):
    """Give a CLI/config value the type of the option's default (targets: 'q_proj,v_proj' -> tuple)."""
    try:
        if key == "steps" and value in (None, "none", "None"):
            return None  # back to the task's budget
        if key == "steps":
            default = 0
        if isinstance(default, tuple):
            return tuple(v.strip() for v in value.split(",") if v.strip()) if isinstance(value, str) else tuple(value)
        if isinstance(value, bool) and not isinstance(default, bool):
            raise ValueError  # `--set rank=true` is not rank 1
        if isinstance(default, int) and not isinstance(default, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        return type(default)(value)
    except (TypeError, ValueError):
        raise BenchError(f"option {key} takes a {type(default).__name__}, got {value!r}") from None
