"""Leaderboards: methods x tasks (+ average), with wall time and peak memory per method."""

from __future__ import annotations

import statistics
from collections import defaultdict

from tabulate import tabulate


def leaderboard_rows(cells: list[dict], methods: list[str], tasks: list[str]) -> tuple[list[str], list[list]]:
    by = defaultdict(list)
    for c in cells:
        by[(c["method"], c["task"])].append(c)
    headers = ["method"] + tasks + ["avg", "train s", "eval s", "peak MB"]
    rows = []
    for m in methods:
        scores = []
        row = [m]
        for t in tasks:
            values = [c["score"] for c in by[(m, t)]]
            if not values:
                row.append("-")
                continue
            mean = statistics.fmean(values)
            scores.append(mean)
            row.append(f"{mean:.1f}" + (f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""))
        mine = [c for t in tasks for c in by[(m, t)]]
        row.append(f"{statistics.fmean(scores):.1f}" if scores else "-")
        row.append(f"{sum(c['train_wall_s'] for c in mine):.1f}")
        row.append(f"{sum(c['eval_wall_s'] for c in mine):.1f}")
        row.append(f"{max((c['peak_mem_mb'] for c in mine), default=0):.0f}")
        rows.append(row)
    return headers, rows


def leaderboard(results: dict, fmt: str = "github") -> str:
    cells = results["cells"]
    methods = list(dict.fromkeys(c["method"] for c in cells))
    tasks = list(dict.fromkeys(c["task"] for c in cells))
    headers, rows = leaderboard_rows(cells, methods, tasks)
    metrics = ", ".join(f"{t}: {next(c['metric'] for c in cells if c['task'] == t)}" for t in tasks)
    seeds = sorted({c["seed"] for c in cells})
    device = cells[0]["device"] if cells else "?"
    note = (f"pair {results['pair']} | seeds {seeds} | {metrics} | scores x100 | "
            f"train s: training attributable to the method (direct_transfer reuses finetune_old's module) | "
            f"peak MB: {cells[0]['memory_kind'] if cells else ''} on {device}")
    return tabulate(rows, headers, tablefmt=fmt, disable_numparse=True) + "\n" + note
