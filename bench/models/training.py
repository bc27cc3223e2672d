"""One training loop for everything the harness trains: base pretraining, base updates and PEFT modules.

A plain loop (nanoGPT-style) rather than transformers.Trainer: on models of a million
parameters Trainer's per-step bookkeeping costs more than the step itself, and the
`bench perf` ratio against a bare PyTorch loop is one of the harness's targets.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch
from transformers import get_scheduler

from bench.core.errors import BenchError
from bench.core.progress import progress_bar
from bench.models.distributed import sharded_backward
from bench.models.ffn import sublayer_of


def lr_scheduler(optimizer, schedule: str, steps: int, warmup_steps: int = 0, min_lr_rate: float = 0.0):
    """transformers' scheduler of that name (what Trainer and the papers' scripts use), stepped once per step."""
    specific = {"min_lr_rate": min_lr_rate} if schedule == "cosine_with_min_lr" else None
    return get_scheduler(schedule, optimizer, num_warmup_steps=warmup_steps, num_training_steps=steps,
                         scheduler_specific_kwargs=specific)


def train_update(model: torch.nn.Module, kind: str, batches: Iterator[dict[str, torch.Tensor]], steps: int, lr: float,
                 lora_rank: int, lora_alpha: int, **loop_options) -> tuple[torch.nn.Module, dict[str, float]]:
    """Continued pre-training that lands in `model`'s own weights: full | lora-merged (a LoRA on every linear,
    merged back: PortLLM's simulated update) | ffn-only (only FFN weights move: Trans-PEFT's premise).
    Returns the updated plain model, every parameter trainable again, and the loop's stats."""
    if kind == "lora-merged":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=lora_rank, lora_alpha=lora_alpha, target_modules="all-linear"))
    elif kind == "ffn-only":
        for name, param in model.named_parameters():
            param.requires_grad = sublayer_of(name) == "ffn"
    elif kind != "full":
        raise BenchError(f"update kind must be full, lora-merged or ffn-only, not {kind!r}")
    stats = train_loop(model, batches, steps, lr, **loop_options)
    if kind == "lora-merged":
        model = model.merge_and_unload()
    for param in model.parameters():
        param.requires_grad = True
    return model, stats


def train_loop(
    model: torch.nn.Module,
    batches: Iterator[dict[str, torch.Tensor]],
    steps: int,
    lr: float,
    schedule: str = "constant",
    warmup_steps: int = 0,
    min_lr_rate: float = 0.0,
    description: str = "training",
    data_parallel: bool = False,
) -> dict[str, float]:
    """Train the parameters of `model` that require grad; returns loss and token counts. `schedule` is a
    transformers get_scheduler name; `min_lr_rate` is cosine_with_min_lr's floor. data_parallel: every
    process of a `--nproc` run calls this with the same global batches, and each trains on its shard."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)  # no decay: rare embeddings must not drift
    scheduler = lr_scheduler(optimizer, schedule, steps, warmup_steps, min_lr_rate)
    model.train()
    tokens, last_losses = 0, []
    with progress_bar(description, steps) as advance:
        for _ in range(steps):
            batch = next(batches)
            if data_parallel:
                loss = sharded_backward(model, batch, params)
            else:
                loss = model(**batch).loss
                loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += int(batch["attention_mask"].sum())
            last_losses = (last_losses + [loss.item()])[-20:]
            advance(loss=last_losses[-1])
    model.eval()
    return {"final_loss": sum(last_losses) / max(1, len(last_losses)), "train_tokens": tokens}


def packed_lm_batches(token_ids: Sequence[int], seq_len: int, batch_size: int, seed: int) -> Iterator[dict]:
    """Endless random windows over one long token stream (pretraining)."""
    data = torch.tensor(token_ids, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    while True:
        starts = torch.randint(0, len(data) - seq_len, (batch_size,), generator=generator)
        ids = torch.stack([data[s : s + seq_len] for s in starts.tolist()])
        yield {"input_ids": ids, "labels": ids, "attention_mask": torch.ones_like(ids)}


def supervised_batches(
    examples: Sequence[tuple[list[int], list[int]]], batch_size: int, pad_id: int, seed: int
) -> Iterator[dict]:
    """Endless shuffled epochs of (prompt, answer) token pairs; loss only on answer tokens."""
    rng = random.Random(seed)
    order = list(range(len(examples)))
    while True:
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield collate([examples[j] for j in order[i : i + batch_size]], pad_id)


def collate(pairs: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(p) + len(a) for p, a in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(pairs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (prompt, answer) in enumerate(pairs):
        seq = prompt + answer
        ids[row, : len(seq)] = torch.tensor(seq)
        labels[row, len(prompt) : len(seq)] = torch.tensor(answer)
        mask[row, : len(seq)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def count_trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

