"""Leaderboards: methods x tasks (+ average), with wall time and peak memory per method."""

from __future__ import annotations

import statistics
from collections import defaultdict

from tabulate import tabulate

from bench.analysis.costs import RETUNE, cell_device_hours, grid_total, hours_unit, projection
from bench.analysis.plots import pyplot, save_png
from bench.analysis.stats import mean_sd, paired_t_test
from bench.core.errors import BenchError


def leaderboard_rows(cells: list[dict], methods: list[str], tasks: list[str]) -> tuple[list[str], list[list]]:
    by = defaultdict(list)
    for c in cells:
        by[(c["method"], c["task"])].append(c)
    headers = ["method"] + tasks + ["avg", "train s", "eval s", "peak MB", "train tok/s", "MFU"]
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
        throughput = throughput_of(mine)
        row.append("-" if throughput["tokens_per_s"] is None else f"{throughput['tokens_per_s']:,.0f}")
        row.append("n/a" if throughput["mfu"] is None else f"{100 * throughput['mfu']:.1f}%")
        rows.append(row)
    return headers, rows


def throughput_of(cells: list[dict]) -> dict:
    """Mean training tokens/s and MFU over the cells that trained (direct_transfer trains nothing: None)."""
    rates = [c["tokens_per_s"] for c in cells if c.get("tokens_per_s")]
    mfus = [c["mfu"] for c in cells if c.get("mfu") is not None]
    return {"tokens_per_s": statistics.fmean(rates) if rates else None,
            "mfu": statistics.fmean(mfus) if mfus else None}


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
    text = tabulate(rows, headers, tablefmt=fmt, disable_numparse=True) + "\n" + note
    retention = retention_rows(cells)
    if retention:
        headers, body = retention_table(retention)
        table = tabulate(body, headers, tablefmt=fmt, disable_numparse=True)
        text += f"\n\n{table}\n{RETENTION_NOTE}"
    return text


# --- retention: "never learned" (a low source score) apart from "did not transfer" (a low retention) ---------

RETENTION_NOTE = ("source: the same module as a plain adapter on the base it trained on (PortLLM before its patch, "
                  "Trans-PEFT without masking); retention = score / source (means over seeds); "
                  "- where the source is 0: the module never learned the task")


def retention_rows(cells: list[dict]) -> list[dict]:
    """Per (method, task) of the cells that landed on another base than they trained on (results of schema 1
    record no source score and give no rows)."""
    by = defaultdict(list)
    for c in cells:
        if c.get("source_score") is not None:
            by[(c["method"], c["task"])].append(c)
    methods = list(dict.fromkeys(c["method"] for c in cells))
    tasks = list(dict.fromkeys(c["task"] for c in cells))
    rows = []
    for (method, task), mine in sorted(by.items(), key=lambda kv: (methods.index(kv[0][0]), tasks.index(kv[0][1]))):
        source, source_sd = mean_sd([c["source_score"] for c in mine])
        score, score_sd = mean_sd([c["score"] for c in mine])
        rows.append({"method": method, "task": task, "trained_on": mine[0].get("trained_on", "?"),
                     "evaluated_on": mine[0].get("evaluated_on", "?"), "seeds": len(mine),
                     "source": source, "source_sd": source_sd, "score": score, "score_sd": score_sd,
                     "retention": score / source if source > 0 else None})
    return rows


def retention_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    headers = ["method", "task", "trained -> on", "source", "score", "retention"]
    body = [[r["method"], r["task"], f"{r['trained_on']} -> {r['evaluated_on']}", _score(r["source"], r["source_sd"]),
             _score(r["score"], r["score_sd"]), "-" if r["retention"] is None else f"{100 * r['retention']:.0f}%"]
            for r in rows]
    return headers, body


# --- `bench report`: the paper-style leaderboard with cost columns, statistics and plots, in five formats.

FORMATS = ("md", "latex", "csv", "json", "html")
REFERENCES = ("finetune_new", "direct_transfer")  # paired tests: every method on the new base against these


def merge_results(loaded: list[tuple[str, dict]]) -> list[dict]:
    """Cells of several results files (e.g. one per seed), each tagged with its pair; duplicates are an error."""
    cells, seen = [], {}
    for path, results in loaded:
        for cell in results["cells"]:
            key = (results.get("pair", "?"), cell["method"], cell["task"], cell["seed"])
            if key in seen:
                raise BenchError(f"{path} and {seen[key]} both hold {'/'.join(map(str, key))}; report one of them")
            seen[key] = path
            cells.append(cell | {"pair": key[0]})
    return cells


