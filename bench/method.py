"""What a transfer method is: four answers, given in plain code by each file in methods/.

1. trains_on: which base the module is trained on ("old" or "new"), or reuses: whose module it takes;
2. recipe / peft_config(): the PEFT config and optimiser settings;
3. during_training(model): any training-time intervention (Trans-PEFT's masking and dropping);
4. lands_on + land(): the base it is evaluated on, and how the module lands there (adapter or merged).

Everything else (loading, the training loop, caching, accounting, evaluation) is in bench/.
"""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.registry import Registry

METHODS = Registry("method", entry_point_group="peft_transfer_bench.methods")
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
ALL_LINEAR = ATTENTION + ("gate_proj", "up_proj", "down_proj")
PEFT_TYPES = ("lora", "dora", "adapter")


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
    peft: str = "lora"       # lora | dora (peft, use_dora=True) | adapter (Houlsby bottleneck, bench/adapters.py)

    def check(self) -> None:
        if self.peft not in PEFT_TYPES:
            raise BenchError(f"peft must be one of {', '.join(PEFT_TYPES)}, got {self.peft!r}")
        if self.rank <= 0:
            raise BenchError(f"rank must be a positive integer, got {self.rank}")
        if self.lr <= 0 or (self.steps is not None and self.steps <= 0) or self.batch_size <= 0:
            raise BenchError("lr, steps and batch_size must be positive")
        if self.schedule not in ("cosine", "constant"):
            raise BenchError(f"schedule must be cosine or constant, got {self.schedule!r}")
        if not 0 <= self.dropout < 1:
            raise BenchError(f"dropout must be in [0, 1), got {self.dropout}")


class Method:
    name: str = ""
    trains_on: str = "old"          # "old" | "new"
    lands_on: str = "old"           # "old" | "new"
    reuses: str | None = None       # name of a method whose trained module this one lands unchanged
    recipe_class: type[Recipe] = Recipe
    default_recipe: Recipe = Recipe()

    def __init__(self, **overrides):
        fields = {f.name: f for f in dataclasses.fields(self.recipe_class)}
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise BenchError(f"{self.name} has no option {unknown[0]!r} (options: {', '.join(sorted(fields))})")
        typed = {k: _coerce(k, v, getattr(self.default_recipe, k)) for k, v in overrides.items()}
        self.recipe = dataclasses.replace(self.default_recipe, **typed)
        self.recipe.check()

    def peft_config(self):
        from peft import LoraConfig

        r = self.recipe
        if r.peft == "adapter":
            from bench.adapters import BottleneckConfig

            return BottleneckConfig(bottleneck=r.rank)
        return LoraConfig(r=r.rank, lora_alpha=r.alpha, lora_dropout=r.dropout, target_modules=list(r.targets),
                          task_type="CAUSAL_LM", use_dora=r.peft == "dora")

    def attach(self, model):
        """The base with a fresh trainable module on it (only the module's parameters train)."""
        if self.recipe.peft == "adapter":
            from bench.adapters import add_adapters

            return add_adapters(model, self.peft_config())
        from peft import get_peft_model

        return get_peft_model(model, self.peft_config())

    def save_module(self, model, out: Path) -> None:
        if self.recipe.peft == "adapter":
            from bench.adapters import save_adapters

            return save_adapters(model, out)
        model.save_pretrained(out, safe_serialization=True)

    def during_training(self, model):
        """Context manager active while the module trains; nothing by default."""
        return nullcontext()

    def land(self, module_dir: Path, target_base):
        """Put the trained module on the target base; default: as an unmerged PEFT adapter."""
        from peft import PeftModel

        if self.recipe.peft == "adapter":
            from bench.adapters import load_adapters

            return load_adapters(target_base, module_dir)

        return PeftModel.from_pretrained(target_base, module_dir).eval()


def _coerce(key: str, value, default):
    """Give a CLI/config value the type of the option's default (targets: 'q_proj,v_proj' -> tuple)."""
    try:
        if key == "steps" and value in (None, "none", "None"):
            return None  # back to the task's budget
        if key == "steps":
            default = 0
        if isinstance(default, tuple):
            return tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else tuple(value)
        if isinstance(default, int) and not isinstance(default, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        return type(default)(value)
    except (TypeError, ValueError):
        raise BenchError(f"option {key} takes a {type(default).__name__}, got {value!r}") from None
