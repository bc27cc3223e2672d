"""`bench tune`: a seeded Optuna TPE search over one method's recipe for one (pair, task).

Each trial trains the method's module with the trial's recipe on the task's training data minus a validation
split carved from it (tasks/tiny: a fixed 20% of the training items), and scores it as a plain adapter on that
split, on the base the method trains on: the old base for every transfer method. The papers tune there, and a
user carrying a module across an update cannot see the new base before transferring; finetune_new, the
re-tuning reference, trains (and so is tuned) on the new base. Test data are never read.

Fairness: every method searches lr and steps over the same ranges relative to its own default, plus its own
knobs (Trans-PEFT p_c and p_i over the paper's grid; PortLLM rank, alpha = 2 x rank; for both, the LoRA targets:
the method's paper's or the suite's, where the two differ), with the same --trials.
Trials go through the store like any training, so a rerun of the same search is free.

Selection: the one-standard-error rule (Breiman et al. 1984, as glmnet's lambda.1se): the default recipe (trial 0)
stays unless the best trial beats it by more than the best's standard error. On a few dozen validation items the
best of K trials wins by noise as often as by merit (tiny_knowledge: a 3.6-point win on 56 items picked a recipe
whose test spread over 10 seeds was twice the default's), and a method's default is its authors' recipe.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import statistics
from pathlib import Path

from bench.core.errors import BenchError
from bench.core.options import parse_value
from bench.engine.protocol import build_method, source_evaluation, train_module
from bench.models.training import TrainOptions
from methods import METHODS
from tasks.recipes import read_recipe_file, write_recipe_file

COMMON_KNOBS = ("lr", "steps")
OWN_KNOBS = {"trans_peft": ("p_c", "p_i", "targets"), "portllm": ("rank", "targets"),
             "warm_retune": ("retune_fraction",)}
LR_RANGE = (0.1, 3.0)       # x the method's default lr (after the pair's rescaling), log scale
# x the task's training budget, log scale. At most the budget: a tuned recipe never costs more than the default
# one, so tuning buys no compute (the cold default run keeps its time) and every method searches the same budget.
STEPS_RANGE = (0.25, 1.0)
RANKS = (4, 8, 16, 32)


def knobs_of(method: str) -> tuple[str, ...]:
    return COMMON_KNOBS + OWN_KNOBS.get(method, ())


def check_tunable(method: str, knobs: list[str] | None) -> list[str]:
    """The knobs to search (default: all of the method's); one-line errors for what cannot be tuned."""
    cls = METHODS.get(method)
    if cls.reuses:
        raise BenchError(f"{method} trains no module of its own (it lands {cls.reuses}'s): tune {cls.reuses}")
    allowed = knobs_of(method)
    chosen = list(knobs) if knobs else list(allowed)
    for knob in chosen:
        if knob not in allowed:
            raise BenchError(f"{method} has no tunable knob {knob!r} (knobs: {', '.join(allowed)})")
    if not chosen:
        raise BenchError("--knobs is empty")
    return chosen


def check_search_size(trials: int, train_seeds: int) -> None:
    """One-line errors for a search of no trials or trials of no trainings."""
    if trials <= 0:
        raise BenchError(f"--trials must be a positive number of trials, got {trials}")
    if train_seeds <= 0:
        raise BenchError(f"--train-seeds must be a positive number of seeds, got {train_seeds}")


def step_budget(method, task, pair) -> int:
    """The steps the method's default recipe trains for on this task."""
    recipe = method.recipe
    return method.train_steps(task.train_steps(len(task.train_examples(pair, method.trains_on)),
                                               recipe.batch_size, recipe.epochs))


def search_space(method, budget: int, knobs: list[str], suite_targets=None) -> dict[str, tuple]:
    """knob -> ("float", low, high, log) | ("int", low, high, log) | ("choice", values): what the trials draw, for a
    method whose default recipe trains `budget` steps. suite_targets: the LoRA targets the task's suite gives every
    method; the method's own, its class default (its paper's: PortLLM's seven linears, Trans-PEFT's math script's
    q, k, v, o), are the other choice, and trial 0 keeps the resolved recipe's. Targets are drawn as comma-joined
    names (Optuna's choices are scalars), as `--set targets=q_proj,v_proj` writes them."""
    recipe = method.recipe
    own = (recipe.targets, method.default_recipe.targets, suite_targets)
    targets = tuple(dict.fromkeys(",".join(t) for t in own if t))
    space = {
        "lr": ("float", recipe.lr * LR_RANGE[0], recipe.lr * LR_RANGE[1], True),
        "steps": ("int", max(1, round(budget * STEPS_RANGE[0])), max(2, round(budget * STEPS_RANGE[1])), True),
        "p_c": ("float", 0.0, 0.3, False),   # Trans-PEFT's grid {0.1, 0.2, 0.3}, and 0 (off)
        "p_i": ("float", 0.0, 0.1, False),   # Trans-PEFT's grid {0.01, 0.05, 0.1}, and 0 (off)
        "rank": ("choice", RANKS),
        "targets": ("choice", targets),
        "retune_fraction": ("float", 0.05, 1.0, True),
    }
    # A choice of one value is no knob (PortLLM's targets on tiny_arith, Trans-PEFT's on tiny_knowledge and tiny_code,
    # where the suite's are the method's own): it is left out, so that the search draws, and its trials table reads,
    # as without it.
    return {k: space[k] for k in knobs if not (space[k][0] == "choice" and len(space[k][1]) < 2)}


def default_point(method, budget: int, space: dict) -> dict:
    """The method's default recipe as a trial (trial 0 of every search): a tuned recipe is then never worse than the
    default on the tuning seeds, and every method starts from its known-good point."""
    point = {k: budget if k == "steps" else getattr(method.recipe, k) for k in space}
    return point | ({"targets": ",".join(point["targets"])} if "targets" in point else {})


def recipe_value(knob: str, value):
    """A drawn value as the recipe holds it (targets: a list of module names)."""
    return value.split(",") if knob == "targets" else value


def suggest(trial, name: str, spec: tuple):
    if spec[0] == "float":
        return trial.suggest_float(name, spec[1], spec[2], log=spec[3])
    if spec[0] == "int":
        return trial.suggest_int(name, spec[1], spec[2], log=spec[3])
    return trial.suggest_categorical(name, list(spec[1]))


def method_overrides(method: str, overrides: dict) -> dict:
    """The user's --set/--config values that apply to `method`, by option name (what a tuned recipe keeps)."""
    fields = {f.name for f in dataclasses.fields(METHODS.get(method).recipe_class)}
    mine = {}
    for key, value in overrides.items():
        scope, _, option = key.rpartition(".")
        if scope in ("", method) and option in fields:
            mine[option] = value
    return mine


def plain(value):
    """Tuples as lists (YAML's safe dumper writes no tuples)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return [plain(v) for v in value] if isinstance(value, list | tuple) else value


def tune(method: str, pair, task, trials: int, seed: int, knobs: list[str] | None = None,
         overrides: dict | None = None, train_seeds: int = 1, precision: str = "fp32") -> dict:
    """Run the search; returns the best recipe, its validation score and one row per trial.

    A trial's score is its mean validation score over `train_seeds` trainings (seeds seed, seed+1, ...): on one seed,
    picking the best of K noisy scores picks a lucky seed as often as a good recipe (the winner's curse).
    `precision` (resolved, as `bench run` resolves it): trials train and score in the precision the recipe will
    run in, so a recipe is not chosen in fp32 for a bf16 run."""
    import optuna

    check_search_size(trials, train_seeds)
    knobs = check_tunable(method, knobs)
    validation = task.validation_task()  # one-line error for a task without a training split to carve
    fixed = method_overrides(method, overrides or {})
    base = build_method(method, {f"{method}.{k}": v for k, v in fixed.items()}, pair, task)
    budget = step_budget(base, validation, pair)
    space = search_space(base, budget, knobs, validation.recipe_layers(method)[0].get("targets"))
    options = TrainOptions(precision=precision)
    rows = []

    def objective(trial) -> float:
        params = {name: suggest(trial, name, spec) for name, spec in space.items()}
        if "rank" in params:
            params["alpha"] = 2 * params["rank"]  # keep scaling alpha / rank at the recipe's 2
        recipe = fixed | {k: recipe_value(k, v) for k, v in params.items()}
        scoped = {f"{method}.{k}": v for k, v in recipe.items()}
        built = build_method(method, scoped, pair, task)
        scores, walls, modules = [], [], []
        for train_seed in range(seed, seed + train_seeds):
            module_dir, meta = train_module(built, pair, validation, train_seed, scoped, options)
            score = source_evaluation(built, pair, validation, module_dir, None, precision)["score"]
            scores.append(score["score"])
            walls.append(meta["cost"]["wall_s"])
            modules.append(module_dir.name)
        mean = sum(scores) / len(scores)
        rows.append({"trial": trial.number, **params, "validation": mean,
                     "validation_per_seed": " ".join(f"{x:.4g}" for x in scores), "n": score["n"],
                     "train_wall_s": round(sum(walls), 1), "module": " ".join(modules)})
        trial.set_user_attr("recipe", recipe)
        return mean

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(default_point(base, budget, space))
    study.optimize(objective, n_trials=trials)
    chosen, selection = choose_trial(rows)
    return {"method": method, "pair": pair.name, "task": task.name,
            "recipe": plain(study.trials[chosen["trial"]].user_attrs["recipe"]),
            "validation": {"metric": task.metric, "score": chosen["validation"], "n": chosen["n"]},
            "selection": selection,
            "tuned_on": f"{base.trains_on} ({pair.version_id(base.trains_on)})",
            "search": {"trials": trials, "sampler": f"optuna TPE, seed {seed}, trial 0 = the default recipe",
                       "train_seed": seed, "train_seeds": train_seeds, "precision": precision,
                       "space": {k: plain(v[1] if v[0] == "choice" else v[1:]) for k, v in space.items()},
                       "fixed": plain(fixed)},
            "trials": rows}


SELECTION_RULE = ("one standard error: the default (trial 0) unless the best trial beats it by more than the best's "
                  "standard error")


def standard_error(row: dict) -> float:
    """A trial's mean validation score's standard error, in points: the items' binomial noise (every seed scores the
    same items, so more seeds do not average it away) plus the seeds' spread. The metrics tuned on are
    proportions of items scored 0 or 1 (accuracy, exact match, pass@1), on a 0-100 scale."""
    scores = [float(x) for x in str(row["validation_per_seed"]).split()]
    p = min(1.0, max(0.0, float(row["validation"]) / 100))
    items = 100.0 ** 2 * p * (1 - p) / int(row["n"])
    seeds = statistics.variance(scores) / len(scores) if len(scores) > 1 else 0.0
    return math.sqrt(items + seeds)


def choose_trial(rows: list[dict]) -> tuple[dict, dict]:
    """(the chosen trial's row, how it was chosen) by the one-standard-error rule; rows[0] is the default recipe.
    Rows are a search's or a trial table's (values then text)."""
    best = max(rows, key=lambda r: float(r["validation"]))  # max() keeps the first of equal best: deterministic
    error = standard_error(best)
    default = rows[0]
    chosen = default if float(default["validation"]) >= float(best["validation"]) - error else best
    return chosen, {"rule": SELECTION_RULE, "best_trial": int(best["trial"]), "best_score": float(best["validation"]),
                    "standard_error": round(error, 2), "default_score": float(default["validation"]),
                    "chosen_trial": int(chosen["trial"])}


def reselect_entry(path: Path, existing: dict, task: str) -> dict:
    """The task's tuned entry chosen again from its committed trial table by the current rule; nothing trains."""
    entry = existing["tasks"].get(task)
    if entry is None:
        raise BenchError(f"{path} has no tuned recipe for {task} (tuned: {', '.join(existing['tasks']) or 'none'})")
    table = path.with_name(entry["trials_table"])
    if not table.is_file():
        raise BenchError(f"{table} is missing: nothing to choose from")
    rows = list(csv.DictReader(table.open()))
    if not rows:
        raise BenchError(f"{table} has no trials")
    chosen, selection = choose_trial(rows)
    recipe = dict(entry["search"].get("fixed") or {})
    recipe |= {k: recipe_value(k, parse_value(chosen[k])) for k in entry["search"]["space"]}
    if "alpha" in chosen:
        recipe["alpha"] = parse_value(chosen["alpha"])
    return {"method": existing["method"], "task": task, "recipe": recipe,
            "validation": entry["validation"] | {"score": float(chosen["validation"]), "n": int(chosen["n"])},
            "selection": selection, "tuned_on": entry["tuned_on"], "search": entry["search"], "trials": rows}


def check_tuned_file(path: Path, pair: str, method: str) -> dict:
    """The recipe file the search will update (its other tasks kept), checked readable and writable up front."""
    existing = read_recipe_file(path) if path.exists() else {"pair": pair, "method": method, "tasks": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BenchError(f"cannot write tuned recipes to {path}")
    return existing


def store_tuned(path: Path, existing: dict, found: dict, command: str) -> None:
    """<method>.yaml gets the task's entry; <method>.<task>.trials.csv beside it holds every trial. command: the
    search that made the trials."""
    task = found["task"]
    table = path.with_name(f"{found['method']}.{task}.trials.csv")
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(dict.fromkeys(k for r in found["trials"] for k in r)),
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(found["trials"])
    table.write_text(text.getvalue())
    existing["tasks"][task] = {k: found[k] for k in ("recipe", "validation", "selection", "tuned_on", "search")} | {
        "command": command, "trials_table": table.name}
    write_recipe_file(path, existing, "# Written by `bench tune` (tasks/recipes/__init__.py); bench run applies "
                                      "tasks.<task>.recipe under --set/--config.\n")
