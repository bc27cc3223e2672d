"""One training loop for everything the harness trains: base pretraining, base updates and PEFT modules.

A plain loop (nanoGPT-style) rather than transformers.Trainer: on models of a million
parameters Trainer's per-step bookkeeping costs more than the step itself, and the
`bench perf` ratio against a bare PyTorch loop is one of the harness's targets.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import get_scheduler

from bench.core.errors import BenchError
from bench.core.progress import progress_bar
from bench.models import distributed
from bench.models.ffn import sublayer_of
from bench.models.precision import autocast


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


@dataclass(frozen=True)
class TrainOptions:
    """How a training runs on the hardware, not what it learns (the recipe): `bench run`'s scale flags."""

    precision: str = "fp32"              # resolved: fp32 | bf16 | fp16 (bench.models.precision)
    micro_batch: int | str | None = None  # rows per forward pass, gradients accumulated to the batch; "auto"
    gradient_checkpointing: bool = False
    group_by_length: bool = False

    def key(self, batch_size: int) -> dict:
        """What of these goes into a module's cache key: only what can change the module, and nothing for the
        defaults, so keys (and results) from before these options existed stay valid. Checkpointing recomputes
        the same forward (identical gradients, tests/test_scale.py), so it is not part of the key."""
        key = {}
        if self.precision != "fp32":
            key["precision"] = self.precision
        if self.micro_batch == "auto" or (self.micro_batch is not None and self.micro_batch < batch_size):
            key["micro_batch"] = self.micro_batch  # accumulation sums in another order (and "auto" per device)
        if self.group_by_length:
            key["group_by_length"] = True
        return key


def check_micro_batch(micro_batch: int | str | None, batch_size: int) -> None:
    if micro_batch is None or micro_batch == "auto":
        return
    if micro_batch <= 0 or batch_size % micro_batch:
        raise BenchError(f"--micro-batch {micro_batch} does not divide the batch size {batch_size}; "
                         f"use a divisor of {batch_size} or auto")


def train_loop(
    model: torch.nn.Module,
    batches: Iterator[dict[str, torch.Tensor]],
    steps: int,
    lr: float,
    schedule: str = "constant",
    warmup_steps: int = 0,
    min_lr_rate: float = 0.0,
    description: str = "training",
    options: TrainOptions | None = None,
    data_parallel: bool = False,
) -> dict[str, float]:
    """Train the parameters of `model` that require grad; returns loss and token counts. `schedule` is a
    transformers get_scheduler name; `min_lr_rate` is cosine_with_min_lr's floor. data_parallel: every
    process of a `--nproc` run calls this with the same global batches, and each trains on its shard."""
    options = options or TrainOptions()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)  # no decay: rare embeddings must not drift
    scheduler = lr_scheduler(optimizer, schedule, steps, warmup_steps, min_lr_rate)
    # fp16's narrow range underflows small gradients: scale the loss up, unscale before clipping and stepping.
    scaler = torch.amp.GradScaler("cuda") if options.precision == "fp16" else None
    model.train()
    tokens, last_losses = 0, []
    with progress_bar(description, steps) as advance, checkpointing(model, options.gradient_checkpointing):
        for _ in range(steps):
            batch = next(batches)
            if data_parallel:
                shard, weight = distributed.shard_of(batch)
                loss = forward_backward(model, shard, options.micro_batch, options.precision, scaler, weight)
                loss = distributed.sum_gradients(params, loss)
            else:
                loss = forward_backward(model, batch, options.micro_batch, options.precision, scaler)
            if scaler is not None:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += int(batch["attention_mask"].sum())
            last_losses = (last_losses + [loss.item()])[-20:]
            advance(loss=last_losses[-1])
    model.eval()
    return {"final_loss": sum(last_losses) / max(1, len(last_losses)), "train_tokens": tokens}


