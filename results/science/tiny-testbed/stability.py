"""Issue 12 item 3 on committed results: seed spread, learning on the training base, and float noise.

    python results/science/tiny-testbed/stability.py LEADERBOARD.json TWIN.json [TWIN.json ...]

LEADERBOARD: the default grid on seeds 0-9 (native). TWIN: the same grid on some of those seeds under
MKL_ENABLE_INSTRUCTIONS=SSE4_2 ATEN_CPU_CAPABILITY=default ("another machine"), from a fresh cache; several
files (runs of other seeds) are read as one.
"""

import itertools
import json
import statistics
import sys
from collections import defaultdict

from tabulate import tabulate


def cells(*paths):
    table = defaultdict(dict)
    for path in paths:
        for c in json.load(open(path))["cells"]:
            if c["seed"] in table[(c["method"], c["task"])]:
                sys.exit(f"{path}: seed {c['seed']} of {c['method']} {c['task']} is in another file too")
            table[(c["method"], c["task"])][c["seed"]] = c
    return table


native, twin = cells(sys.argv[1]), cells(*sys.argv[2:])
old = {task: seeds for (method, task), seeds in native.items() if method == "finetune_old"}
rows = []
for (method, task), seeds in native.items():
    scores = [c["score"] for c in seeds.values()]
    sd = statistics.stdev(scores)
    # "learns on its training base": its module's score there (source score, or its own score when it does not
    # transfer) >= finetune_old's score on that seed - 10
    learnt = sum((c["source_score"] if c["source_score"] is not None else c["score"]) >= old[task][s]["score"] - 10
                 for s, c in seeds.items())
    twinned = sorted(twin.get((method, task), {}))
    moved = [abs(twin[(method, task)][s]["score"] - seeds[s]["score"]) for s in twinned]
    # What a change of seed does, for scale: how often two native seeds of this cell lie within one seed sd.
    reseeded = [abs(a["score"] - b["score"]) <= sd for a, b in itertools.combinations(seeds.values(), 2)]
    mean_moved = (abs(statistics.fmean(twin[(method, task)][s]["score"] for s in twinned)
                      - statistics.fmean(seeds[s]["score"] for s in twinned)) if twinned else None)
    rows.append([method, task, f"{statistics.fmean(scores):.1f}", f"{sd:.1f}", f"{learnt}/{len(seeds)}",
                 f"{max(moved):.1f}" if moved else "-", f"{sum(m <= sd for m in moved)}/{len(moved)}",
                 f"{sum(reseeded)}/{len(reseeded)}",
                 "-" if mean_moved is None else f"{mean_moved:.1f}" + (" (over sd)" if mean_moved > sd else ""),
                 len(twinned)])
print(tabulate(rows, ["method", "task", "mean", "seed sd", "learns on its base", "max |twin - native|",
                      "twin within sd", "two seeds within sd", "|twin mean - native mean|", "twin seeds"],
               tablefmt="github", disable_numparse=True))
