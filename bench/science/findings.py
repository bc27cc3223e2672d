"""FINDINGS.md, generated from results files (`bench findings PATH...`): which published claims reproduce.

Nothing here is written by hand: every verdict is a rule applied to the numbers in the summaries that
`bench sweep-update`, `bench sweep`, `bench chain` and `bench diagnose --out` write, and in `bench run`'s results
files (one update: the leaderboard's own cells). A claim is judged on the
(1 - alpha) confidence interval [lo, hi] of the paired difference over (task, seed) cells (t distribution):
  "about as good as"   reproduces if lo >= -tolerance (non-inferiority), fails if hi < -tolerance;
  "beats"              reproduces if lo > 0, fails if hi < tolerance (no gain of that size is left);
  "collapses"          reproduces if hi < 0 and the mean drop exceeds the tolerance, fails if lo >= -tolerance;
  anything else is inconclusive: the seeds cannot tell, and the page says so rather than picking a side.
  floor                where every compared score is below FLOOR points the task is not learnt at all,
                       and the claim is listed as not measured.
Where the runs that a claim needs are missing the claim is listed as not measured, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.analysis.stats import PairedT, paired_t_test
from bench.core.errors import BenchError
from bench.core.store import one_line, read_json

REPRODUCES, FAILS, INCONCLUSIVE, UNMEASURED = "reproduces", "does not reproduce", "inconclusive", "not measured"
VERDICTS = (REPRODUCES, FAILS, INCONCLUSIVE, UNMEASURED)


@dataclass
class Finding:
    claim: str
    source: str
    where: str
    evidence: str
    verdict: str


def paired(a: list[dict], b: list[dict]) -> PairedT:
    """Paired t-test of a - b over the (task, seed) cells both hold, leaving out tasks where every score of
    both is below FLOOR (a task not learnt at all adds only ties that dilute the test)."""
    b_by = {(s["task"], s["seed"]): s["score"] for s in b}
    keys = [(s["task"], s["seed"]) for s in a if (s["task"], s["seed"]) in b_by]
    a_by = {(s["task"], s["seed"]): s["score"] for s in a}
    learnt = {t for t, _ in keys if any(max(a_by[k], b_by[k]) >= FLOOR for k in keys if k[0] == t)}
    keys = [k for k in keys if k[0] in learnt] or keys
    return paired_t_test([a_by[k] for k in keys], [b_by[k] for k in keys])


def _p(test: PairedT) -> str:
    if test.p is None and test.n >= 2:  # every pair differs by the same amount: no t, an exact sign-flip test
        return f"every pair differs by the same amount, sign-flip p = {test.sign_flip_p:.3g}"
    return "p n/a" if test.p is None else f"p = {test.p:.3g}"


def describe(test: PairedT, a: str, b: str, alpha: float = 0.05) -> str:
    ci = test.interval(alpha)
    ci = f" [{1 - alpha:.0%} CI {ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else ""
    return f"{a} - {b} = {test.mean_diff:+.1f} points{ci} (paired t over {test.n} task x seed cells, {_p(test)})"


def judge(test: PairedT, alpha: float, holds, fails) -> str:
    """holds(lo, hi) -> the claim reproduces; fails(lo, hi) -> it does not; neither -> inconclusive."""
    ci = test.interval(alpha)
    if ci is None:
        return INCONCLUSIVE
    return REPRODUCES if holds(*ci) else FAILS if fails(*ci) else INCONCLUSIVE


def judge_beats(test: PairedT, tolerance: float, alpha: float) -> str:
    return judge(test, alpha, lambda lo, hi: lo > 0, lambda lo, hi: hi < tolerance)


FLOOR = 10.0  # both sides below this many points: the task is not learnt here, so no claim can be tested


def at_floor(*score_lists: list[dict]) -> bool:
    return max(s["score"] for scores in score_lists for s in scores) < FLOOR


def floor_note(test: PairedT, a: str, b: str, alpha: float = 0.05) -> str:
    return f"every score below {FLOOR:g} (the task is not learnt here): {describe(test, a, b, alpha)}"


def _scores(point: dict, method: str) -> list[dict] | None:
    entry = point["methods"].get(method)
    return entry["scores"] if entry else None


def _judgeable(point: dict, method: str, reference: str,
               alpha: float) -> tuple[PairedT | None, tuple[str, str] | None]:
    """The paired test of method vs reference, or (None, the verdict saying why it cannot be judged)."""
    a, b = _scores(point, method), _scores(point, reference)
    if a is None or b is None:
        return None, (UNMEASURED, f"needs {method} and {reference}")
    test = paired(a, b)
    if at_floor(a, b):
        return None, (UNMEASURED, floor_note(test, method, reference, alpha))
    return test, None


def about_as_good(point: dict, method: str, reference: str, tolerance: float, alpha: float) -> tuple[str, str]:
    test, unmeasured = _judgeable(point, method, reference, alpha)
    if unmeasured:
        return unmeasured
    verdict = judge(test, alpha, lambda lo, hi: lo >= -tolerance, lambda lo, hi: hi < -tolerance)
    return verdict, describe(test, method, reference, alpha)


def beats(point: dict, method: str, reference: str, tolerance: float, alpha: float) -> tuple[str, str]:
    test, unmeasured = _judgeable(point, method, reference, alpha)
    if unmeasured:
        return unmeasured
    return judge_beats(test, tolerance, alpha), describe(test, method, reference, alpha)


def collapses(point: dict, method: str, reference: str, tolerance: float, alpha: float) -> tuple[str, str]:
    test, unmeasured = _judgeable(point, method, reference, alpha)
    if unmeasured:
        return unmeasured
    verdict = judge(test, alpha, lambda lo, hi: hi < 0 and test.mean_diff < -tolerance,
                    lambda lo, hi: lo >= -tolerance)
    return verdict, describe(test, method, reference, alpha)


def _size(point: dict) -> str:
    w = point["weight_change"]
    return f"attn {w['attention']:.3f}, FFN {w['ffn']:.3f}"


COLLAPSE_CLAIM = "direct transfer collapses after a substantial update"


def transfer_findings(point: dict, where: str, tolerance: float, alpha: float) -> list[Finding]:
    """The papers' three claims about one update: PortLLM's patch and Trans-PEFT against re-tuning and direct."""
    return [Finding(claim, source, where, evidence, verdict) for claim, source, (verdict, evidence) in [
        ("a ported old-base LoRA patch is about as good as re-tuning on the updated base", "PortLLM",
         about_as_good(point, "portllm", "finetune_new", tolerance, alpha)),
        ("Trans-PEFT beats direct transfer", "Trans-PEFT",
         beats(point, "trans_peft", "direct_transfer", tolerance, alpha)),
        ("Trans-PEFT is about as good as re-tuning on the updated base", "Trans-PEFT",
         about_as_good(point, "trans_peft", "finetune_new", tolerance, alpha)),
    ]]


def severity_findings(summary: dict, tolerance: float, alpha: float) -> list[Finding]:
    found = []
    points = sorted(summary["points"], key=lambda p: p["weight_change"]["overall"])
    label = (f"{summary['pair']} {summary['update_kind']} sweep ({', '.join(summary['tasks'])}; "
             f"{len(summary['seeds'])} seeds)")
    for point in points:
        found += transfer_findings(point, f"{label}, x{point['severity']:g} ({_size(point)})", tolerance, alpha)
    severe = points[-1]
    verdict, evidence = collapses(severe, "direct_transfer", "finetune_new", tolerance, alpha)
    found.append(Finding(COLLAPSE_CLAIM, "Trans-PEFT",
                         f"{label}, most severe point x{severe['severity']:g} ({_size(severe)})", evidence, verdict))
    if len(points) >= 2:
        mild = points[0]
        gaps = {}
        for name, point in (("mild", mild), ("severe", severe)):
            dt, new = _scores(point, "direct_transfer"), _scores(point, "finetune_new")
            if dt is None or new is None:
                break
            new_by = {(s["task"], s["seed"]): s["score"] for s in new}
            gaps[name] = [{"task": s["task"], "seed": s["seed"], "score": new_by[(s["task"], s["seed"])] - s["score"]}
                          for s in dt if (s["task"], s["seed"]) in new_by]
        where = f"{label}, x{mild['severity']:g} vs x{severe['severity']:g}"
        claim = "the loss of direct transfer (re-tune minus direct) grows with the update's size"
        if len(gaps) < 2:
            found.append(Finding(claim, "this benchmark (both papers' regimes)", where,
                                 "needs direct_transfer and finetune_new", UNMEASURED))
        else:
            test = paired(gaps["severe"], gaps["mild"])
            verdict = judge(test, alpha, lambda lo, hi: lo > 0 and test.mean_diff > tolerance,
                            lambda lo, hi: hi < tolerance)
            found.append(Finding(claim, "this benchmark (both papers' regimes)", where,
                                 describe(test, "gap at most severe", "gap at mildest", alpha), verdict))
    return found


def run_findings(results: dict, tolerance: float, alpha: float) -> list[Finding]:
    """A `bench run` results file: its update is the pair's own, every cell landed on the new base is a score."""
    point = {"methods": {}}
    for cell in results["cells"]:
        if cell["evaluated_on"] == "new":
            entry = point["methods"].setdefault(cell["method"], {"scores": []})
            entry["scores"].append({"task": cell["task"], "seed": cell["seed"], "score": cell["score"]})
    tasks = sorted({c["task"] for c in results["cells"]})
    seeds = sorted({c["seed"] for c in results["cells"]})
    where = f"{results['pair']} leaderboard ({', '.join(tasks)}; {len(seeds)} seeds)"
    verdict, evidence = collapses(point, "direct_transfer", "finetune_new", tolerance, alpha)
    return transfer_findings(point, where, tolerance, alpha) + [
        Finding(COLLAPSE_CLAIM, "Trans-PEFT", where, evidence, verdict)]


