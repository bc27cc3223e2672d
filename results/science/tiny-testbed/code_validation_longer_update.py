"""finetune_new and direct_transfer on tiny_code's validation split when v1's update runs 3x longer: 2,400 steps at
the same lr 1e-3, the default tiny pair since 2026-12-04 (it ran 800 until then), seeds 0-5.

    python results/science/tiny-testbed/code_validation_longer_update.py > scores.json

v0's rules have 3,000 pretraining steps behind them, v1's changed rules had 800 steps of its update; a LoRA on that
v1 read out the changed ones on some seeds only (README). Does a longer update, at the same lr, consolidate them?
It was run on the 800-step pair as `PAIRS.get("tiny").with_update("full", 3.0)`, the default pair's v1 of now (the
same recipe hash, so the same checkpoint). It trains as `bench tune` does, on the training split minus its
validation part (28 functions), scored on that part: test data is never read. Prints {method: [score per seed]}.
"""

import json
import statistics
import sys

from bench.engine.executors import LocalExecutor
from bench.engine.protocol import run_grid
from bench.pairs import PAIRS
from tasks.base import TASKS


def main():
    pair = PAIRS.get("tiny")
    assert pair.spec.update.steps == 2400, "the default pair's update changed again"
    pair.base_dir("new")  # build v1 once (when not shipped), before the workers need it
    task = TASKS.get("tiny_code")().validation_task()
    methods = ["finetune_new", "direct_transfer"]
    with LocalExecutor(workers=2, threads=1) as executor:
        cells = run_grid(methods, pair, [task], list(range(6)), executor=executor)
    scores = {m: [c.score for c in cells if c.method == m] for m in methods}
    for method, values in scores.items():
        print(method, f"{statistics.fmean(values):.1f} +- {statistics.stdev(values):.1f}", values, file=sys.stderr)
    print(json.dumps(scores))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
