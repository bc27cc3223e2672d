"""Find the FFN sub-layers of any decoder-only model, without forked modeling files."""

from __future__ import annotations

import torch

FFN_ATTRIBUTES = ("mlp", "feed_forward")          # Llama/Qwen2/Mistral/Gemma2 | InternLM2
ATTENTION_ATTRIBUTES = ("self_attn", "attention", "attn")  # Llama/Qwen2/Mistral/Gemma2 | InternLM2 | GPT-2 style
DOWN_PROJECTIONS = ("down_proj", "w2", "fc2", "c_proj")  # the FFN's output projection


def decoder_layers(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str, str]]:
    """(layer, attention attribute, FFN attribute) of every decoder layer, in order: the modules that hold both."""
    found = []
    for module in model.modules():
        attention = next((a for a in ATTENTION_ATTRIBUTES if isinstance(getattr(module, a, None), torch.nn.Module)),
                         None)
        ffn = next((f for f in FFN_ATTRIBUTES if isinstance(getattr(module, f, None), torch.nn.Module)), None)
        if attention and ffn:
            found.append((module, attention, ffn))
    return found


def ffn_sublayers(model: torch.nn.Module) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
    """(ffn, down_projection) for every decoder layer, in order."""
    found = []
    for module in model.modules():
        for attr in FFN_ATTRIBUTES:
            ffn = getattr(module, attr, None)
            if not isinstance(ffn, torch.nn.Module):
                continue
            downs = [getattr(ffn, n, None) for n in DOWN_PROJECTIONS]
            down = next((d for d in downs if isinstance(d, torch.nn.Module)), None)
            if down is not None:
                found.append((ffn, down))
    if not found:
        raise ValueError(f"no FFN sub-layers found in {type(model).__name__}")
    return found


def skipped_output(hidden_states: torch.Tensor) -> torch.Tensor:
    """What a dropped FFN sub-layer returns: zeros (residual passes through), marked so adapters can tell."""
    out = torch.zeros_like(hidden_states)
    out.ffn_skipped = True
    return out


def is_skipped(tensor: torch.Tensor) -> bool:
    return getattr(tensor, "ffn_skipped", False)
