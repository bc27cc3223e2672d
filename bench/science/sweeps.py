"""Sweeps: a family of updates of growing severity (`bench sweep-update`) and a method's hyper-parameter
grid (`bench sweep`). Every point goes through bench.engine.protocol.run_grid, so repeated points are cached.

Severity (sweep-update): S scales the pair's update length, v1_S = v0 + (S x the pair's update steps) at the
pair's learning rate (so steps x lr scales by S; S = 1 is the pair's own v1, S = 0 is v1 == v0). The update
size on the plot's x axis is not S but what it did: the relative weight change ||W1-W0||/||W0|| of the
attention and FFN matrices, measured from the checkpoints (bench/diagnose.py).

Grid (sweep): coordinate ascent in the order the parameters are given. Stage 1 sweeps the first parameter
with every later one at its first listed value; stage 2 sweeps the second at the best value of the first;
and so on. With `p_c=0,0.1,0.2,0.3 p_i=0,0.01,0.05,0.1` this is Trans-PEFT's Fig. 6: score vs p_c at
p_i = 0, then score vs p_i at the best p_c.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.analysis.plots import errorbars_per_method, pyplot, save_png, score_axis_label
from bench.analysis.stats import mean_sd
from bench.core.errors import BenchError
from bench.core.options import parse_numbers, parse_value
from bench.core.results import check_writable, write_results
from bench.core.store import read_json, write_json_atomic
from bench.engine.protocol import build_method, run_grid
from bench.science.diagnose import weight_change

# ---- shared: one point = one results file -------------------------------------------------------

def cell_scores(cells: list[dict]) -> dict[str, list[dict]]:
    """{method: [{"task", "seed", "score"}]}: what the summaries keep (enough for paired tests)."""
    out: dict[str, list[dict]] = {}
    for c in cells:
        out.setdefault(c["method"], []).append({"task": c["task"], "seed": c["seed"], "score": c["score"]})
    return out


def seed_means(scores: list[dict]) -> dict[int, float]:
    """Mean over tasks for each seed: the unit the error bars are computed over."""
    by_seed: dict[int, list[float]] = {}
    for s in scores:
        by_seed.setdefault(s["seed"], []).append(s["score"])
    return {seed: statistics.fmean(v) for seed, v in sorted(by_seed.items())}


def summarize(scores: list[dict]) -> dict:
    mean, sd = mean_sd(list(seed_means(scores).values()))
    return {"mean": mean, "sd": sd, "scores": scores}


def run_point(methods: list[str], pair, tasks: list, seeds: list[int], overrides: dict, limit, path: Path,
              extra: dict, executor=None, task_overrides: dict | None = None) -> list[dict]:
    """Run (or reuse) one point's grid and write its results file; returns its cells as dicts. task_overrides:
    tuned recipes ({task: {"METHOD.option": value}}), under `overrides` as bench run layers them."""
    tuned = task_overrides or {}
    wanted = {(m, t.name, s) for m in methods for t in tasks for s in seeds}
    if path.exists():  # a finished point from an earlier run: reuse it if it holds exactly these cells
        done = read_json(path)
        if {(c["method"], c["task"], c["seed"]) for c in done["cells"]} != wanted:
            raise BenchError(f"{path} exists with other cells; pass another --out to keep both")
        if (done.get("overrides") or {}) != overrides:  # (another --set: its cells answer another question)
            raise BenchError(f"{path} exists with other recipe overrides ({done.get('overrides') or {}}, not "
                             f"{overrides}); pass another --out to keep both")
        if (done.get("tuned_recipes") or {}) != tuned:
            raise BenchError(f"{path} exists with other tuned recipes; pass another --out to keep both")
        return done["cells"]
    cells = run_grid(methods, pair, tasks, seeds, overrides, limit, executor, task_overrides=tuned)
    write_results(cells, pair, path, {"overrides": overrides, "limit": limit, **extra}
                  | ({"tuned_recipes": tuned} if tuned else {}))
    return read_json(path)["cells"]


def check_out_dir(out: Path) -> Path:

    check_writable(out / "summary.json")
    return out


# ---- update-severity sweep ----------------------------------------------------------------------

def parse_severities(text: str) -> list[float]:
    values = parse_numbers(text, "--severity", float, "numbers")
    if any(v < 0 for v in values):
        raise BenchError(f"severities are multiples of the pair's update length and cannot be negative: {text!r}")
    return values


def update_family(pair, kind: str, severities: list[float]) -> list[tuple[float, object]]:
    """One TinyPair per severity: the same v0, v1 = v0 + kind update of S x the pair's steps."""
    return [(severity, pair.with_update(kind, severity)) for severity in severities]


def sweep_update(pair, kind: str, severities: list[float], methods: list[str], tasks: list, seeds: list[int],
                 out: Path, limit: int | None = None, executor=None, overrides: dict | None = None,
                 task_overrides: dict | None = None) -> dict:
    """overrides: recipe values every point trains with (`--set`); task_overrides: tuned recipes (`--tuned`: the
    base pair's, tuned on the v0 every point shares), under them."""
    overrides = dict(overrides or {})
    family = update_family(pair, kind, severities)  # a bad --kind or pair fails before the output directory exists
    for method in methods:  # as is a bad --set
        build_method(method, overrides)
    check_out_dir(out)
    points = []
    for severity, point_pair in family:
        change = weight_change(Path(point_pair.base_dir("old")), Path(point_pair.base_dir("new")))
        path = out / f"{point_pair.name}.json"
        cells = run_point(methods, point_pair, tasks, seeds, overrides, limit, path,
                          {"severity": severity, "weight_change": change}, executor, task_overrides)
        update = point_pair.spec.update
        points.append({"severity": severity, "pair": point_pair.name, "steps": update.steps, "lr": update.lr,
                       "results": path.name, "weight_change": change,
                       "methods": {m: summarize(s) for m, s in cell_scores(cells).items()}})
    summary = {"kind": "sweep-update", "pair": pair.name, "update_kind": kind, "methods": methods,
               "tasks": [t.name for t in tasks], "seeds": seeds, "points": points,
               "severity": "S x the pair's update steps at the pair's lr", "overrides": overrides}
    if task_overrides:
        summary["tuned_recipes"] = task_overrides
    write_json_atomic(out / "summary.json", summary)
    plot_update_sweep(summary, out / "severity.png")
    return summary


