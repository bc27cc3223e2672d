"""PortLLM and finetune_old on the old base (v0), validation splits, trained in fp32 (as `bench tune` trains) and in
bf16 (as `bench run --precision auto` trains where the CPU probe picks bf16).

    python results/science/tiny-testbed/source_validation_precision.py > source-validation-precision-seeds0-5.json

On validation data (fp32) PortLLM's tuned tiny_knowledge module is 4.5 points below finetune_old's; on the v5
leaderboard (bf16, test data) it is 14.2 below, and v4's (fp32 on an AVX2 CPU, test data) had it 8.7 below. This
asks, on validation data only, whether training in bf16 widens the gap: the recipes were chosen in fp32.
Prints {task: {method: {precision: [score on v0 per seed]}}} as JSON; progress goes to stderr.
"""

import json

from testbed import report, validation_scores

from bench.engine.executors import LocalExecutor
from bench.models.training import TrainOptions

TASK_NAMES = ["tiny_knowledge", "tiny_arith"]
METHOD_NAMES = ["finetune_old", "portllm"]


def main():
    scores = {}
    with LocalExecutor(workers=2, threads=1) as executor:
        for task_name in TASK_NAMES:
            scores[task_name] = {}
            for method in METHOD_NAMES:
                scores[task_name][method] = {}
                for precision in ("fp32", "bf16"):
                    got = validation_scores(executor, task_name, method, options=TrainOptions(precision=precision))
                    scores[task_name][method][precision] = got
                    report(f"{task_name} {method} {precision}", got)
    print(json.dumps(scores))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
