"""`--workers`: the grid's cells in processes of this machine (the default on a CPU), and how they stop."""

import os
import shutil
import time

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.core.store import CACHE_ENV, Store, cache_dir
from bench.engine.executors import LocalExecutor, auto_workers
from bench.engine.plan import training_steps
from bench.engine.protocol import run_grid
from bench.models.memory import worker_peak_bytes
from bench.pairs import PAIRS
from tasks.base import TASKS

FAST = {"steps": 4, "batch_size": 4}
METHODS = ["finetune_old", "direct_transfer", "trans_peft"]


def _scores(cells):
    return [(c.method, c.task, c.seed, c.module_key, c.score, c.source_score, c.samples) for c in cells]


def test_two_worker_processes_give_the_cells_of_one(micro_pair, tmp_path, monkeypatch):
    tasks = [TASKS.get("tiny_knowledge")(), TASKS.get("tiny_code")()]
    alone = run_grid(METHODS, micro_pair, tasks, [0, 1], FAST, executor=LocalExecutor())

    cache = tmp_path / "cache"  # the workers train their own modules: nothing of the first run is reused
    shutil.copytree(cache_dir() / "pairs", cache / "pairs")
    monkeypatch.setenv(CACHE_ENV, str(cache))  # spawned workers inherit the environment
    with LocalExecutor(workers=2) as executor:
        together = run_grid(METHODS, micro_pair, tasks, [0, 1], FAST, executor=executor)
    assert _scores(together) == _scores(alone)  # same cells, in the grid's order
    # finetune_old's module trained once per (task, seed), for direct_transfer too; trans_peft's of its own
    assert len(Store().keys("modules")) == 2 * 2 * 2


def _record_pid_and_wait(path):
    path.write_text(str(os.getpid()))
    time.sleep(600)


def _fail_once_started(path):
    while not path.exists():  # the other worker is inside its job
        time.sleep(0.1)
    raise RuntimeError("a failing cell")


def test_a_stopped_grid_ends_its_workers_instead_of_waiting_for_them(tmp_path):
    pid_file = tmp_path / "pid"
    with pytest.raises(RuntimeError, match="a failing cell"):
        LocalExecutor(workers=2).map(_dispatch, [(_record_pid_and_wait, pid_file), (_fail_once_started, pid_file)],
                                     "grid")
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # terminated and reaped, not left running its 10-minute job
        os.kill(pid, 0)


def _dispatch(fn, path):
    return fn(path)


def test_auto_is_one_process_per_core_on_cpu_for_tiny_pairs_and_one_elsewhere():
    assert auto_workers(True, cores=2) == (2, 1)
    assert auto_workers(True, cores=32) == (8, 4)  # each process holds its own libraries: at most 8
    assert auto_workers(False, cores=32) == (1, 0)
    # A grid smaller than the cost of starting the processes runs in this one
    assert auto_workers(True, cores=2, training_steps=999) == (1, 0)
    assert auto_workers(True, cores=2, training_steps=1000) == (2, 1)


def test_auto_for_a_real_model_on_cpu_takes_as_many_processes_as_the_ram_holds(monkeypatch):
    import torch

    import bench.cli as cli
    import bench.engine.executors as executors

    monkeypatch.setattr(cli, "device", lambda: torch.device("cpu"))
    monkeypatch.setattr(executors.os, "cpu_count", lambda: 2)
    smollm2 = PAIRS.get("smollm2-135m-cpt")
    tasks = [TASKS.get(name)() for name in smollm2.suite]
    methods = ["finetune_old", "finetune_new", "direct_transfer", "portllm", "trans_peft"]
    worker = worker_peak_bytes(smollm2.params_b)
    assert 5e9 < worker < 6e9  # a 135M model peaked at 2.3 GB a process in fp32, 4.7-5.3 GB in bf16 on 2 threads

    monkeypatch.setattr(executors, "available_ram_bytes", lambda: 24 * 2**30)
    assert cli._worker_counts(None, smollm2, methods, tasks, [0, 1, 2]) == (2, 1)
    monkeypatch.setattr(executors, "available_ram_bytes", lambda: 8 * 2**30)  # room for one: one process, all threads
    assert cli._worker_counts(None, smollm2, methods, tasks, [0, 1, 2]) == (1, 0)
    # a 7B model on a CPU, or a model of unknown size (an ad-hoc pair), runs in this process
    assert executors.auto_workers(True, cores=2, worker_bytes=worker_peak_bytes(7.6),
                                  ram_bytes=128 * 2**30) == (1, 0)
    assert worker_peak_bytes(0.0) is None
    # one training (one task, one seed, finetune_old: 100 steps) is too small to pay for starting processes
    monkeypatch.setattr(executors, "available_ram_bytes", lambda: 24 * 2**30)
    assert cli._worker_counts(None, smollm2, ["finetune_old"], tasks[:1], [0]) == (1, 0)


def test_the_default_grid_counts_each_distinct_training_once():
    pair, tasks = PAIRS.get("tiny"), [TASKS.get(name)() for name in ("tiny_arith", "tiny_knowledge", "tiny_code")]
    methods = ["finetune_old", "finetune_new", "direct_transfer", "portllm", "trans_peft"]
    # four trained methods (direct_transfer reuses finetune_old's module) x the tasks' 1000 + 400 + 500 steps
    assert training_steps(methods, pair, tasks, [0, 1]) == 2 * 4 * 1900
    assert training_steps(methods, pair, tasks, [0], {"steps": 4}) == 4 * 3 * 4


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be a positive number or auto, not '0'"),
    (["--workers", "two"], "--workers must be a positive number or auto, not 'two'"),
    (["--workers", "2", "--executor", "ray"], "--workers is for the local executor"),
])
def test_bad_workers_is_one_line_and_exit_2(args, message, tmp_path):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["run", "--pair", "micro", *args, "--out", str(out)])
    assert result.exit_code == 2 and message in result.stderr and not out.exists()
