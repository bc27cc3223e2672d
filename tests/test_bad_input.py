"""The bad-input matrix: every case is one line on stderr, exit 2, and nothing already computed changes.

Catalogue: 142 cases assert exit 2 and exactly one "error:" line.
  - this file, 118: test_bad_options (25: lists, pairs, recipe values, seeds, limit), test_bad_config_files (8),
    test_bad_input_of_every_command (64: click's own usage errors, duplicate and out-of-range seeds, methods and
    tasks, non-finite or wrong-typed recipe values, targets naming no module, a --set for a method not in the
    run, config keys that are not text, method sections that are not mappings, YAML and JSON nested past the
    recursion limit; report and compare of missing, garbage, wrong-typed, other-pair, other-task, other-seed
    results and costs files, a report over its own input; perf, sweep, sweep-update, chain, diagnose and
    findings options, probe files and damaged summaries), and 21 more below (other commands'
    misspellings, results that cannot be written, disk full, a damaged, pickled or foreign cache, bases that
    cannot or must not be loaded);
  - tests/test_cli.py, 13: the first misspellings and out-of-range options, the installed command, make-pair
    offline;
  - tests/test_report.py, 3, and tests/test_compare.py, 4: report options and malformed results files;
  - tests/test_sandbox.py, 4: run, sweep-update, sweep and chain refusing code tasks without isolation unless
    --allow-unsafe-code.
A further 21 assert exit 2 and the message without counting lines (tests/test_science.py 11, test_compare.py 4,
test_cli.py 3, test_report.py, test_pairs.py and test_store_integrity.py 1 each). tests/test_fuzz.py then
generates about 2,000 more per run (hypothesis, derandomized) and holds every one to the same rule.
"""

import errno
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import bench.cli as cli
import bench.core.store as store
from bench.cli import app
from bench.core.store import CACHE_ENV, cache_dir
from bench.pairs import PAIRS, Pair

FAST = ["--pair", "micro", "--set", "steps=4", "--set", "batch_size=4", "--tasks", "tiny_knowledge"]
runner = CliRunner()


def snapshot(*folders: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def populated_cache(micro_pair, tmp_path_factory) -> Path:
    """A cache holding the micro pair, finetune_old's tiny_knowledge module and its two evaluations."""
    from bench.cli import quiet_libraries

    quiet_libraries()  # as `bench` does: no library progress bars on stderr
    cache = tmp_path_factory.mktemp("populated") / "cache"
    shutil.copytree(cache_dir() / "pairs", cache / "pairs")
    old = os.environ[CACHE_ENV]
    os.environ[CACHE_ENV] = str(cache)
    try:
        result = runner.invoke(app, ["run", *FAST, "--methods", "finetune_old,direct_transfer",
                                     "--out", str(cache.parent / "r.json")])
    finally:
        os.environ[CACHE_ENV] = old
    assert result.exit_code == 0, result.output
    return cache


@pytest.fixture
def world(populated_cache, tmp_path, monkeypatch):
    """A private copy of the populated cache and a results folder with a finished run in it."""
    cache = tmp_path / "cache"
    shutil.copytree(populated_cache, cache)
    monkeypatch.setenv(CACHE_ENV, str(cache))
    results = tmp_path / "results"
    results.mkdir()
    (results / "finished.json").write_text('{"cells": ["finished"]}\n')
    return cache, results


def the_module(cache: Path) -> Path:
    (module,) = [p for p in (cache / "modules").iterdir() if not p.name.startswith(".")]
    return module


def assert_one_line_error(args, message, *keep: Path):
    before = snapshot(*keep)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0], lines[0]
    after = snapshot(*keep)
    assert {k: after.get(k) for k in before} == before  # nothing previously computed was changed or removed
    return lines[0]


