"""PortLLM on its training base (v0), tiny_knowledge validation split: lower constant lrs at the full step budget.

    python results/science/tiny-testbed/source_validation_lr.py > source-validation-lr-seeds0-5.json

source_validation_recipes.py found that neither the suite's schedule nor attention-only targets close PortLLM's gap
to finetune_old on tiny_knowledge. Its tuned lr (1.9e-3, constant to the last step) is 4.7x the paper's 4e-4, and
its steps (220) are short of the suite's 400. A constant lr ends where it is, with no decay to settle the last
steps, so a high one could cost both the mean and the seed spread. This asks whether lower constant lrs at the
full 400 steps learn the task as well as finetune_old. Validation data only, fp32, as `bench tune` trains.
"""

import json

from testbed import run_variants

VARIANTS = {  # label: (method, changes to its tuned recipe)
    "portllm, lr 4e-4 (paper), 400 steps": ("portllm", {"lr": 4e-4, "steps": 400}),
    "portllm, lr 8e-4, 400 steps": ("portllm", {"lr": 8e-4, "steps": 400}),
    "portllm, lr 1.2e-3, 400 steps": ("portllm", {"lr": 1.2e-3, "steps": 400}),
    "portllm, lr 1.9e-3 (tuned), 400 steps": ("portllm", {"lr": 0.001887336514782663, "steps": 400}),
}


def main():
    print(json.dumps(run_variants("tiny_knowledge", VARIANTS)))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
