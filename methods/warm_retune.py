"""Warm re-tune: finetune_old's module, trained for a few more steps on the new base.

A cheap re-tune: it starts from the module every team already has, so it pays K steps on the new base
instead of a full fine-tune (K = retune_fraction of the task's budget, or `steps` if set).
"""

from dataclasses import dataclass

from bench.core.errors import BenchError
from bench.core.recipe import Recipe
from methods.base import METHODS, Method


@dataclass(frozen=True)
class WarmRetuneRecipe(Recipe):
    retune_fraction: float = 0.2  # K as a fraction of the task's full fine-tuning budget

    def check(self) -> None:
        super().check()
        if not 0 < self.retune_fraction <= 1:
            raise BenchError(f"retune_fraction must be in (0, 1], got {self.retune_fraction}")


@METHODS.register("warm_retune")
class WarmRetune(Method):
    name = "warm_retune"
    starts_from = "finetune_old"  # its trained module, loaded trainable on the new base
    trains_on = "new"
    lands_on = "new"              # as an adapter
    recipe_class = WarmRetuneRecipe
    default_recipe = WarmRetuneRecipe()

    def train_steps(self, budget: int) -> int:
        return self.recipe.steps or max(1, round(self.recipe.retune_fraction * budget))
