"""The artifact store under concurrency and after crashes: one build per key, no lost results."""

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.core.results import write_results
from bench.core.store import CACHE_ENV, cached_dir
from bench.engine.protocol import Cell

ROOT = Path(__file__).resolve().parents[1]
BUILDER = """
import sys, time
from pathlib import Path
from bench.core.store import cached_dir

def build(out):
    with open(sys.argv[1], "a") as log:
        log.write("built\\n")
    time.sleep(1.0)  # a long training: the other run must wait, not start its own
    (out / "module.json").write_text("{}")

print(cached_dir("modules", "same-key", build))
"""


def test_two_runs_on_one_cache_build_a_module_once(tmp_path):
    env = dict(os.environ, **{CACHE_ENV: str(tmp_path / "cache")}, PYTHONPATH=str(ROOT))
    log = tmp_path / "builds.log"
    runs = [subprocess.Popen([sys.executable, "-c", BUILDER, str(log)], env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    paths = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert all(run.returncode == 0 for run in runs)
    assert log.read_text() == "built\n"
    assert paths == {str(tmp_path / "cache" / "modules" / "same-key")}


def test_a_killed_build_leaves_nothing_visible_and_is_cleaned_up(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    leftover = tmp_path / "modules" / ".key-x1y2z3"  # what a kill -9 mid-build leaves
    leftover.mkdir(parents=True)
    (leftover / "adapter_model.safetensors").write_bytes(b"half")
    path = cached_dir("modules", "key", lambda out: (out / "module.json").write_text("{}"))
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "module.json"]
    assert not leftover.exists()


def cell(method: str) -> Cell:
    return Cell(method=method, task="t", seed=0, score=1.0, metric="acc", n=1, trained_on="old", evaluated_on="old",
                base_versions={}, module_key="k", module_from=method, config_hash="h", train_wall_s=1.0,
                eval_wall_s=1.0, peak_mem_mb=1.0, memory_kind="rss", device="cpu", trainable_params=1,
                train_tokens=1)


class Pair:
    name = "p"


def test_two_runs_choosing_the_same_default_name_both_keep_their_rows(tmp_path):
    out = tmp_path / "results" / "p-20250101-000000.json"
    first = write_results([cell("a")], Pair(), out, pick_free_name=True)
    second = write_results([cell("b")], Pair(), out, pick_free_name=True)
    assert first == out and second == out.with_name("p-20250101-000000-2.json")
    assert [c["method"] for c in json.loads(first.read_text())["cells"]] == ["a"]
    assert [c["method"] for c in json.loads(second.read_text())["cells"]] == ["b"]
    assert json.loads(second.with_suffix(".costs.json").read_text())["costs"][0]["method"] == "b"
