"""What a grid cost, in the papers' unit: device-hours, and what keeping N modules current would cost.

GPU-hours are wall x GPUs on CUDA; on a CPU run they are CPU-hours (wall x torch threads), labelled
as such so nobody reads a laptop's number as an A800's. The projection follows Trans-PEFT's argument
(Fig. 7): after every base update re-tuning (finetune_new) trains each module again, while a transfer
method only lands its existing module on the new base (PortLLM: a merge; Trans-PEFT, direct transfer:
load the adapter as is).
"""

from __future__ import annotations

import statistics

RETUNE = "finetune_new"
ORIGINAL = "finetune_old"  # the plain module on the old base that re-tuning replaces after an update


def on_gpu(cell: dict) -> bool:
    return not str(cell.get("device", "")).startswith("cpu")


def hours_unit(cells: list[dict]) -> str:
    kinds = {on_gpu(c) for c in cells}
    return {frozenset({True}): "GPU-h", frozenset({False}): "CPU-h"}.get(frozenset(kinds), "device-h")


def device_hours(cell: dict, wall_s: float) -> float:
    return wall_s * cell.get("device_count", 1) / 3600


def cell_device_hours(cell: dict) -> dict:
    return {"train": device_hours(cell, cell["train_wall_s"]), "eval": device_hours(cell, cell["eval_wall_s"]),
            "land": device_hours(cell, cell.get("land_wall_s", 0.0))}


def grid_total(cells: list[dict]) -> dict:
    hours = [cell_device_hours(c) for c in cells]
    return {"cells": len(cells), "unit": hours_unit(cells),
            "train_device_hours": sum(h["train"] for h in hours), "eval_device_hours": sum(h["eval"] for h in hours),
            "device_hours": sum(h["train"] + h["eval"] for h in hours),
            "wall_s": sum(c["train_wall_s"] + c["eval_wall_s"] for c in cells)}


def projection(cells: list[dict], n_modules: int) -> list[dict]:
    """Device-hours to keep n_modules modules current, per method that evaluates on the new base.

    one_time: training the modules on the old base (paid once; a reused module counts its trainer's cost;
              re-tuning counts finetune_old's, the module it replaces after the update).
    per_update: for every later base update, re-training on the new base (if the method does) plus landing.
    Per-module costs are means over the method's (task, seed) cells.
    """
    by_key = {(c["method"], c["task"], c["seed"]): c for c in cells}
    methods = list(dict.fromkeys(c["method"] for c in cells))
    rows = []
    for method in methods:
        mine = [c for c in cells if c["method"] == method and c["evaluated_on"] == "new"]
        if not mine:
            continue  # finetune_old: its modules stay on the old base
        one_time, per_update = [], []
        for c in mine:
            # Re-tuning starts from the same N modules on the old base as everyone: finetune_old's training.
            source = c["module_from"] if c["trained_on"] == "old" else ORIGINAL
            trainer = by_key.get((source, c["task"], c["seed"]))
            one_time.append(0.0 if trainer is None else device_hours(trainer, trainer["train_wall_s"]))
            retrain = device_hours(c, c["train_wall_s"]) if c["trained_on"] == "new" else 0.0
            per_update.append(retrain + device_hours(c, c.get("land_wall_s", 0.0)))
        rows.append({"method": method, "modules": n_modules, "unit": hours_unit(mine),
                     "one_time_device_hours": n_modules * statistics.fmean(one_time),
                     "per_update_device_hours": n_modules * statistics.fmean(per_update)})
    retune = next((r["per_update_device_hours"] for r in rows if r["method"] == RETUNE), None)
    for row in rows:
        cost = row["per_update_device_hours"]
        row["retune_over_this"] = retune / cost if retune is not None and cost > 0 else None
    return rows
