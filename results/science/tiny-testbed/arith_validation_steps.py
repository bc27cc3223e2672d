"""finetune_old on tiny_arith's validation split (carved from its training data), 1000 vs 1500 steps, seeds 0-9.

    python results/science/tiny-testbed/arith_validation_steps.py > scores.json

Trains on the training split minus the validation part and scores that part, as `bench tune` does: test data is
never read. Prints {steps: [score per seed]} as JSON; progress goes to stderr.
"""

import json
import statistics
import sys

from testbed import ATTENTION

from bench.engine.executors import LocalExecutor
from bench.engine.protocol import run_grid
from bench.pairs import PAIRS
from tasks.base import TASKS


def main():
    pair = PAIRS.get("tiny")
    task = TASKS.get("tiny_arith")().validation_task()
    scores = {}
    with LocalExecutor(workers=2, threads=1) as executor:
        for steps in (1000, 1500):
            cells = run_grid(["finetune_old"], pair, [task], list(range(10)), {"steps": steps, "targets": ATTENTION},
                             executor=executor)
            scores[steps] = [c.score for c in cells]
            print(steps, f"{statistics.fmean(scores[steps]):.1f} +- {statistics.stdev(scores[steps]):.1f}",
                  file=sys.stderr)
    print(json.dumps(scores))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
