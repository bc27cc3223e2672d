"""The one finder of decoder layers, their attention and FFN sub-layers, and the FFN's output projection.

Masking, dropping, ffn-only updates, bottleneck adapters and diagnose all ask here, by module (a loaded
model) or by parameter name (a checkpoint read from safetensors headers), so every architecture is
described once: Llama / Qwen2 / Mistral / Gemma2 / Phi-3 (self_attn, mlp), InternLM2 (attention,
feed_forward) and GPT-2 style (attn, mlp).
"""

from __future__ import annotations

import torch

ATTENTION_ATTRIBUTES = ("self_attn", "attention", "attn")  # Llama/Qwen2/Mistral/Gemma2/Phi-3 | InternLM2 | GPT-2
FFN_ATTRIBUTES = ("mlp", "feed_forward")                  # everyone but InternLM2 | InternLM2
DOWN_PROJECTIONS = ("down_proj", "w2", "fc2", "c_proj")    # the FFN's output projection
# The norm whose input is the residual stream entering the FFN, first match wins: Gemma2 (its
# post_attention_layernorm normalises the attention output instead) | Llama/Qwen2/Mistral/Phi-3 | InternLM2 | GPT-2.
FFN_NORMS = ("pre_feedforward_layernorm", "post_attention_layernorm", "ffn_norm", "ln_2")


def decoder_layers(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str, str]]:
    """(layer, attention attribute, FFN attribute) of every decoder layer, in order: the modules that hold both."""
    found = []
    for module in model.modules():
        attention = _child(module, ATTENTION_ATTRIBUTES)
        ffn = _child(module, FFN_ATTRIBUTES)
        if attention and ffn:
            found.append((module, attention, ffn))
    return found


def ffn_sublayers(model: torch.nn.Module) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
    """(ffn, down_projection) for every decoder layer, in order."""
    found = []
    for layer, _, ffn_name in decoder_layers(model):
        ffn = _unwrapped(getattr(layer, ffn_name))
        down = _child(ffn, DOWN_PROJECTIONS)
        if down:
            found.append((ffn, getattr(ffn, down)))
    if not found:
        raise ValueError(f"no FFN sub-layers found in {type(model).__name__}")
    return found


def ffn_norm(layer: torch.nn.Module) -> torch.nn.Module | None:
    """The decoder layer's norm in front of its FFN (its input is the residual stream), or None if unknown."""
    name = _child(layer, FFN_NORMS)
    return getattr(layer, name) if name else None


def sublayer_of(parameter_name: str) -> str | None:
    """"attention", "ffn" or None for a parameter (or module) name such as model.layers.3.mlp.down_proj.weight."""
    parts = parameter_name.split(".")
    for part in parts:
        if part in ATTENTION_ATTRIBUTES:
            return "attention"
        if part in FFN_ATTRIBUTES:
            return "ffn"
    return None


def _child(module: torch.nn.Module, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if isinstance(getattr(module, n, None), torch.nn.Module)), None)


def _unwrapped(module: torch.nn.Module) -> torch.nn.Module:
    # A bottleneck adapter wraps its sub-layer and keeps it under the sub-layer's own attribute name.
    return getattr(module, module.attribute) if hasattr(module, "bottleneck_adapter") else module


def skipped_output(hidden_states: torch.Tensor) -> torch.Tensor:
    """What a dropped FFN sub-layer returns: zeros (residual passes through), marked so adapters can tell."""
    out = torch.zeros_like(hidden_states)
    out.ffn_skipped = True
    return out


def is_skipped(tensor: torch.Tensor) -> bool:
    return getattr(tensor, "ffn_skipped", False)
