"""PortLLM on its training base (v0), on the validation split, one change of its tuned recipe at a time.

    python results/science/tiny-testbed/source_validation_recipes.py > source-validation-recipes-seeds0-5.json

On the v5 leaderboard PortLLM's module learns tiny_knowledge on its old base within 10 points of finetune_old on 2
of 10 seeds (source 70.0 against 84.2) and tiny_arith on 8 (77.1 against 82.6). Its recipe differs from
finetune_old's in the LoRA targets (every linear layer against the suite's attention on tiny_knowledge), the
schedule (constant lr, no warm-up, against a 10% warm-up and a cosine to 10%), the lr and the steps (tuned). This
asks which of those costs the source score. As `bench tune` does, it trains on the training split minus the
validation part and scores that part, in fp32 (as `bench tune` trains): test data is never read. Each variant
starts from the method's tuned recipe (tasks/recipes/tuned/tiny). Prints {task: {variant: [source score per seed]}}
as JSON; progress goes to stderr.
"""

import json
import statistics
import sys

from testbed import ATTENTION

from bench.engine.executors import LocalExecutor
from bench.engine.protocol import run_grid
from bench.pairs import PAIRS
from methods import METHODS
from tasks.base import TASKS
from tasks.recipes import TUNED_DIR, tuned_overrides

SEEDS = list(range(6))
SUITE_SCHEDULE = {"schedule": "cosine_with_min_lr", "min_lr_rate": 0.1, "warmup_ratio": 0.1}
VARIANTS = {  # task: {label: (method, changes to its tuned recipe)}
    "tiny_knowledge": {
        "finetune_old (reference)": ("finetune_old", {}),
        "portllm as tuned": ("portllm", {}),
        "portllm, the suite's schedule": ("portllm", SUITE_SCHEDULE),
        "portllm, attention only": ("portllm", {"targets": ATTENTION}),
        "portllm, the suite's lr and steps": ("portllm", {"lr": 0.003, "steps": 400}),
    },
    "tiny_arith": {
        "finetune_old (reference)": ("finetune_old", {}),
        "portllm as tuned (rank 4)": ("portllm", {}),
        "portllm, the suite's schedule": ("portllm", SUITE_SCHEDULE),
        "portllm, rank 8": ("portllm", {"rank": 8, "alpha": 16}),
    },
}


def main():
    pair = PAIRS.get("tiny")
    tuned = tuned_overrides(TUNED_DIR, pair.name, set(METHODS.names()), set(PAIRS.names()))
    scores = {}
    with LocalExecutor(workers=2, threads=1) as executor:
        for task_name, variants in VARIANTS.items():
            task = TASKS.get(task_name)()
            validation = task.validation_task()
            scores[task_name] = {}
            for label, (method, changes) in variants.items():
                recipe = {k: v for k, v in tuned[task_name].items() if k.split(".")[0] == method}
                cells = run_grid([method], pair, [validation], SEEDS, {f"{method}.{k}": v for k, v in changes.items()},
                                 executor=executor, task_overrides={task_name: recipe})
                got = [c.score if c.source_score is None else c.source_score for c in cells]
                scores[task_name][label] = got
                print(task_name, label, f"{statistics.fmean(got):.1f} +- {statistics.stdev(got):.1f}", got,
                      file=sys.stderr, flush=True)
    print(json.dumps(scores))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
