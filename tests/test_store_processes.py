"""Real `bench run` processes on one store: two at once train each module once; SIGTERM and SIGINT stop cleanly."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.core.store import CACHE_ENV, cache_dir, verify_entry

ROOT = Path(__file__).resolve().parents[1]
# finetune_old and trans_peft train one module per task, direct_transfer reuses finetune_old's: 4 modules,
# 8 evaluations (6 cells, plus trans_peft's module on the old base: its source score; direct_transfer's source is
# finetune_old's own evaluation), and each task's data for the old and the new base.
# Each run builds in its own process (--workers 1), so that builds.log's pids name the two runs (worker
# processes sharing one store: tests/test_workers.py).
GRID = ["--pair", "micro", "--set", "steps=4", "--set", "batch_size=4", "--workers", "1",
        "--methods", "finetune_old,direct_transfer,trans_peft", "--tasks", "tiny_knowledge,tiny_arith"]
BUILT = {"modules": 4, "evals": 8, "data": 4}


def fresh_cache(path: Path, micro_pair) -> Path:
    """An empty store holding only the (already built) micro pair's checkpoints."""
    shutil.copytree(cache_dir() / "pairs", path / "pairs")
    return path


def bench_run(cache: Path, args: list[str], cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, **{CACHE_ENV: str(cache)}, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", BENCH_PROGRESS="0")
    return subprocess.Popen([sys.executable, "-m", "bench", "run", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            # Ctrl-C's default even under a shell that started us with SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def entries(cache: Path, kind: str) -> list[Path]:
    folder = cache / kind
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def temporaries(cache: Path) -> list[Path]:
    """Builds in progress, killed, or damaged entries moved aside: hidden directories under a kind."""
    return [p for kind in ("pairs", "modules", "evals", "data") if (cache / kind).is_dir()
            for p in (cache / kind).iterdir() if p.is_dir() and p.name.startswith(".")]


def test_two_runs_at_once_share_one_store_and_results_dir(micro_pair, tmp_path):
    cache = fresh_cache(tmp_path / "cache", micro_pair)
    # No --out: both take the default results/micro-<UTC second>.json in one directory (the later one -2
    # when they finish within the same second).
    runs = [bench_run(cache, GRID, tmp_path) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    assert [err for _, err in outputs] == ["", ""]

    log = [json.loads(line) for line in (cache / "builds.log").read_text().splitlines()]  # every line whole
    for kind, n in BUILT.items():
        built = [e["key"] for e in log if e["kind"] == kind]
        assert len(built) == len(set(built)) == n, (kind, built)  # each built exactly once, by one of the two
        assert sorted(built) == [p.name for p in entries(cache, kind)]
        assert all(verify_entry(p) is None for p in entries(cache, kind))
    assert {e["pid"] for e in log} <= {run.pid for run in runs}
    assert temporaries(cache) == []

    results = sorted((tmp_path / "results").glob("micro-*[0-9].json"))
    assert len(results) == 2 and all(p.with_suffix(".costs.json").is_file() for p in results)
    assert [p.name for p in results] == sorted(Path(out.strip().splitlines()[-1].removeprefix("results: ")).name
                                               for out, _ in outputs)
    first, second = (json.loads(p.read_text()) for p in results)
    assert len(first["cells"]) == 6 and first == second  # same scores (and samples) from the shared modules


def test_sigterm_or_sigint_mid_training_leaves_nothing_partial_and_says_how_to_resume(micro_pair, tmp_path):
    runs = {}
    for sig in (signal.SIGTERM, signal.SIGINT):  # side by side, each on its own store
        cache, out = fresh_cache(tmp_path / sig.name / "cache", micro_pair), tmp_path / sig.name / "run.json"
        # Enough steps that training runs for a minute: the signal lands inside it.
        runs[sig] = cache, out, bench_run(cache, ["--pair", "micro", "--set", "steps=5000", "--methods",
                                                  "finetune_old", "--tasks", "tiny_knowledge", "--out", str(out)], ROOT)
    deadline = time.monotonic() + 120
    for cache, _, run in runs.values():
        while not [p for p in temporaries(cache) if p.parent.name == "modules"] and run.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    time.sleep(1.5)  # past loading the base: in the training loop
    for sig, (_, _, run) in runs.items():
        assert run.poll() is None, run.communicate()
        os.kill(run.pid, sig)
    for sig, (cache, out, run) in runs.items():
        _, err = run.communicate(timeout=60)
        assert run.returncode == 130, (sig, err)
        assert err == "interrupted: finished cells are cached; rerun to resume\n", (sig, err)
        assert temporaries(cache) == [] and entries(cache, "modules") == []  # the half-trained module is gone
        assert all(verify_entry(p) is None for kind in ("pairs", "data") for p in entries(cache, kind))
        assert not out.exists() and not out.with_suffix(".costs.json").exists()