def pair_section(pair: str, cells: list[dict], n_modules: int) -> dict:
    """Everything one pair's leaderboard shows, as plain data (the json format is exactly this)."""
    methods = list(dict.fromkeys(c["method"] for c in cells))
    tasks = list(dict.fromkeys(c["task"] for c in cells))
    seeds = sorted({c["seed"] for c in cells})
    by = defaultdict(dict)
    for c in cells:
        by[c["method"]][(c["task"], c["seed"])] = c
    rows = []
    for m in methods:
        mine = list(by[m].values())
        scores = {}
        for t in tasks:
            values = [by[m][(t, s)]["score"] for s in seeds if (t, s) in by[m]]
            if values:
                mean, sd = mean_sd(values)
                scores[t] = {"mean": mean, "sd": sd, "seeds": len(values)}
        # The average is taken per seed (over the tasks that seed has), then mean +/- sd over seeds.
        per_seed = [statistics.fmean(by[m][(t, s)]["score"] for t in tasks if (t, s) in by[m])
                    for s in seeds if any((t, s) in by[m] for t in tasks)]
        avg, avg_sd = mean_sd(per_seed)
        hours = [cell_device_hours(c) for c in mine]
        rows.append({
            "method": m, "evaluated_on": mine[0].get("evaluated_on", "?"), "cells": len(mine), "scores": scores,
            "avg": avg, "avg_sd": avg_sd,
            "train_device_hours": sum(h["train"] for h in hours), "eval_device_hours": sum(h["eval"] for h in hours),
            "train_wall_s": sum(c["train_wall_s"] for c in mine), "eval_wall_s": sum(c["eval_wall_s"] for c in mine),
            "land_wall_s": sum(c.get("land_wall_s", 0.0) for c in mine),
            "peak_mem_mb": max(c["peak_mem_mb"] for c in mine),
            "peak_reserved_mb": max(c.get("peak_reserved_mb", 0.0) for c in mine),
            "module_mb": statistics.fmean(c.get("module_mb", 0.0) for c in mine),
            "trainable_params": max(c["trainable_params"] for c in mine),
            "train_tokens": sum(c["train_tokens"] for c in mine),
            **throughput_of(mine),
        })
    retune = next((r for r in rows if r["method"] == RETUNE), None)
    for r in rows:  # gap to re-tune: only against finetune_new on the same target base
        same_base = retune is not None and r["evaluated_on"] == retune["evaluated_on"]
        r["gap_to_retune"] = r["avg"] - retune["avg"] if same_base else None
    tests = []
    for ref in REFERENCES:
        if ref not in by:
            continue
        target = rows[methods.index(ref)]["evaluated_on"]
        for m in methods:
            already = REFERENCES[:REFERENCES.index(ref) + 1]  # itself, and pairs tested against an earlier ref
            if m in already or rows[methods.index(m)]["evaluated_on"] != target:
                continue
            keys = sorted(k for k in by[m] if k in by[ref])
            test = paired_t_test([by[m][k]["score"] for k in keys], [by[ref][k]["score"] for k in keys])
            tests.append({"a": m, "b": ref, "n": test.n, "mean_diff": test.mean_diff, "t": test.t, "p": test.p})
    first = cells[0]
    return {"pair": pair, "tasks": tasks, "seeds": seeds,
            "metrics": {t: next(c["metric"] for c in cells if c["task"] == t) for t in tasks},
            "unit": hours_unit(cells), "devices": sorted({c.get("device", "?") for c in cells}),
            "memory_kind": first.get("memory_kind", ""), "methods": rows, "grid_total": grid_total(cells),
            "projection": projection(cells, n_modules), "paired_tests": tests, "retention": retention_rows(cells)}


def build_report(loaded: list[tuple[str, dict]], n_modules: int = 10) -> dict:

    if n_modules < 1:
        raise BenchError(f"--modules must be a positive number of modules, got {n_modules}")
    cells = merge_results(loaded)
    if not cells:
        raise BenchError("no cells to report: the results files are empty")
    pairs = list(dict.fromkeys(c["pair"] for c in cells))
    environments = [r["environment"] for _, r in loaded if r.get("environment")]
    return {"sources": [str(p) for p, _ in loaded], "modules": n_modules,
            "environment": environments[0] if environments else {},
            "sections": [pair_section(p, [c for c in cells if c["pair"] == p], n_modules) for p in pairs]}


def _score(mean: float, sd: float | None) -> str:
    return f"{mean:.1f}" + (f" ± {sd:.1f}" if sd is not None else "")


def _hours(value: float) -> str:
    return f"{value:.3g}"