def is_run_results(data) -> bool:
    return isinstance(data, dict) and "schema_version" in data and isinstance(data.get("cells"), list)


def grid_findings(summary: dict, tolerance: float, alpha: float) -> list[Finding]:
    found = []
    for stage in summary["stages"]:
        points = stage["points"]
        base = points[0]
        best = max(points[1:], key=lambda p: p["mean"], default=None)
        fixed = ", ".join(f"{k}={v}" for k, v in stage["fixed"].items())
        where = (f"{summary['pair']} {summary['method']} grid ({', '.join(summary['tasks'])}; "
                 f"{len(summary['seeds'])} seeds), {stage['param']} sweep"
                 + (f" at {fixed}" * bool(fixed)))
        claim = f"some {stage['param']} > {base['value']} beats {stage['param']} = {base['value']} (Fig. 6 shape)"
        if best is None:
            found.append(Finding(claim, "Trans-PEFT", where, "needs two or more values", UNMEASURED))
            continue
        test = paired(best["scores"], base["scores"])
        names = f"{stage['param']}={best['value']} (best)", f"{stage['param']}={base['value']}"
        if at_floor(*[p["scores"] for p in points]):
            found.append(Finding(claim, "Trans-PEFT", where, floor_note(test, *names, alpha), UNMEASURED))
        else:
            found.append(Finding(claim, "Trans-PEFT", where, describe(test, *names, alpha),
                                 judge_beats(test, tolerance, alpha)))
    refs = summary.get("references", {})
    if "direct_transfer" in refs:
        best_point = next(p for p in summary["stages"][-1]["points"] if p["value"] == summary["stages"][-1]["best"])
        point = {"methods": {summary["method"]: best_point, "direct_transfer": refs["direct_transfer"]}}
        verdict, evidence = beats(point, summary["method"], "direct_transfer", tolerance, alpha)
        best = ", ".join(f"{k}={v}" for k, v in summary["best"].items())
        found.append(Finding("Trans-PEFT (best grid point) beats direct transfer", "Trans-PEFT",
                             f"{summary['pair']} {summary['method']} grid ({', '.join(summary['tasks'])}), best {best}",
                             evidence, verdict))
    return found


