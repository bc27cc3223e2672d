"""`bench perf`: step-time ratios measured in one run, on one model and one batch.

  trans_peft / LoRA       same recipe, Trans-PEFT's masking and dropping on (target <= 1.0: dropped FFNs are skipped)
  harness / bare          bench.models.training.train_loop vs a hand-written PyTorch loop (target <= 1.05)
  bf16 / fp32             a LoRA step with the base in bf16 under autocast vs fp32 (what `--precision auto` weighs)
  harness eval / raw      throughput of a task's lm-eval scoring vs the same batches forwarded bare (goal >= 0.8)

Training variants are interleaved step by step (each round runs one step of every variant, starting with a
different one), and compared by median step time, so drift in machine load hits all of them alike. Each variant
trains its own copy of the model, with Trans-PEFT's context entered once as in a real training (entering it
walks the model: 3-5 ms, which per step would be charged to Trans-PEFT). The clock: on a CPU, the process's CPU
time, which the other tenants of a shared machine disturb far less than wall time (wall medians are printed too);
on CUDA, wall time after a synchronize.
"""

from __future__ import annotations

import copy
import statistics
import time
from contextlib import ExitStack
from itertools import repeat

import torch

from bench.engine.protocol import build_method, load_base
from bench.models.precision import autocast, keep_trainable_fp32
from bench.models.training import collate, train_loop
from methods.trans_peft import knowledge_masking_and_dropping

HARNESS_STEPS = 3  # train_loop builds its optimizer per call: timed over a few steps per round


def _lora_model(pair, method):
    from peft import get_peft_model

    model, tokenizer = load_base(pair, "old")
    torch.manual_seed(0)
    return get_peft_model(model, method.peft_config()), tokenizer


def _batch(tokenizer, batch_size: int, seq_len: int = 64):
    ids = list(range(4, 4 + seq_len))
    return collate([(ids[:8], ids[8:])] * batch_size, tokenizer.pad_token_id)


