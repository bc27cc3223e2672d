"""The `bench` command line: run, list, make-pair, perf, report, compare, sweep-update, diagnose, sweep, chain,
findings."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
import yaml
from typer.core import TyperGroup

from bench.analysis.compare import compare as compare_runs
from bench.analysis.compare import compare_seeds, comparison_table, load_checked, seed_comparison_table
from bench.analysis.report import build_report, leaderboard, render
from bench.core.data import DATA_ENV
from bench.core.errors import BenchError
from bench.core.options import parse_numbers, parse_value
from bench.core.progress import quiet_libraries
from bench.core.registry import Registry
from bench.core.results import check_writable, costs_path, load_results, write_results
from bench.core.store import one_line, write_json_atomic
from bench.engine.executors import LocalExecutor, auto_workers, check_executor, make_executor, parse_workers
from bench.engine.perf import measure_ratios
from bench.engine.plan import describe_plan, plan, training_steps
from bench.engine.protocol import build_method, run_grid
from bench.models import distributed
from bench.models.loading import device
from bench.models.memory import device_memory_bytes, worker_peak_bytes
from bench.models.precision import resolve_precision
from bench.models.training import TrainOptions, check_micro_batch
from bench.pairs import PAIRS, get_pair
from bench.pairs.hub import go_offline
from bench.science.chains import chain_transfer
from bench.science.diagnose import diagnose as run_diagnose
from bench.science.diagnose import plot, tables
from bench.science.findings import findings as collect_findings
from bench.science.findings import render as render_findings
from bench.science.sweeps import parse_grid, parse_severities, sweep_grid
from bench.science.sweeps import sweep_update as run_sweep
from bench.science.tune import check_search_size, check_tunable, check_tuned_file, reselect_entry, store_tuned
from bench.science.tune import tune as run_tune
from methods import METHODS
from tasks import TASKS, vllm_backend
from tasks.evalplus_exec import UNSAFE_ENV, refuse_unless_isolated
from tasks.recipes import TUNED_DIR, recipe_file, tuned_overrides

try:  # typer 0.2x parses with its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:
    from click import exceptions as click_exceptions


@contextlib.contextmanager
def usage_errors_as_one_line():
    """Click's own bad-input errors (an unknown option or command, a missing argument, a value of the wrong type)
    as one line on stderr and exit 2, like every other bad input, instead of a usage box."""
    try:
        yield
    except getattr(click_exceptions, "NoArgsIsHelpError", ()):  # (click < 8.2 prints the help without raising)
        raise  # bare `bench`: the help page is the answer
    except click_exceptions.UsageError as error:
        where = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
        typer.echo(f"error: {one_line(error.format_message())}{where}", err=True)
        raise typer.Exit(2) from None


class OneLineUsageErrors(TyperGroup):
    # The group parses its own options, then resolves, parses and runs the subcommand inside invoke.
    def make_context(self, *args, **kwargs):
        with usage_errors_as_one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with usage_errors_as_one_line():
            return super().invoke(ctx)


app = typer.Typer(cls=OneLineUsageErrors, add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Compare ways of carrying PEFT modules across base-model updates.")

DEFAULT_METHODS = "finetune_old,finetune_new,direct_transfer,portllm,trans_peft"
DEFAULT_TASKS = "tiny_arith,tiny_knowledge,tiny_code"
WORKERS_HELP = ("Processes of this machine that run the grid's cells (local executor), or auto: one per core, one "
                "torch thread each, on a CPU when the grid trains >= 1000 steps (for a real model, as many as the "
                "free RAM holds); else 1.")


def one_line_errors(command):
    """Bad input: one line on stderr, exit 2, no traceback."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BenchError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        except OSError as error:  # disk full, permissions, ...: what failed is in the message

            typer.echo(f"error: {one_line(error)}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: finished cells are cached; rerun to resume", err=True)
            raise typer.Exit(130) from None

    return wrapper


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM (`kill`, a scheduler's time limit) stops like Ctrl-C: builds in progress remove their
    temporaries, one line says how to resume; a second SIGTERM during that cleanup is ignored."""
    def interrupt(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (bench used as a library): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


UNSAFE_HELP = ("Run model-generated code even where it cannot be isolated (no user namespaces): with evalplus' "
               "guard alone, which is not a sandbox. Only for code you trust.")


@contextlib.contextmanager
def generated_code_policy(tasks: list, allow_unsafe: bool):
    """Without --allow-unsafe-code, a command whose tasks run generated code refuses before any training where that
    code cannot be isolated; with it, the scorer sees BENCH_ALLOW_UNSAFE_CODE=1 for this command only (restored
    after, so a library caller or a test's next command is not left allowed)."""
    if not allow_unsafe:
        if any(getattr(task, "runs_generated_code", False) for task in tasks):  # (plugin tasks may predate it)
            refuse_unless_isolated()
        yield
        return
    previous = os.environ.get(UNSAFE_ENV)
    os.environ[UNSAFE_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(UNSAFE_ENV, None)
        else:
            os.environ[UNSAFE_ENV] = previous


def collect_overrides(settings: list[str], config: Path | None, method_names: list[str]) -> dict:
    """--config FILE and --set KEY=VALUE (KEY or METHOD.KEY) -> {"lr": 0.001, "trans_peft.p_c": 0.2}."""
    overrides: dict = {}
    if config is not None:
        try:
            loaded = yaml.safe_load(config.read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as error:  # (deep nesting: recursion)

            raise BenchError(f"cannot read config {config}: {one_line(error)}") from None
        if not isinstance(loaded, dict):
            raise BenchError(f"config {config} must be a mapping of options (optionally under method names)")
        for key, value in loaded.items():
            if not isinstance(key, str):  # YAML keys may be numbers, null, booleans, lists
                raise BenchError(f"config {config}: option and method names are text, got {one_line(repr(key))[:60]}")
            if key in METHODS.names() and not isinstance(value, dict):
                raise BenchError(f"config {config}: {key} is a method; give its options as a mapping "
                                 f"({key}: {{OPTION: VALUE}}), got {one_line(repr(value))[:60]}")
            if isinstance(value, dict):
                overrides.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                overrides[key] = value
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BenchError(f"--set takes KEY=VALUE or METHOD.KEY=VALUE, got {item!r}")
        scope = key.strip().rpartition(".")[0]
        if scope in METHODS.names() and scope not in involved_methods(method_names):
            # (a config file may hold sections for methods this run leaves out; a --set is meant for this run)
            raise BenchError(f"--set {key.strip()}: {scope} is not in this run (--methods {','.join(method_names)})")
        overrides[key.strip()] = parse_value(value.strip())
    for key in overrides:
        scope, _, option = key.rpartition(".")
        scopes = [scope] if scope else method_names
        if scope:
            METHODS.get(scope)
        if not any(option in {f.name for f in dataclasses.fields(METHODS.get(s).recipe_class)} for s in scopes):
            raise BenchError(f"no selected method has an option {option!r}")
    return overrides


def involved_methods(method_names: list[str]) -> set[str]:
    """The selected methods and those whose modules they land or start from (direct_transfer: finetune_old)."""
    involved, todo = set(), list(method_names)
    while todo:
        name = todo.pop()
        if name not in involved:
            involved.add(name)
            method = METHODS.get(name)
            todo += [m for m in (method.reuses, method.starts_from) if m]
    return involved


def check_limit(limit: int | None) -> None:
    if limit is not None and limit <= 0:
        raise BenchError("--limit must be positive")


def parse_seeds(text: str) -> list[int]:
    seeds = parse_numbers(text, "--seeds")
    if any(not 0 <= s < 2**63 for s in seeds):  # torch.manual_seed takes at most 64 bits; negative ones wrap
        raise BenchError(f"--seeds takes integers from 0 to 2**63-1, got {text!r}")
    twice = next((s for i, s in enumerate(seeds) if s in seeds[:i]), None)
    if twice is not None:
        raise BenchError(f"--seeds lists seed {twice} twice")
    return seeds


@app.command()
@one_line_errors
def run(
    methods: Annotated[str, typer.Option(help="Comma-separated methods (bench list methods).")] = DEFAULT_METHODS,
    pair: Annotated[str, typer.Option(help="Base-model pair (bench list pairs).")] = "tiny",
    tasks: Annotated[str | None, typer.Option(help="Comma-separated tasks (default: the pair's suite).")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated training seeds.")] = "0",
    set_: Annotated[list[str], typer.Option("--set", help="Recipe override KEY=VALUE or METHOD.KEY=VALUE.")] = [],  # noqa: B006
    config: Annotated[Path | None, typer.Option(help="YAML of recipe overrides, optionally per method.")] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate on the first N test samples of each task.")] = None,
    out: Annotated[Path | None, typer.Option(help="Results JSON (default: results/<pair>-<UTC time>.json).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan and GPU-hours; run nothing.")] = False,
    offline: Annotated[bool, typer.Option(help="Never contact the hub (sets HF_HUB_OFFLINE and friends).")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Local mirror of datasets (<dir>/<org>/<name>/).")] = None,
    peft: Annotated[str | None, typer.Option(help="PEFT type for every method: lora | dora | adapter.")] = None,
    nproc: Annotated[int, typer.Option(help="Data-parallel processes per training (GPUs; CPU cores on CPU), "
                                            "through accelerate.")] = 1,
    executor: Annotated[str, typer.Option(help="local | ray: each training and evaluation a Ray task.")] = "local",
    workers: Annotated[str, typer.Option(help=WORKERS_HELP)] = "auto",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster to join (auto: the one `ray start` made); "
                                                         "default: a Ray on this machine.")] = None,
    eval_backend: Annotated[str, typer.Option(help="hf | vllm (lm-eval's vllm model; CUDA).")] = "hf",
    allow_unsafe_code: Annotated[bool, typer.Option(help=UNSAFE_HELP)] = False,
    tuned: Annotated[Path | None, typer.Option(help="Tuned recipes (<dir>/<pair>/<method>.yaml from bench tune), "
                                                    "applied under --set/--config (default: the package's).")] = None,
    no_tuned: Annotated[bool, typer.Option("--no-tuned", help="Ignore tuned recipes: the methods' defaults.")] = False,
    precision: Annotated[str, typer.Option(help="auto | fp32 | bf16 | fp16 (auto: bf16 on GPUs that have it, "
                                                "fp16 on older ones; on a CPU fp32 for the tiny pairs, "
                                                "elsewhere bf16 only if a probe finds it faster).")] = "auto",
    micro_batch: Annotated[str | None, typer.Option(help="Rows per forward pass, gradients accumulated up to the "
                                                         "recipe's batch (a divisor of it), or auto: the largest "
                                                         "that fits the device.")] = None,
    gradient_checkpointing: Annotated[bool, typer.Option(help="Recompute activations in the backward pass "
                                                              "(less memory, ~1/3 more compute).")] = False,
    group_by_length: Annotated[bool, typer.Option(help="Batch rows of similar length (less padding; "
                                                       "other batches, so other modules).")] = False,
):
    """Train, transfer and evaluate; print the leaderboard and write a results JSON."""
    apply_environment(offline, data_dir)
    method_names = METHODS.parse_list(methods)
    if nproc > 1 and executor != "local":
        raise BenchError("--nproc and --executor ray do not combine: a Ray task trains on one device")
    distributed.check_nproc(nproc)
    check_executor(executor, ray_address)
    worker_count = parse_workers(workers)
    if worker_count not in (None, 1) and (executor != "local" or nproc > 1):
        raise BenchError("--workers is for the local executor without --nproc (Ray and accelerate place "
                         "their own processes)")
    if eval_backend not in ("hf", "vllm"):
        raise BenchError(f"--eval-backend must be hf or vllm, not {eval_backend!r}")
    if eval_backend == "vllm" and (problem := vllm_backend.unavailable()):
        raise BenchError(problem)

    the_pair = get_pair(pair)
    task_objs = _task_objects(the_pair, tasks)
    seed_list = parse_seeds(seeds)
    overrides = collect_overrides(set_ + ([f"peft={peft}"] if peft else []), config, method_names)
    check_limit(limit)
    if eval_backend == "vllm" and any(build_method(m, overrides, the_pair).recipe.peft == "adapter"
                                      for m in method_names):
        raise BenchError("vLLM cannot serve bottleneck adapters (extra sub-layers no merge expresses); "
                         "use --eval-backend hf with --peft adapter")
    options = TrainOptions(precision=pair_precision(precision, the_pair),
                           micro_batch=parse_micro_batch(micro_batch), gradient_checkpointing=gradient_checkpointing,
                           group_by_length=group_by_length)
    for name in method_names:  # every method's batch on every task, before anything runs
        for task_obj in task_objs:
            check_micro_batch(options.micro_batch, build_method(name, overrides, the_pair, task_obj).recipe.batch_size)
    task_overrides = tuned_recipes(tuned, no_tuned, the_pair, method_names, task_objs)
    default_out = out is None
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", the_pair.name)  # `--pair org/a,org/b` names no folders
    out = out or Path("results") / f"{safe_name}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
    if dry_run:
        typer.echo(describe_plan(plan(method_names, the_pair, task_objs, seed_list, overrides, options,
                                      results_dir=out.parent, memory_bytes=device_memory_bytes(device()),
                                      task_overrides=task_overrides)))
        return
    if out.exists():
        raise BenchError(f"{out} exists; refusing to overwrite finished results (pass another --out)")


    with generated_code_policy(task_objs, allow_unsafe_code):
        check_writable(out)
        if nproc > 1 and distributed.launched_processes() == 1:  # each process runs this same command line,
            # with auto's precision as this process resolved it (a CPU probe could differ between ranks)
            raise typer.Exit(distributed.launch(nproc, sys.argv[1:] + ["--precision", options.precision]))
        distributed.start()  # under accelerate launch / torchrun: join the others
        counts = _worker_counts(worker_count, the_pair, method_names, task_objs, seed_list, overrides,
                                local=executor == "local" and nproc == 1, task_overrides=task_overrides)
        with sigterm_as_interrupt(), make_executor(executor, ray_address, *counts) as runner:
            cells = run_grid(method_names, the_pair, task_objs, seed_list, overrides, limit, runner, eval_backend,
                             task_overrides=task_overrides, options=options)
            if not distributed.is_main():  # rank 0 writes the results
                return
            extra = {"overrides": overrides, "limit": limit} | (
                {"tuned_recipes": task_overrides} if task_overrides else {})
            path = write_results(cells, the_pair, out, extra, pick_free_name=default_out)
    typer.echo(leaderboard(load_results(path)))
    typer.echo(f"results: {path}")


def _worker_counts(workers: int | None, pair, methods: list[str], tasks: list, seeds: list[int],
                   overrides: dict | None = None, local: bool = True,
                   task_overrides: dict[str, dict] | None = None) -> tuple[int, int]:
    """(processes, torch threads each) for a parsed --workers (None: auto, judged on the grid's training steps,
    counted only where auto could choose processes: the local executor on a CPU; for a real model, also on the
    RAM a worker needs)."""
    if workers:
        return workers, max(1, (os.cpu_count() or 1) // workers)
    if not (local and device().type == "cpu"):
        return auto_workers(False)
    steps = training_steps(methods, pair, tasks, seeds, overrides, task_overrides)
    if pair.world() is not None:
        return auto_workers(True, training_steps=steps)
    worker_bytes = worker_peak_bytes(pair.params_b)
    return auto_workers(worker_bytes is not None, training_steps=steps, worker_bytes=worker_bytes)


def pair_precision(requested: str, pair) -> str:
    """--precision made concrete for this pair on this machine (run and tune resolve it alike)."""
    width = pair.dims[0] if pair.dims else None  # the CPU probe's matmul size (bench/models/precision.py)
    return resolve_precision(requested, width=width, cpu_auto=pair.cpu_precision)


def tuned_recipes(tuned: Path | None, no_tuned: bool, pair, method_names: list[str], task_objs: list) -> dict:
    """What --tuned / --no-tuned select: {task: {"METHOD.option": value}} (empty: the methods' defaults)."""
    if no_tuned or (tuned is None and not TUNED_DIR.is_dir()):  # (a wheel without tuned recipes)
        return {}
    return tuned_for(tuned or TUNED_DIR, pair, method_names, task_objs)


def tuned_for(root: Path, pair, method_names: list[str], task_objs: list) -> dict[str, dict]:
    """The tuned recipes of this run's methods and tasks: {task: {"METHOD.option": value}}."""
    found = tuned_overrides(root, pair.name, set(METHODS.names()), set(PAIRS.names()))
    tasks = {t.name for t in task_objs}
    # A method that lands or warm-starts from another's module (direct_transfer, warm_retune) uses that one's recipe.
    wanted = set(method_names) | {getattr(METHODS.get(m), k) for m in method_names for k in ("reuses", "starts_from")}
    return {task: picked for task, recipes in found.items() if task in tasks
            if (picked := {k: v for k, v in recipes.items() if k.split(".")[0] in wanted})}


@app.command()
@one_line_errors
def tune(
    method: Annotated[str, typer.Option(help="The method to tune (bench list methods).")],
    pair: Annotated[str, typer.Option(help="Base-model pair (bench list pairs).")],
    task: Annotated[str, typer.Option(help="The task whose training data the validation split is carved from.")],
    trials: Annotated[int | None, typer.Option(help="Trials (give every method the same number); required unless "
                                                   "--reselect.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the TPE sampler and of every trial's (first) training.")] = 0,
    train_seeds: Annotated[int, typer.Option(help="Trainings per trial (seeds SEED, SEED+1, ...); a trial scores "
                                                  "their mean validation.")] = 1,
    knobs: Annotated[str | None, typer.Option(help="Comma-separated knobs to search (default: all of the "
                                                    "method's: lr, steps and its own).")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Fixed recipe values KEY=VALUE (kept in the tuned "
                                                          "recipe).")] = [],  # noqa: B006
    config: Annotated[Path | None, typer.Option(help="YAML of fixed recipe values.")] = None,
    out: Annotated[Path, typer.Option(help="Tuned recipes directory: writes <out>/<pair>/<method>.yaml and "
                                           "<method>.<task>.trials.csv.")] = TUNED_DIR,
    reselect: Annotated[bool, typer.Option("--reselect", help="Choose again from the committed trial table by the "
                                                              "current selection rule; trains nothing.")] = False,
    precision: Annotated[str, typer.Option(help="As bench run's --precision (auto resolves the same way), so trials "
                                                "train in the precision the tuned recipe will run in.")] = "auto",
):
    """Search a method's lr, steps and own knobs (seeded Optuna TPE) on a validation split of the task's training
    data, on the base the method trains on; store the chosen recipe (the default unless a trial beats it by more
    than a standard error) where `bench run` finds it."""
    if reselect:
        return _reselect(method, pair, task, out)
    if trials is None:
        raise BenchError("--trials is required (or --reselect to choose again from a committed trial table)")
    check_search_size(trials, train_seeds)  # before anything else (check_tuned_file creates the directory)
    METHODS.get(method)
    the_pair = get_pair(pair)
    the_task = TASKS.get(task)()
    the_task.validation_task()  # a task without a training split fails before anything else
    overrides = collect_overrides(set_, config, [method])
    knob_list = [k.strip() for k in knobs.split(",") if k.strip()] if knobs is not None else None
    check_tunable(method, knob_list)
    resolved = pair_precision(precision, the_pair)
    path = recipe_file(out, the_pair.name, method)
    existing = check_tuned_file(path, the_pair.name, method)  # unreadable or unwritable: fail before any trial
    with sigterm_as_interrupt():
        found = run_tune(method, the_pair, the_task, trials, seed, knob_list, overrides, train_seeds, resolved)
    command = (f"bench tune --method {method} --pair {the_pair.name} --task {task} --trials {trials} --seed {seed}"
               + (f" --train-seeds {train_seeds}" if train_seeds != 1 else "") + (f" --knobs {knobs}" if knobs else "")
               + "".join(f" --set {s}" for s in set_) + (f" --precision {precision}" if precision != "auto" else ""))
    from tabulate import tabulate

    typer.echo(tabulate(found["trials"], "keys", tablefmt="github", floatfmt=".4g"))
    store_tuned(path, existing, found, command)
    _echo_choice(found, path)


def _reselect(method: str, pair: str, task: str, out: Path) -> None:
    METHODS.get(method)
    TASKS.get(task)
    pair_name = get_pair(pair).name
    path = recipe_file(out, pair_name, method)
    if not path.is_file():
        raise BenchError(f"no tuned recipes at {path}: run bench tune first")
    existing = check_tuned_file(path, pair_name, method)
    found = reselect_entry(path, existing, task)
    store_tuned(path, existing, found, existing["tasks"][task]["command"])
    _echo_choice(found, path)


def _echo_choice(found: dict, path: Path) -> None:
    s = found["selection"]
    why = ("the default kept" if s["chosen_trial"] == 0 else f"trial {s['chosen_trial']}") + (
        f": best trial {s['best_trial']} {s['best_score']:.1f} +- {s['standard_error']:.1f}, "
        f"default {s['default_score']:.1f}")
    typer.echo(f"chosen: {found['recipe']} ({found['validation']['metric']} {found['validation']['score']:.1f} on "
               f"{found['validation']['n']} validation items, on the {found['tuned_on']} base; {why})")
    typer.echo(f"tuned recipe: {path}")


def parse_micro_batch(text: str | None) -> int | str | None:
    if text is None or text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise BenchError(f"--micro-batch takes a positive integer or auto, got {text!r}") from None
    if value <= 0:
        raise BenchError(f"--micro-batch takes a positive integer or auto, got {text!r}")
    return value


def apply_environment(offline: bool, data_dir: Path | None) -> None:
    """--offline and --data-dir are environment for every library below us (hub, datasets, transformers)."""
    if offline:
        go_offline()
    if data_dir is not None:
        if not data_dir.is_dir():
            raise BenchError(f"--data-dir {data_dir} is not a directory")
        os.environ[DATA_ENV] = str(data_dir)


@app.command("list")
@one_line_errors
def list_(what: Annotated[str, typer.Argument(help="methods | pairs | tasks")]):
    """List registered methods, pairs or tasks."""
    kinds = Registry("list")
    for name, registry in (("methods", METHODS), ("pairs", PAIRS), ("tasks", TASKS)):
        kinds.register(name, registry)
    registry = kinds.get(what)
    for name in registry.names():
        item = registry.get(name)
        doc = getattr(item, "description", None) or item.__doc__ or sys.modules[item.__module__].__doc__ or ""
        doc = doc.strip()
        typer.echo(f"{name:18s} {doc.splitlines()[0] if doc else ''}")


@app.command("make-pair")
@one_line_errors
def make_pair(
    name: Annotated[str, typer.Argument(help="A pair (bench list pairs).")] = "tiny",
    ship: Annotated[bool, typer.Option(help="Tiny pairs: also copy the checkpoints into the package.")] = False,
):
    """Build every version of a pair: tiny pairs' v0 and v1, simulated updates' continued pre-training
    (PortLLM's <base>-openorca), and a download of released versions."""
    the_pair = PAIRS.get(name)
    if ship and not the_pair.shippable:
        raise BenchError("--ship is for tiny pairs, whose checkpoints ship with the package")
    versions = ["old", "new"] if the_pair.version_count() == 2 else the_pair.version_names()
    for version in versions:
        path = the_pair.base_dir(version)
        typer.echo(f"{version}: {the_pair.ship(version) if ship else path}")


@app.command("verify-pair")
@one_line_errors
def verify_pair(pair: Annotated[str, typer.Argument(help="A pair (bench list pairs) or OLD,NEW model references.")]):
    """Check local copies of a pair's released models against the commits the registry pins; exit 1 unless every
    one is there at its pinned commit."""
    failed = False
    for version, status, line in get_pair(pair).verify_revisions():
        failed |= status not in ("ok", "n/a")
        typer.echo(f"{version:3s} {status:13s} {line}")
    if failed:
        raise typer.Exit(1)


@app.command()
@one_line_errors
def perf(
    pair: Annotated[str, typer.Option(help="Pair whose old base is timed.")] = "tiny",
    steps: Annotated[int, typer.Option(help="Timed steps per variant.")] = 30,
):
    """Step-time ratios: trans_peft / plain LoRA, and the harness loop / a bare PyTorch loop."""
    if steps <= 0:
        raise BenchError(f"--steps must be a positive number of timed steps, got {steps}")
    for line in measure_ratios(PAIRS.get(pair), steps):
        typer.echo(line)


@app.command()
@one_line_errors
def report(
    results: Annotated[list[Path], typer.Argument(help="Results JSON files (their .costs.json beside them).")],
    format_: Annotated[str, typer.Option("--format", help="md | latex | csv | json | html")] = "md",
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    modules: Annotated[int, typer.Option(help="N for the projected cost of keeping N modules current.")] = 10,
):
    """The leaderboard (mean ± sd over seeds, gap to re-tune, device-hours, memory), cost projection, paired tests."""
    for path in results:
        load_checked(path)  # a malformed file is one clear error, not a KeyError deep in the report
    if out is not None and out.resolve() in {q.resolve() for p in results for q in (p, costs_path(p))}:
        raise BenchError(f"--out {out} is one of the results being reported; write the report elsewhere")
    text = render(build_report([(str(p), load_results(p)) for p in results], modules), format_)
    print_or_write(text, out, "report")


def print_or_write(text: str, out: Path | None, label: str) -> None:
    """A rendered page to stdout, or to `out` (parents created) with one line saying where."""
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    typer.echo(f"{label}: {out}")


@app.command()
@one_line_errors
def compare(
    baseline: Annotated[Path, typer.Argument(help="Results JSON to hold the line (e.g. the committed one).")],
    current: Annotated[Path, typer.Argument(help="Results JSON of the run under test.")],
    alpha: Annotated[float, typer.Option(help="Significance level per (method, task).")] = 0.05,
    min_delta: Annotated[float, typer.Option(help="Ignore drops smaller than this many score points (0-100).")] = 0.0,
    unit: Annotated[str, typer.Option(help="sample: per-sample outcomes paired by seed (one machine); seed: per-seed "
                                           "scores, Welch + Holm (the CI gate, across machines).")] = "sample",
):
    """Regression gate: exit 1 if any (method, task) got significantly worse than the baseline."""
    if unit not in ("sample", "seed"):
        raise BenchError(f"--unit must be sample or seed, got {unit!r}")
    if unit == "seed":
        rows = compare_seeds(load_checked(baseline), load_checked(current), alpha, min_delta)
        table = seed_comparison_table(rows, alpha, min_delta)
    else:
        rows = compare_runs(load_checked(baseline), load_checked(current), alpha, min_delta)
        table = comparison_table(rows, alpha, min_delta)
    typer.echo(table)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:  # GitHub Actions renders this file (markdown) on the run's page
        with open(summary, "a") as handle:
            handle.write(f"### bench compare {baseline.name} -> {current.name}\n\n{table}\n\n")
    if any(r.regressed for r in rows):
        raise typer.Exit(1)


@app.command()
@one_line_errors
def export(
    results: Annotated[Path, typer.Argument(help="Results JSON holding the cell.")],
    out: Annotated[Path, typer.Argument(help="New directory for the export.")],
    cell: Annotated[str, typer.Option(help="METHOD/TASK/SEED, e.g. portllm/tiny_arith/0.")],
):
    """One cell as files lm-eval (or evalplus) reproduces its score from: the landed model with its tokenizer, the
    task YAML and data per base version, and the command."""
    from bench.engine.export import export_cell

    command, note = export_cell(results, cell, out)
    typer.echo(f"exported {cell} to {out}; reproduce it there with:\n  cd {out} && {command}\n{note}".rstrip())


# --- science tools: severity sweeps, update anatomy, hyper-parameter grids, chains, findings -------------

REFERENCE_METHODS = "direct_transfer,finetune_new"
CHAIN_METHODS = "direct_transfer,portllm,trans_peft,finetune_new"
TINY_TASKS = "tiny_arith,tiny_knowledge"


def _task_objects(the_pair, tasks: str | None):
    tasks = tasks or ",".join(the_pair.suite or DEFAULT_TASKS.split(","))
    return [TASKS.get(t)() for t in TASKS.parse_list(tasks)]


def _fresh_dir(out: Path | None, default: str) -> Path:
    return out or Path("results") / f"{default}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"


@app.command("sweep-update")
@one_line_errors
def sweep_update(
    pair: Annotated[str, typer.Option(help="Tiny pair whose v0 every update starts from.")] = "tiny",
    kind: Annotated[str, typer.Option(help="Update kind: full | lora-merged | ffn-only.")] = "full",
    severity: Annotated[str, typer.Option(help="Comma-separated S: v1 = v0 + S x the pair's update steps "
                                                "at its lr (1 = the pair's own update, 0 = none).")] = "0.25,1,3",
    methods: Annotated[str, typer.Option(help="Comma-separated methods.")] = DEFAULT_METHODS,
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks.")] = TINY_TASKS,
    seeds: Annotated[str, typer.Option(help="Comma-separated training seeds.")] = "0,1",
    limit: Annotated[int | None, typer.Option(help="Evaluate on the first N test samples of each task.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output directory (default under results/).")] = None,
    allow_unsafe_code: Annotated[bool, typer.Option(help=UNSAFE_HELP)] = False,
    workers: Annotated[str, typer.Option(help=WORKERS_HELP)] = "auto",
    set_: Annotated[list[str], typer.Option("--set", help="Recipe override KEY=VALUE or METHOD.KEY=VALUE, "
                                                      "for every point (as bench run's).")] = [],  # noqa: B006
    tuned: Annotated[Path | None, typer.Option(help="Tuned recipes of the pair (as bench run's --tuned; "
                                                    "tasks/recipes/tuned for the package's) for every point, "
                                                    "under --set. Default: the methods' own recipes.")] = None,
):
    """Score vs update size: a family of v1s of growing severity, every method on each, plotted with error bars."""

    method_names = METHODS.parse_list(methods)
    the_pair = PAIRS.get(pair)
    severities = parse_severities(severity)
    seed_list = parse_seeds(seeds)
    task_objs = _task_objects(the_pair, tasks)
    check_limit(limit)
    worker_count = parse_workers(workers)
    overrides = collect_overrides(set_, None, method_names)
    task_overrides = tuned_recipes(tuned, tuned is None, the_pair, method_names, task_objs)  # opt-in, see --tuned
    out = _fresh_dir(out, f"sweep-update-{pair}-{kind}")
    with generated_code_policy(task_objs, allow_unsafe_code):
        executor = LocalExecutor(*_worker_counts(worker_count, the_pair, method_names, task_objs, seed_list,
                                                 overrides, task_overrides=task_overrides))
        summary = run_sweep(the_pair, kind, severities, method_names, task_objs, seed_list, out, limit, executor,
                            overrides, task_overrides)
    from tabulate import tabulate

    rows = [[f"x{p['severity']:g}", p["steps"], f"{p['weight_change']['attention']:.4f}",
             f"{p['weight_change']['ffn']:.4f}"] + [f"{p['methods'][m]['mean']:.1f}" for m in method_names]
            for p in summary["points"]]
    typer.echo(tabulate(rows, ["severity", "steps", "attn change", "FFN change"] + method_names, tablefmt="github",
                        disable_numparse=True))
    typer.echo(f"results: {out}/summary.json, plot: {out}/severity.png")


@app.command()
@one_line_errors
def diagnose(
    pair: Annotated[str, typer.Option(help="Any registered pair (bench list pairs).")] = "tiny",
    tasks: Annotated[str | None, typer.Option(help="Tasks whose cached finetune_old/new modules feed PortLLM's "
                                                    "Table 1 check (default: the pair's suite).")] = None,
    seeds: Annotated[str, typer.Option(help="Seeds of those modules.")] = "0",
    probes: Annotated[Path | None, typer.Option(help="Probe texts, one per line (default: the tiny world's text, "
                                                     "or built-in math/code/prose).")] = None,
    out: Annotated[Path | None, typer.Option(help="Directory for diagnose.json, diagnose.md and diagnose.png.")] = None,
    offline: Annotated[bool, typer.Option(help="Never contact the hub.")] = False,
    tuned: Annotated[Path | None, typer.Option(help="Tuned recipes the run used (as bench run's --tuned).")] = None,
    no_tuned: Annotated[bool, typer.Option("--no-tuned", help="The modules of a --no-tuned run.")] = False,
):
    """Update anatomy per layer: attention vs FFN weight change, activation similarity, PortLLM's Table 1 check."""
    apply_environment(offline, None)

    the_pair = get_pair(pair)
    task_objs = _task_objects(the_pair, tasks)
    task_overrides = tuned_recipes(tuned, no_tuned, the_pair, ["finetune_old", "finetune_new"], task_objs)
    report_data = run_diagnose(the_pair, task_objs, parse_seeds(seeds), probes, task_overrides)
    text = tables(report_data)
    typer.echo(text, nl=False)
    if out is not None:

        check_writable(out / "diagnose.json")
        write_json_atomic(out / "diagnose.json", report_data)
        (out / "diagnose.md").write_text(text)
        plot(report_data, out / "diagnose.png")
        typer.echo(f"written: {out}/diagnose.json, diagnose.md, diagnose.png")


@app.command()
@one_line_errors
def sweep(
    method: Annotated[str, typer.Option(help="The method whose recipe options are swept.")] = "trans_peft",
    grid: Annotated[list[str], typer.Option(help="NAME=V1,V2,... per option, swept in the given order (coordinate "
                                                 "ascent: each at the best of the ones before, later ones at their "
                                                 "first value).")] = ["p_c=0,0.1,0.2,0.3", "p_i=0,0.01,0.05,0.1"],  # noqa: B006
    pair: Annotated[str, typer.Option(help="Base-model pair.")] = "tiny",
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks.")] = "tiny_arith",
    seeds: Annotated[str, typer.Option(help="Comma-separated training seeds.")] = "0,1",
    references: Annotated[str, typer.Option(help="Reference-line methods ('' for none).")] = REFERENCE_METHODS,
    limit: Annotated[int | None, typer.Option(help="Evaluate on the first N test samples of each task.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output directory (default under results/).")] = None,
    allow_unsafe_code: Annotated[bool, typer.Option(help=UNSAFE_HELP)] = False,
    workers: Annotated[str, typer.Option(help=WORKERS_HELP)] = "auto",
    set_: Annotated[list[str], typer.Option("--set", help="Recipe override KEY=VALUE or METHOD.KEY=VALUE, "
                                                      "for every point (as bench run's).")] = [],  # noqa: B006
):
    """A method's hyper-parameter grid (Trans-PEFT Fig. 6: score vs p_c at p_i=0, then vs p_i at the best p_c)."""

    METHODS.get(method)
    reference_names = METHODS.parse_list(references) if references.strip() else []
    the_pair = get_pair(pair)
    parsed = parse_grid(grid)
    check_limit(limit)
    worker_count = parse_workers(workers)
    out = _fresh_dir(out, f"sweep-{method}-{pair}")
    task_objs = _task_objects(the_pair, tasks)
    seed_list = parse_seeds(seeds)
    overrides = collect_overrides(set_, None, [method, *reference_names])
    with generated_code_policy(task_objs, allow_unsafe_code):
        executor = LocalExecutor(*_worker_counts(worker_count, the_pair, [method, *reference_names], task_objs,
                                                 seed_list, overrides))  # judged on one point's grid
        summary = sweep_grid(method, parsed, the_pair, task_objs, seed_list, reference_names, out, limit, executor,
                             overrides)
    for stage in summary["stages"]:
        points = ", ".join(f"{p['value']}: {p['mean']:.1f}" + (f" ± {p['sd']:.1f}" if p["sd"] is not None else "")
                           for p in stage["points"])
        typer.echo(f"{stage['param']} ({', '.join(f'{k}={v}' for k, v in stage['fixed'].items())}): {points}; "
                   f"best {stage['best']}")
    for name, stats in summary["references"].items():
        typer.echo(f"{name}: {stats['mean']:.1f}")
    typer.echo(f"results: {out}/summary.json, plot: {out}/grid.png")


@app.command()
@one_line_errors
def chain(
    pair: Annotated[str, typer.Option(help="A chain of 3+ versions (e.g. mistral-7b-chain).")] = "tiny-chain",
    methods: Annotated[str, typer.Option(help="Comma-separated methods.")] = CHAIN_METHODS,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated tasks ('' for the pair's suite).")] = TINY_TASKS,
    seeds: Annotated[str, typer.Option(help="Comma-separated training seeds.")] = "0,1",
    limit: Annotated[int | None, typer.Option(help="Evaluate on the first N test samples of each task.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output directory (default results/chain-<pair>-<time>).")] = None,
    allow_unsafe_code: Annotated[bool, typer.Option(help=UNSAFE_HELP)] = False,
):
    """Chain transfer: a module trained on v0 landed on v1, v2, v3, ... (PortLLM Table A), as a curve."""

    method_names = METHODS.parse_list(methods)
    the_pair = get_pair(pair)
    check_limit(limit)
    out = _fresh_dir(out, f"chain-{pair}")
    task_objs = _task_objects(the_pair, tasks)
    with generated_code_policy(task_objs, allow_unsafe_code):
        summary = chain_transfer(the_pair, method_names, task_objs, parse_seeds(seeds), out, limit)
    for p in summary["points"]:
        typer.echo(f"{p['version']}: " + ", ".join(f"{m} {p['methods'][m]['mean']:.1f}" for m in method_names))
    typer.echo(f"results: {out}/summary.json, plot: {out}/chain.png")


@app.command()
@one_line_errors
def findings(
    results: Annotated[list[Path], typer.Argument(help="Results files (bench run) and directories holding sweep, "
                                                       "chain, diagnose and run outputs.")],
    out: Annotated[Path | None, typer.Option(help="Write here (e.g. results/FINDINGS.md) instead of stdout.")] = None,
    tolerance: Annotated[float, typer.Option(help="Points a method may trail and still be 'about as good as' "
                                                  "(and the gain a 'beats' must be able to reach).")] = 5.0,
    alpha: Annotated[float, typer.Option(help="Claims are judged on the (1 - alpha) confidence interval.")] = 0.05,
):
    """FINDINGS.md from results files: which published claims reproduce here, judged on paired confidence
    intervals."""

    if not 0 < alpha < 1 or tolerance < 0:
        raise BenchError("--alpha must be in (0, 1) and --tolerance non-negative")
    found, sources = collect_findings(results, tolerance, alpha)
    single = results[0] if len(results) == 1 and results[0].is_dir() else None
    shown = [p.relative_to(single) if single else p for p in sources]  # a lone directory: paths inside it
    text = render_findings(found, shown, single or results, tolerance, alpha)
    print_or_write(text, out, "findings")


def main():
    quiet_libraries()
    app()
