"""`bench run --dry-run`: what a run would train and evaluate, with each training's resolved recipe, and what
it would cost, without downloading.

Cost figures are the papers' own: Trans-PEFT Fig. 7 gives 14-24 A800 GPU-hours per commonsense
fine-tune of a 7B model (Commonsense170K, 3 epochs). A training is estimated from that figure,
scaled by the model's size (params / 7B) and the training examples seen (size x epochs / 170K x 3).
Tiny pairs cost CPU minutes, not GPU-hours, and are reported as such.

Measured projections: once a results file of the same pair exists in the results directory (the folder `--out`
writes to; default results/), each training is also projected from that pair's measured training throughput:
examples x (measured tokens per example of the same task, else of any task) / (median measured tokens/s).
That is wall hours on the device that measured it (one GPU, or that CPU), which the line names.

Peak memory per training: bench/models/memory.py's formula, with the model's shape from a local config.json (a
built tiny pair, a mirror or huggingface cache copy) or the registry's dims, at the sequence length of the
recipe's max_length or, where the task generates its data here (tiny, synth), one token per byte of its longest
training example (a token covers at least one byte: an upper bound), whichever is shorter; else 1,024 tokens;
capped at the model's context.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from pathlib import Path

from bench.core.errors import BenchError
from bench.core.recipe import Recipe
from bench.core.results import load_results
from bench.core.store import Store
from bench.engine.protocol import build_method, job_gpus, landing_name, module_key, module_source, task_recipe_overrides
from bench.models.memory import FIT_FRACTION, Shape, estimate_bytes, gib, largest_fitting
from bench.models.precision import compute_dtype
from bench.models.training import TrainOptions

FIG7_GPU_HOURS = (14.0, 24.0)      # A800 GPU-hours per commonsense fine-tune of a 7B model
FIG7_EXAMPLES = 170_420 * 3        # Commonsense170K x 3 epochs
FIG7_PARAMS_B = 7.0


PLAN_SEQ_LEN = 1024  # tokens per training sequence when neither the recipe's max_length nor the data bounds it
SPECIAL_TOKENS_MARGIN = 8  # tokens a tokenizer may add to an example beyond one per byte (BOS, EOS, a prefix space)


def plan(methods: list[str], pair, tasks: list, seeds: list[int], overrides: dict | None = None,
         options: TrainOptions | None = None, results_dir: Path | None = None, memory_bytes: int | None = None,
         task_overrides: dict[str, dict] | None = None) -> dict:
    """The run's trainings and evaluations with their costs. memory_bytes: what this device can hold (for
    --micro-batch auto; None: not judged). task_overrides: the tuned recipes, layered as run_grid layers them (a
    plan without them showed the defaults, not what the run trains)."""
    options = options or TrainOptions()
    store = Store()
    in_store = set(store.keys("modules"))
    shape, shapes = model_shape(pair)
    measured = measured_throughput(pair, results_dir)
    trainings: dict[str, dict] = {}
    evaluations: dict[tuple, dict] = {}  # one per distinct (module, landing, base, task), as the store keeps them
    bounds: dict[tuple, int | None] = {}  # (task, split, version) -> longest training example, in tokens at most
    for seed in seeds:
        for task in tasks:
            overrides_here = task_recipe_overrides(task, overrides, task_overrides)
            for name in methods:
                method = build_method(name, overrides_here, pair, task)
                source = module_source(method, overrides_here, pair, task)
                chain = [source] + ([build_method(source.starts_from, overrides_here, pair, task)]
                                    if source.starts_from else [])
                module = module_key(source, pair, task, seed, overrides_here, options)
                for trained in chain:  # a warm start also needs the module it starts from
                    key = module if trained is source else module_key(trained, pair, task, seed, overrides_here,
                                                                      options)
                    if key not in trainings:
                        examples = trained_examples(trained, task)
                        damage = store.damage("modules", key) if key in in_store else None
                        trainings[key] = {"method": trained.name, "task": task.train_key or task.name,
                                          "base": pair.version_id(trained.trains_on), "seed": seed,
                                          "cached": key in in_store and not damage, "damaged": damage,
                                          "examples": examples,
                                          "memory": training_memory(trained, shape, shapes, options, memory_bytes,
                                                                    longest(task, pair, trained.trains_on, bounds)),
                                          "measured_hours": measured_hours(measured, task, examples),
                                          **resolved_training(trained, task)}
                landing = (module, landing_name(method), method.lands_on, task.name)
                evaluations.setdefault(landing, {"method": name, "task": task.name, "seed": seed,
                                                 "on": pair.version_id(method.lands_on)})
                if source.trains_on != method.lands_on:  # retention: the module scored where it trained
                    evaluations.setdefault((module, "adapter", source.trains_on, task.name),
                                           {"method": name, "task": task.name, "seed": seed, "source": True,
                                            "on": pair.version_id(source.trains_on)})
    scale = pair.params_b / FIG7_PARAMS_B
    examples = sum(t["examples"] for t in trainings.values())
    low, high = (hours * scale * examples / FIG7_EXAMPLES for hours in FIG7_GPU_HOURS)
    hours = [t["measured_hours"] for t in trainings.values()]
    return {"pair": pair.name, "params_b": pair.params_b, "trainings": list(trainings.values()),
            "evaluations": list(evaluations.values()), "gpu_hours": (low, high), "gpus_per_job": job_gpus(pair),
            "precision": options.precision, "measured": measured,
            "measured_hours": sum(hours) if hours and None not in hours else None}


def training_steps(methods: list[str], pair, tasks: list, seeds: list[int], overrides: dict | None = None,
                   task_overrides: dict[str, dict] | None = None) -> int:
    """The steps of the grid's distinct trainings, summed (0 for a training whose size is unknown before its data
    load): a method that reuses another's module adds none, a warm start adds the module it starts from. Within one
    grid a training is its method, task and seed, so no module key (a hash of the task's data) is needed."""
    total = 0
    for task in tasks:
        trained = {}
        here = task_recipe_overrides(task, overrides, task_overrides)
        for name in methods:
            source = module_source(build_method(name, here, pair, task), here, pair, task)
            trained[source.name] = source
            if source.starts_from:
                trained[source.starts_from] = build_method(source.starts_from, here, pair, task)
        total += sum(planned_steps(method, task) or 0 for method in trained.values())
    return total * len(seeds)


def model_shape(pair) -> tuple[Shape | None, dict | None]:
    """The old base's shape for memory estimates, without building or downloading anything."""
    known = pair.known_architecture("old")
    if known:
        config, shapes = known
        return Shape.of_config(config, sum(math.prod(s) for s in shapes.values())), shapes
    if pair.dims:
        hidden, layers, vocab = pair.dims
        return Shape(params=round(pair.params_b * 1e9), hidden=hidden, layers=layers, vocab=vocab), None
    return None, None


def trainable_params(recipe, shape: Shape, shapes: dict | None) -> int:
    """The module's parameters: LoRA r x (in + out) per targeted matrix (DoRA adds a magnitude per output row),
    from the checkpoint's tensor shapes when known, else every targeted matrix taken as hidden x hidden; a
    bottleneck adapter 2 x (2 r h + r + h) per layer."""
    if recipe.peft == "adapter":
        return shape.layers * 2 * (2 * recipe.rank * shape.hidden + recipe.rank + shape.hidden)
    extra = 1 if recipe.peft == "dora" else 0
    if shapes:
        return sum(recipe.rank * (dims[0] + dims[1]) + extra * dims[0] for name, dims in shapes.items()
                   if len(dims) == 2 and name.endswith(".weight") and name.split(".")[-2] in recipe.targets)
    return shape.layers * len(recipe.targets) * (2 * recipe.rank * shape.hidden + extra * shape.hidden)


def longest(task, pair, version: str, memo: dict) -> int | None:
    """Tokens of the task's longest training example at most (one per byte, plus special tokens); None where its
    data is not generated here (a download would be needed to know)."""
    key = (task.name, getattr(task, "split", None), version)
    if key not in memo:
        found = task.longest_train_bytes(pair, version)
        memo[key] = found + SPECIAL_TOKENS_MARGIN if found else None
    return memo[key]


def training_memory(method, shape: Shape | None, shapes: dict | None, options: TrainOptions,
                    memory_bytes: int | None, longest_tokens: int | None = None) -> dict | None:
    """Estimated peak of one training at its micro-batch (--micro-batch auto: the largest that fits), at the
    sequence length the recipe's max_length or the data's longest example allows, else PLAN_SEQ_LEN."""
    if shape is None:
        return None
    recipe = method.recipe
    bounds = [b for b in (getattr(recipe, "max_length", None), longest_tokens) if b]
    seq_len = min(min(bounds) if bounds else PLAN_SEQ_LEN, shape.context or PLAN_SEQ_LEN)
    trainable = trainable_params(recipe, shape, shapes)
    dtype_bytes = compute_dtype(options.precision).itemsize

    def need(micro: int) -> int:
        return estimate_bytes(shape, micro, seq_len, trainable, dtype_bytes, options.gradient_checkpointing)["total"]

    micro = options.micro_batch or recipe.batch_size
    if micro == "auto":
        budget = (memory_bytes or 0) * FIT_FRACTION
        micro = largest_fitting(recipe.batch_size, lambda m: need(m) <= budget)
    return {"micro_batch": micro, "seq_len": seq_len, "bytes": need(micro),
            "fits": None if memory_bytes is None else need(micro) <= memory_bytes * FIT_FRACTION}


def measured_throughput(pair, results_dir: Path | None) -> dict | None:
    """Training throughput measured for this pair in results files under results_dir (see the module doc)."""
    if results_dir is None or not Path(results_dir).is_dir():
        return None
    cells, files = [], []
    for path in sorted(Path(results_dir).glob("*.json")):
        if path.name.endswith(".costs.json"):
            continue
        try:
            results = load_results(path)
        except (BenchError, KeyError, TypeError, ValueError):
            continue  # not a results file
        if not isinstance(results, dict) or results.get("pair") != pair.name:
            continue
        mine = [c for c in results.get("cells", []) if isinstance(c, dict) and c.get("tokens_per_s")
                and c.get("train_examples")]
        cells += mine
        files += [path.name] if mine else []
    if not cells:
        return None
    per_example = {}
    for c in cells:
        per_example.setdefault(c["task"], []).append(c["train_tokens"] / c["train_examples"])
    return {"tokens_per_s": statistics.median(c["tokens_per_s"] for c in cells),
            "tokens_per_example": {t: statistics.fmean(v) for t, v in per_example.items()},
            "device": statistics.mode(c.get("device", "?") for c in cells), "files": files, "cells": len(cells)}


def measured_hours(measured: dict | None, task, examples: int) -> float | None:
    if not measured or not examples:
        return None
    per_task = measured["tokens_per_example"]
    tokens = per_task.get(task.name) or statistics.fmean(per_task.values())
    return examples * tokens / measured["tokens_per_s"] / 3600



def planned_steps(method, task) -> int | None:
    """Steps one training takes (recipe.steps honoured); None where neither the task's training-set size nor a
    fixed budget is known before its data are loaded."""
    recipe = method.recipe
    if not (task.train_size or task.fixed_steps or recipe.steps):
        return None
    return method.train_steps(task.train_steps(task.train_size, recipe.batch_size, recipe.epochs))


def trained_examples(method, task) -> int:
    """Examples one training sees: the steps it trains x its batch; 0 where unknown before loading the data."""
    steps = planned_steps(method, task)
    return steps * method.recipe.batch_size if steps and (task.train_size or method.recipe.steps) else 0


def resolved_training(method, task) -> dict:
    """What the plan shows of one training: its resolved recipe, the method's own knobs, and what the loop
    will make of them (steps, warm-up steps, the lr after the task's lr_scale)."""
    recipe = method.recipe
    steps = planned_steps(method, task)
    base_fields = {f.name for f in dataclasses.fields(Recipe)}
    return {"recipe": dataclasses.asdict(recipe), "steps": steps, "fixed_steps": bool(task.fixed_steps),
            "warmup": recipe.warmup_for(steps) if steps else None, "lr": recipe.lr * task.lr_scale,
            "knobs": {k: v for k, v in dataclasses.asdict(recipe).items() if k not in base_fields},
            "data": task.train_ref}


def describe_recipe(t: dict) -> str:
    """One training's recipe on one line: module, optimiser and schedule, budget, truncation, knobs, data."""
    r = t["recipe"]
    module = f"{r['peft']} r={r['rank']}" + (f" alpha={r['alpha']} dropout={r['dropout']:g} on {','.join(r['targets'])}"
                                             if r["peft"] != "adapter" else " (bottleneck)")
    lr = f"lr {t['lr']:.3g}" + (f" ({r['lr']:.3g} x the task's lr scale)" if t["lr"] != r["lr"] else "")
    schedule = r["schedule"] + (f" to {r['min_lr_rate']:g} x lr" if r["schedule"] == "cosine_with_min_lr" else "")
    if r["warmup_steps"]:
        warmup = f"warm-up {r['warmup_steps']} steps"
    elif r["warmup_ratio"]:
        warmup = f"warm-up ratio {r['warmup_ratio']:g}" + (f" ({t['warmup']} steps)" if t["warmup"] else "")
    else:
        warmup = "no warm-up"
    if r["steps"] or t["fixed_steps"]:
        budget = f"{t['steps']:,} steps of batch {r['batch_size']}"
    else:
        budget = f"{r['epochs']:g} epochs of batch {r['batch_size']}"
        budget += f" ({t['steps']:,} steps)" if t["steps"] else ""
    max_length = f"max length {r['max_length']}" if r["max_length"] else "no truncation"
    knobs = " ".join(f"{k}={v}" for k, v in t["knobs"].items())
    parts = [module, f"{lr} {schedule}, {warmup}", budget, max_length] + ([knobs] if knobs else [])
    return " | ".join(parts + ([f"data {t['data']}"] if t["data"] else []))


def _hours(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"  # 125, 1.1, 0.27


def describe_plan(p: dict) -> str:
    cached = sum(t["cached"] for t in p["trainings"])
    damaged = sum(bool(t["damaged"]) for t in p["trainings"])
    lines = [f"plan for pair {p['pair']}: {len(p['trainings'])} trainings (shared modules counted once; {cached} "
             f"already in the store" + (f", {damaged} there but damaged" if damaged else "")
             + f"), {len(p['evaluations'])} evaluations"]
    for t in p["trainings"]:
        size = f", {t['examples']:,} examples" if t["examples"] else ""
        memory = t["memory"]
        if memory:
            fits = {None: "", True: ", fits here", False: ", does NOT fit here"}[memory["fits"]]
            size += (f", peak ~{gib(memory['bytes'])} (micro-batch {memory['micro_batch']} x "
                     f"{memory['seq_len']} tokens, {p['precision']}{fits})")
        size += " (in the store: not retrained)" if t["cached"] else ""
        size += f" (in the store but damaged, {t['damaged']}: retrained)" if t["damaged"] else ""
        lines.append(f"  train {t['method']:16s} {t['task']:24s} seed {t['seed']} on {t['base']}{size}")
        lines.append(f"        {describe_recipe(t)}")
    for e in p["evaluations"]:
        source = " (its module where it trained: the source score)" if e.get("source") else ""
        lines.append(f"  eval  {e['method']:16s} {e['task']:24s} seed {e['seed']} on {e['on']}{source}")
    low, high = p["gpu_hours"]
    if high:
        lines.append(f"estimated training cost: {_hours(low)}-{_hours(high)} A800 GPU-hours "
                     "(Trans-PEFT Fig. 7: 14-24 per 7B commonsense fine-tune, scaled by size and examples)")
    elif p["params_b"]:
        lines.append("estimated training cost: unknown (these tasks declare no training-set size)")
    else:
        lines.append("estimated training cost: CPU minutes (a tiny pair)")
    measured = p["measured"]
    if measured:
        hours = p["measured_hours"]
        projected = (f"{_hours(hours)} hours of training on that device" if hours is not None
                     else "no projection (trainings of unknown size)")
        lines.append(f"measured: {measured['tokens_per_s']:,.0f} training tokens/s on {measured['device']} "
                     f"({measured['cells']} cells in {', '.join(measured['files'])}): {projected}")
    if not any(t["memory"] for t in p["trainings"]):
        lines.append("peak memory: unknown (no config.json here and no dims in the registry)")
    gpus = p.get("gpus_per_job", 0)
    lines.append(f"--executor ray: each training and evaluation is a task asking for {gpus} GPU"
                 + ("" if gpus == 1 else "s (CPU work)"))
    return "\n".join(lines)