def leaderboard_table(section: dict) -> tuple[list[str], list[list[str]]]:
    unit = section["unit"]
    headers = (["method", "on"] + section["tasks"] +
               ["avg", "gap to re-tune", f"train {unit}", f"eval {unit}", "peak MB", "module MB", "params", "tokens"])
    body = []
    for r in section["methods"]:
        cells = [_score(r["scores"][t]["mean"], r["scores"][t]["sd"]) if t in r["scores"] else "-"
                 for t in section["tasks"]]
        gap = "-" if r["gap_to_retune"] is None else f"{r['gap_to_retune']:+.1f}"
        body.append([r["method"], r["evaluated_on"], *cells, _score(r["avg"], r["avg_sd"]), gap,
                     _hours(r["train_device_hours"]), _hours(r["eval_device_hours"]), f"{r['peak_mem_mb']:.0f}",
                     f"{r['module_mb']:.3g}", f"{r['trainable_params']:,}", f"{r['train_tokens']:,}"])
    return headers, body


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}x" if value >= 100 else f"{value:.3g}x"


def projection_table(section: dict, n_modules: int) -> tuple[list[str], list[list[str]]]:
    unit = section["unit"]
    headers = ["method", f"one-time {unit} ({n_modules} modules on the old base)",
               f"{unit} per base update ({n_modules} modules)", "re-tune / this"]
    body = [[r["method"], _hours(r["one_time_device_hours"]), _hours(r["per_update_device_hours"]),
             _ratio(r["retune_over_this"])]
            for r in section["projection"]]
    return headers, body


def tests_table(section: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["method", "vs", "pairs (task x seed)", "mean diff", "t", "p (paired t-test)"]
    body = [[t["a"], t["b"], t["n"], f"{t['mean_diff']:+.2f}", "-" if t["t"] is None else f"{t['t']:.3g}",
             "-" if t["p"] is None else f"{t['p']:.3g}"] for t in section["paired_tests"]]
    return headers, body


def section_notes(section: dict, report: dict) -> list[str]:
    total = section["grid_total"]
    unit = section["unit"]
    env = report["environment"]
    packages = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())
    unit_note = ("GPU-hours = wall x GPUs" if unit == "GPU-h" else
                 "CPU-hours = wall x torch threads (a CPU run: not comparable with GPU-hours)" if unit == "CPU-h"
                 else "device-hours = wall x devices (mixed GPU and CPU cells)")
    return [
        f"pair {section['pair']} | seeds {section['seeds']} (scores mean ± sd over seeds) | "
        + ", ".join(f"{t}: {m}" for t, m in section["metrics"].items()) + " | scores x100",
        "gap to re-tune: avg minus finetune_new's avg on the same target base ('on'); "
        "- where the method is evaluated on another base",
        *([RETENTION_NOTE] if section.get("retention") else []),
        f"{unit_note}; train {unit} counts only training attributable to the method (direct_transfer reuses "
        f"finetune_old's module); peak MB: {section['memory_kind']}; module MB: the trained module on disk; "
        "params: trainable; tokens: training tokens over all cells",
        f"grid total: {_hours(total['device_hours'])} {unit} ({total['wall_s']:.1f} s wall) over {total['cells']} "
        f"cells on {', '.join(section['devices'])}",
        f"environment: python {env.get('python', '?')}, {env.get('platform', '?')}; {packages or 'not recorded'}",
        *([cpu_note(env["cpu"])] if env.get("cpu") else []),
    ]


def cpu_note(cpu: dict) -> str:
    """Rounding depends on the kernels the CPU's ISA selects: scores may differ on another CPU (README)."""
    overrides = ", ".join(f"{k}={v}" for k, v in cpu.get("env", {}).items())
    return (f"cpu: {cpu.get('model', '?')}; ISA {' '.join(cpu.get('isa', [])) or 'none recorded'}; torch kernels "
            f"{cpu.get('torch_cpu_capability', '?')}" + (f"; {overrides}" if overrides else ""))