def chain_findings(summary: dict, tolerance: float, alpha: float) -> list[Finding]:
    found = []
    for point in summary["points"]:
        where = (f"{summary['pair']} chain ({', '.join(summary['tasks'])}; {len(summary['seeds'])} seeds), "
                 f"module from v0 landed on {point['version']} ({_size(point)})")
        verdict, evidence = about_as_good(point, "portllm", "finetune_new", tolerance, alpha)
        found.append(Finding("a ported patch stays about as good as re-tuning along a chain of updates",
                             "PortLLM (Table A)", where, evidence, verdict))
        verdict, evidence = about_as_good(point, "direct_transfer", "finetune_new", tolerance, alpha)
        found.append(Finding("direct transfer stays about as good as re-tuning along a chain of updates",
                             "multi-step transfer (Trans-PEFT's open question)", where, evidence, verdict))
    return found


PATCH_GAP_RATIO = 0.1  # PortLLM Table 1: the patches' difference is an order of magnitude below the weights


def portllm_table1_finding(report: dict, check: dict) -> Finding:
    rows = check["matrices"]
    ratio = {norm: sum(r[f"gap_{norm}"] for r in rows) / sum(r[f"patched_{norm}"] for r in rows)
             for norm in ("sigma_max", "fro")}
    ok = all(v < PATCH_GAP_RATIO for v in ratio.values())
    return Finding(f"delta'_i - delta_i is small next to theta' + delta_i (below {PATCH_GAP_RATIO:g} of it)",
                   "PortLLM (Table 1)", f"{report['pair']}, {check['task']} seed {check['seed']}, "
                   f"{len(rows)} patched matrices",
                   f"‖delta'-delta‖ / ‖theta'+delta‖: sigma_max {ratio['sigma_max']:.3f}, "
                   f"Frobenius {ratio['fro']:.3f}", REPRODUCES if ok else FAILS)


