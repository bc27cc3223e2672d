"""The shared train-and-transfer protocol: pair -> method -> trained module -> landed -> task -> cell.

Every method goes through the same three steps, each cached in the store under a content key:
  train_module(method, pair, task, seed)   the PEFT module, trained on method.trains_on's base (or reused,
                                           or warm-started from another method's module)
  land it on method.lands_on's base        (method.land: as an adapter, merged, or transformed)
  evaluate_cell(...)                       the task's lm-eval / evalplus scorer
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.core.accounting import measure, mfu, module_size_mb
from bench.core.errors import BenchError
from bench.core.store import Store, config_hash, one_line, read_artifact_json
from bench.engine.executors import LocalExecutor
from bench.models.loading import device, load_model
from bench.models.memory import auto_micro_batch
from bench.models.precision import compute_dtype, keep_trainable_fp32
from bench.models.training import TrainOptions, count_trainable, supervised_batches, train_loop
from bench.pairs.base import Pair
from bench.pairs.compat import check_pair
from methods import METHODS, Method, MethodContext
from tasks.base import Task

STORE = Store()


@dataclass
class Cell:
    """One (method, task, seed) result, with everything needed to trust and compare it."""

    method: str
    task: str
    seed: int
    score: float
    metric: str
    n: int
    trained_on: str
    evaluated_on: str
    base_versions: dict
    module_key: str
    module_from: str        # the method that trained the module (direct_transfer: finetune_old)
    config_hash: str
    train_wall_s: float
    eval_wall_s: float
    peak_mem_mb: float
    memory_kind: str
    device: str
    trainable_params: int
    train_tokens: int
    samples: list = field(default_factory=list)
    train_examples: int = 0      # rows the training saw (steps x batch); 0 where the module was not trained here
    # Cost accounting beyond wall and peak (bench/analysis/costs.py turns these into device-hours and projections).
    device_count: int = 1        # GPUs (CUDA) or CPU threads: device-hours = wall x device_count
    peak_reserved_mb: float = 0.0  # CUDA max_memory_reserved; 0 on CPU
    land_wall_s: float = 0.0     # putting the module on the target base (PortLLM: the merge), inside eval_wall_s
    module_mb: float = 0.0       # the trained module's size on disk
    precision: str = "fp32"      # the compute dtype the module trained and was evaluated in (bench.models.precision)
    tokens_per_s: float | None = None  # training throughput (non-padding tokens / train wall); None: not trained here
    mfu: float | None = None     # 6 x params x tokens / wall / the device's peak FLOP/s; None on CPUs, unknown GPUs


def build_method(name: str, overrides: dict | None = None, pair: Pair | None = None) -> Method:
    """Instantiate a registered method: its paper recipe, rescaled for `pair` (tiny pairs), then the
    user's overrides ({"lr": 1e-3} or {"trans_peft.p_c": 0.2}), which are absolute values."""
    cls = METHODS.get(name)
    mine = dict(pair.recipe_scale(cls.default_recipe)) if pair is not None else {}
    fields = {f.name for f in dataclasses.fields(cls.recipe_class)}
    for key, value in (overrides or {}).items():
        scope, _, option = key.rpartition(".")
        if scope == name or (not scope and option in fields):
            mine[option] = value
    return cls(**mine)


def module_source(method: Method, overrides: dict | None, pair: Pair) -> Method:
    """The method whose trained module `method` lands: itself, or the one it reuses."""
    return build_method(method.reuses, overrides, pair) if method.reuses else method


def load_base(pair: Pair, version: str, precision: str | None = None):
    """The base, in the compute dtype of `precision` (None: the pair's own dtype, for tools outside the grid)."""
    dtype = pair.dtype if precision is None else compute_dtype(precision)
    return load_model(pair.base_dir(version), dtype, pair.trust_remote_code,
                      what=f"the {version} base of pair {pair.name!r}")


