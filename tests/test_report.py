"""`bench report`: one results set in md, latex, csv, json and html, with cost columns, mean ± sd over
seeds, the gap to re-tune, the projected cost of keeping N modules current, and paired t-tests."""

import base64
import csv
import io
import json
import math
import re
import statistics

import pytest
from results_factory import write_results_file
from typer.testing import CliRunner

from bench.cli import app

runner = CliRunner()


@pytest.fixture
def results_file(tmp_path):
    return write_results_file(tmp_path / "grid.json")


def report(path, *args):
    result = runner.invoke(app, ["report", str(path), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_one_results_set_renders_in_all_five_formats_with_cost_columns(results_file, tmp_path):
    for fmt in ("md", "latex", "csv", "json", "html"):
        out = tmp_path / f"board.{fmt}"
        result = runner.invoke(app, ["report", str(results_file), "--format", fmt, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 0

    md = (tmp_path / "board.md").read_text()
    for column in ("train GPU-h", "eval GPU-h", "peak MB", "module MB", "gap to re-tune", "params", "tokens"):
        assert column in md, column
    assert "NVIDIA H100 80GB HBM3" in md and "torch 2.13.0" in md  # the environment it was measured on

    latex = (tmp_path / "board.latex").read_text()
    assert r"\toprule" in latex and r"train GPU-h" in latex and r"75.0 $\pm$ 5.0" in latex
    assert r"trans\_peft" in latex  # escaped for LaTeX

    rows = {r["method"]: r for r in csv.DictReader(io.StringIO((tmp_path / "board.csv").read_text()))}
    assert set(rows) == {"finetune_old", "finetune_new", "direct_transfer", "portllm", "trans_peft"}
    assert float(rows["finetune_new"]["train_device_hours"]) == pytest.approx(6.0)  # 6 cells x 3600 s x 1 GPU
    assert float(rows["finetune_new"]["eval_device_hours"]) == pytest.approx(0.6)
    assert float(rows["direct_transfer"]["train_device_hours"]) == 0.0  # reuses finetune_old's module
    assert float(rows["portllm"]["peak_reserved_mb"]) == 24000.0 and rows["portllm"]["device_hours_unit"] == "GPU-h"
    assert float(rows["trans_peft"]["t_arith"]) == pytest.approx(75.0)
    assert float(rows["trans_peft"]["t_arith_sd"]) == pytest.approx(5.0)

    data = json.loads((tmp_path / "board.json").read_text())
    assert data["sections"][0]["grid_total"]["device_hours"] == pytest.approx(
        (3600 * 2 + 0 + 3000 + 2700) * 6 / 3600 + 30 * 0.1)

    html = (tmp_path / "board.html").read_text()
    assert html.count("<table") == 3 and "train GPU-h" in html
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(images) == 2  # score vs device-hours, per-task bars
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)


def test_report_aggregates_seeds_and_measures_the_gap_to_retuning(results_file):
    section = json.loads(report(results_file, "--format", "json"))["sections"][0]
    methods = {m["method"]: m for m in section["methods"]}
    assert section["seeds"] == [0, 1, 2]
    assert methods["trans_peft"]["scores"]["t_arith"] == {"mean": 75.0, "sd": 5.0, "seeds": 3}
    # avg per seed over tasks: finetune_new 77.5, 80, 82.5; trans_peft 67.5, 71.25, 75
    assert methods["finetune_new"]["avg"] == pytest.approx(80.0)
    assert methods["finetune_new"]["avg_sd"] == pytest.approx(2.5)
    assert methods["trans_peft"]["gap_to_retune"] == pytest.approx(71.25 - 80.0)
    assert methods["finetune_new"]["gap_to_retune"] == 0.0
    assert methods["finetune_old"]["gap_to_retune"] is None  # evaluated on the old base: no like-for-like gap

    md = report(results_file)
    assert re.search(r"\| trans_peft\s+\| new\s+\| 75\.0 ± 5\.0\s+\| 67\.5 ± 2\.5\s+\| 71\.2 ± 3\.8\s+\| -8\.8", md)
    assert re.search(r"\| finetune_old\s+\| old .*\| -\s+\|", md)


def test_report_runs_a_paired_t_test_over_tasks_and_seeds(results_file):
    section = json.loads(report(results_file, "--format", "json"))["sections"][0]
    tests = {(t["a"], t["b"]): t for t in section["paired_tests"]}
    assert ("finetune_old", "finetune_new") not in tests  # different target base
    test = tests[("trans_peft", "finetune_new")]
    diffs = [70 - 80, 75 - 85, 80 - 90, 65 - 75, 67.5 - 75, 70 - 75]  # (task, seed) pairs
    t = statistics.fmean(diffs) / (statistics.stdev(diffs) / math.sqrt(len(diffs)))
    assert test["n"] == 6 and test["mean_diff"] == pytest.approx(-8.75) and test["t"] == pytest.approx(t)
    assert test["p"] < 0.01
    assert ("trans_peft", "direct_transfer") in tests and tests[("trans_peft", "direct_transfer")]["mean_diff"] > 0
    assert "Paired t-tests" in report(results_file) and f"{t:.3g}" in report(results_file)


def test_projected_cost_of_keeping_n_modules_current(results_file):
    section = json.loads(report(results_file, "--format", "json", "--modules", "100"))["sections"][0]
    rows = {r["method"]: r for r in section["projection"]}
    assert "finetune_old" not in rows  # stays on the old base
    # re-tuning: every update trains each module again (3600 s) and loads it (3.6 s)
    assert rows["finetune_new"]["per_update_device_hours"] == pytest.approx(100 * 3603.6 / 3600)
    assert rows["finetune_new"]["one_time_device_hours"] == pytest.approx(100.0)  # the original modules
    # transfer: trained once on the old base, then only landed (PortLLM's merge: 36 s)
    assert rows["portllm"]["one_time_device_hours"] == pytest.approx(100 * 3000 / 3600)
    assert rows["portllm"]["per_update_device_hours"] == pytest.approx(1.0)
    assert rows["portllm"]["retune_over_this"] == pytest.approx(100.1)
    assert rows["direct_transfer"]["one_time_device_hours"] == pytest.approx(100.0)  # finetune_old's training
    assert "keeping 100 modules current" in report(results_file, "--modules", "100")


def test_several_results_files_merge_and_duplicates_are_refused(tmp_path):
    from results_factory import make_cells

    cells = make_cells()
    first = write_results_file(tmp_path / "seed0.json", [c for c in cells if c["seed"] == 0])
    rest = write_results_file(tmp_path / "seed12.json", [c for c in cells if c["seed"] != 0])
    section = json.loads(report(first, str(rest), "--format", "json"))["sections"][0]
    assert section["seeds"] == [0, 1, 2]
    result = runner.invoke(app, ["report", str(first), str(first)])
    assert result.exit_code == 2 and "both hold" in result.stderr


@pytest.mark.parametrize("args,message", [
    (["--format", "htm"], "did you mean 'html'"),
    (["--modules", "0"], "--modules must be a positive"),
])
def test_report_bad_options_are_one_line_errors(results_file, args, message):
    result = runner.invoke(app, ["report", str(results_file), *args])
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_report_of_a_malformed_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"pair": "tiny"}')
    result = runner.invoke(app, ["report", str(bad)])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "not a bench results file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