# A measurement without seeds has no interval: "changes more" must mean more by a margin, or 0.0367 against 0.0365
# (the SmolLM2 update) would count as FFN changing more, and 0.0372 against 0.0373 (its previous build) as less.
ANATOMY_MARGIN = 0.1


def more_by_margin(larger: float, smaller: float) -> bool:
    return larger > smaller * (1 + ANATOMY_MARGIN)


def diagnose_findings(report: dict) -> list[Finding]:
    w, acts = report["weights"], report["activations"]
    attn_cos = sum(r["attn_cosine"] for r in acts) / len(acts)
    ffn_cos = sum(r["ffn_cosine"] for r in acts) / len(acts)
    where = f"{report['pair']} update anatomy ({report['probes']} probe texts; a measurement, no seeds)"
    more = f"(by over {ANATOMY_MARGIN:.0%})"
    return [
        Finding(f"an update changes FFN weights more than attention weights {more}", "Trans-PEFT (Sec. 3)", where,
                f"relative weight change: FFN {w['ffn']:.4f} vs attention {w['attention']:.4f}",
                REPRODUCES if more_by_margin(w["ffn"], w["attention"]) else FAILS),
        Finding(f"attention outputs stay more similar across the update than FFN outputs {more}",
                "Trans-PEFT (Figs. 1-2)", where, f"mean cosine old vs new: attention {attn_cos:.4f}, FFN {ffn_cos:.4f}",
                REPRODUCES if more_by_margin(1 - ffn_cos, 1 - attn_cos) else FAILS),
    ] + [portllm_table1_finding(report, check) for check in report.get("portllm", [])]


SUMMARY_KINDS = ("sweep-update", "sweep", "chain", "diagnose")


