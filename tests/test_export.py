"""`bench export`: a cell leaves the harness as files, and lm-eval's own command line scores it the same."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch
import yaml
from typer.testing import CliRunner

from bench.cli import app
from bench.core.store import Store

runner = CliRunner()
LM_EVAL = Path(sys.executable).with_name("lm_eval")


@pytest.fixture(scope="module")
def results(micro_pair, tmp_path_factory):
    """A micro run (its modules trained for 30 steps: long enough to move the knowledge answers off the base's)."""
    out = tmp_path_factory.mktemp("export") / "run.json"
    run = runner.invoke(app, ["run", "--pair", "micro", "--methods", "finetune_old,portllm", "--tasks",
                              "tiny_arith,tiny_knowledge", "--set", "steps=30", "--set", "batch_size=8",
                              "--out", str(out)])
    assert run.exit_code == 0, run.output
    return out


def cell_of(results: Path, method: str, task: str) -> dict:
    return next(c for c in json.loads(results.read_text())["cells"] if (c["method"], c["task"]) == (method, task))


@pytest.mark.skipif(not LM_EVAL.exists(), reason="lm_eval's command line is not installed beside this python")
def test_the_exported_lm_eval_command_reproduces_a_merged_portllm_cell(results, micro_pair, tmp_path):
    out = tmp_path / "portllm"
    result = runner.invoke(app, ["export", str(results), str(out), "--cell", "portllm/tiny_knowledge/0"])
    assert result.exit_code == 0, result.output
    assert (out / "model" / "tokenizer.json").exists()
    merged, new_base = (safetensors.torch.load_file(d / "model.safetensors")
                        for d in (out / "model", Path(micro_pair.base_dir("new"))))
    assert merged.keys() == new_base.keys()  # a plain checkpoint of the new base's shape, its weights patched:
    down = "model.layers.0.mlp.down_proj.weight"
    assert not torch.equal(merged[down], new_base[down])
    assert {p.name for p in (out / "tasks").iterdir()} == {"tiny_knowledge_v0.yaml", "tiny_knowledge_v0.jsonl",
                                                           "tiny_knowledge_v1.yaml", "tiny_knowledge_v1.jsonl"}
    command = (out / "COMMAND").read_text().strip()
    assert "--tasks tiny_knowledge_v1" in command  # PortLLM lands on the new base: version 1's test data

    env = dict(os.environ, PATH=f"{LM_EVAL.parent}:{os.environ['PATH']}", OMP_NUM_THREADS="1")
    subprocess.run(["bash", "-c", f"{command} --output_path lm_eval_out --log_samples"], cwd=out, env=env,
                   check=True, capture_output=True, timeout=600)
    scored = json.loads(next((out / "lm_eval_out").rglob("results_*.json")).read_text())["results"]
    samples = [json.loads(line) for line in next((out / "lm_eval_out").rglob("samples_*.jsonl")).open()]
    cell = cell_of(results, "portllm", "tiny_knowledge")
    assert 100 * scored["tiny_knowledge_v1"]["acc,none"] == pytest.approx(cell["score"])
    # every answer, not only the score
    assert {s["doc_id"]: float(s["acc"]) for s in samples} == {s["id"]: s["correct"] for s in cell["samples"]}


def test_an_adapter_cell_exports_the_module_its_base_and_both_versions_data(results, tmp_path):
    out = tmp_path / "finetune_old"
    result = runner.invoke(app, ["export", str(results), str(out), "--cell", "finetune_old/tiny_knowledge/0"])
    assert result.exit_code == 0, result.output
    module = Store().root / "modules" / cell_of(results, "finetune_old", "tiny_knowledge")["module_key"]
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (out / "adapter" / name).read_bytes() == (module / name).read_bytes()
    assert (out / "base" / "model.safetensors").exists() and (out / "adapter" / "tokenizer.json").exists()
    command = (out / "COMMAND").read_text()
    assert "pretrained=./base,peft=./adapter" in command and "--tasks tiny_knowledge_v0" in command
    for version in (0, 1):
        config = yaml.safe_load((out / "tasks" / f"tiny_knowledge_v{version}.yaml").read_text())
        assert config["task"] == f"tiny_knowledge_v{version}"
        assert config["dataset_kwargs"]["data_files"]["test"] == f"tasks/tiny_knowledge_v{version}.jsonl"


@pytest.mark.parametrize("cell,message", [
    ("portllm/tiny_code/0", "has no cell portllm/tiny_code/0"),
    ("portllm/tiny_arith", "METHOD/TASK/SEED"),
    ("portllm/tiny_arith/zero", "METHOD/TASK/SEED"),
])
def test_bad_cells_are_one_line(results, tmp_path, cell, message):
    result = runner.invoke(app, ["export", str(results), str(tmp_path / "x"), "--cell", cell])
    assert result.exit_code == 2 and message in result.stderr and not (tmp_path / "x").exists()


def test_an_export_never_writes_into_a_used_directory(results, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["export", str(results), str(tmp_path / "used"), "--cell", "portllm/tiny_arith/0"])
    assert result.exit_code == 2 and "not empty" in result.stderr
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["keep.txt"]


def test_results_record_the_cpu_model_and_isa(results):
    cpu = json.loads(results.with_suffix(".costs.json").read_text())["environment"]["cpu"]
    assert cpu["model"] and isinstance(cpu["isa"], list) and cpu["torch_cpu_capability"]
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if " avx2 " in flags.replace("\n", " "):
        assert "avx2" in cpu["isa"]
    board = runner.invoke(app, ["report", str(results)]).stdout
    assert f"cpu: {cpu['model']}" in board


def test_an_fp32_cell_of_a_pair_stored_in_bf16_exports_a_float32_command(results, micro_pair, tmp_path, monkeypatch):
    """A real pair's checkpoints are bf16, but `--precision fp32` trains and scores its cells in float32: the
    exported command must load the model as the harness did, not in the checkpoint's dtype."""
    monkeypatch.setattr(type(micro_pair), "dtype", property(lambda pair: torch.bfloat16))
    out = tmp_path / "fp32"
    result = runner.invoke(app, ["export", str(results), str(out), "--cell", "finetune_old/tiny_arith/0"])
    assert result.exit_code == 0, result.output
    assert ",dtype=float32," in (out / "COMMAND").read_text()


def test_a_bf16_cell_exports_its_own_module_built_and_scored_in_bf16(micro_pair, tmp_path):
    """A bf16 cell (`--precision bf16`, or auto on a real pair whose CPU probe prefers it): the export must find its
    module (its key names the precision) and build and score the landed model in bf16, as the harness did."""
    results = tmp_path / "bf16.json"
    run = runner.invoke(app, ["run", "--pair", "micro", "--methods", "portllm", "--tasks", "tiny_knowledge",
                              "--set", "steps=5", "--set", "batch_size=8", "--precision", "bf16", "--limit", "8",
                              "--out", str(results)])  # bf16 is emulated, and slow, on a CPU without AVX512-BF16
    assert run.exit_code == 0, run.output
    assert cell_of(results, "portllm", "tiny_knowledge")["precision"] == "bf16"
    out = tmp_path / "portllm"
    result = runner.invoke(app, ["export", str(results), str(out), "--cell", "portllm/tiny_knowledge/0"])
    assert result.exit_code == 0, result.output
    assert ",dtype=bfloat16," in (out / "COMMAND").read_text()
    merged = safetensors.torch.load_file(out / "model" / "model.safetensors")
    assert {tensor.dtype for tensor in merged.values()} == {torch.bfloat16}
