"""Results on disk: <name>.json holds what the run measured (deterministic for a seed on one machine);
<name>.costs.json beside it holds wall times, memory and device, which vary run to run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.core.accounting import environment
from bench.core.errors import BenchError
from bench.core.store import file_lock, one_line, read_json, write_json_atomic

COST_FIELDS = ("train_wall_s", "eval_wall_s", "peak_mem_mb", "memory_kind", "device",
               "device_count", "peak_reserved_mb", "land_wall_s", "module_mb", "tokens_per_s", "mfu")


def costs_path(path: Path) -> Path:
    return Path(path).with_suffix(".costs.json")


def write_results(cells: list, pair, path: Path, extra: dict | None = None, pick_free_name: bool = False) -> Path:
    """Write <path> and its costs file, never over finished results.

    Runs sharing a results directory serialise here on its lock file, so two runs that chose the
    same name cannot overwrite each other: with pick_free_name (a default, timestamped name) the
    later one takes <stem>-2.json, otherwise it stops with an error (its cells stay cached).
    """
    path = Path(path)
    rows = [dataclasses.asdict(c) for c in cells]
    scores = [{k: v for k, v in row.items() if k not in COST_FIELDS} for row in rows]
    costs = [{k: row[k] for k in ("method", "task", "seed", *COST_FIELDS)} for row in rows]
    try:
        with file_lock(path.parent / ".bench-results.lock"):
            if path.exists() and pick_free_name:
                path = next(p for i in range(2, 10_000) if not (p := path.with_name(f"{path.stem}-{i}.json")).exists())
            if path.exists():
                raise BenchError(f"{path} exists; refusing to overwrite finished results (pass another --out)")
            write_json_atomic(costs_path(path), {"costs": costs, "environment": environment()})
            write_json_atomic(path, {"pair": pair.name, "cells": scores, **(extra or {})})
    except OSError as error:
        raise BenchError(f"cannot write results {path}: {one_line(error)} (finished cells are cached: "
                         "rerun with a writable --out to write them)") from None
    return path


def check_writable(path: Path) -> None:
    """Fail before any training if the results file could not be written at the end."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path.parent / ".bench-results.lock"):
            pass
    except OSError as error:
        raise BenchError(f"results directory {path.parent} is not writable: {one_line(error)}") from None


def load_results(path: Path) -> dict:
    """The results with each cell's costs merged back in (zeros where the costs file is missing)."""
    try:
        results = read_json(path)
    except (OSError, ValueError) as error:
        raise BenchError(f"cannot read results {path}: {error}") from None
    costs = {}
    if costs_path(path).exists():
        costs_file = read_json(costs_path(path))
        costs = {(c["method"], c["task"], c["seed"]): c for c in costs_file["costs"]}
        results.setdefault("environment", costs_file.get("environment", {}))
    blank = {"train_wall_s": 0.0, "eval_wall_s": 0.0, "peak_mem_mb": 0.0, "memory_kind": "", "device": "?",
             "device_count": 1, "peak_reserved_mb": 0.0, "land_wall_s": 0.0, "module_mb": 0.0,
             "tokens_per_s": None, "mfu": None}
    for cell in results["cells"]:
        cost = costs.get((cell["method"], cell["task"], cell["seed"]), blank)
        cell.update({k: cost.get(k, blank[k]) for k in COST_FIELDS})  # older costs files lack newer fields
    return results
