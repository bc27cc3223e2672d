"""`--nproc N`: data parallel training through accelerate (gloo on CPU, the CPU twin of NCCL on GPUs).

One 2-process run trains a Trans-PEFT module (FFN dropping on, so every rank must drop the same sub-layers at a
given step); its module must match the one-process module trained on the same global batches, and the store
must have been written once, by rank 0.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from bench.cli import app
from bench.core.store import CACHE_ENV, cache_dir
from bench.engine.protocol import build_method, train_module
from bench.models.distributed import available_devices
from tasks.base import TASKS

ROOT = Path(__file__).resolve().parents[1]
# Dropout off and masks off: those draw per rank (as they should); dropping is drawn by step, the same everywhere.
RECIPE = {"steps": 4, "batch_size": 4, "dropout": 0.0, "p_i": 0.0, "p_c": 0.3}


def train_in_two_processes(micro_pair, tmp_path, env_extra: dict, tolerance: float):
    task = TASKS.get("tiny_knowledge")()
    single, _ = train_module(build_method("trans_peft", RECIPE, micro_pair, task), micro_pair, task, 0, RECIPE)

    cache = tmp_path / "cache"
    shutil.copytree(cache_dir() / "pairs", cache / "pairs")  # the micro pair's bases, not its modules
    env = os.environ | {CACHE_ENV: str(cache), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"} | env_extra
    settings = [arg for key, value in RECIPE.items() for arg in ("--set", f"{key}={value}")]
    out = tmp_path / "results" / "run.json"
    run = subprocess.run([sys.executable, "-m", "bench", "run", "--pair", "micro", "--methods", "trans_peft",
                          "--tasks", "tiny_knowledge", *settings, "--nproc", "2", "--precision", "fp32",
                          "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("results: ") == 1  # one leaderboard: rank 0's

    (parallel,) = [p for p in (cache / "modules").iterdir() if not p.name.startswith(".")]
    assert parallel.name != single.name  # the key records the process count: no reuse either way
    ours, theirs = (load_file(p / "adapter_model.safetensors") for p in (single, parallel))
    assert ours.keys() == theirs.keys()
    assert max((ours[k] - theirs[k].to(ours[k].device)).abs().max().item() for k in ours) < tolerance

    builds = [json.loads(line) for line in (cache / "builds.log").read_text().splitlines()]
    written = [(b["kind"], b["key"]) for b in builds if b["kind"] != "pairs"]
    assert len(written) == len(set(written)) and {kind for kind, _ in written} >= {"modules", "evals"}
    assert len({b["pid"] for b in builds if b["kind"] != "pairs"}) == 1  # one process wrote them all
    assert sorted(p.name for p in out.parent.glob("*.json")) == ["run.costs.json", "run.json"]


def test_two_gloo_processes_train_the_one_process_module_and_store_it_once(micro_pair, tmp_path):
    # CUDA hidden from the two processes: gloo over CPU cores, on any machine.
    train_in_two_processes(micro_pair, tmp_path, {"CUDA_VISIBLE_DEVICES": ""}, tolerance=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
def test_two_gpus_train_the_one_gpu_module(micro_pair, tmp_path):
    """NCCL: the same check on two GPUs (fp32; float order differs more across GPU kernels than on CPU)."""
    train_in_two_processes(micro_pair, tmp_path, {}, tolerance=1e-3)


def test_more_processes_than_devices_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    out = tmp_path / "results" / "run.json"
    result = CliRunner().invoke(app, ["run", "--pair", "micro", "--nproc", str(available_devices() + 1),
                                      "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --nproc") and "CPU cores" in lines[0], result.stderr
    assert not (tmp_path / "cache").exists() and not out.parent.exists()


@pytest.mark.parametrize("args,message", [
    (["--nproc", "0"], "--nproc must be at least 1"),
    (["--nproc", "2", "--executor", "ray"], "do not combine"),
])
def test_bad_process_options(args, message):
    result = CliRunner().invoke(app, ["run", "--pair", "micro", *args])
    assert result.exit_code == 2 and message in result.stderr, result.stderr