def render(report: dict, fmt: str) -> str | bytes:

    renderers = {"md": render_markdown, "latex": render_latex, "csv": render_csv, "json": render_json,
                 "html": render_html}
    if fmt not in renderers:
        import difflib

        close = difflib.get_close_matches(fmt, FORMATS, n=1)
        raise BenchError(f"unknown format {fmt!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                         + f" (one of {', '.join(FORMATS)})")
    return renderers[fmt](report)


def _tables(section: dict, report: dict):
    yield "Leaderboard", leaderboard_table(section)
    if section.get("retention"):
        yield "Retention: the module on the base it trained on (source) and after transfer", \
            retention_table(section["retention"])
    yield (f"Projected cost of keeping {report['modules']} modules current (re-tuning vs transfer)",
           projection_table(section, report["modules"]))
    yield "Paired t-tests over tasks and seeds", tests_table(section)


def render_markdown(report: dict) -> str:
    parts = []
    for section in report["sections"]:
        parts.append(f"## {section['pair']}\n")
        for title, (headers, body) in _tables(section, report):
            parts.append(f"### {title}\n\n{tabulate(body, headers, tablefmt='github', disable_numparse=True)}\n")
        parts.append("\n".join(f"- {note}" for note in section_notes(section, report)) + "\n")
    return "\n".join(parts)


def render_latex(report: dict) -> str:
    parts = []
    for section in report["sections"]:
        for title, (headers, body) in _tables(section, report):
            # tabulate escapes _ & % and friends; ± and the arrows are ours to typeset.
            table = tabulate(body, headers, tablefmt="latex_booktabs", disable_numparse=True)
            table = table.replace("±", r"$\pm$")
            parts.append(f"% {section['pair']}: {title}\n{table}\n")
        parts.append("\n".join(f"% {note}" for note in section_notes(section, report)) + "\n")
    return "\n".join(parts)


def render_csv(report: dict) -> str:
    """One row per (pair, method): raw numbers, sd in its own column, for spreadsheets and pandas."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    tasks = list(dict.fromkeys(t for s in report["sections"] for t in s["tasks"]))
    cost_keys = ["train_device_hours", "eval_device_hours", "train_wall_s", "eval_wall_s", "land_wall_s",
                 "peak_mem_mb", "peak_reserved_mb", "module_mb", "trainable_params", "train_tokens"]
    writer.writerow(["pair", "method", "evaluated_on",
                     *[f"{t}{k}" for t in tasks for k in ("", "_sd", "_source", "_retention")],
                     "avg", "avg_sd", "gap_to_retune", "device_hours_unit", *cost_keys,
                     f"per_update_device_hours_{report['modules']}_modules"])
    for section in report["sections"]:
        per_update = {r["method"]: r["per_update_device_hours"] for r in section["projection"]}
        retention = {(r["method"], r["task"]): r for r in section.get("retention", [])}
        for r in section["methods"]:
            scores = []
            for t in tasks:
                s = r["scores"].get(t)
                scores += ["", ""] if s is None else [s["mean"], "" if s["sd"] is None else s["sd"]]
                kept = retention.get((r["method"], t))
                scores += ["", ""] if kept is None else [kept["source"], "" if kept["retention"] is None
                                                         else kept["retention"]]
            writer.writerow([section["pair"], r["method"], r["evaluated_on"], *scores, r["avg"],
                             "" if r["avg_sd"] is None else r["avg_sd"],
                             "" if r["gap_to_retune"] is None else r["gap_to_retune"], section["unit"],
                             *[r[k] for k in cost_keys], per_update.get(r["method"], "")])
    return out.getvalue()


def render_json(report: dict) -> str:
    import json

    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def figures(section: dict) -> dict[str, bytes]:
    """PNG plots: score vs device-hours (as Trans-PEFT Fig. 7) and per-task bars with sd over seeds."""
    import io


    plt = pyplot()

    def png(fig) -> bytes:
        return save_png(fig, io.BytesIO()).getvalue()

    unit = section["unit"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for r in section["methods"]:
        projected = next((p for p in section["projection"] if p["method"] == r["method"]), None)
        # Per module: trained on the old base, then one base update (finetune_old: its training only).
        hours = r["train_device_hours"] / r["cells"] if projected is None else (
            projected["one_time_device_hours"] + projected["per_update_device_hours"]) / projected["modules"]
        ax.errorbar(hours, r["avg"], yerr=r["avg_sd"] or 0, fmt="o", capsize=3, label=r["method"])
        ax.annotate(r["method"], (hours, r["avg"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel(f"{unit} per module (training + one base update)")
    ax.set_ylabel("average score")
    ax.set_title(f"{section['pair']}: score vs cost")
    ax.grid(alpha=0.3)
    plots = {"score_vs_cost": png(fig)}

    tasks, methods = section["tasks"], section["methods"]
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(tasks), 4))
    width = 0.8 / max(len(methods), 1)
    for i, r in enumerate(methods):
        xs = [j + i * width for j in range(len(tasks))]
        means = [r["scores"].get(t, {}).get("mean", 0.0) for t in tasks]
        sds = [r["scores"].get(t, {}).get("sd") or 0.0 for t in tasks]
        ax.bar(xs, means, width, yerr=sds, capsize=2, label=r["method"])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(tasks))], tasks)
    ax.set_ylabel("score")
    ax.set_title(f"{section['pair']}: per task")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    plots["per_task"] = png(fig)
    return plots


def render_html(report: dict) -> str:
    import base64
    import html

    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>peft-transfer-bench leaderboard</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}li{margin:.2em 0;font-size:90%}</style></head><body>",
             "<h1>peft-transfer-bench leaderboard</h1>"]
    for section in report["sections"]:
        parts.append(f"<h2>{html.escape(section['pair'])}</h2>")
        for title, (headers, body) in _tables(section, report):
            table = tabulate(body, headers, tablefmt="html", disable_numparse=True)
            parts.append(f"<h3>{html.escape(title)}</h3>{table}")
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in section_notes(section, report)) + "</ul>")
        for name, data in figures(section).items():
            parts.append(f"<img alt='{name}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