def collect(paths) -> list[tuple[Path, dict]]:
    """Summaries and run results: a directory's, searched recursively, or a file named itself. A named file must be
    one; inside a directory other JSON is passed over."""
    found = []
    for given in [paths] if isinstance(paths, str | Path) else paths:
        given = Path(given)
        if not given.exists():
            raise BenchError(f"{given} is not a directory of results or a results file")
        named = given.is_file()
        for path in [given] if named else sorted(given.rglob("*.json")):
            if path.name.endswith(".costs.json"):
                continue
            try:
                data = read_json(path)
            except (OSError, ValueError, RecursionError) as error:
                raise BenchError(f"cannot read {path}: {one_line(error)}") from None
            if isinstance(data, dict) and data.get("kind") in SUMMARY_KINDS:
                found.append((path, data))
            elif is_run_results(data):
                found.append((path, data | {"kind": "run"}))
            elif named:
                raise BenchError(f"{path} is neither a bench run results file nor a sweep, chain or diagnose summary")
    return found


def findings(paths, tolerance: float = 5.0, alpha: float = 0.05) -> tuple[list[Finding], list[Path]]:
    sources = collect(paths)
    if not sources:
        raise BenchError(f"no run results or sweep, chain or diagnose summaries under {paths} (run bench run, "
                         "bench sweep-update, bench sweep, bench chain or bench diagnose --out first)")
    out = []
    judges = {"sweep-update": lambda d: severity_findings(d, tolerance, alpha),
              "sweep": lambda d: grid_findings(d, tolerance, alpha),
              "chain": lambda d: chain_findings(d, tolerance, alpha), "diagnose": diagnose_findings,
              "run": lambda d: run_findings(d, tolerance, alpha)}
    for path, data in sources:
        try:
            out += judges[data["kind"]](data)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
            # A summary is a file like any input: one that lacks a field or holds the wrong type is named, not a
            # traceback from deep in the judging.
            raise BenchError(f"{path} is not a complete {data['kind']} summary ({type(error).__name__}: "
                             f"{one_line(error)}); rerun the command that wrote it") from None
    return out, [p for p, _ in sources]


def render(found: list[Finding], sources: list[Path], results_dir, tolerance: float, alpha: float) -> str:
    """The page; `results_dir` is what `bench findings` was given (a path, or a list of them)."""
    given = " ".join(map(str, results_dir)) if isinstance(results_dir, list | tuple) else results_dir
    from tabulate import tabulate

    counts = {v: sum(f.verdict == v for f in found) for v in VERDICTS}
    ci = f"{1 - alpha:.0%} confidence interval"
    lines = ["# Findings", "",
             f"Generated by `bench findings {given}` from the results files listed at the end; do not edit by "
             f"hand. Scores are x100. Each claim is judged on the {ci} of a paired difference over (task, seed) "
             f"cells: \"about as good as\" reproduces when the interval stays above -{tolerance:g} points and fails "
             f"when it lies below; \"beats\" reproduces when it lies above 0 and fails when it stays below "
             f"+{tolerance:g}; \"collapses\" reproduces when it lies below 0 with a mean drop over {tolerance:g} "
             f"points and fails when it stays above -{tolerance:g}. Otherwise the seeds cannot tell: inconclusive.",
             "", f"{counts[REPRODUCES]} checks reproduce, {counts[FAILS]} do not, {counts[INCONCLUSIVE]} are "
             f"inconclusive, {counts[UNMEASURED]} not measured.", ""]
    for verdict, title in ((REPRODUCES, "Reproduces here"), (FAILS, "Does not reproduce here"),
                           (INCONCLUSIVE, "Inconclusive here (the seeds cannot tell)")):
        claims = list(dict.fromkeys((f.claim, f.source) for f in found if f.verdict == verdict))
        bullets = []
        for claim, source in claims:
            mine = [f for f in found if (f.claim, f.source) == (claim, source)]
            bullets.append(f"- {claim} ({source}): {sum(f.verdict == verdict for f in mine)} of {len(mine)} checks")
        lines += [f"## {title}", ""] + (bullets or ["- none"]) + [""]
    lines += ["## Every check", "",
              tabulate([[f.claim, f.source, f.where, f.evidence, f.verdict] for f in found],
                       ["claim", "source", "where", "evidence", "verdict"], tablefmt="github", disable_numparse=True),
              "", "## Sources", ""] + [f"- {p}" for p in sources]
    return "\n".join(lines) + "\n"
