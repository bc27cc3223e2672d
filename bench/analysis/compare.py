"""The regression gate: did CURRENT get significantly worse than BASELINE on any (method, task)?

Per (method, task), the per-sample outcomes of both runs are paired by (seed, sample id). Binary
outcomes (exact match, acc, pass@1) go through McNemar's exact test; other per-sample scores through
a paired bootstrap of the mean difference. A cell regresses when it is worse by at least min_delta
score points (0-100) and the test rejects "no change" at alpha.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from bench.analysis.stats import is_binary, mcnemar_exact, paired_bootstrap_ci
from bench.core.errors import BenchError
from bench.core.results import INTEGER, LIST, NUMBER, TEXT, check_record, is_number, read_input_json

COMPARED = {"method": TEXT, "task": TEXT, "seed": INTEGER, "score": NUMBER, "samples": LIST}  # per cell


def load_checked(path: Path) -> dict:
    """A results file, checked for what the comparison needs; anything else is one clear error."""
    path = Path(path)
    results = read_input_json(path)
    if not isinstance(results, dict) or not isinstance(results.get("cells"), list):
        raise BenchError(f"{path} is not a bench results file (no 'cells' list)")
    for i, cell in enumerate(results["cells"]):
        check_record(f"{path}: cell {i}", cell, COMPARED)
        for sample in cell["samples"]:
            if not isinstance(sample, dict) or "id" not in sample or not is_number(sample.get("correct")):
                raise BenchError(f"{path}: cell {i} ({cell['method']}, {cell['task']}) has a sample without "
                                 f"an id and a numeric 'correct'")
    return results


@dataclass
class CellComparison:
    method: str
    task: str
    n: int
    baseline: float      # mean per-sample correctness x100 over the paired samples
    current: float
    test: str            # "mcnemar" | "bootstrap" | "none"
    lost: int | None     # McNemar's discordant pairs
    gained: int | None
    p: float | None
    ci: tuple[float, float]  # paired bootstrap CI of current - baseline, score points
    regressed: bool

    @property
    def delta(self) -> float:
        return self.current - self.baseline


def outcomes(results: dict) -> dict:
    """{(method, task): {(seed, sample id): correct}}"""
    table: dict = {}
    for cell in results["cells"]:
        per_sample = table.setdefault((cell["method"], cell["task"]), {})
        for sample in cell["samples"]:
            per_sample[(cell["seed"], str(sample["id"]))] = float(sample["correct"])
    return table


def compare(baseline: dict, current: dict, alpha: float = 0.05, min_delta: float = 0.0) -> list[CellComparison]:
    if not 0 < alpha < 1:
        raise BenchError(f"--alpha must be in (0, 1), got {alpha}")
    if min_delta < 0:
        raise BenchError(f"--min-delta must be >= 0 score points, got {min_delta}")
    if baseline.get("pair") != current.get("pair"):
        raise BenchError(f"baseline is pair {baseline.get('pair')!r} but current is {current.get('pair')!r}")
    base, cur = outcomes(baseline), outcomes(current)
    missing = [f"{m}/{t}" for m, t in base if (m, t) not in cur]
    if missing:
        raise BenchError(f"current run lacks baseline cells {', '.join(missing)}; run the baseline's grid")
    rows = []
    for (method, task), base_samples in base.items():
        cur_samples = cur[(method, task)]
        seeds = {s for s, _ in base_samples} & {s for s, _ in cur_samples}
        if not seeds:
            raise BenchError(f"{method}/{task}: baseline and current share no seed")
        keys = sorted(k for k in base_samples if k[0] in seeds)
        if keys != sorted(k for k in cur_samples if k[0] in seeds):
            raise BenchError(f"{method}/{task}: baseline and current scored different samples "
                             f"(another --limit or task version?)")
        b = [base_samples[k] for k in keys]
        c = [cur_samples[k] for k in keys]
        rows.append(compare_samples(method, task, b, c, alpha, min_delta))
    return rows


def compare_samples(method: str, task: str, b: list[float], c: list[float], alpha: float,
                    min_delta: float) -> CellComparison:
    n = len(b)
    if n == 0:
        return CellComparison(method, task, 0, 0.0, 0.0, "none", None, None, None, (0.0, 0.0), False)
    low, high = paired_bootstrap_ci(b, c, alpha)
    base_mean, cur_mean = 100 * sum(b) / n, 100 * sum(c) / n
    if is_binary(b) and is_binary(c):
        test = mcnemar_exact(b, c)
        lost, gained, p, significant = test.lost, test.gained, test.p, test.p < alpha
        kind = "mcnemar"
    else:  # the bootstrap CI excluding 0 is the test at level alpha
        lost = gained = p = None
        significant, kind = high < 0 or low > 0, "bootstrap"
    regressed = significant and cur_mean < base_mean and base_mean - cur_mean >= min_delta
    return CellComparison(method, task, n, base_mean, cur_mean, kind, lost, gained, p, (100 * low, 100 * high),
                          regressed)


def comparison_table(rows: list[CellComparison], alpha: float, min_delta: float) -> str:
    headers = ["method", "task", "n", "baseline", "current", "delta", "lost/gained", "test", "p", "95% CI"
               if alpha == 0.05 else f"{100 * (1 - alpha):g}% CI", "verdict"]
    body = []
    for r in rows:
        verdict = "REGRESSED" if r.regressed else ("no samples" if r.test == "none" else "ok")
        body.append([r.method, r.task, r.n, f"{r.baseline:.1f}", f"{r.current:.1f}", f"{r.delta:+.1f}",
                     "-" if r.lost is None else f"{r.lost}/{r.gained}", r.test,
                     "-" if r.p is None else f"{r.p:.3g}", f"[{r.ci[0]:+.1f}, {r.ci[1]:+.1f}]", verdict])
    regressed = sum(r.regressed for r in rows)
    summary = (f"{regressed} of {len(rows)} cells regressed significantly (alpha {alpha}, min delta {min_delta} "
               f"points; McNemar exact on per-sample correctness, paired bootstrap CI of the difference)")
    return tabulate(body, headers, tablefmt="github", disable_numparse=True) + "\n" + summary