def encode_examples(tokenizer, examples: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """Tokenize prompt+answer together (as the model will see it); the answer is the loss region."""
    encoded = []
    for prompt, answer in examples:
        n_prompt = len(tokenizer(prompt)["input_ids"])
        full = tokenizer(prompt + answer)["input_ids"] + [tokenizer.eos_token_id]
        encoded.append((full[:n_prompt], full[n_prompt:]))
    return encoded


def module_key(method: Method, pair: Pair, task: Task, seed: int, overrides: dict | None = None,
               options: TrainOptions | None = None) -> str:
    recipe = dataclasses.asdict(method.recipe) | {"recipe": type(method.recipe).__name__}
    key = {"base": pair.version_id(method.trains_on), "task": task.train_key or task.name, "recipe": recipe,
           "seed": seed, "data": task.data_hash(pair, method.trains_on), "budget": task.budget()}
    if method.training_version:  # the method changed what the same recipe and seed train into
        key["training_version"] = method.training_version
    key |= (options or TrainOptions()).key(method.recipe.batch_size)  # nothing for the defaults
    if method.starts_from:  # a warm start names the module it starts from
        start = build_method(method.starts_from, overrides, pair)
        key["starts_from"] = module_key(start, pair, task, seed, overrides, options)
    return config_hash(key)  # tasks that share a training set (commonsense-8) share one module


def check_module(module_dir: Path, meta: dict, expected_base: str) -> None:
    """Refuse a cached module that cannot be trusted: damaged, pickled, or trained on another base."""
    from safetensors import safe_open

    weights = module_dir / "adapter_model.safetensors"
    if not weights.exists():
        pickled = sorted(p.name for p in module_dir.glob("*.bin")) + sorted(p.name for p in module_dir.glob("*.pt"))
        found = f" (found {', '.join(pickled)}: pickle files are never loaded)" if pickled else ""
        raise BenchError(f"module {module_dir} has no adapter_model.safetensors{found}; delete {module_dir} "
                         "and rerun to retrain it")
    try:
        with safe_open(str(weights), framework="pt") as handle:  # reads the header; no pickle involved
            handle.keys()
    except Exception as error:  # safetensors raises its own SafetensorError for a damaged header
        raise BenchError(f"module file {weights} is damaged ({one_line(error)}); delete {module_dir} "
                         "and rerun to retrain it") from None
    if meta.get("base") != expected_base:
        raise BenchError(f"module {module_dir} was trained on base {meta.get('base')!r}, not {expected_base!r} "
                         f"(another model or architecture); delete {module_dir} and rerun to retrain it")


def context(method: Method, pair: Pair, task: Task, seed: int, overrides: dict | None,
            options: TrainOptions | None = None) -> MethodContext:
    def trained_module(name: str) -> Path:
        return train_module(build_method(name, overrides, pair), pair, task, seed, overrides, options)[0]

    return MethodContext(pair=pair, task=task, seed=seed, recipe=method.recipe, store=STORE,
                         trained_module=trained_module)


def train_module(method: Method, pair: Pair, task: Task, seed: int, overrides: dict | None = None,
                 options: TrainOptions | None = None) -> tuple[Path, dict]:
    """Train (or reuse from the store) `method`'s module for `task`; returns its directory and metadata."""
    options = options or TrainOptions()
    key = module_key(method, pair, task, seed, overrides, options)
    ctx = context(method, pair, task, seed, overrides, options)
    if method.starts_from:
        ctx.module_of(method.starts_from)  # the module it starts from exists before this one's lock is taken

    def build(out: Path):
        base, tokenizer = load_base(pair, method.trains_on, options.precision)
        torch.manual_seed(seed)
        model = method.start(base, ctx)  # a fresh LoRA / DoRA / adapter, or another method's module (warm start)
        keep_trainable_fp32(model)
        examples = encode_examples(tokenizer, task.train_examples(pair, method.trains_on))
        recipe = method.recipe
        steps = method.train_steps(task.train_steps(len(examples), recipe.batch_size))
        lr = recipe.lr * task.lr_scale
        run = options
        if options.micro_batch == "auto":  # the largest that fits what the device has left with the base loaded
            run = dataclasses.replace(options, micro_batch=auto_micro_batch(
                model, max(len(p) + len(a) for p, a in examples), recipe.batch_size, options.precision,
                options.gradient_checkpointing, device()))
        batches = supervised_batches(examples, recipe.batch_size, tokenizer.pad_token_id, seed,
                                     group_by_length=options.group_by_length)
        batches = ({k: v.to(device()) for k, v in b.items()} for b in batches)
        with measure() as cost, method.during_training(model, ctx):
            stats = train_loop(model, batches, steps, lr, recipe.schedule,
                               description=f"training {method.name} on {task.name}", options=run)
        method.save_module(model, out)
        meta = {"method": method.name, "task": task.name, "seed": seed, "trained_on": method.trains_on,
                "base": pair.version_id(method.trains_on), "recipe": dataclasses.asdict(method.recipe),
                "steps": steps, "lr": lr, "trainable_params": count_trainable(model), **stats,
                "total_params": sum(p.numel() for p in model.parameters()), "options": dataclasses.asdict(run),
                "cost": dataclasses.asdict(cost)}
        (out / "module.json").write_text(json.dumps(meta, indent=2, sort_keys=True))

    path = STORE.get("modules", key, build)
    meta = read_artifact_json(path / "module.json")
    check_module(path, meta, pair.version_id(method.trains_on))
    return path, meta


def evaluate_cell(method: Method, pair: Pair, task: Task, seed: int, limit: int | None,
                  overrides: dict | None, options: TrainOptions | None = None) -> Cell:
    options = options or TrainOptions()
    source = module_source(method, overrides, pair)
    module_dir, meta = train_module(source, pair, task, seed, overrides, options)
    ctx = context(method, pair, task, seed, overrides, options)
    target = pair.version_id(method.lands_on)
    eval_key = {"module": module_dir.name, "land": method.name, "target": target, "task": task.name, "limit": limit}
    if options.precision != "fp32":  # (fp32 keys stay as they were)
        eval_key["precision"] = options.precision
    eval_key = config_hash(eval_key)

    def build(out: Path):
        base, tokenizer = load_base(pair, method.lands_on, options.precision)
        with measure() as cost:
            land_start = time.perf_counter()
            try:
                model = method.land(module_dir, base, ctx)
            except (RuntimeError, ValueError, KeyError) as error:  # e.g. shape mismatch: another architecture
                raise BenchError(f"module {module_dir} does not fit the {method.lands_on} base of {pair.name!r}: "
                                 f"{one_line(error)}") from None
            land_wall_s = time.perf_counter() - land_start
            if options.precision != "fp32":  # the fp32 adapter too: lm-eval's forward turns any autocast off
                model = model.to(compute_dtype(options.precision))
            score = task.evaluate(model, tokenizer, pair, method.lands_on, limit=limit)
        (out / "eval.json").write_text(json.dumps({"score": dataclasses.asdict(score),
                                                   "cost": dataclasses.asdict(cost), "land_wall_s": land_wall_s},
                                                  sort_keys=True))

    result = read_artifact_json(STORE.get("evals", eval_key, build) / "eval.json")
    score, eval_cost, train_cost = result["score"], result["cost"], meta["cost"]
    trained_here = source is method
    train_s = train_cost["wall_s"]
    throughput = meta["train_tokens"] / train_s if trained_here and train_s > 0 else None
    return Cell(
        method=method.name, task=task.name, seed=seed, score=score["score"], metric=score["metric"], n=score["n"],
        trained_on=source.trains_on, evaluated_on=method.lands_on,
        base_versions={"old": pair.version_id("old"), "new": pair.version_id("new")},
        module_key=module_dir.name, module_from=source.name,
        config_hash=config_hash(dataclasses.asdict(method.recipe)),
        train_wall_s=train_cost["wall_s"] if trained_here else 0.0,
        eval_wall_s=eval_cost["wall_s"],
        peak_mem_mb=max(train_cost["peak_mem_mb"] if trained_here else 0.0, eval_cost["peak_mem_mb"]),
        memory_kind=eval_cost["memory_kind"], device=eval_cost["device"],
        trainable_params=meta["trainable_params"], train_tokens=meta["train_tokens"] if trained_here else 0,
        samples=score["samples"],
        device_count=eval_cost.get("device_count", 1),
        peak_reserved_mb=max(train_cost.get("peak_reserved_mb", 0.0) if trained_here else 0.0,
                             eval_cost.get("peak_reserved_mb", 0.0)),
        land_wall_s=result.get("land_wall_s", 0.0), module_mb=module_size_mb(module_dir),
        train_examples=meta["steps"] * meta["recipe"]["batch_size"] if trained_here else 0,
        precision=options.precision, tokens_per_s=throughput,
        mfu=mfu(meta.get("total_params", 0), meta["train_tokens"], train_s, train_cost["device"], options.precision)
        if throughput else None,
    )


def run_grid(methods: list[str], pair: Pair, tasks: list[Task], seeds: list[int], overrides: dict | None = None,
             limit: int | None = None, executor=None, options: TrainOptions | None = None) -> list[Cell]:
    built = [build_method(m, overrides, pair) for m in methods]  # all recipes checked before any training
    check_pair(pair)  # shapes from headers only: an incompatible pair fails before anything trains
    jobs = [(method, pair, task, seed, limit, overrides, options)
            for seed in seeds for task in tasks for method in built]
    return (executor or LocalExecutor()).map(evaluate_cell, jobs, f"{pair.name}: cells",
                                             label=lambda job: f"{job[0].name}/{job[2].name}/seed{job[3]}")
