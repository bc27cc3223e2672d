"""finetune_old and finetune_new on tiny_code's validation split: the tiny suite's attention-only LoRA against one
on every linear layer (FFN too, as PortLLM's recipe has it), seeds 0-5.

    python results/science/tiny-testbed/code_validation_targets.py > scores.json

Asks whether finetune_new's all-or-nothing read-out of the rules v1 changed (README: a third rule, neither base's)
is an attention-only LoRA's limit. As `bench tune` does, it trains on the training split minus its validation part
and scores that part (28 functions): test data is never read. Prints {targets: {method: [score per seed]}}.
"""

import json
import statistics
import sys

from testbed import ATTENTION, EVERY_LINEAR, pair_with_800_step_update

from bench.engine.executors import LocalExecutor
from bench.engine.protocol import run_grid
from tasks.base import TASKS

TARGETS = {"attention": ATTENTION, "all linear": EVERY_LINEAR}


def main():
    pair = pair_with_800_step_update()
    task = TASKS.get("tiny_code")().validation_task()
    scores = {}
    with LocalExecutor(workers=2, threads=1) as executor:
        for label, targets in TARGETS.items():
            cells = run_grid(["finetune_old", "finetune_new"], pair, [task], list(range(6)), {"targets": targets},
                             executor=executor)
            scores[label] = {m: [c.score for c in cells if c.method == m] for m in ("finetune_old", "finetune_new")}
            for method, values in scores[label].items():
                print(label, method, f"{statistics.fmean(values):.1f} +- {statistics.stdev(values):.1f}",
                      file=sys.stderr, flush=True)
    print(json.dumps(scores))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