# --- Options and config files: rejected before anything runs. -----------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--methods", ""], "no method given"),
    (["--methods", "finetune_old,"], None),  # a trailing comma is fine: checked below as the valid control
    (["--tasks", ","], "no task given"),
    (["--methods", "finetune_old,trans_pft"], "did you mean 'trans_peft'"),
    (["--pair", "tiny_qwen2"], "did you mean 'tiny-qwen2'"),
    (["--pair", "qwen2-7b"], "unknown pair 'qwen2-7b'"),
    (["--set", "trans_peft.p_c=1.5"], "p_c must be in [0, 1), got 1.5"),
    (["--set", "trans_peft.p_c=-0.01"], "p_c must be in [0, 1), got -0.01"),
    (["--set", "trans_peft.p_i=1"], "p_i must be in [0, 1), got 1.0"),
    (["--set", "trans_peft.p_i=7"], "p_i must be in [0, 1), got 7.0"),
    (["--set", "rank=-4"], "rank must be a positive integer, got -4"),
    (["--set", "portllm.rank=0"], "rank must be a positive integer, got 0"),
    (["--set", "rank=2.5"], "option rank takes a int, got 2.5"),
    (["--set", "rank=eight"], "option rank takes a int, got 'eight'"),
    (["--set", "lr=0"], "lr, steps and batch_size must be positive"),
    (["--set", "steps=-1"], "lr, steps and batch_size must be positive"),
    (["--set", "batch_size=0"], "lr, steps and batch_size must be positive"),
    (["--set", "dropout=1.0"], "dropout must be in [0, 1)"),
    (["--set", "schedule=cosine_to_zero"], "schedule must be a transformers get_scheduler name (linear, cosine, "),
    (["--set", "warmup_ratio=1.5"], "warm-up must be steps >= 0 or a ratio in [0, 1)"),
    (["--set", "finetune_old.warmup_steps=10", "--set", "finetune_old.schedule=constant"],
     "schedule constant has no warm-up"),
    (["--set", "max_length=1"], "max_length at least 2 tokens"),
    (["--set", "trans_peft.p_c=abc"], "option p_c takes a float, got 'abc'"),
    (["--set", "trans_pef.p_c=0.2"], "did you mean 'trans_peft'"),
    (["--set", "portllm.p_c=0.2"], "no selected method has an option 'p_c'"),
    (["--set", "=3"], "KEY=VALUE"),
    (["--seeds", ""], "--seeds is empty"),
    (["--seeds", "0,one"], "comma-separated integers"),
    (["--limit", "-3"], "--limit must be positive"),
])
def test_bad_options(args, message, world, trained_count):
    cache, results = world
    if message is None:  # the control: the same command line with nothing wrong succeeds
        result = runner.invoke(app, ["run", *FAST, *args, "--out", str(results / "ok.json")])
        assert result.exit_code == 0, result.output
        return
    assert_one_line_error(["run", *FAST, *args, "--out", str(results / "new.json")], message, cache, results)
    assert trained_count() == 0 and not (results / "new.json").exists()


@pytest.mark.parametrize("text,message", [
    (None, "cannot read config"),                       # the file does not exist
    ("rank: [1, 2\n", "cannot read config"),            # malformed YAML
    ("- rank\n- 8\n", "must be a mapping of options"),  # a list, not a mapping
    ("trans_peft:\n  p_c: 1.2\n", "p_c must be in [0, 1), got 1.2"),
    ("rank: 0\n", "rank must be a positive integer"),
    ("warmup: 10\n", "no selected method has an option 'warmup'"),
    ("tran_peft:\n  p_c: 0.2\n", "did you mean 'trans_peft'"),
    (b"\xff\xfe\x00rank", "cannot read config"),        # not text at all
])
def test_bad_config_files(text, message, world, tmp_path):
    cache, results = world
    config = tmp_path / "recipe.yaml"
    if isinstance(text, bytes):
        config.write_bytes(text)
    elif text is not None:
        config.write_text(text)
    assert_one_line_error(["run", *FAST, "--config", str(config), "--out", str(results / "new.json")],
                          message, cache, results)


