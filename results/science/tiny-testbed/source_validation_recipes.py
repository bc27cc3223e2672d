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

from testbed import ATTENTION, run_variants

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
    print(json.dumps({task_name: run_variants(task_name, variants) for task_name, variants in VARIANTS.items()}))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
