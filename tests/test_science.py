"""Science tools on the micro world: severity sweeps, update anatomy, hyper-parameter grids, chains, findings."""

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from bench.cli import app

runner = CliRunner()
FAST = ["--tasks", "tiny_knowledge", "--limit", "8"]
SHORT = ["--set", "steps=8", "--set", "batch_size=4"]  # every point's recipe: the tests ask about layout, not scores


def invoke(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def micro_with(steps: int):
    from bench.pairs import PAIRS
    from bench.pairs.tinypair import TinyPair

    micro = PAIRS.get("micro")
    spec = dataclasses.replace(micro.spec, update=dataclasses.replace(micro.spec.update, steps=steps))
    return TinyPair(f"micro-x{steps}", spec, "test")


def test_sweep_update_measures_growing_change(micro_pair, tmp_path):
    out = tmp_path / "sweep"
    invoke(["sweep-update", "--pair", "micro", "--kind", "full", "--severity", "0,1,3",
            "--methods", "direct_transfer,finetune_new", "--seeds", "0,1", "--out", str(out), *FAST, *SHORT])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overrides"] == {"steps": 8, "batch_size": 4}
    points = summary["points"]
    assert [p["severity"] for p in points] == [0, 1, 3]
    assert [p["steps"] for p in points] == [0, 20, 60]
    assert points[0]["weight_change"]["attention"] == 0 and points[0]["weight_change"]["ffn"] == 0
    overall = [p["weight_change"]["overall"] for p in points]
    assert 0 < overall[1] < overall[2]
    assert points[1]["pair"] == "micro-full-x1"
    # x1 is the pair's own update: the same v1 checkpoint as the registered micro pair.
    results = json.loads((out / points[1]["results"]).read_text())
    assert results["cells"][0]["base_versions"]["new"] == micro_pair.version_id("new")
    assert results["overrides"] == {"steps": 8, "batch_size": 4}
    assert all(c["recipe"]["steps"] == 8 for c in results["cells"] if c["method"] == "finetune_new")
    for p in points:
        assert set(p["methods"]) == {"direct_transfer", "finetune_new"}
        assert len(p["methods"]["finetune_new"]["scores"]) == 2  # one task x two seeds
        assert p["methods"]["finetune_new"]["sd"] is not None
    assert (out / "severity.png").read_bytes()[:4] == b"\x89PNG"
    # Rerunning reuses the finished points and rewrites the same summary.
    invoke(["sweep-update", "--pair", "micro", "--kind", "full", "--severity", "0,1,3",
            "--methods", "direct_transfer,finetune_new", "--seeds", "0,1", "--out", str(out), *FAST, *SHORT])
    assert json.loads((out / "summary.json").read_text()) == summary
    # Into the same --out with another recipe: its points would answer another question, so nothing is reused
    # or overwritten.
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    result = runner.invoke(app, ["sweep-update", "--pair", "micro", "--kind", "full", "--severity", "0,1,3",
                                 "--methods", "direct_transfer,finetune_new", "--seeds", "0,1", "--out", str(out),
                                 *FAST, "--set", "steps=9", "--set", "batch_size=4"])
    assert result.exit_code == 2 and "exists with other recipe overrides" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


def test_sweep_update_trains_with_tuned_recipes_when_asked(micro_pair, tmp_path):
    tuned = tmp_path / "tuned"
    invoke(["tune", "--pair", "micro", "--method", "finetune_new", "--task", "tiny_knowledge", "--trials", "1",
            "--knobs", "lr", "--set", "steps=6", "--set", "batch_size=4", "--out", str(tuned)])
    out = tmp_path / "sweep"
    args = ["sweep-update", "--pair", "micro", "--kind", "full", "--severity", "0,1", "--methods", "finetune_new",
            "--tasks", "tiny_knowledge", "--seeds", "0", "--limit", "4", "--out", str(out)]
    invoke([*args, "--tuned", str(tuned)])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tuned_recipes"]["tiny_knowledge"]["finetune_new.steps"] == 6
    for point in summary["points"]:
        results = json.loads((out / point["results"]).read_text())
        assert results["tuned_recipes"] == summary["tuned_recipes"]
        assert [c["recipe"]["steps"] for c in results["cells"]] == [6]  # the tuned value, not the task's budget
    # the same --out without them: other recipes, so nothing is reused or overwritten
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "exists with other tuned recipes" in result.output, result.output
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


def test_sweep_update_bad_input(tmp_path):
    for args, message in [(["--severity", "1,-2"], "negative"), (["--kind", "partial"], "--kind"),
                          (["--pair", "qwen2-qwen2.5"], "not one"), (["--severity", "a"], "numbers")]:
        result = runner.invoke(app, ["sweep-update", "--out", str(tmp_path / "x"), *args])
        assert result.exit_code == 2 and message in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_weight_change_zero_for_identical_checkpoints(micro_pair):
    from bench.science.diagnose import weight_change

    old = micro_pair.base_dir("old")
    same = weight_change(old, old)
    assert same["attention"] == same["ffn"] == same["overall"] == 0
    moved = weight_change(old, micro_pair.base_dir("new"))
    assert len(moved["layers"]) == micro_pair.spec.model.layers
    assert all(r["attention"] > 0 and r["ffn"] > 0 for r in moved["layers"])


def test_diagnose_unchanged_pair_has_cosine_one(micro_pair):
    from bench.science.diagnose import diagnose

    report = diagnose(micro_with(0), [], [0])
    assert report["weights"]["overall"] == 0
    for row in report["activations"]:
        assert row["attn_cosine"] == pytest.approx(1.0, abs=1e-5)
        assert row["ffn_cosine"] == pytest.approx(1.0, abs=1e-5)
        assert row["ffn_shift"] == pytest.approx(0.0, abs=1e-5)
        assert row["ffn_gain_old"] == pytest.approx(row["ffn_gain_new"], rel=1e-5)


def test_diagnose_command_with_portllm_check(micro_pair, tmp_path):
    # finetune_old and finetune_new modules in the cache enable PortLLM's Table 1 check.
    invoke(["run", "--pair", "micro", "--methods", "finetune_old,finetune_new", "--tasks", "tiny_knowledge",
            "--limit", "4", "--out", str(tmp_path / "run.json")])
    out = tmp_path / "diag"
    result = invoke(["diagnose", "--pair", "micro", "--tasks", "tiny_knowledge", "--out", str(out)])
    assert "PortLLM Table 1 check (tiny_knowledge, seed 0)" in result.output
    report = json.loads((out / "diagnose.json").read_text())
    assert len(report["activations"]) == micro_pair.spec.model.layers
    assert all(r["attn_cosine"] < 1 for r in report["activations"])  # micro's update moves every layer
    (check,) = report["portllm"]
    assert len(check["matrices"]) == 4 * micro_pair.spec.model.layers  # q, k, v, o per layer
    for m in check["matrices"]:
        assert 0 < m["patched_sigma_max"] <= m["patched_fro"]
        assert 0 < m["gap_sigma_max"] <= m["gap_fro"]
    assert (out / "diagnose.png").read_bytes()[:4] == b"\x89PNG"


def test_diagnose_checks_the_modules_a_tuned_run_trained(micro_pair, tmp_path):
    """bench run applies tuned recipes by default; diagnose must look for those modules, not the defaults'."""
    tuned = tmp_path / "tuned"
    for method in ("finetune_old", "finetune_new"):
        invoke(["tune", "--pair", "micro", "--method", method, "--task", "tiny_knowledge", "--trials", "1",
                "--knobs", "lr", "--set", "steps=4", "--set", "batch_size=4", "--out", str(tuned)])
    seed = "7"  # a seed no other test trains with the default recipes
    invoke(["run", "--pair", "micro", "--methods", "finetune_old,finetune_new", "--tasks", "tiny_knowledge",
            "--seeds", seed, "--limit", "4", "--tuned", str(tuned), "--out", str(tmp_path / "run.json")])
    for args, checks in ((["--tuned", str(tuned)], 1), (["--no-tuned"], 0)):
        out = tmp_path / f"diagnose-{checks}"
        invoke(["diagnose", "--pair", "micro", "--tasks", "tiny_knowledge", "--seeds", seed, "--out", str(out), *args])
        assert len(json.loads((out / "diagnose.json").read_text())["portllm"]) == checks


def test_diagnose_finds_the_references_modules_in_whichever_precision_they_trained(micro_pair):
    # a bf16 run (`--precision bf16`, or auto on a real pair whose probe prefers it) keys its modules by precision
    from bench.core.store import cache_dir
    from bench.engine.protocol import build_method, module_key
    from bench.models.training import TrainOptions
    from bench.science.diagnose import cached_module
    from tasks.base import TASKS

    task = TASKS.get("tiny_knowledge")()
    method = build_method("finetune_old", None, micro_pair, task)
    seed = 987654  # a seed no other test trains
    assert cached_module("finetune_old", micro_pair, task, seed) is None
    stored = cache_dir() / "modules" / module_key(method, micro_pair, task, seed, options=TrainOptions("bf16"))
    stored.mkdir(parents=True)
    try:
        (stored / "adapter_model.safetensors").write_bytes(b"")
        assert cached_module("finetune_old", micro_pair, task, seed) == stored
    finally:
        (stored / "adapter_model.safetensors").unlink()
        stored.rmdir()


def test_grid_sweep_lays_out_fig6(micro_pair, tmp_path):
    out = tmp_path / "grid"
    result = invoke(["sweep", "--method", "trans_peft", "--grid", "p_c=0,0.3 p_i=0,0.1",
                     "--pair", "micro", "--seeds", "0,1", "--references", "direct_transfer", "--out", str(out),
                     "--tasks", "tiny_knowledge", "--limit", "8", *SHORT])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overrides"] == {"steps": 8, "batch_size": 4}
    first, second = summary["stages"]
    assert first["param"] == "p_c" and [p["value"] for p in first["points"]] == [0, 0.3]
    assert all(p["assignment"]["p_i"] == 0 for p in first["points"])
    best = max(first["points"], key=lambda p: p["mean"])["value"]
    assert first["best"] == best
    assert second["param"] == "p_i" and [p["value"] for p in second["points"]] == [0, 0.1]
    assert all(p["assignment"]["p_c"] == best for p in second["points"])
    assert summary["best"]["p_c"] == best
    # The stage-2 point at p_i=0 is the stage-1 best point: run once, one results file.
    assert second["points"][0]["results"] == next(p for p in first["points"] if p["value"] == best)["results"]
    point_files = [p for p in out.glob("trans_peft-*.json") if not p.name.endswith(".costs.json")]
    assert len(point_files) == 3
    assert "direct_transfer" in summary["references"]
    assert (out / "grid.png").read_bytes()[:4] == b"\x89PNG"
    assert "best" in result.output
    for point in [*point_files, out / "references.json"]:  # every point and the references train with the --set
        cells = json.loads(point.read_text())["cells"]
        assert cells and all(c["recipe"]["steps"] == 8 for c in cells)


def test_grid_sweep_bad_input(tmp_path):
    for args, message in [(["--grid", "p_c=0,1.5"], "p_c must be in [0, 1)"), (["--grid", "p_c"], "NAME=V1"),
                          (["--grid", "nope=1"], "no option"), (["--method", "trans_pef"], "Did you mean"),
                          (["--grid", "p_c=0,0.1", "--set", "trans_peft.p_c=0.2"], "fixes an option the grid sweeps"),
                          (["--set", "steps"], "KEY=VALUE")]:
        result = runner.invoke(app, ["sweep", "--pair", "micro", "--out", str(tmp_path / "x"), *args])
        assert result.exit_code == 2, result.output
        assert message.lower() in result.output.lower(), result.output


def test_chain_curve_has_one_point_per_version(tmp_path):
    from bench.pairs import PAIRS
    from bench.science.chains import chain_steps

    chain = PAIRS.get("micro-chain")
    assert chain.version_id("v1") == PAIRS.get("micro").version_id("new")  # v1 is micro's own v1
    out = tmp_path / "chain"
    invoke(["chain", "--pair", "micro-chain", "--methods", "direct_transfer,finetune_new", "--seeds", "0",
            "--out", str(out), *FAST])
    summary = json.loads((out / "summary.json").read_text())
    assert [p["version"] for p in summary["points"]] == ["v1", "v2", "v3"]
    assert len({p["version_id"] for p in summary["points"]}) == 3
    # Each version moves further from v0.
    overall = [p["weight_change"]["overall"] for p in summary["points"]]
    assert overall[0] < overall[1] < overall[2]
    # The v0 module is trained once and landed on every version.
    keys = {json.loads((out / p["results"]).read_text())["cells"][0]["module_key"] for p in summary["points"]}
    assert len(keys) == 1
    # ... and it is the very module `bench run --pair micro` trains: same tiny-scaled recipe, same cache key.
    from bench.engine.protocol import build_method

    micro_recipe = build_method("finetune_old", pair=PAIRS.get("micro")).recipe
    assert build_method("finetune_old", pair=chain_steps(chain)[0]).recipe == micro_recipe
    assert (out / "chain.png").read_bytes()[:4] == b"\x89PNG"
    result = runner.invoke(app, ["chain", "--pair", "micro", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "not a chain" in result.output


def _scores(values):  # [(task, seed, score)]
    return [{"task": t, "seed": s, "score": v} for t, s, v in values]


def _point(severity, change, **methods):
    return {"severity": severity, "weight_change": {"attention": change, "ffn": change, "overall": change},
            "methods": {m: {"mean": 0, "sd": 0, "scores": _scores(v)} for m, v in methods.items()}}


def test_findings_follow_the_numbers(tmp_path):
    seeds = range(5)
    near = [("a", s, 90.0 + s) for s in seeds]
    # a little spread: differences that are all equal get a sign-flip test, which 5 pairs cannot pass at 95%
    mild = _point(0.25, 0.01, finetune_new=near, portllm=[("a", s, 89.0 + s + 0.2 * (s % 2)) for s in seeds],
                  direct_transfer=[("a", s, 88.5 + s) for s in seeds],
                  trans_peft=[("a", s, 89.0 + s + 0.1 * (s % 2)) for s in seeds])
    severe = _point(3, 0.3, finetune_new=near, portllm=[("a", s, 40.0 + 2 * s * s) for s in seeds],
                    direct_transfer=[("a", s, 30.0 + s * s) for s in seeds],
                    trans_peft=[("a", s, 50.0 + 2 * s + s * s) for s in seeds])
    sweep = {"kind": "sweep-update", "pair": "tiny", "update_kind": "full", "tasks": ["a"], "seeds": list(seeds),
             "points": [severe, mild]}
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "summary.json").write_text(json.dumps(sweep))
    out = tmp_path / "FINDINGS.md"
    invoke(["findings", str(tmp_path), "--out", str(out)])
    text = out.read_text()
    rows = {line.split("|")[3].strip() + " / " + line.split("|")[1].strip(): line.split("|")[5].strip()
            for line in text.splitlines() if line.startswith("| ") and "verdict" not in line}
    portllm = "a ported old-base LoRA patch is about as good as re-tuning on the updated base"
    assert rows[f"tiny full sweep (a; 5 seeds), x0.25 (attn 0.010, FFN 0.010) / {portllm}"] == "reproduces"
    assert rows[f"tiny full sweep (a; 5 seeds), x3 (attn 0.300, FFN 0.300) / {portllm}"] == "does not reproduce"
    collapse = next(v for k, v in rows.items() if "collapses" in k)
    assert collapse == "reproduces"
    beats_mild = rows["tiny full sweep (a; 5 seeds), x0.25 (attn 0.010, FFN 0.010) / Trans-PEFT beats direct transfer"]
    assert beats_mild == "reproduces"  # +0.5..+0.6 every seed: small but consistent
    grows = next(v for k, v in rows.items() if "grows" in k)
    assert grows == "reproduces"
    assert "sweep/summary.json" in text
    # The same numbers, with re-tuning far ahead at the mild point too: PortLLM's claim fails there.
    mild["methods"]["portllm"]["scores"] = _scores([("a", s, 70.0 + s + 0.2 * (s % 2)) for s in seeds])
    (tmp_path / "sweep" / "summary.json").write_text(json.dumps(sweep))
    invoke(["findings", str(tmp_path), "--out", str(out)])
    line = next(ln for ln in out.read_text().splitlines() if portllm in ln and "x0.25" in ln)
    assert line.rstrip(" |").endswith("does not reproduce")


def test_findings_say_inconclusive_when_the_seeds_cannot_tell(tmp_path):
    """Three noisy seeds: a mean 3 points below re-tuning is neither about as good (the interval reaches far
    below -5) nor clearly worse; a +20 mean with a sign flip is not a win. Both are inconclusive, not verdicts."""
    new = [("a", 0, 60.0), ("a", 1, 80.0), ("a", 2, 70.0)]
    point = _point(1, 0.1, finetune_new=new, portllm=[("a", 0, 75.0), ("a", 1, 55.0), ("a", 2, 71.0)],
                   direct_transfer=[("a", 0, 20.0), ("a", 1, 60.0), ("a", 2, 40.0)],
                   trans_peft=[("a", 0, 70.0), ("a", 1, 55.0), ("a", 2, 55.0)])
    sweep = {"kind": "sweep-update", "pair": "tiny", "update_kind": "full", "tasks": ["a"], "seeds": [0, 1, 2],
             "points": [point]}
    (tmp_path / "summary.json").write_text(json.dumps(sweep))
    text = invoke(["findings", str(tmp_path)]).output
    verdicts = {ln.split("|")[1].strip(): ln.split("|")[5].strip() for ln in text.splitlines()
                if ln.startswith("| ") and "verdict" not in ln}
    assert verdicts["a ported old-base LoRA patch is about as good as re-tuning on the updated base"] == "inconclusive"
    assert verdicts["Trans-PEFT beats direct transfer"] == "inconclusive"
    assert "95% CI" in text and "inconclusive" in text.split("## Every check")[0]


def test_findings_bad_input(tmp_path):
    result = runner.invoke(app, ["findings", str(tmp_path)])
    assert result.exit_code == 2 and "no run results or sweep, chain or diagnose summaries" in result.output
    result = runner.invoke(app, ["findings", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "not a directory" in result.output
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    result = runner.invoke(app, ["findings", str(tmp_path / "other.json")])
    assert result.exit_code == 2 and "neither a bench run results file" in result.output


def _run_results(pair, scores):  # {method: [(task, seed, score)]}; finetune_old's cells are on the old base
    cells = [{"method": m, "task": t, "seed": s, "score": v, "evaluated_on": "old" if m == "finetune_old" else "new"}
             for m, values in scores.items() for t, s, v in values]
    return {"schema_version": 5, "pair": pair, "cells": cells}


def test_findings_judge_a_leaderboard_run_and_take_several_paths(tmp_path):
    """A `bench run` results file is one update's evidence: the same claims as a sweep point, on its own cells."""
    seeds = range(4)
    new = [(t, s, 80.0 + s) for t in "ab" for s in seeds]
    run = _run_results("tiny", {
        "finetune_old": [(t, s, 0.0) for t in "ab" for s in seeds],  # on the old base: never compared here
        "finetune_new": new, "portllm": [(t, s, v - 1.0) for t, s, v in new],
        "direct_transfer": [(t, s, 20.0 + 3 * s) for t in "ab" for s in seeds],
        "trans_peft": [(t, s, 50.0 + s * s) for t in "ab" for s in seeds]})
    (tmp_path / "run.json").write_text(json.dumps(run))
    report = {"kind": "diagnose", "pair": "real", "probes": 4,
              "weights": {"attention": 0.01, "ffn": 0.02, "overall": 0.015, "layers": []},
              "activations": [{"attn_cosine": 0.99, "ffn_cosine": 0.9}]}
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "diagnose.json").write_text(json.dumps(report))
    text = invoke(["findings", str(tmp_path / "run.json"), str(tmp_path / "d")]).output
    rows = {ln.split("|")[1].strip(): (ln.split("|")[3].strip(), ln.split("|")[5].strip())
            for ln in text.splitlines() if ln.startswith("| ") and "verdict" not in ln and "tiny" in ln}
    assert rows["a ported old-base LoRA patch is about as good as re-tuning on the updated base"] == (
        "tiny leaderboard (a, b; 4 seeds)", "reproduces")
    assert rows["Trans-PEFT beats direct transfer"][1] == "reproduces"
    assert rows["Trans-PEFT is about as good as re-tuning on the updated base"][1] == "does not reproduce"
    assert rows["direct transfer collapses after a substantial update"][1] == "reproduces"
    assert "8 task x seed cells" in text  # both tasks, all four seeds, paired
    assert "FFN 0.0200 vs attention 0.0100" in text and f"{tmp_path / 'run.json'}" in text


def test_findings_at_floor_are_not_measured(tmp_path):
    zeros = [{"task": "a", "seed": s, "score": float(s % 2)} for s in range(3)]
    grid = {"kind": "sweep", "pair": "tiny", "method": "trans_peft", "tasks": ["a"], "seeds": [0, 1, 2],
            "best": {"p_c": 0.1},
            "references": {}, "stages": [{"param": "p_c", "fixed": {}, "best": 0.1,
                                          "points": [{"value": 0, "scores": zeros, "mean": 0.3},
                                                     {"value": 0.1, "scores": zeros, "mean": 0.3}]}]}
    (tmp_path / "summary.json").write_text(json.dumps(grid))
    text = invoke(["findings", str(tmp_path)]).output
    line = next(ln for ln in text.splitlines() if ln.startswith("| some p_c"))
    assert "the task is not learnt here" in line and line.rstrip(" |").endswith("not measured")


@pytest.mark.parametrize("attention, ffn, attn_cosine, ffn_cosine, verdicts", [
    (0.0365, 0.0367, 0.7896, 0.7946, ["does not reproduce", "does not reproduce"]),  # SmolLM2's update: alike
    (0.157, 0.218, 0.95, 0.90, ["reproduces", "reproduces"]),  # FFN moves 39% more; 1 - cosine 0.10 vs 0.05
    (0.02, 0.02 * 1.09, 0.90, 0.891, ["does not reproduce", "does not reproduce"]),  # under a tenth more
    (0.02, 0.01, 0.80, 0.90, ["does not reproduce", "does not reproduce"]),  # the opposite of the papers
])
def test_findings_anatomy_needs_a_tenth_more(tmp_path, attention, ffn, attn_cosine, ffn_cosine, verdicts):
    report = {"kind": "diagnose", "pair": "p", "probes": 4,
              "weights": {"attention": attention, "ffn": ffn, "overall": 0.0, "layers": []},
              "activations": [{"attn_cosine": attn_cosine, "ffn_cosine": ffn_cosine}]}
    (tmp_path / "diagnose.json").write_text(json.dumps(report))
    lines = [ln for ln in invoke(["findings", str(tmp_path)]).output.splitlines() if "Trans-PEFT (" in ln
             and ln.startswith("| ")]
    assert [ln.split("|")[5].strip() for ln in lines] == verdicts


def test_findings_portllm_table1_rule(tmp_path):
    report = {"kind": "diagnose", "pair": "tiny", "probes": 4,
              "weights": {"attention": 0.1, "ffn": 0.2, "overall": 0.15, "layers": []},
              "activations": [{"attn_cosine": 0.9, "ffn_cosine": 0.8}],
              "portllm": [{"task": "a", "seed": 0, "matrices": [
                  {"patched_sigma_max": 10.0, "patched_fro": 20.0, "gap_sigma_max": 0.5, "gap_fro": 1.0}]},
                          {"task": "a", "seed": 1, "matrices": [
                  {"patched_sigma_max": 10.0, "patched_fro": 20.0, "gap_sigma_max": 5.0, "gap_fro": 1.0}]}]}
    (tmp_path / "diagnose.json").write_text(json.dumps(report))
    lines = [ln for ln in invoke(["findings", str(tmp_path)]).output.splitlines() if "PortLLM (Table 1)" in ln
             and ln.startswith("| ")]
    assert [ln.split("|")[5].strip() for ln in lines] == ["reproduces", "does not reproduce"]
    assert all(len(ln.split("|")) == 7 for ln in lines)  # no stray pipes in the markdown table


def test_paired_tests_leave_out_tasks_at_the_floor():
    from bench.science.findings import paired

    a = _scores([("arith", s, 0.0) for s in range(3)] + [("know", s, 80.0 + s) for s in range(3)])
    b = _scores([("arith", s, 1.0) for s in range(3)] + [("know", s, 70.0 + 2 * s) for s in range(3)])
    test = paired(a, b)
    assert test.n == 3 and test.mean_diff == pytest.approx(9.0)


def test_constant_differences_over_few_pairs_are_not_certain():
    """+4.0 on each of 3 pairs has a zero-width t interval; an exact sign-flip test gives 2 x 0.5^3 = 0.25, so the
    claim is inconclusive. Six agreeing pairs (p = 0.031) are enough for the point to stand."""
    from bench.analysis.stats import paired_t_test
    from bench.science.findings import INCONCLUSIVE, REPRODUCES, judge_beats

    three = paired_t_test([54.0, 64.0, 74.0], [50.0, 60.0, 70.0])
    assert three.interval() is None and judge_beats(three, 5.0, 0.05) == INCONCLUSIVE
    six = paired_t_test([54.0, 64.0, 74.0, 44.0, 34.0, 24.0], [50.0, 60.0, 70.0, 40.0, 30.0, 20.0])
    assert six.interval() == (4.0, 4.0) and judge_beats(six, 5.0, 0.05) == REPRODUCES
    varied = paired_t_test([55.0, 63.0, 74.0], [50.0, 60.0, 70.0])
    assert varied.interval()[0] < 4.0 < varied.interval()[1]  # spread: the t interval as before
