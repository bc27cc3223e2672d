"""Chain transfer (PortLLM Table A; Trans-PEFT's open question of multi-step transfer): a module trained on
v0 landed on v1, v2, v3, ... of a chain of updates, as a curve.

Each step k is run as the pair (v0, vk) through bench.engine.protocol.run_grid: the v0 module's cache key names only
v0, so it is trained once and landed on every version; finetune_new re-tunes on each vk as the reference.
"""

from __future__ import annotations

from pathlib import Path

from bench.analysis.plots import errorbars_per_method, pyplot, save_png, score_axis_label
from bench.core.errors import BenchError
from bench.core.store import write_json_atomic
from bench.pairs.base import Pair
from bench.science.diagnose import weight_change
from bench.science.sweeps import cell_scores, check_out_dir, run_point, summarize


def chain_steps(pair: Pair) -> list[Pair]:
    """(v0, v1), (v0, v2), ... of a chain: a tiny chain, or a hub pair with three or more versions."""
    n = pair.version_count()
    if n < 3:
        raise BenchError(f"pair {pair.name!r} is not a chain (it has {n} versions; a chain has three or "
                         "more, e.g. tiny-chain or mistral-7b-chain)")
    return [pair.step(k) for k in range(1, n)]


def chain_transfer(pair, methods: list[str], tasks: list, seeds: list[int], out: Path,
                   limit: int | None = None) -> dict:
    """One point per version after v0 and per method; writes a results file per step, summary.json, chain.png."""
    steps = chain_steps(pair)  # checked before anything trains or is written
    check_out_dir(out)
    points = []
    for step in steps:
        change = weight_change(Path(step.base_dir("old")), Path(step.base_dir("new")))
        version = f"v{len(points) + 1}"
        path = out / f"{pair.name}-{version}.json"
        cells = run_point(methods, step, tasks, seeds, {}, limit, path, {"chain_version": version,
                                                                         "weight_change": change})
        points.append({"version": version, "pair": step.name, "results": path.name,
                       "version_id": step.version_id("new"), "weight_change": change,
                       "methods": {m: summarize(s) for m, s in cell_scores(cells).items()}})
    summary = {"kind": "chain", "pair": pair.name, "methods": methods, "tasks": [t.name for t in tasks],
               "seeds": seeds, "points": points}
    write_json_atomic(out / "summary.json", summary)
    plot_chain(summary, out / "chain.png")
    return summary


def plot_chain(summary: dict, path: Path) -> Path:
    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    errorbars_per_method(ax, [p["version"] for p in summary["points"]], summary["points"], summary["methods"])
    ax.set(xlabel="version the module lands on (trained on v0; finetune_new re-tunes on each)",
           ylabel=score_axis_label(summary), title=f"{summary['pair']}: chain transfer")
    ax.legend()
    return save_png(fig, path)
