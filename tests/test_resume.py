"""Resume after kill -9 and determinism: finished cells survive any crash, and reruns are byte-identical."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.core.store import CACHE_ENV, cache_dir

ROOT = Path(__file__).resolve().parents[1]
# Two lm-eval/evalplus tasks, a trained method, a reusing one and trans_peft: 4 modules, 8 evaluations (6 cells,
# and trans_peft's module on the old base for its source score; direct_transfer's is finetune_old's own).
GRID = ["--pair", "micro", "--set", "steps=4", "--set", "batch_size=4",
        "--methods", "finetune_old,direct_transfer,trans_peft", "--tasks", "tiny_arith,tiny_code"]
N_MODULES, N_EVALS = 4, 8


def fresh_cache(path: Path, micro_pair) -> Path:
    """An empty artifact cache holding only the (already built) micro pair's checkpoints."""
    shutil.copytree(cache_dir() / "pairs", path / "pairs")
    return path


def bench_process(cache: Path, out: Path) -> subprocess.Popen:
    env = dict(os.environ, **{CACHE_ENV: str(cache)}, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", BENCH_PROGRESS="0")
    return subprocess.Popen([sys.executable, "-m", "bench", "run", *GRID, "--out", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def finished(cache: Path, kind: str) -> dict[str, int]:
    """Finished artifacts (name -> inode: a rebuilt one gets a new inode); temporaries and locks start with '.'."""
    folder = cache / kind
    return {p.name: p.stat().st_ino for p in folder.iterdir() if not p.name.startswith(".")} if folder.is_dir() else {}


def in_progress(cache: Path, kind: str) -> list[str]:
    folder = cache / kind
    return [p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith(".")] if folder.is_dir() else []


@pytest.fixture(scope="module")
def reference(micro_pair, tmp_path_factory) -> bytes:
    """An uninterrupted run in a fresh cache, in its own process."""
    tmp = tmp_path_factory.mktemp("reference")
    proc = bench_process(fresh_cache(tmp / "cache", micro_pair), tmp / "ref.json")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    return (tmp / "ref.json").read_bytes()


def test_same_seed_gives_byte_identical_results_from_a_fresh_cache(reference, micro_pair, tmp_path, monkeypatch):
    # A second fresh cache, trained and evaluated again, here in the test's own process.
    monkeypatch.setenv(CACHE_ENV, str(fresh_cache(tmp_path / "cache", micro_pair)))
    result = CliRunner().invoke(app, ["run", *GRID, "--out", str(tmp_path / "again.json")])
    assert result.exit_code == 0, result.output
    assert len(finished(tmp_path / "cache", "modules")) == N_MODULES  # really retrained, not reused
    assert (tmp_path / "again.json").read_bytes() == reference


KILL_POINTS = {
    "while the first module trains": lambda c: bool(in_progress(c, "modules")),
    "after the first module is stored": lambda c: len(finished(c, "modules")) >= 1,
    "after the first evaluation is stored": lambda c: len(finished(c, "evals")) >= 1,
    "half-way through the evaluations": lambda c: len(finished(c, "evals")) >= N_EVALS // 2,
}


def test_kill_9_at_any_point_then_rerun_gives_the_uninterrupted_results(reference, micro_pair, tmp_path):
    cache, out = fresh_cache(tmp_path / "cache", micro_pair), tmp_path / "resumed.json"
    survived = []
    for point, reached in KILL_POINTS.items():
        before = {kind: finished(cache, kind) for kind in ("modules", "evals")}
        proc = bench_process(cache, out)
        deadline = time.monotonic() + 120
        while not reached(cache) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended before the kill point {point!r}: {proc.stderr.read().decode()}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        assert not out.exists()  # a killed run never leaves a results file, whole or half
        for kind, done in before.items():  # finished work is reused, never redone or replaced
            now = finished(cache, kind)
            assert {k: now.get(k) for k in done} == done, (point, kind)
        survived.append(point)
    proc = bench_process(cache, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert survived == list(KILL_POINTS)
    assert out.read_bytes() == reference
    assert len(finished(cache, "modules")) == N_MODULES and len(finished(cache, "evals")) == N_EVALS
    assert in_progress(cache, "modules") == in_progress(cache, "evals") == []  # killed builds' leftovers removed
