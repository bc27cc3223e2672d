"""PortLLM and finetune_old on the old base (v0), validation splits, trained in fp32 (as `bench tune` trains) and in
bf16 (as `bench run --precision auto` trains where the CPU probe picks bf16).

    python results/science/tiny-testbed/source_validation_precision.py > source-validation-precision-seeds0-5.json

On validation data (fp32) PortLLM's tuned tiny_knowledge module is 4.5 points below finetune_old's; on the v5
leaderboard (bf16, test data) it is 14.2 below, and v4's (fp32 on an AVX2 CPU, test data) had it 8.7 below. This
asks, on validation data only, whether training in bf16 widens the gap: the recipes were chosen in fp32.
Prints {task: {method: {precision: [score on v0 per seed]}}} as JSON; progress goes to stderr.
"""

import json
import statistics
import sys

from bench.engine.executors import LocalExecutor
from bench.engine.protocol import run_grid
from bench.models.training import TrainOptions
from bench.pairs import PAIRS
from methods import METHODS
from tasks.base import TASKS
from tasks.recipes import TUNED_DIR, tuned_overrides

SEEDS = list(range(6))
TASK_NAMES = ["tiny_knowledge", "tiny_arith"]
METHOD_NAMES = ["finetune_old", "portllm"]


def main():
    pair = PAIRS.get("tiny")
    tuned = tuned_overrides(TUNED_DIR, pair.name, set(METHODS.names()), set(PAIRS.names()))
    scores = {}
    with LocalExecutor(workers=2, threads=1) as executor:
        for task_name in TASK_NAMES:
            validation = TASKS.get(task_name)().validation_task()
            scores[task_name] = {}
            for method in METHOD_NAMES:
                recipe = {k: v for k, v in tuned[task_name].items() if k.split(".")[0] == method}
                scores[task_name][method] = {}
                for precision in ("fp32", "bf16"):
                    cells = run_grid([method], pair, [validation], SEEDS, executor=executor,
                                     task_overrides={task_name: recipe}, options=TrainOptions(precision=precision))
                    got = [c.score if c.source_score is None else c.source_score for c in cells]
                    scores[task_name][method][precision] = got
                    print(task_name, method, precision, f"{statistics.fmean(got):.1f} +- {statistics.stdev(got):.1f}",
                          got, file=sys.stderr, flush=True)
    print(json.dumps(scores))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
