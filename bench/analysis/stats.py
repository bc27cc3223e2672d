"""Statistics for leaderboards and the regression gate, on scipy.

mean +/- sd over seeds; a paired t-test between two methods over (task, seed) scores (Trans-PEFT
Table 3); McNemar's exact test on per-sample correctness and a paired bootstrap of the mean
difference for comparing one cell across two runs.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
from scipy import stats


def mean_sd(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


@dataclass
class PairedT:
    n: int
    mean_diff: float      # a - b
    t: float | None
    p: float | None       # None: fewer than two pairs, or every pair differs by the same amount
    sd_diff: float = 0.0  # sample standard deviation of the differences

    @property
    def sign_flip_p(self) -> float:
        """Two-sided exact sign-flip p for n pairs that all differ by the same amount: 2 x 0.5^n (capped at 1)."""
        return min(1.0, 2 * 0.5 ** self.n)

    def interval(self, alpha: float = 0.05) -> tuple[float, float] | None:
        """The (1 - alpha) confidence interval of the mean difference (t distribution); None below two pairs."""
        if self.n < 2:
            return None
        if self.sd_diff == 0:
            # Constant differences: the t interval shrinks to the point, as certain from 3 pairs as from 300; the
            # point counts only where an exact sign-flip test says n agreeing pairs are not chance.
            return (self.mean_diff, self.mean_diff) if self.sign_flip_p < alpha else None
        half = float(stats.t.ppf(1 - alpha / 2, self.n - 1)) * self.sd_diff / float(np.sqrt(self.n))
        return self.mean_diff - half, self.mean_diff + half


def paired_t_test(a: list[float], b: list[float]) -> PairedT:
    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean_diff = float(diffs.mean()) if len(diffs) else 0.0
    # With constant differences the t statistic is undefined (0/0 or x/0): report no p rather than 0 or 1.
    if len(diffs) < 2 or np.allclose(diffs, diffs[0]):
        return PairedT(len(diffs), mean_diff, None, None)
    result = stats.ttest_rel(a, b)
    return PairedT(len(diffs), mean_diff, float(result.statistic), float(result.pvalue), float(diffs.std(ddof=1)))


@dataclass
class McNemar:
    lost: int    # correct in the baseline, wrong now
    gained: int  # wrong in the baseline, correct now
    p: float


def mcnemar_exact(baseline: list[float], current: list[float]) -> McNemar:
    """McNemar's exact test: under no change, the discordant pairs split 50/50 (a binomial test)."""
    base, cur = np.asarray(baseline) > 0.5, np.asarray(current) > 0.5
    lost, gained = int(np.sum(base & ~cur)), int(np.sum(~base & cur))
    p = 1.0 if lost + gained == 0 else float(stats.binomtest(gained, lost + gained, 0.5).pvalue)
    return McNemar(lost, gained, p)


def paired_bootstrap_ci(baseline: list[float], current: list[float], alpha: float = 0.05,
                        n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """(1 - alpha) percentile CI of mean(current - baseline), resampling paired samples."""
    diffs = np.asarray(current, dtype=float) - np.asarray(baseline, dtype=float)
    if len(diffs) == 0:
        return 0.0, 0.0
    if np.allclose(diffs, diffs[0]):  # every resample gives the same mean; scipy would warn and return nan
        return float(diffs[0]), float(diffs[0])
    result = stats.bootstrap((diffs,), np.mean, confidence_level=1 - alpha, n_resamples=n_resamples,
                             method="percentile", rng=seed)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def is_binary(values: list[float]) -> bool:
    return all(v in (0, 1) for v in values)
