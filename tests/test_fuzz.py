"""Property-based fuzzing (hypothesis) of what a user hands `bench`: command lines, --set values, --config YAML,
and results JSON for `bench report` / `bench compare` / `bench findings`.

The property, for every example: the command succeeds, or it fails with exactly one line on stderr starting
with "error:" and exit code 2 (compare may also exit 1: a regression), never a traceback; and a failure
creates, changes or removes nothing under the results directory, the inputs or the store. A success may only
add the file its --out names, never touch an input.

Nothing trains: every place where work would start (a store build: pair, module, evaluation, task data; the
perf loop; diagnose's model loading) raises WouldRun, and an example that gets there had valid input (skipped).
Settings are derandomized (the same examples on every machine and run) with no deadline; FUZZ_EXAMPLES sizes
the whole file to about half a minute on 2 CPU cores.
"""

import contextlib
import copy
import hashlib
import json
import os
import shutil
import traceback
from pathlib import Path

import pytest
import torch
import typer.main
import typer.testing
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from results_factory import make_cells, make_costs, write_results_file
from typer.testing import CliRunner

import bench.cli as cli
import bench.core.store
import bench.engine.executors
import bench.pairs.hub
import bench.pairs.tinypair
import bench.science.diagnose
import tasks.tiny
from bench.cli import app
from bench.core.errors import BenchError
from bench.core.options import parse_value
from bench.core.store import CACHE_ENV
from bench.engine.protocol import build_method, check_targets
from bench.pairs import PAIRS
from methods import METHODS
from tasks import TASKS

runner = CliRunner()
FUZZ_EXAMPLES = {"cli": 100, "set": 150, "config": 150, "results": 200, "pairs_of_results": 80, "findings": 80,
                 "recipes": 150}


def fuzz(name: str):
    return settings(max_examples=FUZZ_EXAMPLES[name], derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class WouldRun(Exception):
    """Raised where valid input would start real work (training, building a pair, loading models)."""


def would_run(*args, **kwargs):
    raise WouldRun(str(args[:2]))


COMMANDS = {name: command for name, command in typer.main.get_command(app).commands.items()}
OPTIONS = {name: {opt: p.is_flag for p in command.params if hasattr(p, "is_flag")
                  for opt in (*p.opts, *p.secondary_opts) if opt.startswith("--")}
           for name, command in COMMANDS.items()}
RECIPE_KEYS = sorted({f for m in METHODS.names() for f in METHODS.get(m).recipe_class.__dataclass_fields__})
NAMES = METHODS.names() + PAIRS.names() + TASKS.names() + RECIPE_KEYS + ["md", "latex", "csv", "json", "html"]


def small_cells(pair_seeds=(0, 1), methods=("finetune_new", "trans_peft"), tasks=("t_arith",), n=6) -> list[dict]:
    """A small grid in the layout bench writes (results_factory's numbers, fewer samples)."""
    cells = [c for c in make_cells() if c["method"] in methods and c["task"] in tasks and c["seed"] in pair_seeds]
    return [c | {"samples": c["samples"][:n]} for c in cells]


# --- the world each example runs in: a results directory, inputs, an empty store, and the seams stubbed ----

def snapshot(*roots: Path) -> dict[str, str]:
    """Every file (by sha256) and directory under the roots."""
    state = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return state


def restore(roots: list[Path], baseline: dict[str, str]) -> None:
    """Remove what an example added (a successful report's --out, a valid run's lock file), so every example
    starts from the same state and a failure's "nothing created" is checked against it."""
    for root in roots:
        for path in sorted(root.rglob("*"), reverse=True):
            if str(path) not in baseline:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    cwd, store = base / "cwd", base / "store"
    results, inputs = cwd / "results", cwd / "inputs"
    for folder in (results, inputs, store / "modules" / "kept"):
        folder.mkdir(parents=True)
    (store / "modules" / "kept" / "adapter_model.safetensors").write_bytes(b"kept")
    write_results_file(results / "finished.json", small_cells())
    write_results_file(results / "other-pair.json", small_cells(), pair="tiny-severe")
    (inputs / "probes.txt").write_text("a probe\n")
    (inputs / "empty").mkdir()
    roots = [cwd, store]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)  # the default --out (results/...) lands in the watched results directory
        mp.setenv(CACHE_ENV, str(store))
        mp.delenv("BENCH_ALLOW_UNSAFE_CODE", raising=False)
        for module in (bench.core.store, bench.pairs.tinypair, bench.pairs.hub, tasks.tiny):
            mp.setattr(module, "cached_dir", would_run)  # every store build: pairs, modules, evaluations, data
        mp.setattr(cli, "measure_ratios", would_run)  # perf trains outside the store
        mp.setattr(bench.science.diagnose, "load_base", would_run)  # (tiny bases ship with the package)
        # --workers (auto on a CPU) runs cells in spawned processes, which see none of these patches
        mp.setattr(bench.engine.executors.LocalExecutor, "_map_in_processes", would_run)
        # Typer rebuilds the click command from the app on every invoke (60 ms, most of an example): build it once.
        command = typer.main.get_command(app)
        mp.setattr(typer.testing, "_get_command", lambda _app: command)
        yield {"cwd": cwd, "results": results, "inputs": inputs, "roots": roots, "baseline": snapshot(*roots)}


