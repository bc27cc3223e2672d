"""Synthetic results files written by hand (the layout bench/results.py writes), so report and compare
tests run in milliseconds. Every number is chosen here, so the tests can check the arithmetic."""

import json
from pathlib import Path

METHODS = ["finetune_old", "finetune_new", "direct_transfer", "portllm", "trans_peft"]
TASKS = {"t_arith": "exact_match", "t_knowledge": "acc"}
SEEDS = [0, 1, 2]
N_SAMPLES = 40

# Correct answers out of 40 per (method, task) for seeds 0, 1, 2.
CORRECT = {
    ("finetune_old", "t_arith"): [20, 22, 24], ("finetune_old", "t_knowledge"): [10, 10, 10],
    ("finetune_new", "t_arith"): [32, 34, 36], ("finetune_new", "t_knowledge"): [30, 30, 30],
    ("direct_transfer", "t_arith"): [16, 18, 20], ("direct_transfer", "t_knowledge"): [8, 10, 12],
    ("portllm", "t_arith"): [30, 30, 30], ("portllm", "t_knowledge"): [28, 26, 24],
    ("trans_peft", "t_arith"): [28, 30, 32], ("trans_peft", "t_knowledge"): [26, 27, 28],
}
TRAINS_ON = {"finetune_old": "old", "finetune_new": "new", "direct_transfer": "old", "portllm": "old",
             "trans_peft": "old"}
TRAIN_WALL_S = {"finetune_old": 3600.0, "finetune_new": 3600.0, "direct_transfer": 0.0, "portllm": 3000.0,
                "trans_peft": 2700.0}
LAND_WALL_S = {"portllm": 36.0}  # a merge; the others load an adapter in 3.6 s


def make_cells(correct: dict = CORRECT) -> list[dict]:
    cells = []
    for seed_index, seed in enumerate(SEEDS):
        for task, metric in TASKS.items():
            for method in METHODS:
                k = correct[(method, task)][seed_index]
                # Which samples are right shifts with the seed, so seeds are not copies of each other.
                samples = [{"id": i, "correct": float((i + 7 * seed) % N_SAMPLES < k), "response": ""}
                           for i in range(N_SAMPLES)]
                cells.append({
                    "method": method, "task": task, "seed": seed, "score": 100.0 * k / N_SAMPLES, "metric": metric,
                    "n": N_SAMPLES, "trained_on": TRAINS_ON[method],
                    "evaluated_on": "old" if method == "finetune_old" else "new",
                    "base_versions": {"old": "v0-x", "new": "v1-x"}, "module_key": f"{method}-{task}-{seed}",
                    "module_from": "finetune_old" if method == "direct_transfer" else method,
                    "config_hash": "c", "trainable_params": 8704 if method == "portllm" else 4096,
                    "train_tokens": 0 if method == "direct_transfer" else 1000, "samples": samples,
                })
    return cells


def make_costs(cells: list[dict]) -> list[dict]:
    return [{"method": c["method"], "task": c["task"], "seed": c["seed"],
             "train_wall_s": TRAIN_WALL_S[c["method"]], "eval_wall_s": 360.0, "peak_mem_mb": 20000.0,
             "memory_kind": "cuda max_memory_allocated", "device": "NVIDIA H100 80GB HBM3", "device_count": 1,
             "peak_reserved_mb": 24000.0, "land_wall_s": LAND_WALL_S.get(c["method"], 3.6), "module_mb": 2.5}
            for c in cells]


def write_results_file(path: Path, cells: list[dict] | None = None, pair: str = "tiny") -> Path:
    cells = make_cells() if cells is None else cells
    path = Path(path)
    path.write_text(json.dumps({"pair": pair, "cells": cells, "limit": None, "overrides": {}}, indent=2))
    environment = {"device": "NVIDIA H100 80GB HBM3", "python": "3.12.0", "platform": "Linux-test",
                   "packages": {"torch": "2.13.0"}}
    path.with_suffix(".costs.json").write_text(json.dumps({"costs": make_costs(cells), "environment": environment}))
    return path


def flip(cells: list[dict], method: str, task: str) -> list[dict]:
    """The planted regression: every per-sample outcome of one method on one task inverted."""
    flipped = []
    for c in cells:
        if (c["method"], c["task"]) == (method, task):
            samples = [s | {"correct": 1.0 - s["correct"]} for s in c["samples"]]
            c = c | {"samples": samples, "score": 100.0 * sum(s["correct"] for s in samples) / len(samples)}
        flipped.append(c)
    return flipped