def forward_backward(model, batch: dict, micro_batch: int | None, precision: str, scaler=None,
                     weight: float = 1.0) -> torch.Tensor:
    """Gradients of `weight` x the batch's loss, in micro-batches of `micro_batch` rows whose gradients add up
    to the full batch's. HF's loss is a mean over a micro-batch's answer tokens, so each micro-batch's loss is
    weighted by its share of the whole batch's answer tokens. Returns the weighted loss (detached)."""
    device = batch["input_ids"].device
    rows = batch["input_ids"].shape[0]
    if not micro_batch or micro_batch >= rows:
        with autocast(precision, device):
            loss = model(**batch).loss * weight
        (scaler.scale(loss) if scaler is not None else loss).backward()
        return loss.detach()
    chunks = [trimmed({k: v[i : i + micro_batch] for k, v in batch.items()}) for i in range(0, rows, micro_batch)]
    counts = [int((c["labels"][:, 1:] != -100).sum()) for c in chunks]  # the tokens HF's shifted loss averages
    total = sum(counts)
    loss_sum = torch.zeros((), device=device)
    for chunk, count in zip(chunks, counts):
        if count == 0:  # no answer token: contributes nothing (and HF's mean over none would be nan)
            continue
        with autocast(precision, device):
            loss = model(**chunk).loss * (weight * count / total)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        loss_sum += loss.detach()
    return loss_sum


def trimmed(batch: dict) -> dict:
    """Drop trailing columns that are padding in every row (collate pads on the right), so a micro-batch of
    short rows does not pay for the longest row of the whole batch."""
    used = batch["attention_mask"].any(dim=0).nonzero()
    width = int(used[-1]) + 1 if len(used) else 1
    return {k: v[:, :width] for k, v in batch.items()}


@contextmanager
def checkpointing(model: torch.nn.Module, enabled: bool):
    """Activation checkpointing for the duration: non-reentrant (it recomputes with the RNG state restored, so
    dropout and Trans-PEFT's masks replay exactly), and input grads enabled because a PEFT model's embeddings are
    frozen (the reentrant variant would otherwise see no input that needs grad)."""
    if not enabled:
        yield
        return
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    try:
        yield
    finally:
        model.disable_input_require_grads()
        model.gradient_checkpointing_disable()


def packed_lm_batches(token_ids: Sequence[int], seq_len: int, batch_size: int, seed: int) -> Iterator[dict]:
    """Endless random windows over one long token stream (pretraining)."""
    data = torch.tensor(token_ids, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    while True:
        starts = torch.randint(0, len(data) - seq_len, (batch_size,), generator=generator)
        ids = torch.stack([data[s : s + seq_len] for s in starts.tolist()])
        yield {"input_ids": ids, "labels": ids, "attention_mask": torch.ones_like(ids)}


def supervised_batches(
    examples: Sequence[tuple[list[int], list[int]]], batch_size: int, pad_id: int, seed: int,
    group_by_length: bool = False,
) -> Iterator[dict]:
    """Endless shuffled epochs of (prompt, answer) token pairs; loss only on answer tokens.

    group_by_length: within each window of GROUP_WINDOW batches, rows are sorted by length before they are cut
    into batches, and those batches are then shuffled: less padding, still random batches (as transformers'
    LengthGroupedSampler). Deterministic per seed."""
    rng = random.Random(seed)
    order = list(range(len(examples)))
    while True:
        rng.shuffle(order)
        if group_by_length:
            order = length_grouped(order, examples, batch_size, rng)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield collate([examples[j] for j in order[i : i + batch_size]], pad_id)


GROUP_WINDOW = 50  # batches per sorting window (transformers' megabatch)


def length_grouped(order: list[int], examples: Sequence, batch_size: int, rng: random.Random) -> list[int]:
    grouped = []
    window = GROUP_WINDOW * batch_size
    for start in range(0, len(order), window):
        rows = sorted(order[start : start + window], key=lambda j: -(len(examples[j][0]) + len(examples[j][1])))
        batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
        full, rest = [b for b in batches if len(b) == batch_size], [b for b in batches if len(b) < batch_size]
        rng.shuffle(full)
        grouped += [j for b in full + rest for j in b]  # a short last batch stays last (the epoch drops it)
    return grouped


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

