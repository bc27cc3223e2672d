"""Which tiny_arith problems do the slow seeds of finetune_old miss, and how? On the validation split (carved from
the training data), from the cached runs of arith_validation_recipe.py's "no LoRA dropout" variant, whose seeds
split into fast and slow as the suite's attention-only LoRA does.

    python results/science/tiny-testbed/arith_slow_seeds.py

A seed is slow when it scores more than 5 points under the median seed. For the problems only slow seeds miss, it
counts answers that are the sum of the operands with one operand's units digit replaced (a miscopy), and which
operands those are. Run arith_validation_recipe.py first (this reads its modules from the store, or trains them).
"""

import collections
import statistics

from testbed import ATTENTION

from bench.engine.executors import LocalExecutor
from bench.engine.protocol import run_grid
from bench.pairs import PAIRS
from tasks.base import TASKS


def operand_class(a: int, b: int) -> str:
    low = min(a, b)
    return "one digit" if low < 10 else "10-19" if low < 20 else "both >= 20"


def miscopied(a: int, b: int, answer: str) -> bool:
    """The answer is a + b with a's or b's units digit swapped for another digit."""
    if not answer.lstrip("-").isdigit():
        return False
    value = int(answer)
    return any(value == (x - x % 10 + d) + y for x, y in ((a, b), (b, a)) for d in range(10) if d != x % 10)


def main():
    pair = PAIRS.get("tiny")
    task = TASKS.get("tiny_arith")().validation_task()
    operands = [ab for _, ab in task._numbered(pair.world(), "eval")]
    with LocalExecutor(workers=2, threads=1) as executor:
        cells = run_grid(["finetune_old"], pair, [task], list(range(10)), {"targets": ATTENTION, "dropout": 0.0},
                         executor=executor)
    median = statistics.median(c.score for c in cells)
    slow = [c for c in cells if c.score < median - 5]
    fast = [c for c in cells if c.score >= median - 5]
    print(f"median {median:.1f}; slow seeds {[c.seed for c in slow]}, fast {[c.seed for c in fast]}")
    missed = {c.seed: {s["id"]: s["response"] for s in c.samples if s["correct"] < 1} for c in cells}
    by_fast = set().union(*(missed[c.seed] for c in fast))
    only_slow = collections.Counter(i for c in slow for i in missed[c.seed] if i not in by_fast)
    shared = [i for i, k in only_slow.items() if k == len(slow)]
    copies = sum(miscopied(*operands[i], missed[c.seed][i]) for c in slow for i in missed[c.seed] if i not in by_fast)
    print(f"missed by every slow seed and no fast one: {len(shared)}; of the slow seeds' answers to problems no fast "
          f"seed misses, {copies} of {sum(only_slow.values())} are a units-digit miscopy of an operand")
    for label, ids in (("all validation problems", range(len(operands))), ("missed only by slow seeds", shared),
                       ("missed by every fast seed", set.intersection(*(set(missed[c.seed]) for c in fast)))):
        counts = collections.Counter(operand_class(*operands[i]) for i in ids)
        print(f"{label} ({len(ids)}):", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":  # the workers are spawned: they import this file without running it
    main()
