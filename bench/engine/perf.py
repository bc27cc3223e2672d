"""`bench perf`: step-time ratios measured in one run, on one model and one batch.

  trans_peft / LoRA   same recipe, Trans-PEFT's masking and dropping on (target <= 1.0: dropped FFNs are skipped)
  harness / bare      bench.models.training.train_loop vs a hand-written PyTorch loop (target <= 1.05)

Variants are interleaved in rounds and compared by median step time, so drift in machine
load hits all of them alike.
"""

from __future__ import annotations

import statistics
import time
from itertools import repeat

import torch

from bench.engine.protocol import build_method, load_base
from bench.models.training import collate, train_loop
from methods.trans_peft import knowledge_masking_and_dropping


def _lora_model(pair, method):
    from peft import get_peft_model


    model, tokenizer = load_base(pair, "old")
    torch.manual_seed(0)
    return get_peft_model(model, method.peft_config()), tokenizer


def _batch(tokenizer, batch_size: int, seq_len: int = 64):
    ids = list(range(4, 4 + seq_len))
    return collate([(ids[:8], ids[8:])] * batch_size, tokenizer.pad_token_id)


def _bare_step(model, optimizer, batch):
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _time(fn, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def measure_ratios(pair, steps: int = 30, rounds: int = 5) -> list[str]:

    method = build_method("trans_peft", None, pair)
    model, tokenizer = _lora_model(pair, method)
    batch = _batch(tokenizer, method.recipe.batch_size)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    per_round = max(1, steps // rounds)
    times = {"lora": [], "trans_peft": [], "dropping_only": [], "bare": [], "harness": []}

    def harness_steps():
        train_loop(model, repeat(batch), per_round, 1e-4, description="perf")
        model.train()

    for _ in range(rounds):
        times["lora"] += _time(lambda: _bare_step(model, optimizer, batch), per_round)
        with knowledge_masking_and_dropping(model, method.recipe.p_i, method.recipe.p_c):
            times["trans_peft"] += _time(lambda: _bare_step(model, optimizer, batch), per_round)
        with knowledge_masking_and_dropping(model, 0.0, method.recipe.p_c):
            times["dropping_only"] += _time(lambda: _bare_step(model, optimizer, batch), per_round)
        times["bare"] += _time(lambda: _bare_step(model, optimizer, batch), per_round)
        start = time.perf_counter()
        harness_steps()
        times["harness"].append((time.perf_counter() - start) / per_round)
    med = {k: statistics.median(v) for k, v in times.items()}
    return [
        f"pair {pair.name}, batch {method.recipe.batch_size}x{batch['input_ids'].shape[1]}, "
        f"{rounds} rounds x {per_round} steps, median step times (ms): "
        + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in med.items()),
        f"trans_peft / LoRA step time: {med['trans_peft'] / med['lora']:.3f} "
        f"(p_c={method.recipe.p_c}, p_i={method.recipe.p_i}; target <= 1.0)",
        f"trans_peft without masking (p_i=0) / LoRA step time: {med['dropping_only'] / med['lora']:.3f} "
        "(the mask's random numbers are what costs)",
        f"harness / bare PyTorch step time: {med['harness'] / med['bare']:.3f} (target <= 1.05)",
    ]
