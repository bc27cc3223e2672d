"""Results on disk: <name>.json holds what the run measured (deterministic for a seed on one machine);
<name>.costs.json beside it holds wall times, memory and device, which vary run to run."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from bench.core.accounting import environment
from bench.core.errors import BenchError
from bench.core.store import file_lock, one_line, read_json, write_json_atomic

SCHEMA_VERSION = 2  # 2: cells carry source_score and their resolved recipe (files without one are 1 and still load)
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
            write_json_atomic(path, {"schema_version": SCHEMA_VERSION, "pair": pair.name, "cells": scores,
                                     **(extra or {})})
    except OSError as error:
        raise BenchError(f"cannot write results {path}: {one_line(error)} (finished cells are cached: "
                         "rerun with a writable --out to write them)") from None
    return path


def check_writable(path: Path) -> None:
    """Fail before any training if the results file could not be written at the end. It creates nothing (the
    writers make the folders), so a command that then stops on bad input leaves no empty folder or lock behind."""
    path = Path(path).absolute()
    nearest = next(p for p in path.parents if p.exists())  # the folder its missing parents would be made in
    if not nearest.is_dir() or not os.access(nearest, os.W_OK | os.X_OK):
        raise BenchError(f"results directory {path.parent} is not writable: {nearest} is not a writable directory")


# What `bench report` reads from each cell and each costs entry, by kind of value (bench run writes them all);
# a results file is input like any other, so a missing field or a wrong type is one error naming it.
TEXT, INTEGER, NUMBER, LIST, NUMBER_OR_NULL = "text", "an integer", "a number", "a list", "a number or null"
CELL_FIELDS = {"method": TEXT, "task": TEXT, "seed": INTEGER, "score": NUMBER, "metric": TEXT, "trained_on": TEXT,
               "evaluated_on": TEXT, "module_from": TEXT, "trainable_params": NUMBER, "train_tokens": NUMBER}
COST_KEY_FIELDS = {"method": TEXT, "task": TEXT, "seed": INTEGER}
COST_TYPES = ({field: NUMBER for field in COST_FIELDS} | {"memory_kind": TEXT, "device": TEXT}
              | {"tokens_per_s": NUMBER_OR_NULL, "mfu": NUMBER_OR_NULL})  # null: not trained here, or no known peak


def is_number(value) -> bool:
    """A JSON number arithmetic can use: not a bool, not an integer too large for a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _fits(value, kind: str) -> bool:
    if kind == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    return {TEXT: isinstance(value, str), NUMBER: is_number(value), LIST: isinstance(value, list),
            NUMBER_OR_NULL: value is None or is_number(value)}[kind]


def check_record(where: str, record, fields: dict[str, str], required: bool = True) -> None:
    """A BenchError naming the first missing field (when required) or the first value of the wrong kind."""
    if not isinstance(record, dict):
        raise BenchError(f"{where} is not an object: {one_line(repr(record))[:80]}")
    missing = [key for key in fields if key not in record] if required else []
    if missing:
        raise BenchError(f"{where} lacks {', '.join(missing)}")
    for key, kind in fields.items():
        if key in record and not _fits(record[key], kind):
            raise BenchError(f"{where}: {key} should be {kind}, got {one_line(repr(record[key]))[:80]}")


def read_input_json(path: Path, what: str = "results"):
    try:
        return read_json(path)
    except (OSError, ValueError, RecursionError) as error:  # (UnicodeDecodeError is a ValueError)
        raise BenchError(f"cannot read {what} {path}: {one_line(error)}") from None


def load_results(path: Path) -> dict:
    """The results with each cell's costs merged back in (zeros where the costs file is missing)."""
    results = read_input_json(path)
    if not isinstance(results, dict) or not isinstance(results.get("cells"), list):
        raise BenchError(f"{path} is not a bench results file (no 'cells' list)")
    if not isinstance(results.get("pair", ""), str):
        raise BenchError(f"{path}: pair should be text, got {one_line(repr(results['pair']))[:80]}")
    for i, cell in enumerate(results["cells"]):
        check_record(f"{path}: cell {i}", cell, CELL_FIELDS)
    costs = {}
    if costs_path(path).exists():
        costs_file = read_input_json(costs_path(path), "costs")
        if not isinstance(costs_file, dict) or not isinstance(costs_file.get("costs"), list):
            raise BenchError(f"{costs_path(path)} is not a bench costs file (no 'costs' list)")
        for i, cost in enumerate(costs_file["costs"]):
            check_record(f"{costs_path(path)}: entry {i}", cost, COST_KEY_FIELDS)
            check_record(f"{costs_path(path)}: entry {i}", cost, COST_TYPES, required=False)
        costs = {(c["method"], c["task"], c["seed"]): c for c in costs_file["costs"]}
        results.setdefault("environment", costs_file.get("environment", {}))
    environment = results.get("environment", {})
    if not isinstance(environment, dict) or not isinstance(environment.get("packages", {}), dict):
        raise BenchError(f"{path}: environment should be an object with a 'packages' object")
    blank = {"train_wall_s": 0.0, "eval_wall_s": 0.0, "peak_mem_mb": 0.0, "memory_kind": "", "device": "?",
             "device_count": 1, "peak_reserved_mb": 0.0, "land_wall_s": 0.0, "module_mb": 0.0,
             "tokens_per_s": None, "mfu": None}
    for cell in results["cells"]:
        cell.setdefault("source_score", None)  # schema 1 files: no retention recorded
        cost = costs.get((cell["method"], cell["task"], cell["seed"]), blank)
        cell.update({k: cost.get(k, blank[k]) for k in COST_FIELDS})  # older costs files lack newer fields
    return results