def _bare_step(model, optimizer, batch, precision: str = "fp32"):
    with autocast(precision, batch["input_ids"].device):
        loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _timed(fn) -> float:
    """Seconds of `fn` on the clock the module doc describes."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return time.perf_counter() - start
    start = time.process_time()
    fn()
    return time.process_time() - start


def _wall(fn) -> tuple[float, float]:
    start = time.perf_counter()
    clock = _timed(fn)
    return clock, time.perf_counter() - start


def _optimizer(model):
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)


def measure_ratios(pair, steps: int = 30, bf16_steps: int = 5) -> list[str]:
    """`steps` timed steps per training variant."""
    method = build_method("trans_peft", None, pair)
    model, tokenizer = _lora_model(pair, method)
    batch = _batch(tokenizer, method.recipe.batch_size)
    recipe = method.recipe
    model.train()
    copies = {name: copy.deepcopy(model) for name in ("trans_peft", "dropping_only", "harness")}
    optimizers = {name: _optimizer(m) for name, m in [("lora", model), *copies.items()]}

    def bare():
        for _ in range(HARNESS_STEPS):
            _bare_step(model, optimizers["lora"], batch)

    def harness():
        train_loop(copies["harness"], repeat(batch), HARNESS_STEPS, 1e-4, description="perf")
        copies["harness"].train()

    variants = {"lora": lambda: _bare_step(model, optimizers["lora"], batch),
                "trans_peft": lambda: _bare_step(copies["trans_peft"], optimizers["trans_peft"], batch),
                "dropping_only": lambda: _bare_step(copies["dropping_only"], optimizers["dropping_only"], batch),
                "bare": bare, "harness": harness}
    times = {name: [] for name in variants}
    walls = {name: [] for name in variants}
    names = list(variants)
    with ExitStack() as stack:
        stack.enter_context(knowledge_masking_and_dropping(copies["trans_peft"], recipe.p_i, recipe.p_c))
        stack.enter_context(knowledge_masking_and_dropping(copies["dropping_only"], 0.0, recipe.p_c))
        for step in range(steps):
            for name in names[step % len(names):] + names[: step % len(names)]:
                clock, wall = _wall(variants[name])
                times[name].append(clock)
                walls[name].append(wall)
    med = {k: statistics.median(v) / (HARNESS_STEPS if k in ("bare", "harness") else 1) for k, v in times.items()}
    wall = {k: statistics.median(v) / (HARNESS_STEPS if k in ("bare", "harness") else 1) for k, v in walls.items()}
    clock = "wall" if torch.cuda.is_available() else "CPU"
    lines = [
        f"pair {pair.name}, batch {recipe.batch_size}x{batch['input_ids'].shape[1]}, {steps} interleaved "
        f"steps per variant, {torch.get_num_threads()} threads, median {clock} ms per step: "
        + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in med.items())
        + "; wall: " + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in wall.items()),
        f"trans_peft / LoRA step time: {med['trans_peft'] / med['lora']:.3f} "
        f"(p_c={recipe.p_c}, p_i={recipe.p_i}; target <= 1.0)",
        f"trans_peft without masking (p_i=0) / LoRA step time: {med['dropping_only'] / med['lora']:.3f}",
        f"harness / bare PyTorch step time: {med['harness'] / med['bare']:.3f} (target <= 1.05)",
    ]
    return lines + [bf16_ratio(model, batch, bf16_steps), eval_ratio(pair, model, tokenizer)]


def bf16_ratio(model, batch, steps: int) -> str:
    """A LoRA step as `--precision bf16` runs it (base in bf16, adapters fp32, forward under autocast) against
    fp32, interleaved. On CPUs without native bf16 this is the slowdown `auto` avoids."""
    half = keep_trainable_fp32(copy.deepcopy(model).to(torch.bfloat16))
    optimizers = {"fp32": _optimizer(model), "bf16": _optimizer(half)}
    times = {"fp32": [], "bf16": []}
    for _ in range(steps):
        times["fp32"].append(_timed(lambda: _bare_step(model, optimizers["fp32"], batch)))
        times["bf16"].append(_timed(lambda: _bare_step(half, optimizers["bf16"], batch, "bf16")))
    fp32, bf16 = (statistics.median(times[k]) for k in ("fp32", "bf16"))
    return (f"bf16 / fp32 step time: {bf16 / fp32:.3f} ({steps} steps each, {bf16 * 1e3:.1f} vs {fp32 * 1e3:.1f} ms; "
            "--precision auto picks bf16 on a CPU only where it is faster)")


def eval_ratio(pair, model, tokenizer, task_name: str = "tiny_knowledge", batch_size: int = 32) -> str:
    """lm-eval's scoring of a task (requests, batching, metrics) vs only its model forwards, replayed bare: the
    share of evaluation time that is the model's."""
    from tasks import TASKS
    from tasks.lmeval import in_memory_lm, score_with_lmeval

    if pair.world() is None:
        return f"harness eval / raw batched forward: n/a ({task_name} needs a tiny pair)"
    task = TASKS.get(task_name)()
    model.eval()
    lm = in_memory_lm(model, tokenizer, batch_size)
    forwards = []
    model_call = lm._model_call

    def recording(inps, *args, **kwargs):
        forwards.append(inps)
        return model_call(inps, *args, **kwargs)

    lm._model_call = recording
    config = task.lmeval_config(pair, "old")
    harness_s = []
    for _ in range(2):  # the first run also reads the dataset into the datasets cache: the second is the steady cost
        forwards.clear()
        harness_s.append(_timed(lambda: score_with_lmeval(lm, config)))
    harness_s = min(harness_s)

    def raw():
        with torch.no_grad():
            for inps in forwards:
                model(inps).logits  # noqa: B018 (what lm-eval's _model_call computes)

    raw_s = min(_timed(raw) for _ in range(3))
    tokens = sum(x.numel() for x in forwards)
    return (f"harness eval / raw batched forward throughput: {raw_s / harness_s:.3f} ({task_name}: {len(forwards)} "
            f"batches, {tokens:,} tokens, {harness_s:.2f} s vs {raw_s:.2f} s; goal >= 0.8)")
