"""Usage: python compare.py VARIANT... Per-cell score differences of each variant against the plain run (seed 0)."""
import json, sys
from pathlib import Path
V = Path(__file__).parent
def cells(name):
    return {(c["method"], c["task"], c["seed"]): (c["score"], c.get("source_score"), c["samples"]) for c in json.load(open(V / f"{name}.json"))["cells"]}
plain = cells("plain")
for name in sys.argv[1:]:
    if not (V / f"{name}.json").exists():
        print(name, "not yet"); continue
    other = cells(name)
    diffs = []
    for k, (score, source, samples) in plain.items():
        if k in other:
            diffs.append((k, other[k][0] - score, other[k][2] == samples))
    identical = sum(same for _, _, same in diffs)
    moved = [(f"{m}/{t}", round(d, 1)) for (m, t, s), d, same in diffs if d != 0]
    print(f"{name}: {len(diffs)} cells, {identical} with identical samples, max |delta| {max(abs(d) for _, d, _ in diffs):.1f}; moved: {moved}")
