"""Retention: a module that lands on another base is also scored on the base it trained on (source_score)."""

import dataclasses
import json
import re

import pytest
from results_factory import make_cells, write_results_file
from typer.testing import CliRunner

import methods  # noqa: F401
from bench.cli import app
from bench.core.store import Store
from bench.engine.protocol import build_method, evaluate_cell
from tasks.base import TASKS

FAST = {"steps": 4, "batch_size": 4}
runner = CliRunner()


def cell(name, pair, task, seed=0, overrides=FAST):
    return evaluate_cell(build_method(name, overrides, pair, task), pair, task, seed, None, overrides)


def test_transferring_methods_record_their_modules_score_where_it_trained(micro_pair):
    task = TASKS.get("tiny_knowledge")()
    old = cell("finetune_old", micro_pair, task, seed=21)
    assert old.source_score is None and cell("finetune_new", micro_pair, task, seed=21).source_score is None
    evals = set(Store().keys("evals"))
    direct = cell("direct_transfer", micro_pair, task, seed=21)
    # finetune_old's own evaluation is direct_transfer's source: one new evaluation (on the new base), not two.
    assert direct.source_score == old.score and len(set(Store().keys("evals")) - evals) == 1
    for name in ("portllm", "trans_peft"):
        landed = cell(name, micro_pair, task, seed=21)
        assert landed.source_score is not None and 0 <= landed.source_score <= 100


def test_portllms_source_is_its_lora_as_a_plain_adapter_on_the_old_base(micro_pair):
    task = TASKS.get("tiny_arith")()
    portllm = cell("portllm", micro_pair, task, seed=22)
    # finetune_old trained with PortLLM's recipe is the same module; its evaluation (an adapter on the old base)
    # is exactly the cached source evaluation: nothing new is trained or evaluated.
    recipe = dataclasses.asdict(build_method("portllm", FAST, micro_pair, task).recipe)
    same = FAST | {"finetune_old." + k: v for k, v in recipe.items()}
    before = set(Store().keys("modules")), set(Store().keys("evals"))
    plain = cell("finetune_old", micro_pair, task, seed=22, overrides=same)
    assert (set(Store().keys("modules")), set(Store().keys("evals"))) == before
    assert plain.module_key == portllm.module_key and plain.score == portllm.source_score


def with_sources(cells):
    for c in cells:
        if c["evaluated_on"] != c["trained_on"]:
            c["source_score"] = 50.0 if c["method"] == "trans_peft" else 0.0
    return cells


def test_leaderboards_show_source_and_retention_and_old_files_still_report(tmp_path):
    current = write_results_file(tmp_path / "v2.json", with_sources(make_cells()))
    md = runner.invoke(app, ["report", str(current)]).stdout
    assert "Retention" in md
    # trans_peft t_arith: 75.0 over seeds against a source of 50.0; portllm's source is 0: never learned.
    assert re.search(r"\| trans_peft +\| t_arith +\| old -> new +\| 50\.0 ± 0\.0 +\| 75\.0 ± 5\.0 +\| 150% ", md)
    assert re.search(r"\| portllm +\| t_arith +\| old -> new +\| 0\.0 ± 0\.0 +\| 75\.0 ± 0\.0 +\| - ", md)
    section = json.loads(runner.invoke(app, ["report", str(current), "--format", "json"]).stdout)["sections"][0]
    rows = {(r["method"], r["task"]): r for r in section["retention"]}
    assert ("finetune_old", "t_arith") not in rows and rows[("trans_peft", "t_arith")]["retention"] == 1.5
    csv = runner.invoke(app, ["report", str(current), "--format", "csv"]).stdout
    assert "t_arith_source,t_arith_retention" in csv.splitlines()[0]

    old = write_results_file(tmp_path / "v1.json")  # schema 1: no schema_version, no source_score
    result = runner.invoke(app, ["report", str(old)])
    assert result.exit_code == 0 and "Retention" not in result.stdout and "| trans_peft" in result.stdout


@pytest.mark.parametrize("schema", [1, 2])
def test_bench_run_table_shows_retention(micro_pair, tmp_path, schema):
    from bench.analysis.report import leaderboard
    from bench.core.results import load_results

    cells = with_sources(make_cells()) if schema == 2 else make_cells()
    table = leaderboard(load_results(write_results_file(tmp_path / "r.json", cells)))
    assert ("retention" in table) == (schema == 2)
    if schema == 2:
        row = r"\| trans_peft +\| t_knowledge +\| old -> new +\| 50\.0 ± 0\.0 +\| 67\.5 ± 2\.5 +\| 135% "
        assert re.search(row, table)
