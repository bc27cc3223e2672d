"""`--executor ray`: each distinct training and each evaluation as a Ray task, on a local Ray (num_cpus=2).

One Ray start for the whole module (the costly part: a few seconds, plus each worker's imports).
"""

import os
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.core.store import CACHE_ENV, Store, cache_dir
from bench.engine.executors import LocalExecutor, RayExecutor
from bench.engine.protocol import run_grid
from tasks.base import TASKS

ROOT = Path(__file__).resolve().parents[1]
FAST = {"steps": 4, "batch_size": 4}
METHODS = ["finetune_old", "direct_transfer", "trans_peft"]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    # Workers import this checkout (not an installed copy) and this test file (kill_once below).
    paths = [str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        if previous is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = previous


def _scores(cells):
    return [(c.method, c.task, c.seed, c.module_key, c.score, c.source_score, c.samples) for c in cells]


def test_ray_grid_scores_match_the_local_executor(ray_cluster, micro_pair, tmp_path, monkeypatch):
    tasks = [TASKS.get("tiny_knowledge")()]
    local = run_grid(METHODS, micro_pair, tasks, [0], FAST, executor=LocalExecutor())

    cache = tmp_path / "cache"  # the Ray run trains its own modules: nothing of the local run is reused
    shutil.copytree(cache_dir() / "pairs", cache / "pairs")
    monkeypatch.setenv(CACHE_ENV, str(cache))  # forwarded to the workers with each task
    with RayExecutor() as executor:
        remote = run_grid(METHODS, micro_pair, tasks, [0], FAST, executor=executor)
    assert _scores(remote) == _scores(local)
    assert len(Store().keys("modules")) == 2  # finetune_old's module trained once, for direct_transfer too
    # finetune_old on old (also direct_transfer's source), direct_transfer and trans_peft on new, trans_peft's
    # module on old (its source score): 4
    assert len(Store().keys("evals")) == 4
    assert ray_cluster.is_initialized()  # the executor leaves a Ray it did not start running


def kill_once(marker: str) -> int:
    """Dies the first time (as a worker killed mid-task), returns the second."""
    if not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return os.getpid()


def test_a_killed_worker_task_is_retried(ray_cluster, tmp_path):
    marker = str(tmp_path / "killed-once")
    with RayExecutor() as executor:
        (pid,) = executor.map(kill_once, [(marker,)], "retry")
    assert os.path.exists(marker) and pid != os.getpid()


def test_executor_ray_without_ray_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["run", "--pair", "micro", "--executor", "ray", "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "peft-transfer-bench[scale]" in lines[0], result.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "r.json").exists()


def test_ray_address_needs_the_ray_executor():
    result = CliRunner().invoke(app, ["run", "--pair", "micro", "--ray-address", "auto"])
    assert result.exit_code == 2 and "--ray-address is for --executor ray" in result.stderr
