"""Does each tiny base know tiny_code's held-out rules in the forms its corpus states them?

    python results/science/tiny-testbed/probe_rules.py

Greedy completions of `def NAME(x):\\n    return` (code) and `the rule of NAME is` (prose) on the bare bases, for
the 60 held-out entities tiny_code scores, counted against that base's own rules.
"""

from testbed import pair_with_800_step_update
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from tasks import TASKS

pair, task = pair_with_800_step_update(), TASKS.get("tiny_code")()
world = pair.world()
names = task._entities(world, "eval")
old_facts, new_facts = world.facts(0), world.facts(1)
for version, facts in (("old", old_facts), ("new", new_facts)):
    folder = pair.base_dir(version)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True).eval()
    known = {"code": 0, "prose": 0}
    known_changed = {"code": 0, "prose": 0}
    changed = [n for n in names if old_facts[(n, "rule")] != new_facts[(n, "rule")]]
    for name in names:
        rule = facts[(name, "rule")].replace(" ", "")
        for form, prompt in (("code", f"def {name}(x):\n    return"), ("prose", f"the rule of {name} is")):
            ids = tokenizer(prompt, return_tensors="pt").input_ids
            out = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.eos_token_id)
            hit = tokenizer.decode(out[0, ids.shape[1]:]).replace(" ", "").startswith(rule)
            known[form] += hit
            known_changed[form] += hit and name in changed
    print(f"{version}: code {known['code']}/{len(names)}, prose {known['prose']}/{len(names)}; "
          f"the {len(changed)} rules the update changed: code {known_changed['code']}, prose {known_changed['prose']}")
