"""The shared train-and-transfer protocol: pair -> method -> trained module -> landed -> task -> cell.

Every method goes through the same three steps, each cached in the store under a content key:
  train_module(method, pair, task, seed)   the PEFT module, trained on method.trains_on's base (or reused,
                                           or warm-started from another method's module)
  land it on method.lands_on's base        (method.land: as an adapter, merged, or transformed)
  evaluate_cell(...)                       the task's lm-eval / evalplus scorer; a module that lands on
                                           another base is also scored as a plain adapter on the base it
                                           trained on (source_score: retention = score / source_score)
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
from bench.core.recipe import layered, with_values
from bench.core.store import Store, config_hash, one_line, read_artifact_json
from bench.engine.executors import LocalExecutor
from bench.models import distributed
from bench.models.loading import device, load_model
from bench.models.memory import auto_micro_batch
from bench.models.peft_types import load_module
from bench.models.precision import compute_dtype, keep_trainable_fp32
from bench.models.training import TrainOptions, count_trainable, supervised_batches, train_loop
from bench.pairs.base import Pair
from bench.pairs.compat import check_pair
from methods import METHODS, Method, MethodContext
from tasks import vllm_backend
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
    # Retention: the same module's score on the base it trained on, for cells that land on another base
    # (None where the module is scored on its own training base: score is then that score).
    source_score: float | None = None
    # The resolved recipe the module trained with (direct_transfer: finetune_old's), and what the loop made of
    # it: trained_steps, trained_lr (x the task's lr_scale), trained_warmup_steps.
    recipe: dict = field(default_factory=dict)
    precision: str = "fp32"      # the compute dtype the module trained and was evaluated in (bench.models.precision)
    tokens_per_s: float | None = None  # training throughput (non-padding tokens / train wall); None: not trained here
    mfu: float | None = None     # 6 x params x tokens / wall / the device's peak FLOP/s; None on CPUs, unknown GPUs


def build_method(name: str, overrides: dict | None = None, pair: Pair | None = None, task: Task | None = None
                 ) -> Method:
    """A registered method with its recipe resolved, each layer over the one before (bench/core/recipe.py):
    the method's own default_recipe; the task's suite recipe and the method's section of it; the pair's
    rescaling (tiny pairs); the user's overrides ({"lr": 1e-3} or {"trans_peft.p_c": 0.2}), absolute values.
    Pass the task the method will train for: its suite decides the recipe, and a method reused or started from
    (direct_transfer's finetune_old) is built for that task too."""
    cls = METHODS.get(name)
    suite = layered(*task.recipe_layers(name)) if task is not None else {}
    scaled = pair.recipe_scale(with_values(cls.default_recipe, suite)) if pair is not None else {}
    fields = {f.name for f in dataclasses.fields(cls.recipe_class)}
    user = {}
    for key, value in (overrides or {}).items():
        scope, _, option = key.rpartition(".")
        if scope == name or (not scope and option in fields):
            user[option] = value
    return cls(**layered(suite, scaled, user))


def module_source(method: Method, overrides: dict | None, pair: Pair, task: Task | None = None) -> Method:
    """The method whose trained module `method` lands: itself, or the one it reuses."""
    return build_method(method.reuses, overrides, pair, task) if method.reuses else method


def load_base(pair: Pair, version: str, precision: str | None = None):
    """The base, in the compute dtype of `precision` (None: the pair's own dtype, for tools outside the grid)."""
    dtype = pair.dtype if precision is None else compute_dtype(precision)
    return load_model(pair.base_dir(version), dtype, pair.trust_remote_code,
                      what=f"the {version} base of pair {pair.name!r}")


def encode_examples(tokenizer, examples: list[tuple[str, str]], max_length: int | None = None
                    ) -> list[tuple[list[int], list[int]]]:
    """Tokenize prompt+answer together (as the model will see it); the answer is the loss region.

    max_length keeps the first max_length tokens of prompt + answer + EOS, as the papers' scripts truncate.
    An example cut inside its prompt keeps no answer token, so it has nothing to learn from: it is left out
    (a batch of such rows would have no loss at all)."""
    encoded = []
    for prompt, answer in examples:
        n_prompt = len(tokenizer(prompt)["input_ids"])
        full = (tokenizer(prompt + answer)["input_ids"] + [tokenizer.eos_token_id])[:max_length]
        if len(full) > n_prompt:
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
        start = build_method(method.starts_from, overrides, pair, task)
        key["starts_from"] = module_key(start, pair, task, seed, overrides, options)
    if distributed.world_size() > 1:  # same global batches, other random draws (dropout, masks) and float order
        key["processes"] = distributed.world_size()
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
        return train_module(build_method(name, overrides, pair, task), pair, task, seed, overrides, options)[0]

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

    def build(out: Path | None):  # None: another rank of a data-parallel training (it trains; rank 0 stores)
        vllm_backend.release()  # a vLLM engine kept from the last evaluation gives the GPU back
        base, tokenizer = load_base(pair, method.trains_on, options.precision)
        torch.manual_seed(seed)
        model = method.start(base, ctx)  # a fresh LoRA / DoRA / adapter, or another method's module (warm start)
        keep_trainable_fp32(model)
        if distributed.collective():  # the same initial module everywhere, each rank its own dropout and masks
            torch.manual_seed(seed * 1000 + distributed.rank())
        recipe = method.recipe
        examples = encode_examples(tokenizer, task.train_examples(pair, method.trains_on), recipe.max_length)
        if len(examples) < recipe.batch_size:
            cut = f" within max_length {recipe.max_length}" if recipe.max_length else ""
            raise BenchError(f"{task.name} has {len(examples)} training examples{cut}, fewer than one batch "
                             f"of {recipe.batch_size}")
        steps = method.train_steps(task.train_steps(len(examples), recipe.batch_size, recipe.epochs))
        warmup_steps = recipe.warmup_for(steps)
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
            stats = train_loop(model, batches, steps, lr, recipe.schedule, warmup_steps, recipe.min_lr_rate,
                               description=f"training {method.name} on {task.name}", options=run,
                               data_parallel=distributed.collective())
        if out is None:
            return
        method.save_module(model, out)
        meta = {"method": method.name, "task": task.name, "seed": seed, "trained_on": method.trains_on,
                "base": pair.version_id(method.trains_on), "recipe": dataclasses.asdict(method.recipe),
                "steps": steps, "lr": lr, "warmup_steps": warmup_steps, "examples": len(examples),
                "trainable_params": count_trainable(model), **stats,
                "total_params": sum(p.numel() for p in model.parameters()), "options": dataclasses.asdict(run),
                "cost": dataclasses.asdict(cost)}
        (out / "module.json").write_text(json.dumps(meta, indent=2, sort_keys=True))

    path = stored("modules", key, build, together=True)
    meta = read_artifact_json(path / "module.json")
    check_module(path, meta, pair.version_id(method.trains_on))
    return path, meta


def stored(kind: str, key: str, build, together: bool = False) -> Path:
    """STORE.get, in one process or in all processes of a data-parallel run. There rank 0 alone writes the store:
    if it has to build, the others run build(None) beside it when `together` (a training they take part in),
    or wait at a barrier (an evaluation); then all read the entry."""
    if not distributed.collective():
        return STORE.get(kind, key, build)
    if not distributed.is_main():
        if distributed.broadcast_flag() and together:
            build(None)
        distributed.barrier()
        return STORE.root / kind / key
    building = False

    def tell_then_build(out: Path):
        nonlocal building
        building = True
        distributed.broadcast_flag(True)
        if together:
            build(out)
        else:
            with distributed.alone():  # nothing inside may wait for the others: they are at the barrier
                build(out)

    path = STORE.get(kind, key, tell_then_build)
    if not building:
        distributed.broadcast_flag(False)
    distributed.barrier()
    return path


def landed(method: Method, module_dir: Path, base, ctx: MethodContext):
    """method.land, with a module that does not fit the base as one line."""
    try:
        return method.land(module_dir, base, ctx)
    except (RuntimeError, ValueError, KeyError) as error:  # e.g. shape mismatch: another architecture
        raise BenchError(f"module {module_dir} does not fit the {method.lands_on} base of {ctx.pair.name!r}: "
                         f"{one_line(error)}") from None


def served(method: Method, module_dir: Path, ctx: MethodContext):
    """The landed module as vLLM serves it (--eval-backend vllm): a LoRA landed unchanged is served beside its
    base (enable_lora, max_lora_rank = its rank); anything else (DoRA, PortLLM's patch, a method with its own
    land) is landed once with HF, merged into plain weights, stored, and served as a model of its own."""
    pair, version = ctx.pair, method.lands_on
    config_file = module_dir / "adapter_config.json"
    config = read_artifact_json(config_file) if config_file.exists() else {}
    if type(method).land is Method.land and config.get("peft_type") == "LORA" and not config.get("use_dora"):
        return vllm_backend.serve(pair.base_dir(version), pair.dtype, pair.trust_remote_code, lora=module_dir,
                                  rank=config["r"])

    def merge(out: Path):
        base, tokenizer = load_base(pair, version)
        model = landed(method, module_dir, base, ctx)
        if hasattr(model, "merge_and_unload"):  # landed as a PEFT module (DoRA)
            model = model.merge_and_unload()
        if any(hasattr(m, "bottleneck_adapter") for m in model.modules()):
            raise BenchError(f"{method.name} lands bottleneck adapters, extra sub-layers that no merge into the "
                             "base's weights expresses and vLLM cannot serve; use --eval-backend hf")
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        del model, base
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the memory is vLLM's next

    key = config_hash({"module": module_dir.name, "land": method.name, "target": pair.version_id(version)})
    return vllm_backend.serve(stored("merged", key, merge), pair.dtype, pair.trust_remote_code)


def evaluate_landed(pair: Pair, task: Task, module_dir: Path, version: str, landing: str, land, limit: int | None,
                    backend: str = "hf", serve=None, precision: str = "fp32") -> dict:
    """Score `module_dir` landed on `version` by land(base) -> model (or, on the vllm backend, serve() -> an lm-eval
    LM); cached under (module, landing, base, task).

    landing names how the module lands: "adapter" for a plain PEFT module (one key for every method that
    lands that way, so finetune_old's evaluation is also direct_transfer's source evaluation), else the method.
    """
    eval_key = {"module": module_dir.name, "land": landing, "target": pair.version_id(version), "task": task.name,
                "limit": limit}
    if test_data := task.test_data_hash(pair, version):
        eval_key["test_data"] = test_data
    if backend != "hf":
        eval_key["backend"] = backend
    if precision != "fp32":  # (fp32 keys stay as they were)
        eval_key["precision"] = precision
    eval_key = config_hash(eval_key)

    def build(out: Path):
        base, tokenizer = load_base(pair, version, precision) if backend == "hf" else (None, None)
        with measure() as cost:
            land_start = time.perf_counter()
            if backend == "hf":
                try:
                    model = land(base)
                except (RuntimeError, ValueError, KeyError) as error:  # e.g. shape mismatch: another architecture
                    raise BenchError(f"module {module_dir} does not fit the {version} base of {pair.name!r}: "
                                     f"{one_line(error)}") from None
            else:  # an lm-eval LM served by vLLM; the tasks score it as they score an in-memory model
                model = serve()
                tokenizer = model.tokenizer
            land_wall_s = time.perf_counter() - land_start
            if backend == "hf" and precision != "fp32":  # the fp32 adapter too: lm-eval's forward turns autocast off
                model = model.to(compute_dtype(precision))
            score = task.evaluate(model, tokenizer, pair, version, limit=limit)
        (out / "eval.json").write_text(json.dumps({"score": dataclasses.asdict(score),
                                                   "cost": dataclasses.asdict(cost), "land_wall_s": land_wall_s},
                                                  sort_keys=True))

    return read_artifact_json(stored("evals", eval_key, build) / "eval.json")


def landing_name(method: Method) -> str:
    return "adapter" if type(method).land is Method.land else method.name


def source_evaluation(source: Method, pair: Pair, task: Task, module_dir: Path, limit: int | None,
                      precision: str = "fp32") -> dict:
    """The module as a plain adapter on the base it trained on (PortLLM before the patch, Trans-PEFT without
    masking, which only ever acts in training): what it learned, before any transfer."""
    return evaluate_landed(pair, task, module_dir, source.trains_on, "adapter",
                           lambda base: load_module(base, module_dir, source.recipe), limit, precision=precision)


def evaluate_cell(method: Method, pair: Pair, task: Task, seed: int, limit: int | None,
                  overrides: dict | None, backend: str = "hf", options: TrainOptions | None = None) -> Cell:
    options = options or TrainOptions()
    source = module_source(method, overrides, pair, task)
    module_dir, meta = train_module(source, pair, task, seed, overrides, options)
    ctx = context(method, pair, task, seed, overrides, options)
    result = evaluate_landed(pair, task, module_dir, method.lands_on, landing_name(method),
                             lambda base: method.land(module_dir, base, ctx), limit, backend,
                             lambda: served(method, module_dir, ctx), options.precision)
    # Retention: a module that lands on another base than it trained on is also scored where it trained.
    transferred = source.trains_on != method.lands_on
    source_score = (source_evaluation(source, pair, task, module_dir, limit, options.precision)["score"]["score"]
                    if transferred else None)
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
        source_score=source_score,
        recipe=meta["recipe"] | {"trained_steps": meta["steps"], "trained_lr": meta["lr"],
                                 "trained_warmup_steps": meta.get("warmup_steps", 0)},
        train_examples=meta["steps"] * meta["recipe"]["batch_size"] if trained_here else 0,
        precision=options.precision, tokens_per_s=throughput,
        mfu=mfu(meta.get("total_params", 0), meta["train_tokens"], train_s, train_cost["device"], options.precision)
        if throughput else None,
    )


