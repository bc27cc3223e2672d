"""PEFT modules by type: LoRA and DoRA through peft, bottleneck adapters through bench.models.adapters.

A module is attached fresh (trainable), saved as safetensors, and loaded onto a base (frozen, or
trainable to continue training it).
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from bench.core.recipe import Recipe
from bench.models.adapters import BottleneckConfig, add_adapters, load_adapters, save_adapters


def peft_config(recipe: Recipe):
    if recipe.peft == "adapter":
        return BottleneckConfig(bottleneck=recipe.rank)
    return LoraConfig(r=recipe.rank, lora_alpha=recipe.alpha, lora_dropout=recipe.dropout,
                      target_modules=list(recipe.targets), task_type="CAUSAL_LM", use_dora=recipe.peft == "dora")


def attach_module(model: torch.nn.Module, recipe: Recipe) -> torch.nn.Module:
    """The base with a fresh trainable module on it (only the module's parameters train)."""
    if recipe.peft == "adapter":
        return add_adapters(model, peft_config(recipe))
    return get_peft_model(model, peft_config(recipe))


def save_module(model: torch.nn.Module, out: Path, recipe: Recipe) -> None:
    if recipe.peft == "adapter":
        return save_adapters(model, out)
    model.save_pretrained(out, safe_serialization=True)


def load_module(base: torch.nn.Module, module_dir: Path, recipe: Recipe, trainable: bool = False):
    """A saved module on `base`: frozen for evaluation, or trainable to continue training (warm start)."""
    if recipe.peft == "adapter":
        model = load_adapters(base, module_dir)
        if trainable:
            for name, param in model.named_parameters():
                param.requires_grad = ".bottleneck_adapter." in name
        return model.train() if trainable else model
    model = PeftModel.from_pretrained(base, module_dir, is_trainable=trainable)
    return model if trainable else model.eval()
