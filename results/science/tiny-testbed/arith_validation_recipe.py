"""finetune_old on tiny_arith's validation split with one suite-recipe change at a time, seeds 0-9.

    python results/science/tiny-testbed/arith_validation_recipe.py > scores.json

The slow seeds of the arithmetic LoRA miscopy an operand's units digit (README: "which problems the slow seeds
miss"); this asks whether the copy gets reliable with the LoRA on every linear layer or without LoRA dropout. As
`bench tune` does, it trains on the training split minus its validation part (400 problems) and scores that part:
test data is never read. Prints {variant: [score per seed]} as JSON; progress goes to stderr.
"""

import json
import statistics
import sys

from testbed import ATTENTION, EVERY_LINEAR

from bench.engine.executors import LocalExecutor
from bench.engine.protocol import run_grid
from bench.pairs import PAIRS
from tasks.base import TASKS

# Each against the attention-only LoRA the suite had then
VARIANTS = {"every linear layer": {"targets": EVERY_LINEAR}, "no LoRA dropout": {"targets": ATTENTION, "dropout": 0.0}}


def main():
    pair = PAIRS.get("tiny")
    task = TASKS.get("tiny_arith")().validation_task()
    scores = {}
    with LocalExecutor(workers=2, threads=1) as executor:
        for label, overrides in VARIANTS.items():
            cells = run_grid(["finetune_old"], pair, [task], list(range(10)), overrides, executor=executor)
            scores[label] = [c.score for c in cells]
            print(label, f"{statistics.fmean(scores[label]):.1f} +- {statistics.stdev(scores[label]):.1f}",
                  scores[label], file=sys.stderr, flush=True)
    print(json.dumps(scores))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
