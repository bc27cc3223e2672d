"""`bench run --dry-run`: what a run would train and evaluate, and what it would cost, without downloading.

Cost figures are the papers' own: Trans-PEFT Fig. 7 gives 14-24 A800 GPU-hours per commonsense
fine-tune of a 7B model (Commonsense170K, 3 epochs). A training is estimated from that figure,
scaled by the model's size (params / 7B) and the training examples seen (size x epochs / 170K x 3).
Tiny pairs cost CPU minutes, not GPU-hours, and are reported as such.
"""

from __future__ import annotations

from bench.engine.protocol import build_method, job_gpus, module_key, module_source

FIG7_GPU_HOURS = (14.0, 24.0)      # A800 GPU-hours per commonsense fine-tune of a 7B model
FIG7_EXAMPLES = 170_420 * 3        # Commonsense170K x 3 epochs
FIG7_PARAMS_B = 7.0


def plan(methods: list[str], pair, tasks: list, seeds: list[int], overrides: dict | None = None) -> dict:
    trainings: dict[str, dict] = {}
    evaluations = []
    built = {name: build_method(name, overrides, pair) for name in methods}
    sources = {name: module_source(method, overrides, pair) for name, method in built.items()}
    for seed in seeds:
        for task in tasks:
            for name in methods:
                method, source = built[name], sources[name]
                chain = [source] + ([build_method(source.starts_from, overrides, pair)] if source.starts_from else [])
                for trained in chain:  # a warm start also needs the module it starts from
                    key = module_key(trained, pair, task, seed, overrides)
                    trainings.setdefault(key, {"method": trained.name, "task": task.train_key or task.name,
                                               "base": pair.version_id(trained.trains_on), "seed": seed,
                                               "examples": trained_examples(trained, task)})
                evaluations.append({"method": name, "task": task.name, "seed": seed,
                                    "on": pair.version_id(method.lands_on)})
    scale = pair.params_b / FIG7_PARAMS_B
    examples = sum(t["examples"] for t in trainings.values())
    low, high = (hours * scale * examples / FIG7_EXAMPLES for hours in FIG7_GPU_HOURS)
    return {"pair": pair.name, "params_b": pair.params_b, "trainings": list(trainings.values()),
            "evaluations": evaluations, "gpu_hours": (low, high), "gpus_per_job": job_gpus(pair)}


def trained_examples(method, task) -> int:
    """Examples one training sees: the steps it trains (recipe.steps honoured) x its batch; 0 where the task
    declares no training-set size and the recipe no steps."""
    if not task.train_size and not method.recipe.steps:
        return 0
    budget = task.train_steps(task.train_size, method.recipe.batch_size) if task.train_size else 0
    return method.train_steps(budget) * method.recipe.batch_size


def _hours(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"  # 125, 1.1, 0.27


def describe_plan(p: dict) -> str:
    lines = [f"plan for pair {p['pair']}: {len(p['trainings'])} trainings (shared modules counted once), "
             f"{len(p['evaluations'])} evaluations"]
    for t in p["trainings"]:
        size = f", {t['examples']:,} examples" if t["examples"] else ""
        lines.append(f"  train {t['method']:16s} {t['task']:18s} seed {t['seed']} on {t['base']}{size}")
    for e in p["evaluations"]:
        lines.append(f"  eval  {e['method']:16s} {e['task']:18s} seed {e['seed']} on {e['on']}")
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
