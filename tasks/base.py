"""What a task is to the protocol: training examples for a base version, and a scorer."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.core.errors import BenchError
from bench.core.registry import Registry
from bench.core.store import data_hash
from tasks.suites import suite_layers

TASKS = Registry("task", entry_point_group="peft_transfer_bench.tasks")


@dataclass
class TaskScore:
    """One task's result: the headline score (0-100) and per-sample correctness for paired tests."""

    task: str
    metric: str
    score: float
    n: int
    samples: list[dict] = field(default_factory=list)  # {"id": ..., "correct": 0/1, ...}


class Task:
    name: str
    metric: str
    suite: str = ""                  # whose recipe methods train with here (tasks/suites.py; "": none)
    fixed_steps: int | None = None   # a fixed budget of steps instead of the recipe's epochs (tiny tasks: small,
                                     # repeated train sets)
    lr_scale: float = 1.0            # multiplies every method's learning rate on this task
    train_key: str = ""              # tasks sharing a training set share one module ("": the task's name)
    train_size: int = 0              # examples per epoch at full size, for plan estimates (0: unknown or tiny)
    runs_generated_code: bool = False  # scoring executes model-written code (tasks/evalplus_exec.py)
    train_ref: str = ""              # the training set's name, for plans ("": generated, or named by the task)

    def train_steps(self, n_examples: int, batch_size: int, epochs: float) -> int:
        return self.fixed_steps or max(1, math.ceil(epochs * n_examples / batch_size))

    def budget(self) -> dict:
        return {"fixed_steps": self.fixed_steps, "lr_scale": self.lr_scale}

    def recipe_layers(self, method: str) -> list[dict]:
        """The suite's recipe values for `method` on this task (its base recipe, then the method's section)."""
        return suite_layers(self.suite, self.name, method)

    def data_hash(self, pair, version: str) -> str:
        """The training set's identity, for module keys; tasks with a cheaper identity than their data override."""
        return data_hash(self.train_examples(pair, version))

    def train_examples(self, pair, version: str) -> list[tuple[str, str]]:
        """(prompt, answer) pairs for fine-tuning a module on `pair`'s `version` ("old"/"new") base."""
        raise NotImplementedError

    def evaluate(self, model, tokenizer, pair, version: str, limit: int | None = None) -> TaskScore:
        """Score `model` (a base with a module landed on it) against `pair`'s `version` world."""
        raise NotImplementedError

    def validation_task(self) -> Task:
        """This task for tuning: it trains on its training data minus a validation split carved from it, and
        scores on that split (never on test data). Tasks that carve one override this."""
        if type(self).train_examples is Task.train_examples:
            raise BenchError(f"task {self.name!r} has no training split to carve a validation split from")
        raise BenchError(f"task {self.name!r} carves no validation split from its training data, so it cannot be "
                         "tuned (bench tune supports the tiny_* tasks)")