def job_gpus(pair: Pair) -> int:
    """GPUs one training or evaluation of `pair` asks a cluster for: none for tiny pairs (CPU work), else one."""
    return 0 if pair.world() is not None else 1


def training_of(job: tuple) -> tuple[str, object, tuple]:
    """(module key, train_module, its arguments): the training an evaluate_cell job lands (executors' `needs`)."""
    method, pair, task, seed, _, overrides, _, options = job
    source = module_source(method, overrides, pair, task)
    return (module_key(source, pair, task, seed, overrides, options), train_module,
            (source, pair, task, seed, overrides, options))


def check_targets(methods: list[Method], tensor_names, base: str) -> None:
    """LoRA and DoRA targets must name modules of the base (peft matches a module name or its last parts), so a
    misspelt --set targets fails before anything trains, not in peft's traceback at the first training."""
    modules = {name.rsplit(".", 1)[0] for name in tensor_names}
    for method in methods:
        if method.recipe.peft == "adapter":
            continue  # the bottleneck adapter sits after every layer's FFN and ignores targets
        missing = [t for t in method.recipe.targets if not any(m == t or m.endswith(f".{t}") for m in modules)]
        if missing:
            raise BenchError(f"{method.name}: targets {', '.join(map(repr, missing))} name no module of {base} "
                             f"(e.g. {', '.join(sorted({m.rsplit('.', 1)[-1] for m in modules})[:8])})")