def invoke(world, args: list[str], out: str | None = None) -> object:
    """Run one command line and check the property; None where valid input reached real work."""
    roots, baseline = world["roots"], world["baseline"]
    env = dict(os.environ)
    try:
        result = runner.invoke(app, args)
    finally:
        os.environ.clear()  # --offline and --data-dir set variables for the process: not for the next example
        os.environ.update(env)
    after = snapshot(*roots)
    restore(roots, baseline)
    event(f"{args[0]}: {'would run' if isinstance(result.exception, WouldRun) else result.exit_code}")
    if isinstance(result.exception, WouldRun):
        return None
    shown = f"bench {' '.join(map(repr, args))}\nexit {result.exit_code}\nstderr: {result.stderr!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        shown + "\n" + "".join(traceback.format_exception(result.exception)))
    if result.exit_code == 0 or (result.exit_code == 1 and args[0] == "compare" and not result.stderr):
        # The file --out names may be written, unless the command line also reads it (an input must survive).
        written = {str(Path(world["cwd"], out).absolute())} if out and args.count(out) == 1 else set()
        assert {k: after.get(k) for k in baseline if k not in written} == {
            k: v for k, v in baseline.items() if k not in written}, shown  # no input changed or removed
        return result
    assert result.exit_code == 2, shown
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    assert after == baseline, shown + f"\nchanged: {sorted(set(after.items()) ^ set(baseline.items()))[:4]}"
    return result


# --- strategies ----------------------------------------------------------------------------------------

# What a shell can pass: any text but NUL (argv cannot hold it).
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
numbers = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats().map(repr),
                    st.sampled_from(["0", "-1", "1e9", "nan", "inf", "-inf", "1.5", "0x10", "1_000", " 3"]))
names = st.sampled_from(NAMES)
PATHS = ["results/finished.json", "results/finished.costs.json", "results/other-pair.json", "results",
         "results/new.json", "results/new", "inputs/probes.txt", "inputs/empty", "inputs/missing.yaml",
         "inputs/missing/deeper/x.json", "/dev/null", "", ".", "results/finished.json/below.json"]
paths = st.sampled_from(PATHS)
anything = st.one_of(numbers, text, names, paths)


def lists_of(valid: list[str], separator: str = ","):
    """Mostly valid names, sometimes misspelt, empty or foreign ones, joined as the option takes them."""
    item = st.one_of(st.sampled_from(valid), st.sampled_from(valid), text, names, st.just(""))
    return st.lists(item, max_size=4).map(separator.join)


PAIR_NAMES = PAIRS.names() + ["tiny,tiny", "inputs/empty,inputs/empty", "org/a,org/b", "a,", ","]
number_lists = st.lists(numbers, max_size=4).map(",".join)
OPTION_VALUES = {
    "--methods": lists_of(METHODS.names()), "--references": lists_of(METHODS.names()),
    "--method": st.sampled_from(METHODS.names()), "--pair": st.sampled_from(PAIR_NAMES),
    "--tasks": lists_of(TASKS.names()), "--seeds": number_lists, "--severity": number_lists,
    "--kind": st.sampled_from(["full", "lora-merged", "ffn-only", "FULL", "lora"]),
    "--grid": st.builds(lambda k, v: f"{k}={v}", st.sampled_from(RECIPE_KEYS + ["p_c", "p_i", "bogus", ""]),
                        number_lists),
    "--set": st.builds(lambda k, v: f"{k}={v}", st.sampled_from(RECIPE_KEYS + ["trans_peft.p_c", "x.rank", ""]),
                       st.one_of(numbers, text)),
    "--limit": numbers, "--steps": numbers, "--modules": numbers, "--alpha": numbers, "--min-delta": numbers,
    "--tolerance": numbers, "--format": st.sampled_from(["md", "latex", "csv", "json", "html", "htm", "MD", ""]),
    "--peft": st.sampled_from(["lora", "dora", "adapter", "ia3", ""]),
    "--out": paths, "--config": paths, "--data-dir": paths, "--probes": paths,
}
POSITIONALS = {
    "list": st.sampled_from(["methods", "pairs", "tasks", "method", ""]), "make-pair": st.sampled_from(PAIR_NAMES),
    "report": paths, "compare": paths, "findings": paths,
}


