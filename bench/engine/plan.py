"""`bench run --dry-run`: what a run would train and evaluate, with each training's resolved recipe, and what
it would cost, without downloading.

Cost figures are the papers' own: Trans-PEFT Fig. 7 gives 14-24 A800 GPU-hours per commonsense
fine-tune of a 7B model (Commonsense170K, 3 epochs). A training is estimated from that figure,
scaled by the model's size (params / 7B) and the training examples seen (size x epochs / 170K x 3).
Tiny pairs cost CPU minutes, not GPU-hours, and are reported as such.
"""

from __future__ import annotations

import dataclasses

from bench.core.recipe import Recipe
from bench.engine.protocol import build_method, job_gpus, module_key, module_source

FIG7_GPU_HOURS = (14.0, 24.0)      # A800 GPU-hours per commonsense fine-tune of a 7B model
FIG7_EXAMPLES = 170_420 * 3        # Commonsense170K x 3 epochs
FIG7_PARAMS_B = 7.0


def plan(methods: list[str], pair, tasks: list, seeds: list[int], overrides: dict | None = None) -> dict:
    trainings: dict[str, dict] = {}
    evaluations = []
    for seed in seeds:
        for task in tasks:
            for name in methods:
                method = build_method(name, overrides, pair, task)
                source = module_source(method, overrides, pair, task)
                chain = [source] + ([build_method(source.starts_from, overrides, pair, task)]
                                    if source.starts_from else [])
                for trained in chain:  # a warm start also needs the module it starts from
                    key = module_key(trained, pair, task, seed, overrides)
                    trainings.setdefault(key, {"method": trained.name, "task": task.train_key or task.name,
                                               "base": pair.version_id(trained.trains_on), "seed": seed,
                                               "examples": trained_examples(trained, task),
                                               **resolved_training(trained, task)})
                evaluations.append({"method": name, "task": task.name, "seed": seed,
                                    "on": pair.version_id(method.lands_on)})
    scale = pair.params_b / FIG7_PARAMS_B
    examples = sum(t["examples"] for t in trainings.values())
    low, high = (hours * scale * examples / FIG7_EXAMPLES for hours in FIG7_GPU_HOURS)
    return {"pair": pair.name, "params_b": pair.params_b, "trainings": list(trainings.values()),
            "evaluations": evaluations, "gpu_hours": (low, high), "gpus_per_job": job_gpus(pair)}


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
    lines = [f"plan for pair {p['pair']}: {len(p['trainings'])} trainings (shared modules counted once), "
             f"{len(p['evaluations'])} evaluations"]
    for t in p["trainings"]:
        size = f", {t['examples']:,} examples" if t["examples"] else ""
        lines.append(f"  train {t['method']:16s} {t['task']:24s} seed {t['seed']} on {t['base']}{size}")
        lines.append(f"        {describe_recipe(t)}")
    for e in p["evaluations"]:
        lines.append(f"  eval  {e['method']:16s} {e['task']:24s} seed {e['seed']} on {e['on']}")
    low, high = p["gpu_hours"]
    if high:
        lines.append(f"estimated training cost: {_hours(low)}-{_hours(high)} A800 GPU-hours "
                     "(Trans-PEFT Fig. 7: 14-24 per 7B commonsense fine-tune, scaled by size and examples)")
    elif p["params_b"]:
        lines.append("estimated training cost: unknown (these tasks declare no training-set size)")
    else:
        lines.append("estimated training cost: CPU minutes (a tiny pair)")
    gpus = p.get("gpus_per_job", 0)
    lines.append(f"--executor ray: each training and evaluation is a task asking for {gpus} GPU"
                 + ("" if gpus == 1 else "s (CPU work)"))
    return "\n".join(lines)
