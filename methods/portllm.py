"""PortLLM: a LoRA "model patch" trained on the old base, merged into the new base's weights (training-free).

Recipe (PortLLM): r=8 on q, k, v, o, gate, up, down; constant lr 4e-4 (tiny pairs rescale it
like every recipe). The patch is theta' + delta_theta, delta_theta = theta_i - theta: what
fine-tuning changed on the base it was trained on.
  LoRA: delta = scaling * B @ A (peft's merge). For plain LoRA this equals direct transfer of the same
        LoRA up to merge rounding: the methods differ in recipe (rank, targets, lr) and in landing merged.
  DoRA: the magnitude vector m was fitted to the old base's column norms, so the patch is the delta DoRA
        made there, delta = m * (W + s*B@A) / ||W + s*B@A|| - W with W the OLD weight, added to the new
        weight unchanged. (Direct transfer instead renormalises against the new weight: m * (W' + s*B@A) /
        ||W' + s*B@A||. The two differ, and that difference is what DoRA transfer is about.)
  Adapter: a bottleneck adapter is a new sub-layer, not a weight delta: PortLLM does not define it.
"""

from pathlib import Path

import torch
from peft import PeftModel

from bench.core.errors import BenchError
from bench.core.recipe import ALL_LINEAR, Recipe
from bench.models.loading import tensor_reader
from methods.base import METHODS, Method, MethodContext


@METHODS.register("portllm")
class PortLLM(Method):
    name = "portllm"
    trains_on = "old"
    lands_on = "new"
    default_recipe = Recipe(rank=8, alpha=16, targets=ALL_LINEAR, lr=4e-4, schedule="constant")

    def __init__(self, **overrides):
        super().__init__(**overrides)
        if self.recipe.peft == "adapter":
            raise BenchError("portllm is a LoRA/DoRA weight patch; --peft adapter has no weight delta to port")

    def land(self, module_dir: Path, target_base, ctx: MethodContext | None = None):
        if self.recipe.peft == "dora":
            return land_dora_patch(Path(module_dir), target_base, ctx.pair.base_dir("old"))
        # theta' + delta: merge the LoRA delta into the new base's weights, then drop the adapter.
        return super().land(module_dir, target_base, ctx).merge_and_unload().eval()


@torch.no_grad()
def land_dora_patch(module_dir: Path, target_base, old_dir: Path):
    """theta' + (DoRA-merged theta - theta), with theta read from the old base the module was trained on."""
    old_weight = tensor_reader(old_dir, f"portllm with DoRA needs the old base; not found at {old_dir}")
    model = PeftModel.from_pretrained(target_base, module_dir)
    for name, layer in model.named_modules():
        if not hasattr(layer, "lora_magnitude_vector") or "default" not in layer.lora_A:
            continue
        w_old = old_weight(name.removeprefix("base_model.model.") + ".weight").to(layer.weight.device).float()
        if layer.fan_in_fan_out:  # GPT-2's Conv1D stores (in, out): work in nn.Linear's (out, in), as B @ A is
            w_old = w_old.T
        a, b = layer.lora_A["default"].weight.float(), layer.lora_B["default"].weight.float()
        lora = layer.scaling["default"] * b @ a
        magnitude = layer.lora_magnitude_vector["default"].weight.float()
        adapted = w_old + lora
        delta = (magnitude / torch.linalg.norm(adapted, dim=1))[:, None] * adapted - w_old
        if layer.fan_in_fan_out:
            delta = delta.T
        layer.base_layer.weight += delta.to(layer.base_layer.weight.dtype)
    return model.unload().eval()  # the patched weights, without the DoRA layers
