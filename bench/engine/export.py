"""`bench export`: one cell of a results file as files that lm-eval (or evalplus) reproduces it from, alone.

DIR/
  adapter/ (+ base/)   a module that lands as a plain adapter: the adapter, and the base it lands on (copied
                       when under COPY_BASE_LIMIT, else referenced by its local path), each with a tokenizer
  model/               a module that lands transformed (PortLLM's merge, Cross-LoRA): the landed weights
  tasks/               the task's YAML and data per base version, named <task>_v<k> (v0 and v1 test data
                       differ: a name per version means they can never be mixed up)
  COMMAND              the command that reproduces the cell's score (run it from DIR), after a comment line where
                       it may not reproduce exactly
  cell.json            the cell as the results file holds it, without per-sample outcomes
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
from pathlib import Path

from bench.analysis.compare import load_checked
from bench.core.errors import BenchError
from bench.core.store import config_hash
from bench.engine.protocol import build_method, context, landing_name, load_base, module_source, train_module
from bench.models.precision import compute_dtype
from bench.models.training import TrainOptions
from bench.pairs import get_pair
from tasks import TASKS

COPY_BASE_LIMIT = 1 << 30  # bases up to 1 GiB (the tiny pairs: 3 MB) travel with the export


def parse_cell(spec: str) -> tuple[str, str, int]:
    parts = spec.split("/")
    if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
        raise BenchError(f"--cell takes METHOD/TASK/SEED (e.g. portllm/tiny_arith/0), got {spec!r}")
    return parts[0], parts[1], int(parts[2])


def export_cell(results_path: Path, spec: str, out: Path) -> tuple[str, str]:
    """Write the cell's landed model, task files and command under `out`; returns the command and the note
    (a comment line, or "") that COMMAND puts before it."""
    results = load_checked(results_path)
    method_name, task_name, seed = parse_cell(spec)
    cell = next((c for c in results["cells"] if (c["method"], c["task"], c["seed"]) == (method_name, task_name, seed)),
                None)
    if cell is None:
        have = ", ".join(sorted({f"{c['method']}/{c['task']}/{c['seed']}" for c in results["cells"]}))
        raise BenchError(f"{results_path} has no cell {spec} (it has {have})")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BenchError(f"{out} exists and is not empty; export into a new directory")
    pair = get_pair(results["pair"])
    if cell.get("base_versions") != {"old": pair.version_id("old"), "new": pair.version_id("new")}:
        raise BenchError(f"the cell was measured on bases {cell.get('base_versions')}, not this pair's current ones")
    task = TASKS.get(task_name)()
    overrides = {**results.get("tuned_recipes", {}).get(task_name, {}), **(results.get("overrides") or {})}
    method = build_method(method_name, overrides, pair, task)
    if config_hash(dataclasses.asdict(method.recipe)) != cell["config_hash"]:
        raise BenchError(f"{method_name}'s recipe here differs from the one {results_path} was made with")
    if method.recipe.peft == "adapter":
        raise BenchError("bottleneck adapters (--peft adapter) are the harness's own module: lm-eval cannot load them")
    source = module_source(method, overrides, pair, task)
    # The precision the cell trained and was scored in (bf16 where asked, or auto on a real pair whose CPU probe
    # prefers it): part of the module's key, and the dtype the landed model is built and scored in.
    precision = cell.get("precision", "fp32")
    options = TrainOptions(precision=precision)
    module_dir, _ = train_module(source, pair, task, seed, overrides, options)  # cached (retrained if missing)
    if module_dir.name != cell["module_key"]:
        raise BenchError(f"the module for {spec} is {module_dir.name} here, not {cell['module_key']} as in "
                         f"{results_path} (another code version?)")

    version, note = method.lands_on, ""
    out.mkdir(parents=True, exist_ok=True)
    base, tokenizer = load_base(pair, version, precision)
    if landing_name(method) == "adapter":
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            (out / "adapter").mkdir(exist_ok=True)
            shutil.copy2(module_dir / name, out / "adapter" / name)
        tokenizer.save_pretrained(out / "adapter")
        base_dir = Path(pair.base_dir(version))
        if sum(f.stat().st_size for f in base_dir.rglob("*") if f.is_file()) <= COPY_BASE_LIMIT:
            shutil.copytree(base_dir, out / "base", ignore=shutil.ignore_patterns("manifest.json", "bench_pair.json"))
            tokenizer.save_pretrained(out / "base")  # with the pad token the harness sets, if it had none
            base_ref = "./base"
        else:
            base_ref = str(base_dir.resolve())
        model_args = f"pretrained={base_ref},peft=./adapter,tokenizer=./adapter"
        if precision != "fp32":  # the harness casts the adapter to the compute dtype; PEFT's loader keeps it fp32
            note = (f"# A {precision} adapter cell: lm-eval's PEFT computes the LoRA path in fp32, the harness in "
                    f"{precision}, so a few answers can differ (an fp32 or merged cell reproduces exactly).\n")
    else:
        landed = method.land(module_dir, base, context(method, pair, task, seed, overrides))
        if hasattr(landed, "merge_and_unload"):  # a landing that kept PEFT layers: their merged weights
            landed = landed.merge_and_unload()
        landed = landed.to(compute_dtype(precision))  # as the harness scored it (protocol.evaluate_landed)
        landed.save_pretrained(out / "model", safe_serialization=True)
        tokenizer.save_pretrained(out / "model")
        model_args = "pretrained=./model"
    device = "cpu" if str(cell.get("device", "cpu")).startswith("cpu") else "cuda"
    # The harness builds and scores every cell in its compute dtype (protocol.load_base), whatever the pair's
    # checkpoints are stored in: an fp32 cell of a bf16 checkpoint is scored in float32.
    dtype = str(compute_dtype(precision)).removeprefix("torch.")
    command = task_command(task, pair, version, out, cell, model_args, tokenizer.model_max_length, device,
                           results.get("limit"), dtype)
    (out / "COMMAND").write_text(note + command + "\n")  # the note (if any) on a line of its own
    (out / "cell.json").write_text(json.dumps({k: v for k, v in cell.items() if k != "samples"} | {
        "pair": results["pair"], "results": str(results_path)}, indent=2, sort_keys=True) + "\n")
    return command, note


def task_command(task, pair, version: str, out: Path, cell: dict, model_args: str, max_length: int, device: str,
                 limit: int | None, dtype: str) -> str:
    """Write the task's files for every base version; the command for the cell's version."""
    tags = {v: f"v{pair.index(v)}" for v in ("old", "new")}
    offline = "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1"
    if hasattr(task, "export_lmeval"):  # tiny lm-eval tasks: YAML + jsonl per version
        names = {v: task.export_lmeval(pair, v, out / "tasks", tag) for v, tag in tags.items()}
        return (f"{offline} lm_eval run --model hf --model_args {model_args},dtype={dtype},max_length={max_length} "
                f"--tasks {names[version]} --include_path tasks --batch_size 32 --device {device}"
                + (f" --limit {limit}" if limit else ""))
    if hasattr(task, "export_problems"):  # tiny_code: evalplus re-scores the cell's completions
        files = {v: task.export_problems(pair, v, out / "tasks", tag) for v, tag in tags.items()}
        samples = [{"task_id": s["id"], "solution": s["response"]} for s in cell["samples"]]
        (out / f"{task.name}.samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
        return (f"HUMANEVAL_OVERRIDE_PATH={shlex.quote(str(files[version]))} evalplus.evaluate --dataset humaneval "
                f"--samples {task.name}.samples.jsonl --i-just-wanna-run  # runs generated code unsandboxed; "
                "the completions are the harness's greedy decode (tasks/generation.py) of the model in this folder")
    raise BenchError(f"bench export supports the tiny tasks so far, not {task.name!r}")
