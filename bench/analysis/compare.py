"""The regression gate: did CURRENT get significantly worse than BASELINE on any (method, task)?

unit "sample" (default): per (method, task), the per-sample outcomes of both runs are paired by (seed, sample
id). Binary outcomes (exact match, acc, pass@1) go through McNemar's exact test; other per-sample scores
through a paired bootstrap of the mean difference. A cell regresses when it is worse by at least min_delta
score points (0-100) and the test rejects "no change" at alpha. This asks "did these samples change", which
a rerun on another CPU answers yes (its rounding sends training down another trajectory): use it on one machine.

unit "seed" (the CI gate): per (method, task), each seed's score is one draw of the training outcome and the
two runs' seeds are independent samples (on another CPU, seed s is not the same trajectory, so no pairing).
One-sided Welch t-test of current < baseline, Holm-corrected over all cells (alpha is family-wise), and a drop
of at least min_delta points. It fires on a shift of the seed distribution, not on a redraw of it.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path

from scipy import stats
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


def check_options(alpha: float, min_delta: float) -> None:
    if not 0 < alpha < 1:
        raise BenchError(f"--alpha must be in (0, 1), got {alpha}")
    if min_delta < 0:
        raise BenchError(f"--min-delta must be >= 0 score points, got {min_delta}")


def check_same_grid(baseline: dict, current: dict) -> None:
    """Same pair, same tasks, every baseline (method, task) present: anything else is not a comparison."""
    if baseline.get("pair") != current.get("pair"):
        raise BenchError(f"baseline is pair {baseline.get('pair')!r} but current is {current.get('pair')!r}")
    tasks = [sorted({c["task"] for c in r["cells"]}) for r in (baseline, current)]
    if tasks[0] != tasks[1]:
        raise BenchError(f"baseline has tasks {', '.join(tasks[0])} but current has {', '.join(tasks[1])}: "
                         "compare runs of the same grid")
    have = {(c["method"], c["task"]) for c in current["cells"]}
    missing = [f"{m}/{t}" for m, t in dict.fromkeys((c["method"], c["task"]) for c in baseline["cells"])
               if (m, t) not in have]
    if missing:
        raise BenchError(f"current run lacks baseline cells {', '.join(missing)}; run the baseline's grid")


def compare(baseline: dict, current: dict, alpha: float = 0.05, min_delta: float = 0.0) -> list[CellComparison]:
    check_options(alpha, min_delta)
    check_same_grid(baseline, current)
    base, cur = outcomes(baseline), outcomes(current)
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


# --- unit "seed": the CI gate -------------------------------------------------------------------------------

@dataclass
class SeedComparison:
    method: str
    task: str
    baseline: list[float]   # per-seed scores
    current: list[float]
    p: float                # one-sided Welch t-test, current < baseline
    p_holm: float           # Holm-adjusted over every cell of the comparison
    guards: float           # the mean drop that fires whatever the other cells do, at these seed spreads
    regressed: bool

    @property
    def delta(self) -> float:
        return statistics.fmean(self.current) - statistics.fmean(self.baseline)


def seed_scores(results: dict) -> dict:
    """{(method, task): {seed: (score, n)}}"""
    table: dict = {}
    for cell in results["cells"]:
        table.setdefault((cell["method"], cell["task"]), {})[cell["seed"]] = (float(cell["score"]),
                                                                             len(cell["samples"]))
    return table


def welch_less(b: list[float], c: list[float]) -> float:
    """One-sided p of mean(c) < mean(b), Welch's t-test; seeds that all agree give 0 or 1."""
    if statistics.pvariance(b) == 0 and statistics.pvariance(c) == 0:
        return 0.0 if statistics.fmean(c) < statistics.fmean(b) else 1.0
    with warnings.catch_warnings():  # scipy warns of precision loss when one side's seeds all agree: harmless here
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(c, b, equal_var=False, alternative="less").pvalue)


def welch_half_width(b: list[float], c: list[float], alpha: float) -> float:
    """The mean drop a one-sided Welch test at level alpha detects with these two runs' seed spreads."""
    vb, vc = statistics.variance(b) / len(b), statistics.variance(c) / len(c)
    if vb + vc == 0:
        return 0.0
    df = (vb + vc) ** 2 / (vb**2 / (len(b) - 1) + vc**2 / (len(c) - 1))
    return float(stats.t.ppf(1 - alpha, df)) * math.sqrt(vb + vc)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment: family-wise error <= alpha when adjusted p < alpha."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, running = [1.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def compare_seeds(baseline: dict, current: dict, alpha: float = 0.05, min_delta: float = 5.0) -> list[SeedComparison]:
    check_options(alpha, min_delta)
    check_same_grid(baseline, current)
    base, cur = seed_scores(baseline), seed_scores(current)
    cells = []
    for key, base_seeds in base.items():
        cur_seeds = cur[key]
        if len(base_seeds) < 2 or len(cur_seeds) < 2:
            raise BenchError(f"{'/'.join(key)}: the seed gate needs at least 2 seeds in each run (baseline "
                             f"{len(base_seeds)}, current {len(cur_seeds)}); run --seeds 0,1,2")
        if {n for _, n in base_seeds.values()} != {n for _, n in cur_seeds.values()}:
            raise BenchError(f"{'/'.join(key)}: baseline and current scored different numbers of samples "
                             f"(another --limit or task version?)")
        cells.append((key, [s for s, _ in base_seeds.values()], [s for s, _ in cur_seeds.values()]))
    pvalues = [welch_less(b, c) for _, b, c in cells]
    rows = []
    for ((method, task), b, c), p, p_holm in zip(cells, pvalues, holm(pvalues)):
        guards = max(min_delta, welch_half_width(b, c, alpha / len(cells)))
        drop = statistics.fmean(b) - statistics.fmean(c)
        rows.append(SeedComparison(method, task, b, c, p, p_holm, guards, p_holm < alpha and drop >= min_delta))
    return rows


def seed_comparison_table(rows: list[SeedComparison], alpha: float, min_delta: float) -> str:
    def spread(values):
        mean, sd = statistics.fmean(values), statistics.stdev(values)
        return f"{mean:.1f} ± {sd:.1f}"

    headers = ["method", "task", "seeds", "baseline", "current", "delta", "p (Welch)", "p (Holm)", "fires at drop",
               "verdict"]
    body = [[r.method, r.task, f"{len(r.baseline)}/{len(r.current)}", spread(r.baseline), spread(r.current),
             f"{r.delta:+.1f}", f"{r.p:.3g}", f"{r.p_holm:.3g}", f">= {r.guards:.1f}",
             "REGRESSED" if r.regressed else "ok"] for r in rows]
    regressed = sum(r.regressed for r in rows)
    summary = (f"{regressed} of {len(rows)} cells regressed (seed gate: per-seed scores, one-sided Welch t-test, "
               f"Holm over {len(rows)} cells at family-wise alpha {alpha}, min delta {min_delta} points; "
               "'fires at drop': the mean drop that fires whatever the other cells do, at these seed spreads)")
    return tabulate(body, headers, tablefmt="github", disable_numparse=True) + "\n" + summary
