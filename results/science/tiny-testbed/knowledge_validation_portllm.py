"""PortLLM's LoRA on tiny_knowledge's validation split, on the base it trains on (v0): its tuned recipe as is
(every linear layer, constant lr), with the tiny suite's schedule (10% warm-up, cosine to 10%), and on attention
only; finetune_old beside it. Seeds 0-5.

    python results/science/tiny-testbed/knowledge_validation_portllm.py > scores.json

On the default leaderboard PortLLM's LoRA scores 72.3 on v0 against finetune_old's 81.9 (within 10 points on 5 of
10 seeds). This asks which part of PortLLM's recipe costs the held-out facts. As `bench tune` does, it trains on
the training split minus its validation part (56 questions) and scores that part: test data is never read.
Prints {variant: [source score per seed]} as JSON.
"""

import json
import statistics
import sys

import yaml

from bench.engine.executors import LocalExecutor
from bench.engine.protocol import run_grid
from bench.pairs import PAIRS
from tasks.base import TASKS
from tasks.recipes import TUNED_DIR

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
SUITE_SCHEDULE = {"schedule": "cosine_with_min_lr", "min_lr_rate": 0.1, "warmup_ratio": 0.1, "warmup_steps": 0}


def main():
    pair = PAIRS.get("tiny")
    task = TASKS.get("tiny_knowledge")().validation_task()
    tuned = yaml.safe_load((TUNED_DIR / "tiny" / "portllm.yaml").read_text())["tasks"]["tiny_knowledge"]["recipe"]
    variants = {"portllm as tuned": ("portllm", tuned), "portllm, suite schedule": ("portllm", tuned | SUITE_SCHEDULE),
                "portllm, attention only": ("portllm", tuned | {"targets": ATTENTION}),
                "finetune_old": ("finetune_old", {})}
    scores = {}
    with LocalExecutor(workers=2, threads=1) as executor:
        for label, (method, recipe) in variants.items():
            cells = run_grid([method], pair, [task], list(range(6)), recipe, executor=executor)
            scores[label] = [c.source_score if c.source_score is not None else c.score for c in cells]
            print(label, f"{statistics.fmean(scores[label]):.1f} +- {statistics.stdev(scores[label]):.1f}",
                  scores[label], file=sys.stderr, flush=True)
    print(json.dumps(scores))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
