"""tiny_knowledge on the old base (v0), validation split: does a longer step budget let PortLLM's recipe catch up?

    python results/science/tiny-testbed/knowledge_validation_steps.py > knowledge-validation-steps-seeds0-5.json

PortLLM's tuned recipe (constant lr, every linear layer) learns tiny_knowledge on its old base below finetune_old's
(the suite's cosine and attention LoRA): 76.2 against 80.7 on validation, 70.0 against 84.2 on v5's test set. The
task trains 400 steps, and the tuning range of steps is 100-400 for every method. If the task's budget is on the
steep part of the learning curves, recipes that differ in speed differ in score for that reason only, and a longer
budget would let them meet at a plateau. Each method's tuned recipe, its steps doubled (and PortLLM's 220 also
scaled to 440, 660), in fp32 (as `bench tune` trains), validation data only. Prints {label: [score per seed]}.
"""

import json
import statistics
import sys

from bench.engine.executors import LocalExecutor
from bench.engine.protocol import run_grid
from bench.pairs import PAIRS
from methods import METHODS
from tasks.base import TASKS
from tasks.recipes import TUNED_DIR, tuned_overrides

SEEDS = list(range(6))
VARIANTS = {  # label: (method, changes to its tuned recipe)
    "finetune_old, 800 steps": ("finetune_old", {"steps": 800}),
    "trans_peft, 800 steps": ("trans_peft", {"steps": 800}),
    "portllm, 440 steps": ("portllm", {"steps": 440}),
    "portllm, 660 steps": ("portllm", {"steps": 660}),
}


def main():
    pair = PAIRS.get("tiny")
    tuned = tuned_overrides(TUNED_DIR, pair.name, set(METHODS.names()), set(PAIRS.names()))
    validation = TASKS.get("tiny_knowledge")().validation_task()
    scores = {}
    with LocalExecutor(workers=2, threads=1) as executor:
        for label, (method, changes) in VARIANTS.items():
            recipe = {k: v for k, v in tuned["tiny_knowledge"].items() if k.split(".")[0] == method}
            cells = run_grid([method], pair, [validation], SEEDS, {f"{method}.{k}": v for k, v in changes.items()},
                             executor=executor, task_overrides={"tiny_knowledge": recipe})
            got = [c.score if c.source_score is None else c.source_score for c in cells]
            scores[label] = got
            print(label, f"{statistics.fmean(got):.1f} +- {statistics.stdev(got):.1f}", got, file=sys.stderr,
                  flush=True)
    print(json.dumps(scores))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
