"""The command line as a user meets it: the whole run on the micro world, caching, and bad input."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.core.store import Store

FAST = ["--pair", "micro", "--set", "steps=4", "--set", "batch_size=4"]
METHODS = ["finetune_old", "finetune_new", "direct_transfer", "portllm", "trans_peft"]
runner = CliRunner()


def test_bench_run_compares_all_five_methods_then_reuses_everything(micro_pair, tmp_path, monkeypatch):
    first = runner.invoke(app, ["run", *FAST, "--out", str(tmp_path / "a.json")])
    assert first.exit_code == 0, first.output
    cells = json.loads((tmp_path / "a.json").read_text())["cells"]
    costs = json.loads((tmp_path / "a.costs.json").read_text())["costs"]
    assert {(c["method"], c["task"]) for c in cells} == {
        (m, t) for m in METHODS for t in ("tiny_arith", "tiny_knowledge", "tiny_code")}
    for key in ("score", "metric", "seed", "base_versions", "config_hash", "trainable_params", "train_tokens",
                "samples"):
        assert all(key in c for c in cells), key
    for key in ("train_wall_s", "eval_wall_s", "peak_mem_mb", "device"):  # timings vary: kept beside the results
        assert all(key in c for c in costs) and not any(key in c for c in cells), key
    table = first.stdout
    assert all(m in table for m in METHODS) and "avg" in table and "peak MB" in table

    trained = Store().keys("modules"), Store().keys("evals")
    second = runner.invoke(app, ["run", *FAST, "--methods", "trans_peft,portllm", "--out", str(tmp_path / "b.json")])
    assert second.exit_code == 0, second.output
    assert (Store().keys("modules"), Store().keys("evals")) == trained  # every module and evaluation was cached
    again = {(c["method"], c["task"]): c["score"] for c in json.loads((tmp_path / "b.json").read_text())["cells"]}
    assert again == {(c["method"], c["task"]): c["score"] for c in cells if (c["method"], c["task"]) in again}


def test_existing_results_are_never_overwritten(micro_pair, tmp_path):
    out = tmp_path / "done.json"
    out.write_text('{"finished": true}')
    result = runner.invoke(app, ["run", *FAST, "--out", str(out)])
    assert result.exit_code == 2 and "refusing to overwrite" in result.stderr
    assert out.read_text() == '{"finished": true}'


@pytest.mark.parametrize("args,message", [
    (["--methods", "tran_peft"], "did you mean 'trans_peft'"),
    (["--methods", "portlm,finetune_old"], "did you mean 'portllm'"),
    (["--pair", "tiny-sever"], "did you mean 'tiny-severe'"),
    (["--tasks", "tiny_arithm"], "did you mean 'tiny_arith'"),
    (["--set", "p_c=1.0", "--methods", "trans_peft"], "p_c must be in [0, 1)"),
    (["--set", "trans_peft.p_i=-0.2"], "p_i must be in [0, 1)"),
    (["--set", "rank=0"], "rank must be a positive integer"),
    (["--set", "p_c"], "KEY=VALUE"),
    (["--set", "warmup_epochs=0.1"], "no selected method has an option 'warmup_epochs'"),
    (["--seeds", "zero"], "comma-separated integers"),
    (["--limit", "0"], "--limit must be positive"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_input_from_the_installed_command_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--methods", "tran_peft"],
                          capture_output=True, text=True, timeout=600)  # a loaded machine imports torch slowly
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: unknown method 'tran_peft'; did you mean 'trans_peft'? (choose from: "
                                   "cross_lora, direct_transfer, finetune_new, finetune_old, portllm, trans_peft, "
                                   "warm_retune)")


def test_list_shows_every_registered_name():
    out = runner.invoke(app, ["list", "methods"]).stdout
    assert all(m in out for m in METHODS)
    assert "tiny-severe" in runner.invoke(app, ["list", "pairs"]).stdout
    bad = runner.invoke(app, ["list", "metods"])
    assert bad.exit_code == 2 and "did you mean 'methods'" in bad.stderr


def test_perf_reports_every_ratio_measured_in_one_run(micro_pair):
    result = runner.invoke(app, ["perf", "--pair", "micro", "--steps", "5"])
    assert result.exit_code == 0, result.output
    ratios = {line.split(": ")[0]: float(line.split(": ")[1].split()[0]) for line in result.stdout.splitlines()
              if "step time:" in line or "throughput:" in line}
    assert set(ratios) == {"trans_peft / LoRA step time", "trans_peft without masking (p_i=0) / LoRA step time",
                           "harness / bare PyTorch step time", "bf16 / fp32 step time",
                           "harness eval / raw batched forward throughput"}
    assert all(r > 0 for r in ratios.values())


def test_make_pair_of_a_hub_pair_offline_names_the_missing_model(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(app, ["make-pair", "mistral-7b-openorca"])
    assert result.exit_code == 2 and "mistralai/Mistral-7B-v0.1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    shipped = runner.invoke(app, ["make-pair", "qwen2-qwen2.5", "--ship"])
    assert shipped.exit_code == 2 and "--ship is for tiny pairs" in shipped.stderr