def test_other_commands_name_the_closest_pair(world):
    cache, results = world
    assert_one_line_error(["make-pair", "tiny-mld"], "did you mean 'tiny-mild'", cache, results)
    assert_one_line_error(["perf", "--pair", "mikro"], "did you mean 'micro'", cache, results)


# --- Results that cannot be written: caught before training, or at the end with the cells kept. -------------

def test_results_dir_that_cannot_exist_fails_before_any_training(world, trained_count):
    cache, results = world
    out = results / "finished.json" / "new.json"  # its "directory" is a file
    assert_one_line_error(["run", *FAST, "--methods", "trans_peft", "--out", str(out)], "is not writable",
                          cache, results)
    assert trained_count() == 0


@pytest.mark.parametrize("failing", ["os.replace", "json.dump"])
def test_disk_full_while_writing_results_keeps_everything_else(failing, world, monkeypatch):
    cache, results = world

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if failing == "os.replace":
        real_replace = os.replace
        monkeypatch.setattr(store.os, "replace", lambda a, b: no_space() if Path(b).suffix == ".json" else
                            real_replace(a, b))
    else:
        monkeypatch.setattr(store.json, "dump", no_space)
    line = assert_one_line_error(["run", *FAST, "--methods", "finetune_old", "--out", str(results / "new.json")],
                                 "No space left on device", cache, results)
    assert "finished cells are cached" in line
    assert sorted(p.name for p in results.iterdir()) == [".bench-results.lock", "finished.json"]  # no temp left


def test_disk_full_while_storing_a_module_leaves_no_partial_artifact(world, monkeypatch):
    cache, results = world
    before = {p for p in (cache / "modules").iterdir() if not p.name.endswith(".lock")}

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "replace", no_space)
    assert_one_line_error(["run", *FAST, "--methods", "trans_peft", "--out", str(results / "new.json")],
                          "No space left on device", cache, results)
    assert {p for p in (cache / "modules").iterdir() if not p.name.endswith(".lock")} == before


def test_results_taken_by_a_concurrent_run_are_not_overwritten(world, monkeypatch):
    cache, results = world
    out = results / "new.json"
    real_run_grid = cli.run_grid

    def another_run_finishes_first(*args, **kwargs):
        cells = real_run_grid(*args, **kwargs)
        out.write_text('{"cells": ["theirs"]}\n')
        return cells

    monkeypatch.setattr(cli, "run_grid", another_run_finishes_first)
    assert_one_line_error(["run", *FAST, "--methods", "finetune_old", "--out", str(out)], "refusing to overwrite",
                          cache, results)
    assert out.read_text() == '{"cells": ["theirs"]}\n'


# --- A damaged or foreign cache: named, never loaded blindly, never silently replaced. ----------------------
# (An entry's manifest catches damage first and rebuilds it: tests/test_store_integrity.py. These damage entries
# from before manifests, which the store trusts, so the readers' own checks are what must catch it.)

def from_before_manifests(*entries: Path) -> None:
    for entry in entries:
        (entry / "manifest.json").unlink()


def direct_transfer(results: Path) -> list[str]:
    """direct_transfer lands finetune_old's cached module on the new base (on 5 samples: not a cached evaluation)."""
    return ["run", *FAST, "--methods", "direct_transfer", "--limit", "5", "--out", str(results / "new.json")]


@pytest.mark.parametrize("damage,message", [
    (lambda f: f.write_bytes(b"\x00garbage, not a safetensors header" * 4), "adapter_model.safetensors is damaged"),
    (lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]), "adapter_model.safetensors is damaged"),
    (lambda f: f.write_bytes(b""), "adapter_model.safetensors is damaged"),
    (lambda f: f.unlink(), "has no adapter_model.safetensors"),
])
def test_damaged_module_file_is_named_and_not_used(damage, message, world):
    cache, results = world
    module = the_module(cache)
    from_before_manifests(module)
    damage(module / "adapter_model.safetensors")
    line = assert_one_line_error(direct_transfer(results), message, cache, results)
    assert f"delete {module}" in line


