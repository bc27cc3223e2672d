"""What a transfer method is: four answers, given in plain code by each file in methods/.

1. trains_on: which base its module trains on ("old" or "new"); or reuses: whose trained module it lands;
   or starts_from: whose trained module it keeps training (a warm start);
2. default_recipe: the PEFT config and optimiser settings (bench.core.recipe.Recipe): the method's own knobs,
   which a task's suite recipe, the pair's rescaling and the user's overrides then layer over;
3. during_training(model, ctx): any training-time intervention (Trans-PEFT's masking and dropping);
4. lands_on + land(module_dir, target_base, ctx): the base it is evaluated on, and how the module lands there.

Hooks receive a MethodContext: the pair, task, seed, recipe, and every other method's trained module.
Everything else (loading, the training loop, caching, accounting, evaluation) is in bench/engine.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import BenchError
from bench.core.recipe import ALL_LINEAR, ATTENTION, PEFT_TYPES, Recipe, with_values
from bench.core.registry import Registry
from bench.core.store import Store
from bench.models.peft_types import attach_module, load_module, peft_config, save_module
from bench.pairs.base import Pair
from tasks.base import Task

METHODS = Registry("method", entry_point_group="peft_transfer_bench.methods")
__all__ = ["ALL_LINEAR", "ATTENTION", "METHODS", "PEFT_TYPES", "Method", "MethodContext", "Recipe"]


@dataclass(frozen=True)
class MethodContext:
    """What a method's hooks see of the run: one (pair, task, seed) and the store of trained modules."""

    pair: Pair
    task: Task
    seed: int
    recipe: Recipe
    store: Store
    trained_module: Callable[[str], Path]  # method name -> its trained module's directory (trained if missing)

    def module_of(self, method: str) -> Path:
        return self.trained_module(method)


class Method:
    name: str = ""
    trains_on: str = "old"          # "old" | "new"
    lands_on: str = "old"           # "old" | "new"
    reuses: str | None = None       # a method whose trained module this one lands instead of training its own
    starts_from: str | None = None  # a method whose trained module this one trains further (warm start)
    recipe_class: type[Recipe] = Recipe
    default_recipe: Recipe = Recipe()
    # Bump when a change to this method's training (during_training, start) makes the same recipe and seed train
    # a different module: it enters the module's cache key, so stale modules are retrained ("": not in the key).
    training_version: str = ""

    def __init__(self, **overrides):
        fields = {f.name: f for f in dataclasses.fields(self.recipe_class)}
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise BenchError(f"{self.name} has no option {unknown[0]!r} (options: {', '.join(sorted(fields))})")
        self.recipe = with_values(self.default_recipe, overrides)
        self.recipe.check()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Plugins written before hooks took a context: during_training(self, model), land(self, dir, base).
        for hook, old_arity in (("during_training", 2), ("land", 3)):
            fn = cls.__dict__.get(hook)
            if fn is not None and len(inspect.signature(fn).parameters) == old_arity:
                setattr(cls, hook, _without_context(fn, old_arity - 1))

    def train_steps(self, budget: int) -> int:
        """Steps this method trains, given the budget of a full fine-tune (recipe epochs or the task's steps)."""
        return self.recipe.steps or budget

    def peft_config(self):
        return peft_config(self.recipe)

    def attach(self, model):
        """The base with a fresh trainable module on it (only the module's parameters train)."""
        return attach_module(model, self.recipe)

    def start(self, base, ctx: MethodContext):
        """The model to train: a fresh module on `base`, or (starts_from) another method's module, trainable."""
        if self.starts_from:
            return load_module(base, ctx.module_of(self.starts_from), self.recipe, trainable=True)
        return self.attach(base)

    def save_module(self, model, out: Path) -> None:
        save_module(model, out, self.recipe)

    def during_training(self, model, ctx: MethodContext | None = None):
        """Context manager active while the module trains; nothing by default."""
        return nullcontext()

    def land(self, module_dir: Path, target_base, ctx: MethodContext | None = None):
        """Put the trained module on the target base; default: as an unmerged PEFT module."""
        return load_module(target_base, module_dir, self.recipe)


def _without_context(hook, n_args: int):
    def call(self, *args, ctx=None):
        return hook(self, *args[:n_args])

    return call
