"""What each method writes for tiny_code's held-out entities whose rule the update changed, on a results file.

    python results/science/tiny-testbed/code_changed_rules.py results/tiny-v3-10seeds-20261203.json

Per method, over its seeds: how many completions of a changed rule give the new base's rule, the old base's,
or neither; and how many of the unchanged rules are right.
"""

import collections
import json
import sys

from tabulate import tabulate

from bench.pairs import PAIRS
from tasks import TASKS

world, task = PAIRS.get("tiny").world(), TASKS.get("tiny_code")()
names = task._entities(world, "eval")  # TinyCode/i is names[i]
old, new = world.facts(0), world.facts(1)
changed = {i for i, n in enumerate(names) if old[(n, "rule")] != new[(n, "rule")]}
rows = collections.defaultdict(collections.Counter)
for cell in json.load(open(sys.argv[1]))["cells"]:
    if cell["task"] != "tiny_code":
        continue
    tally = rows[cell["method"]]
    for sample in cell["samples"]:
        i = int(sample["id"].split("/")[1])
        body = sample["response"].split("return", 1)[-1].split("\n")[0].replace(" ", "")
        if i in changed:
            tally["new"] += body == new[(names[i], "rule")].replace(" ", "")
            tally["old"] += body == old[(names[i], "rule")].replace(" ", "")
            tally["changed"] += 1
        else:
            tally["unchanged right"] += sample["correct"]
            tally["unchanged"] += 1
print(f"{len(changed)} of the {len(names)} held-out rules changed in the update")
print(tabulate([[m, f"{t['new']}/{t['changed']}", f"{t['old']}/{t['changed']}",
                 f"{t['changed'] - t['new'] - t['old']}/{t['changed']}",
                 f"{t['unchanged right']:.0f}/{t['unchanged']}"] for m, t in rows.items()],
               ["method", "changed: new rule", "changed: old rule", "changed: neither", "unchanged: right"],
               tablefmt="github"))
