"""matplotlib without a display, and PNGs that are byte-identical run to run (no software/date metadata)."""

from __future__ import annotations


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, target):
    """Write `fig` to a path or a binary buffer and close it; returns `target`."""
    fig.savefig(target, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    pyplot().close(fig)
    return target


def score_axis_label(summary: dict) -> str:
    """The y label of every sweep and chain plot: what the mean and the error bars are over."""
    return f"score (mean over {len(summary['tasks'])} tasks; ± sd over {len(summary['seeds'])} seeds)"


def errorbars_per_method(ax, xs: list, points: list[dict], methods: list[str]) -> None:
    """One line per method with ± sd error bars, from points that hold {"methods": {m: {"mean", "sd"}}}."""
    for method in methods:
        stats = [p["methods"][method] for p in points]
        ax.errorbar(xs, [s["mean"] for s in stats], yerr=[s["sd"] or 0.0 for s in stats], marker="o",
                    capsize=3, label=method)
