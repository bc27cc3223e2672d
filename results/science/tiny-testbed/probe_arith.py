"""How well does each bare tiny base add? Greedy completions of `a + b =` (the corpus' equation form) and of the
corpus' story form, on tiny_arith's validation problems' operands (carved from its training data: no test data).

    python results/science/tiny-testbed/probe_arith.py

Counts exact sums overall and for sums with a carry out of the units digit, where the slow seeds of finetune_old's
arithmetic LoRA fall behind.
"""

import torch
from testbed import pair_with_800_step_update
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from tasks import TASKS

pair, task = pair_with_800_step_update(), TASKS.get("tiny_arith")()
world = pair.world()
operands = [ab for _, ab in task.validation_task()._numbered(world, "eval")]
for version in ("old", "new"):
    folder = pair.base_dir(version)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True).eval()
    for form in ("equation", "story"):
        right = {"all": 0, "carry": 0}
        carries = 0
        for i, (a, b) in enumerate(operands):
            name = world.names[i % world.spec.n_entities]
            prompt = (f"{a} + {b} =" if form == "equation" else
                      f"{name} has {a} stones . {name} finds {b} more . now {name} has {a} + {b} =")
            ids = tokenizer(prompt, return_tensors="pt").input_ids
            with torch.no_grad():
                out = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.eos_token_id)
            words = tokenizer.decode(out[0, ids.shape[1]:]).split()
            hit = bool(words) and words[0].replace(" ", "") == str(a + b)
            carry = a % 10 + b % 10 >= 10
            carries += carry
            right["all"] += hit
            right["carry"] += hit and carry
        print(f"{version} {form}: {right['all']}/{len(operands)} exact; with a carry {right['carry']}/{carries}, "
              f"without {right['all'] - right['carry']}/{len(operands) - carries}", flush=True)
