"""Greedy batched generation for tasks whose scoring is not lm-eval's (code goes to evalplus)."""

from __future__ import annotations

import re

import torch

from tasks.vllm_backend import greedy, is_served


@torch.no_grad()
def greedy_complete(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 32) -> list[str]:
    if is_served(model):  # --eval-backend vllm: the engine batches by itself
        return greedy(model, prompts, max_new_tokens)
    device = next(model.parameters()).device
    tokenizer.padding_side = "left"
    completions = []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True).to(device)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        completions += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return completions


def cut_function_body(completion: str) -> str:
    """Keep the indented body: stop at the first line that starts at column 0, or a blank line."""
    match = re.search(r"\n(?=\S)|\n\s*\n", completion)
    return completion[: match.start() + 1] if match else completion