def plot_update_sweep(summary: dict, path: Path) -> Path:
    fig, axes = pyplot().subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, group in zip(axes, ("attention", "ffn")):
        xs = [p["weight_change"][group] for p in summary["points"]]
        errorbars_per_method(ax, xs, summary["points"], summary["methods"])
        ax.set(xlabel=f"measured relative weight change, {group} (||W1-W0|| / ||W0||)",
               title=f"{summary['pair']}: {summary['update_kind']} updates")
    axes[0].set_ylabel(score_axis_label(summary))
    axes[0].legend()
    return save_png(fig, path)


# ---- hyper-parameter grid -------------------------------------------------------------------------

def parse_grid(items: list[str]) -> list[tuple[str, list]]:
    """["p_c=0,0.1", "p_i=0,0.05"] -> [("p_c", [0, 0.1]), ("p_i", [0, 0.05])], in the given order."""
    grid = []
    for item in [word for text in items for word in text.split()]:  # --grid "p_c=0,0.1 p_i=0,0.05" too
        name, sep, values = item.partition("=")
        parsed = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
        if not sep or not name.strip() or not parsed:
            raise BenchError(f"--grid takes NAME=V1,V2,... , got {item!r}")
        if name.strip() in {n for n, _ in grid}:
            raise BenchError(f"--grid names {name.strip()!r} twice")
        grid.append((name.strip(), parsed))
    if not grid:
        raise BenchError("--grid is empty")
    return grid


def _point_name(method: str, assignment: dict) -> str:
    return method + "-" + "-".join(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in assignment.items())


def sweep_grid(method: str, grid: list[tuple[str, list]], pair, tasks: list, seeds: list[int],
               references: list[str], out: Path, limit: int | None = None, executor=None,
               overrides: dict | None = None) -> dict:
    """overrides: recipe values every point (and the references) trains with (`--set`); the grid's own options
    may not be among them."""
    fixed = dict(overrides or {})
    for name, values in grid:  # every value checked by the method's recipe before anything trains or is written
        if clash := {name, f"{method}.{name}"} & fixed.keys():
            raise BenchError(f"--set {min(clash)} fixes an option the grid sweeps; leave one of them out")
        for value in values:
            build_method(method, fixed | {f"{method}.{name}": value})
    check_out_dir(out)
    chosen = {name: values[0] for name, values in grid}
    stages, done = [], {}
    for name, values in grid:
        points = []
        for value in values:
            assignment = chosen | {name: value}
            key = tuple(sorted(assignment.items()))
            if key not in done:  # the best point of one stage is a point of the next: run it once
                path = out / f"{_point_name(method, assignment)}.json"
                point = fixed | {f"{method}.{k}": v for k, v in assignment.items()}
                cells = run_point([method], pair, tasks, seeds, point, limit, path, {"assignment": assignment},
                                  executor)
                done[key] = summarize(cell_scores(cells)[method]) | {"results": path.name}
            points.append({"value": value, "assignment": assignment, **done[key]})
        best = max(points, key=lambda p: p["mean"])  # first listed wins a tie
        chosen[name] = best["value"]
        stages.append({"param": name, "fixed": {k: v for k, v in chosen.items() if k != name}, "points": points,
                       "best": best["value"]})
    refs = {}
    if references:
        path = out / "references.json"
        cells = run_point(references, pair, tasks, seeds, fixed, limit, path, {}, executor)
        refs = {m: summarize(s) for m, s in cell_scores(cells).items()}
    summary = {"kind": "sweep", "pair": pair.name, "method": method, "grid": [[n, v] for n, v in grid],
               "tasks": [t.name for t in tasks], "seeds": seeds, "stages": stages, "best": chosen,
               "references": refs, "overrides": fixed}
    write_json_atomic(out / "summary.json", summary)
    plot_grid(summary, out / "grid.png")
    return summary


def plot_grid(summary: dict, path: Path) -> Path:
    stages = summary["stages"]
    fig, axes = pyplot().subplots(1, len(stages), figsize=(5.5 * len(stages), 4.5), sharey=True, squeeze=False)
    for ax, stage in zip(axes[0], stages):
        xs = [p["value"] for p in stage["points"]]
        ax.errorbar(xs, [p["mean"] for p in stage["points"]], yerr=[p["sd"] or 0.0 for p in stage["points"]],
                    marker="o", capsize=3, label=summary["method"])
        for i, (ref, stats) in enumerate(summary["references"].items()):
            ax.axhline(stats["mean"], linestyle="--", color=f"C{i + 1}", label=ref)
        fixed = ", ".join(f"{k}={v}" for k, v in stage["fixed"].items())
        title = f"{summary['method']} vs {stage['param']}" + (f" ({fixed})" if fixed else "")
        ax.set(xlabel=stage["param"], title=title)
    axes[0][0].set_ylabel(score_axis_label(summary))
    axes[0][0].legend()
    return save_png(fig, path)