@st.composite
def command_lines(draw, command: str):
    """The command's positionals, known options with mostly plausible values, sometimes an unknown option or
    a stray word; returns the arguments and the --out they name."""
    options = OPTIONS.get(command, {})
    args = [command] if command != "unknown" else [draw(st.sampled_from(["bogus", "--bogus", "runn", "", "-"]))]
    if command in POSITIONALS:
        args += draw(st.lists(POSITIONALS[command], min_size=0, max_size=3))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["known"] * 6 + ["unknown", "word"]))
        if kind == "known" and options:
            option = draw(st.sampled_from(sorted(options)))
            args.append(option)
            if not options[option]:
                args.append(draw(st.one_of(OPTION_VALUES.get(option, anything), anything)))
        elif kind == "unknown":
            args.append("--" + draw(st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=10)))
        else:
            args.append(draw(anything))
    out = next((args[i + 1] for i in range(len(args) - 1) if args[i] == "--out"), None)
    return args, out


@pytest.mark.parametrize("command", [*sorted(COMMANDS), "unknown"])
def test_fuzzed_command_lines_fail_in_one_line_and_leave_everything(world, command):
    @given(command_lines(command))
    @fuzz("cli")
    def check(drawn):
        args, out = drawn
        invoke(world, args, out)

    check()


# --set KEY=VALUE: recipe keys (plain, scoped to a method, misspelt), typed and untyped values.
set_keys = st.one_of(st.sampled_from(RECIPE_KEYS), text,
                     st.builds(lambda m, k: f"{m}.{k}", st.sampled_from(METHODS.names() + ["bogus"]),
                               st.sampled_from(RECIPE_KEYS)))
set_values = st.one_of(numbers, text, lists_of(["q_proj", "v_proj", "gate_proj"]),
                       st.sampled_from(["true", "false", "none", "q_proj,v_proj", ""]))
set_items = st.one_of(st.builds(lambda k, v: f"{k}={v}", set_keys, set_values), text)


@given(st.lists(set_items, min_size=1, max_size=3), st.lists(st.sampled_from(METHODS.names()), min_size=1,
                                                             max_size=3, unique=True))
@fuzz("set")
def test_fuzzed_set_values(world, items, methods):
    args = ["run", "--pair", "tiny", "--tasks", "tiny_knowledge", "--methods", ",".join(methods), "--dry-run"]
    invoke(world, args + [a for item in items for a in ("--set", item)])


# --config: random YAML documents (mappings of recipe keys and method names to anything), random text and bytes.
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**4, 10**4), st.floats(), text)
yaml_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(st.one_of(names, text), inner,
                                                                            max_size=3)), max_leaves=8)
config_keys = st.one_of(st.sampled_from(RECIPE_KEYS + METHODS.names()), text, st.integers(), st.none(),
                        st.booleans())
config_docs = st.one_of(
    st.dictionaries(config_keys, yaml_values, max_size=4).map(lambda d: yaml.safe_dump(d).encode()),
    yaml_values.map(lambda v: yaml.safe_dump(v).encode()),
    text.map(str.encode),
    st.binary(max_size=64),
    st.sampled_from([b"!!python/object/apply:os.system ['echo owned']", b"a: &x [*x]", b"a: b: c", b"{", b"\t",
                     b"---\n---\n", b"%YAML 9.9\n---\n", b"a: 1\na: 2\n", b"? [1, 2]\n: 3\n"]),
)


@given(config_docs, st.lists(st.sampled_from(METHODS.names()), min_size=1, max_size=3, unique=True))
@fuzz("config")
def test_fuzzed_config_files(world, document, methods):
    config = world["inputs"] / "fuzzed.yaml"
    config.write_bytes(document)
    world["baseline"] = snapshot(*world["roots"])  # the config is an input too: it must come out unchanged
    try:
        invoke(world, ["run", "--pair", "tiny", "--tasks", "tiny_knowledge", "--methods", ",".join(methods),
                       "--dry-run", "--config", str(config)])
    finally:
        config.unlink()
        world["baseline"] = snapshot(*world["roots"])


# --- results JSON for report and compare -----------------------------------------------------------------