def test_damaged_module_metadata_is_named(world):
    cache, results = world
    from_before_manifests(the_module(cache))
    (the_module(cache) / "module.json").write_text('{"method": "finetune_')
    assert_one_line_error(direct_transfer(results), "module.json is unreadable", cache, results)


def test_damaged_cached_evaluation_is_named(world):
    cache, results = world
    for evaluation in (cache / "evals").glob("[!.]*"):
        from_before_manifests(evaluation)
        (evaluation / "eval.json").write_text("{")
    line = assert_one_line_error(["run", *FAST, "--methods", "finetune_old", "--out", str(results / "new.json")],
                                 "eval.json is unreadable", cache, results)
    assert f"delete {cache / 'evals'}/" in line


def test_pickled_module_is_refused_without_unpickling(world, monkeypatch):
    cache, results = world
    module = the_module(cache)
    from_before_manifests(module)
    from safetensors.torch import load_file

    torch.save(load_file(module / "adapter_model.safetensors"), module / "adapter_model.bin")
    (module / "adapter_model.safetensors").unlink()
    loads = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a))
    assert_one_line_error(direct_transfer(results), "found adapter_model.bin: pickle files are never loaded",
                          cache, results)
    assert loads == []


def foreign_module(into: Path, base: str) -> None:
    """Replace a cached module by one trained for a Qwen2 base of another size (as a stale or copied cache could)."""
    from conftest import tiny_causal_lm
    from peft import LoraConfig, get_peft_model

    meta = json.loads((into / "module.json").read_text())
    shutil.rmtree(into)
    model = get_peft_model(tiny_causal_lm("qwen2", hidden_size=48, num_attention_heads=4),
                           LoraConfig(r=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(into, safe_serialization=True)
    (into / "module.json").write_text(json.dumps(meta | {"base": base}))


def test_module_trained_for_another_base_is_refused(world):
    cache, results = world
    module = the_module(cache)
    foreign_module(module, base="qwen2-48")
    assert_one_line_error(direct_transfer(results), "was trained on base 'qwen2-48'", cache, results)


def test_module_of_another_architecture_does_not_land(world):
    cache, results = world
    module = the_module(cache)
    foreign_module(module, base=json.loads((module / "module.json").read_text())["base"])  # metadata lies
    assert_one_line_error(direct_transfer(results), f"module {module} does not fit the new base", cache, results)


def test_missing_task_data_is_named(world):
    cache, results = world
    for data in (cache / "data").glob("tiny_knowledge-v1-*"):
        from_before_manifests(data)
        (data / "test.jsonl").unlink()
    assert_one_line_error(direct_transfer(results), "test.jsonl is missing", cache, results)


# --- Pairs whose bases cannot (or must not) be loaded. ------------------------------------------------------

@dataclass(frozen=True)
class LocalPair(Pair):
    """A pair of checkpoint folders (or hub ids) with the micro world's tasks."""

    name: str
    source: Pair  # the pair whose world the tiny tasks read (None: no world)
    old: str
    new: str
    trust_remote_code: bool = False
    description: str = "test pair"

    def version_count(self):
        return 2

    def base_dir(self, version):
        return (self.old, self.new)[self.index(version)]

    def version_id(self, version):
        return f"{self.name}-{version}"

    def step(self, k):
        return self

    def world(self):
        return self.source.world() if self.source else None


@pytest.fixture
def local_pair(micro_pair, monkeypatch):
    def register(old, new=None, **fields):
        pair = LocalPair("local", micro_pair, str(old), str(new or old), **fields)
        monkeypatch.setitem(PAIRS._items, "local", pair)
        return ["run", "--pair", "local", "--set", "steps=4", "--set", "batch_size=4", "--tasks", "tiny_knowledge",
                "--methods", "finetune_old"]

    return register


def test_a_base_missing_offline_is_one_line(world, local_pair, monkeypatch):
    cache, results = world
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = local_pair("Qwen/Qwen2-7B-not-downloaded")
    assert_one_line_error([*args, "--out", str(results / "new.json")], "cannot load the old base of pair 'local'",
                          cache, results)


def test_a_pickled_base_is_refused_without_unpickling(world, local_pair, micro_pair, tmp_path, monkeypatch):
    cache, results = world
    base = tmp_path / "pickled-base"
    shutil.copytree(micro_pair.base_dir("old"), base)
    from safetensors.torch import load_file

    torch.save(load_file(base / "model.safetensors"), base / "pytorch_model.bin")
    (base / "model.safetensors").unlink()
    loads = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a))
    assert_one_line_error([*local_pair(base), "--out", str(results / "new.json")], "cannot load the old base",
                          cache, results)
    assert loads == []


