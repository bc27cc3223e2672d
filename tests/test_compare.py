"""`bench compare BASELINE CURRENT`: the CI regression gate on per-sample outcomes."""

import json
import shutil

import pytest
from results_factory import flip, make_cells, write_results_file
from typer.testing import CliRunner

from bench.analysis.stats import mcnemar_exact, paired_bootstrap_ci, paired_t_test
from bench.cli import app

runner = CliRunner()


@pytest.fixture
def baseline(tmp_path):
    return write_results_file(tmp_path / "baseline.json")


def compare(baseline, current, *args):
    return runner.invoke(app, ["compare", str(baseline), str(current), *args])


def rows_by_cell(output: str) -> dict:
    rows = {}
    for line in output.splitlines():
        parts = [p.strip() for p in line.strip("|").split("|")]
        if len(parts) == 11 and parts[0] not in ("method", "") and not parts[0].startswith("-"):
            rows[(parts[0], parts[1])] = parts
    return rows


def test_identical_rerun_passes(baseline, tmp_path):
    rerun = tmp_path / "rerun.json"
    shutil.copy(baseline, rerun)
    result = compare(baseline, rerun)
    assert result.exit_code == 0, result.output
    rows = rows_by_cell(result.stdout)
    assert len(rows) == 10 and all(r[-1] == "ok" for r in rows.values())
    assert "0 of 10 cells regressed" in result.stdout


def test_planted_regression_fails_the_gate(baseline, tmp_path):
    # portllm on t_arith is right on 30/40 samples per seed; flipping every outcome leaves 10/40.
    current = write_results_file(tmp_path / "current.json", flip(make_cells(), "portllm", "t_arith"))
    result = compare(baseline, current)
    assert result.exit_code == 1, result.output
    rows = rows_by_cell(result.stdout)
    regressed = {cell for cell, row in rows.items() if row[-1] == "REGRESSED"}
    assert regressed == {("portllm", "t_arith")}
    row = rows[("portllm", "t_arith")]
    assert row[2:8] == ["120", "75.0", "25.0", "-50.0", "90/30", "mcnemar"]  # 3 seeds x 40 samples paired
    assert float(row[8]) < 1e-6
    assert "1 of 10 cells regressed" in result.stdout


def test_min_delta_tolerates_small_drops_and_improvements_never_fail(baseline, tmp_path):
    current = write_results_file(tmp_path / "current.json", flip(make_cells(), "portllm", "t_arith"))
    assert compare(baseline, current, "--min-delta", "60").exit_code == 0  # a 50-point drop is under 60
    # finetune_old on t_knowledge is right on 10/40: flipped, it improves to 30/40
    better = write_results_file(tmp_path / "better.json", flip(make_cells(), "finetune_old", "t_knowledge"))
    result = compare(baseline, better)
    assert result.exit_code == 0 and rows_by_cell(result.stdout)[("finetune_old", "t_knowledge")][5] == "+50.0"


def test_a_few_changed_samples_are_not_significant(baseline, tmp_path):
    cells = make_cells()
    cell = next(c for c in cells if (c["method"], c["task"], c["seed"]) == ("trans_peft", "t_arith", 0))
    right = [s for s in cell["samples"] if s["correct"] == 1.0]
    for sample in right[:2]:  # two of 120 paired outcomes lost: noise, not a regression
        sample["correct"] = 0.0
    result = compare(baseline, write_results_file(tmp_path / "current.json", cells))
    assert result.exit_code == 0
    row = rows_by_cell(result.stdout)[("trans_peft", "t_arith")]
    assert row[6] == "2/0" and float(row[8]) == pytest.approx(0.5) and row[-1] == "ok"