def task_recipe_overrides(task, overrides: dict | None, task_overrides: dict[str, dict] | None) -> dict:
    """One task's recipe overrides: its tuned recipes under the user's --set/--config (run_grid and the plan)."""
    return {**(task_overrides or {}).get(task.name, {}), **(overrides or {})}


def run_grid(methods: list[str], pair: Pair, tasks: list[Task], seeds: list[int], overrides: dict | None = None,
             limit: int | None = None, executor=None, eval_backend: str = "hf",
             task_overrides: dict[str, dict] | None = None, options: TrainOptions | None = None) -> list[Cell]:
    """task_overrides: {task: {"METHOD.option": value}} (tuned recipes), layered under `overrides` (the user's).
    Every recipe (one per method and task: suites differ) is checked before any training."""
    per_task = {t.name: task_recipe_overrides(t, overrides, task_overrides) for t in tasks}
    built = {(m, t.name): build_method(m, per_task[t.name], pair, t) for m in methods for t in tasks}
    with distributed.main_first():  # under --nproc, rank 0 builds the pair's bases; the others then read them
        check_pair(pair)  # shapes from headers only: an incompatible pair fails before anything trains
    trained = list(built.values()) + [build_method(name, per_task[t.name], pair, t) for t in tasks for m in methods
                                      for name in (built[m, t.name].reuses, built[m, t.name].starts_from) if name]
    check_targets(trained, pair.architecture("old")[1], f"{pair.name}'s old base")
    jobs = [(built[(m, task.name)], pair, task, seed, limit, per_task[task.name], eval_backend, options)
            for seed in seeds for task in tasks for m in methods]
    return (executor or LocalExecutor()).map(evaluate_cell, jobs, f"{pair.name}: cells",
                                             label=lambda job: f"{job[0].name}/{job[2].name}/seed{job[3]}",
                                             needs=training_of, gpus=job_gpus(pair))