json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(text, inner, max_size=3)), max_leaves=6)
CELL_KEYS = sorted(make_cells()[0]) + ["bogus"]
COST_KEYS = ["train_wall_s", "eval_wall_s", "peak_mem_mb", "device", "device_count", "land_wall_s", "module_mb",
             "peak_reserved_mb", "memory_kind", "method", "task", "seed"]


@st.composite
def mutations(draw, keys: list[str], top: list[str], list_key: str):
    """One edit of a results or costs document: a value of any type, a deleted key, cells dropped or repeated."""
    kind = draw(st.sampled_from(["cell", "cell", "top", "delete", "drop", "repeat", "sample"]))
    value = draw(json_values)
    index = draw(st.integers(0, 3))
    key = draw(st.sampled_from(keys))
    top_key = draw(st.sampled_from(top))

    def apply(doc):
        items = doc.get(list_key) if isinstance(doc, dict) else None
        if kind == "top":
            doc[top_key] = value
        elif not isinstance(items, list) or not items:
            return doc
        elif kind == "cell" and isinstance(items[index % len(items)], dict):
            items[index % len(items)][key] = value
        elif kind == "delete" and isinstance(items[index % len(items)], dict):
            items[index % len(items)].pop(key, None)
        elif kind == "drop":
            del items[index % len(items)]
        elif kind == "repeat":
            items.append(json.loads(json.dumps(items[index % len(items)])))
        elif kind == "sample" and isinstance(items[index % len(items)], dict):
            samples = items[index % len(items)].get("samples")
            if isinstance(samples, list) and samples:
                samples[index % len(samples)] = value if index % 2 else {"id": value, "correct": value}
        return doc

    return apply


@st.composite
def results_files(draw):
    """(results text, costs text or None): a valid grid edited, truncated, or replaced by random JSON or bytes."""
    pair = draw(st.sampled_from(["tiny", "tiny-severe"]))
    doc = {"pair": pair, "cells": small_cells(), "limit": None, "overrides": {}}
    costs = {"costs": make_costs(doc["cells"]), "environment": {"device": "cpu", "packages": {"torch": "2"}}}
    for edit in draw(st.lists(mutations(CELL_KEYS, ["pair", "cells", "limit", "environment"], "cells"),
                              max_size=3)):
        doc = edit(doc)
    for edit in draw(st.lists(mutations(COST_KEYS, ["costs", "environment"], "costs"), max_size=2)):
        costs = edit(costs)
    shape = draw(st.sampled_from(["edited", "edited", "edited", "truncated", "random json", "bytes", "no costs"]))
    text_ = json.dumps(doc)
    costs_text = json.dumps(costs)
    if shape == "truncated":
        text_ = text_[: draw(st.integers(0, len(text_) - 1))]
    elif shape == "random json":
        text_ = json.dumps(draw(json_values))
    elif shape == "bytes":
        return draw(st.binary(max_size=40)), costs_text.encode()
    if draw(st.booleans()) and shape != "no costs":
        costs_text = draw(st.sampled_from(["", "{", "[]", "null", '{"costs": 3}', '{"costs": [1]}', costs_text]))
    return text_.encode(), None if shape == "no costs" else costs_text.encode()


def write_input(world, name: str, files) -> Path:
    data, costs = files
    path = world["inputs"] / f"{name}.json"
    path.write_bytes(data)
    if costs is not None:
        path.with_suffix(".costs.json").write_bytes(costs)
    return path


@contextlib.contextmanager
def inputs_written(world, **files):
    paths = {name: write_input(world, name, f) for name, f in files.items()}
    world["baseline"] = snapshot(*world["roots"])  # written inputs must come out unchanged too
    try:
        yield paths
    finally:
        for path in paths.values():
            path.unlink()
            path.with_suffix(".costs.json").unlink(missing_ok=True)
        world["baseline"] = snapshot(*world["roots"])


@given(results_files(), st.sampled_from(["md", "json", "csv", "latex", "html", "htm", ""]),
       st.sampled_from(["report", "report-with-good", "compare-as-baseline", "compare-as-current"]))
@fuzz("results")
def test_fuzzed_results_files(world, files, fmt, use):
    good = str(world["results"] / "finished.json")
    with inputs_written(world, fuzzed=files) as paths:
        fuzzed = str(paths["fuzzed"])
        if use == "report":
            invoke(world, ["report", fuzzed, "--format", fmt])
        elif use == "report-with-good":
            invoke(world, ["report", good, fuzzed, "--format", fmt])
        elif use == "compare-as-baseline":
            invoke(world, ["compare", fuzzed, good])
        else:
            invoke(world, ["compare", good, fuzzed])