def test_a_base_needing_undeclared_remote_code_is_not_run(world, local_pair, micro_pair, tmp_path):
    cache, results = world
    base = tmp_path / "remote-code-base"
    shutil.copytree(micro_pair.base_dir("old"), base)
    config = json.loads((base / "config.json").read_text())
    config["model_type"] = "evil_arch"  # not a transformers architecture: only its own code could load it
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (base / "config.json").write_text(json.dumps(config))
    ran = tmp_path / "remote-code-ran"
    (base / "evil.py").write_text(f"open({str(ran)!r}, 'w').write('ran')\n")
    assert_one_line_error([*local_pair(base), "--out", str(results / "new.json")], "cannot load the old base",
                          cache, results)
    assert not ran.exists()


def test_tiny_tasks_on_a_pair_without_a_world_is_one_line(world, local_pair, micro_pair, monkeypatch):
    cache, results = world
    args = local_pair(micro_pair.base_dir("old"))
    monkeypatch.setitem(PAIRS._items, "local", LocalPair("local", None, *[str(micro_pair.base_dir(v)) for v in
                                                                         ("old", "new")]))
    assert_one_line_error([*args, "--out", str(results / "new.json")], "tiny tasks need a tiny pair", cache, results)


# --- Every command: click's own usage errors, list and duplicate checks, results, summaries and outputs. -------
# Inputs live in the watched results folder, so each case also shows that reading them changes nothing.