def test_non_binary_outcomes_use_the_paired_bootstrap(baseline, tmp_path):
    def graded(cells, shift):
        for c in cells:
            c["samples"] = [s | {"correct": min(1.0, max(0.0, 0.5 + shift + 0.01 * (s["id"] % 7)))}
                            for s in c["samples"]]
        return cells

    base = write_results_file(tmp_path / "base.json", graded(make_cells(), 0.0))
    worse = write_results_file(tmp_path / "worse.json", graded(make_cells(), -0.3))
    result = compare(base, worse)
    assert result.exit_code == 1
    assert all(r[7] == "bootstrap" and r[-1] == "REGRESSED" for r in rows_by_cell(result.stdout).values())
    assert compare(base, base).exit_code == 0


@pytest.mark.parametrize("content,message", [
    ("not json", "cannot read results"),
    ('{"pair": "tiny"}', "not a bench results file"),
    ('{"pair": "tiny", "cells": [{"method": "portllm"}]}', "cell 0 lacks task, seed, score, samples"),
    ('{"pair": "tiny", "cells": [{"method": "m", "task": "t", "seed": 0, "score": 1, "samples": [{"id": 1}]}]}',
     "without an id and a numeric 'correct'"),
])
def test_malformed_baseline_is_bad_input(tmp_path, baseline, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = compare(bad, baseline)
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_mismatched_grids_are_bad_input(baseline, tmp_path):
    cells = make_cells()
    fewer = write_results_file(tmp_path / "fewer.json", [c for c in cells if c["method"] != "trans_peft"])
    result = compare(baseline, fewer)
    assert result.exit_code == 2 and "lacks baseline cells trans_peft/t_arith" in result.stderr
    other_pair = write_results_file(tmp_path / "other.json", cells, pair="tiny-severe")
    assert "baseline is pair 'tiny'" in compare(baseline, other_pair).stderr
    for c in cells:
        c["samples"] = c["samples"][:20]  # e.g. another --limit
    limited = write_results_file(tmp_path / "limited.json", cells)
    result = compare(baseline, limited)
    assert result.exit_code == 2 and "different samples" in result.stderr
    assert compare(baseline, baseline, "--alpha", "1.5").exit_code == 2


def test_statistics_match_hand_computed_values():
    # McNemar exact: 10 discordant pairs all lost -> two-sided binomial p = 2 * 0.5**10
    test = mcnemar_exact([1] * 10 + [0] * 5, [0] * 10 + [0] * 5)
    assert (test.lost, test.gained) == (10, 0) and test.p == pytest.approx(2 * 0.5**10)
    # paired t: diffs 1, 0, 2, 3 -> mean 1.5, sd 1.2910, t = 1.5 / (1.2910 / 2)
    t = paired_t_test([1, 2, 3, 4], [0, 2, 1, 1])
    assert t.n == 4 and t.mean_diff == 1.5 and t.t == pytest.approx(2.32379, abs=1e-4)
    assert paired_t_test([1, 2], [0, 1]).p is None  # constant difference: no t statistic
    low, high = paired_bootstrap_ci([0, 0, 0, 0] * 10, [1, 0, 0, 0] * 10)
    assert 0 < low <= 0.25 <= high


def test_the_real_micro_run_reports_and_passes_against_itself(micro_pair, tmp_path):
    out = tmp_path / "micro.json"
    run = runner.invoke(app, ["run", "--pair", "micro", "--set", "steps=4", "--set", "batch_size=4",
                              "--methods", "finetune_new,portllm", "--tasks", "tiny_arith,tiny_knowledge",
                              "--out", str(out)])
    assert run.exit_code == 0, run.output
    costs = json.loads(out.with_suffix(".costs.json").read_text())
    assert costs["environment"]["packages"]["torch"] and all(c["module_mb"] > 0 for c in costs["costs"])
    assert all(c["land_wall_s"] > 0 and c["device_count"] >= 1 for c in costs["costs"])
    board = runner.invoke(app, ["report", str(out), "--format", "md"])
    assert board.exit_code == 0 and "train CPU-h" in board.stdout and "portllm" in board.stdout
    assert compare(out, out).exit_code == 0