grids = st.fixed_dictionaries({
    "pair": st.sampled_from(["tiny", "tiny-severe"]),
    "seeds": st.lists(st.sampled_from([0, 1, 2]), min_size=0, max_size=3, unique=True),
    "methods": st.lists(st.sampled_from(["finetune_new", "trans_peft", "portllm"]), min_size=1, max_size=3,
                        unique=True),
    "tasks": st.lists(st.sampled_from(["t_arith", "t_knowledge"]), min_size=1, max_size=2, unique=True),
    "n": st.integers(0, 6),
})


def grid_file(grid) -> tuple[bytes, bytes]:
    cells = small_cells(grid["seeds"], grid["methods"], grid["tasks"], grid["n"])
    return (json.dumps({"pair": grid["pair"], "cells": cells}).encode(),
            json.dumps({"costs": make_costs(cells), "environment": {}}).encode())


@given(grids, grids, st.sampled_from(["compare", "report"]))
@fuzz("pairs_of_results")
def test_results_of_different_pairs_tasks_seeds_and_samples(world, first, second, command):
    with inputs_written(world, a=grid_file(first), b=grid_file(second)) as paths:
        args = ["compare", str(paths["a"]), str(paths["b"])] if command == "compare" else \
            ["report", str(paths["a"]), str(paths["b"]), "--format", "json"]
        invoke(world, args)


# `bench findings DIR`: the committed summaries of each kind, edited at random depth (a value of any type, a key
# deleted), or replaced by a bare object of their kind.
# The previous tiny pair's summaries (results/archive): their formats are what is fuzzed, not their findings.
SCIENCE = Path(__file__).parent.parent / "results" / "archive" / "pair-build-3" / "science"
SUMMARIES = [SCIENCE / "sweep-update-tiny-full-arith-5seeds" / "summary.json",
             SCIENCE / "sweep-trans_peft-tiny-arith-5seeds" / "summary.json",
             SCIENCE / "chain-tiny-chain-arith-5seeds" / "summary.json", SCIENCE / "diagnose-tiny" / "diagnose.json"]


@st.composite
def edited_json(draw, doc):
    """doc with one value somewhere inside it replaced by any JSON value, or deleted."""
    doc = json.loads(json.dumps(doc))
    parent, key = None, None
    node = doc
    for _ in range(draw(st.integers(1, 6))):
        children = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not children:
            break
        parent, key = node, draw(st.sampled_from(children))
        node = parent[key]
    if parent is not None:
        if draw(st.booleans()):
            parent[key] = draw(json_values)
        elif isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
    return doc


@st.composite
def summaries(draw):
    doc = json.loads(draw(st.sampled_from(SUMMARIES)).read_text())
    if draw(st.integers(0, 5)) == 0:
        return {"kind": doc["kind"], **draw(st.dictionaries(st.sampled_from(sorted(doc)), json_values, max_size=3))}
    for _ in range(draw(st.integers(1, 3))):
        doc = draw(edited_json(doc))
    return doc


@given(summaries())
@fuzz("findings")
def test_fuzzed_findings_summaries(world, summary):
    folder = world["inputs"] / "summaries"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(summary))
    world["baseline"] = snapshot(*world["roots"])
    try:
        invoke(world, ["findings", str(folder)])
    finally:
        shutil.rmtree(folder)
        world["baseline"] = snapshot(*world["roots"])


# --- recipes: whatever the validator accepts must attach to a model and train a step without a traceback ----

recipe_values = st.one_of(st.integers(-3, 40).map(str), st.floats(-1, 2).map(repr),
                          st.sampled_from(["nan", "inf", "-inf", "true", "none", "", "lora", "dora", "adapter",
                                           "cosine", "constant", "q_proj,v_proj", "gate_proj,up_proj,down_proj",
                                           "q_proj,", ",", "mlp", "o_proj"]),
                          lists_of(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
                          text)
recipe_items = st.lists(st.tuples(st.sampled_from(RECIPE_KEYS), recipe_values), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def tiny_model():
    from conftest import tiny_causal_lm

    return tiny_causal_lm("llama")


@given(st.sampled_from(METHODS.names()), recipe_items)
@fuzz("recipes")
def test_every_recipe_the_validator_accepts_attaches_and_trains_a_step(tiny_model, method, items):
    try:  # what run_grid checks before anything trains
        built = build_method(method, {key: parse_value(value) for key, value in items})
        check_targets([built], tiny_model.state_dict(), "the tiny model")
    except BenchError:
        return  # refused in one line: the CLI tests above check how that reaches the user
    model = built.attach(copy.deepcopy(tiny_model))
    ids = torch.arange(16).reshape(2, 8)
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