def bad_inputs(results: Path) -> None:
    """Results files and summaries, each wrong in one way, beside the finished run in `results`."""
    from results_factory import make_cells, write_results_file

    cells = make_cells()
    write_results_file(results / "good.json", cells)
    write_results_file(results / "other-pair.json", cells, pair="tiny-severe")
    write_results_file(results / "fewer-tasks.json", [c for c in cells if c["task"] == "t_arith"])
    write_results_file(results / "other-seeds.json", [c | {"seed": c["seed"] + 10} for c in cells])
    write_results_file(results / "text-seed.json", [c | {"seed": str(c["seed"])} for c in cells])
    write_results_file(results / "text-score.json", [c | {"score": "high"} for c in cells])
    write_results_file(results / "huge-correct.json",
                       [c | {"samples": [s | {"correct": 10**400} for s in c["samples"]]} for c in cells])
    write_results_file(results / "bad-costs.json", cells).with_suffix(".costs.json").write_text('{"costs": 3}')
    write_results_file(results / "text-wall.json", cells)
    costs = json.loads((results / "text-wall.costs.json").read_text())
    costs["costs"][0]["train_wall_s"] = "an hour"
    (results / "text-wall.costs.json").write_text(json.dumps(costs))
    (results / "deep.json").write_text("[" * 5000)  # past the parser's recursion limit
    (results / "garbage.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    (results / "list.json").write_text("[1, 2]")
    (results / "empty-probes.txt").write_text("\n\n")
    summary = json.loads((Path(__file__).parent.parent / "results" / "archive" / "pair-build-3" / "science" /
                          "sweep-update-tiny-full-arith-5seeds" / "summary.json").read_text())
    for name, text in (("truncated", json.dumps(summary)[:200]), ("no-points", json.dumps(summary | {"points": 3}))):
        (results / "summaries" / name).mkdir(parents=True)
        (results / "summaries" / name / "summary.json").write_text(text)
    for name, text in (("deep", "[" * 5000), ("int-key", "1: 2\n"), ("method-value", "trans_peft: 0.2\n"),
                       ("null-key", "~: 0.1\n"), ("method-list", "portllm: [rank, 4]\n")):
        (results / f"{name}.yaml").write_text(text)


MICRO = ["--pair", "micro", "--tasks", "tiny_knowledge"]


@pytest.mark.parametrize("args,message", [
    # click's own errors, as one line like the rest (they were a boxed usage message)
    (["run", "--bogus"], "No such option: --bogus"),
    (["run", "--limit", "abc"], "Invalid value for '--limit'"),
    (["perf", "--steps"], "Option '--steps' requires an argument"),
    (["bogus"], "No such command 'bogus'"),
    (["--bogus"], "No such option: --bogus"),
    (["report"], "Missing argument 'results'"),
    (["compare", "{r}/good.json"], "Missing argument 'current'"),
    (["list", "tasks", "methods"], "unexpected extra argument"),
    (["findings", "{r}", "--alpha", "x"], "Invalid value for '--alpha'"),
    # run: lists, seeds, pairs, recipes, config files
    (["run", *MICRO, "--seeds", "-1"], "--seeds takes integers from 0 to 2**63-1"),
    (["run", *MICRO, "--seeds", "18446744073709551616"], "--seeds takes integers from 0 to 2**63-1"),
    (["run", *MICRO, "--seeds", "0,1,0"], "--seeds lists seed 0 twice"),
    (["run", *MICRO, "--methods", "trans_peft,portllm,trans_peft"], "method 'trans_peft' is given twice"),
    (["run", "--pair", "micro", "--tasks", "tiny_arith,tiny_arith"], "task 'tiny_arith' is given twice"),
    (["run", "--pair", "micro,", "--dry-run"], "a pair of model references needs at least two"),
    (["run", "--pair", "qwen2-qwen2.5", "--tasks", "tiny_arith", "--dry-run"], "tiny tasks need a tiny pair"),
    (["run", *MICRO, "--tasks", "gsm8k_metamth"], "did you mean 'gsm8k_metamath'"),
    (["run", *MICRO, "--set", "lr=nan"], "lr must be a finite number, got nan"),
    (["run", *MICRO, "--set", "lr=inf"], "lr must be a finite number, got inf"),
    (["run", *MICRO, "--set", "rank=true"], "option rank takes a int, got True"),
    (["run", *MICRO, "--set", "alpha=0"], "alpha must be a positive integer"),
    (["run", *MICRO, "--set", "targets=,"], "targets must name modules"),
    (["run", *MICRO, "--methods", "finetune_old", "--set", "targets=q_prj"], "targets 'q_prj' name no module"),
    (["run", *MICRO, "--methods", "direct_transfer", "--set", "finetune_old.targets=q_proj,v_prj"],
     "finetune_old: targets 'v_prj' name no module"),  # the module direct_transfer lands is finetune_old's
    (["run", *MICRO, "--peft", "ia3"], "peft must be one of lora, dora, adapter, got 'ia3'"),
    (["run", *MICRO, "--methods", "portllm", "--set", "trans_peft.p_c=0.2"], "trans_peft is not in this run"),
    (["run", *MICRO, "--data-dir", "{r}/no-such-mirror"], "--data-dir"),
    (["run", *MICRO, "--config", "{r}"], "cannot read config"),  # a directory
    (["run", *MICRO, "--config", "{r}/deep.yaml"], "cannot read config"),  # nested past the recursion limit
    (["run", *MICRO, "--config", "{r}/int-key.yaml"], "option and method names are text, got 1"),
    (["run", *MICRO, "--config", "{r}/null-key.yaml"], "option and method names are text, got None"),
    (["run", *MICRO, "--config", "{r}/method-value.yaml"], "trans_peft is a method; give its options as a mapping"),
    (["run", *MICRO, "--config", "{r}/method-list.yaml"], "portllm is a method; give its options as a mapping"),
    # report
    (["report", "{r}/good.json", "--format", "pdf"], "unknown format 'pdf'"),
    (["report", "{r}/good.json", "--modules", "-1"], "--modules must be a positive"),
    (["report", "{r}/good.json", "--out", "{r}/good.json"], "is one of the results being reported"),
    (["report", "{r}/good.json", "--out", "{r}/good.costs.json"], "is one of the results being reported"),
    (["report", "{r}/missing.json"], "cannot read results"),
    (["report", "{r}/deep.json"], "cannot read results"),
    (["report", "{r}/garbage.json"], "cannot read results"),
    (["report", "{r}/list.json"], "not a bench results file"),
    (["report", "{r}/text-score.json"], "cell 0: score should be a number, got 'high'"),
    (["report", "{r}/bad-costs.json"], "bad-costs.costs.json is not a bench costs file"),
    (["report", "{r}/text-wall.json"], "entry 0: train_wall_s should be a number, got 'an hour'"),
    # compare
    (["compare", "{r}/good.json", "{r}/missing.json"], "cannot read results"),
    (["compare", "{r}/good.json", "{r}/other-pair.json"], "baseline is pair 'tiny' but current is 'tiny-severe'"),
    (["compare", "{r}/good.json", "{r}/fewer-tasks.json"], "but current has t_arith: compare runs of the same grid"),
    (["compare", "{r}/good.json", "{r}/other-seeds.json"], "share no seed"),
    (["compare", "{r}/good.json", "{r}/text-seed.json"], "cell 0: seed should be an integer, got '0'"),
    (["compare", "{r}/huge-correct.json", "{r}/good.json"], "without an id and a numeric 'correct'"),
    (["compare", "{r}/good.json", "{r}/good.json", "--min-delta", "-1"], "--min-delta must be >= 0"),
    (["compare", "{r}/good.json", "{r}/good.json", "--alpha", "0"], "--alpha must be in (0, 1)"),
    # perf, sweeps, chains, diagnose, findings
    (["perf", "--pair", "micro", "--steps", "0"], "--steps must be a positive number"),
    (["sweep-update", "--pair", "micro", "--limit", "0"], "--limit must be positive"),
    (["sweep-update", "--pair", "micro", "--seeds", "2,2"], "--seeds lists seed 2 twice"),
    (["sweep", "--pair", "micro", "--method", "cross_lora"], "cross_lora has no option 'p_c'"),  # the default grid
    (["sweep", "--pair", "micro", "--grid", "p_c=0.1", "--grid", "p_c=0.2"], "--grid names 'p_c' twice"),
    (["chain", "--pair", "micro", "--seeds", "0"], "pair 'micro' is not a chain"),
    (["chain", "--pair", "micro-chain", "--limit", "-2"], "--limit must be positive"),
    (["diagnose", "--pair", "micro", "--probes", "{r}/missing.txt"], "cannot read probe file"),
    (["diagnose", "--pair", "micro", "--probes", "{r}/empty-probes.txt"], "has no text lines"),
    (["findings", "{r}/summaries/truncated"], "cannot read"),
    (["findings", "{r}/summaries/no-points"], "is not a complete sweep-update summary"),
    (["findings", "{r}/summaries/no-points", "--tolerance", "-1"], "--tolerance non-negative"),
])
def test_bad_input_of_every_command(args, message, world, trained_count):
    cache, results = world
    bad_inputs(results)
    args = [a.replace("{r}", str(results)) for a in args]
    if args[0] in ("run", "sweep-update", "sweep", "chain", "diagnose"):
        args += ["--out", str(results / "new")] if args[0] != "run" else ["--out", str(results / "new.json")]
    assert_one_line_error(args, message, cache, results)
    assert trained_count() == 0 and not (results / "new").exists() and not (results / "new.json").exists()
    assert not (Path.cwd() / "results" / "new").exists()
