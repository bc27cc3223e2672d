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

from testbed import run_variants

VARIANTS = {  # label: (method, changes to its tuned recipe)
    "finetune_old, 800 steps": ("finetune_old", {"steps": 800}),
    "trans_peft, 800 steps": ("trans_peft", {"steps": 800}),
    "portllm, 440 steps": ("portllm", {"steps": 440}),
    "portllm, 660 steps": ("portllm", {"steps": 660}),
}


def main():
    print(json.dumps(run_variants("tiny_knowledge", VARIANTS)))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
