"""finetune_old on tiny_arith's validation split with 2000 vs 8000 training problems (same 1000 steps), seeds 0-9.

    python results/science/tiny-testbed/arith_validation_ntrain.py > scores.json

Asks whether more distinct problems (2.5 epochs instead of 8) steady the old-base arithmetic LoRA, whose seed sd
is the largest of the reference cells. As `bench tune` does, it trains on the training split minus the carved
validation part and scores that part (400 or 1600 problems): test data is never read. Prints {n_train: [score
per seed]} as JSON; progress goes to stderr.
"""

import json
import statistics
import sys

from testbed import ATTENTION

from bench.engine.executors import LocalExecutor
from bench.engine.protocol import run_grid
from bench.pairs import PAIRS
from tasks.tiny import TinyArith


class TinyArith8000(TinyArith):
    n_train = 8000  # of the 10,000 operand pairs; the 400 test problems stay out of them as before


def main():
    pair = PAIRS.get("tiny")
    scores = {}
    with LocalExecutor(workers=2, threads=1) as executor:
        for task in (TinyArith8000(), TinyArith()):
            cells = run_grid(["finetune_old"], pair, [task.validation_task()], list(range(10)), {"targets": ATTENTION},
                             executor=executor)
            scores[task.n_train] = [c.score for c in cells]
            print(task.n_train, f"{statistics.fmean(scores[task.n_train]):.1f} +- "
                  f"{statistics.stdev(scores[task.n_train]):.1f}", file=sys.stderr, flush=True)
    print(json.dumps(scores))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
