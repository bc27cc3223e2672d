"""Cross-LoRA (arXiv 2508.05232): move a LoRA trained on the old base onto the new base without data or training.

LoRA-Align: rank-r SVD of the old and new weights, W ~ U S V^T, and the Frobenius-optimal map between the bases,
P_U = argmin_P ||P U_old - U_new||_F (P_V likewise), giving the aligned old bases U~ = P_U U_old and V~ = P_V V_old.
LoRA-Shift: delta_new = U~ U~^T delta_old V~ V~^T, with delta_old = scaling * B @ A.
Choices where the paper leaves room:
  truncation rank: r = 320, the paper's setting, clipped to min(m, n) (full rank when a weight is smaller).
  map: the minimum-norm least-squares solution P = U_new pinv(U_old) = U_new U_old^T (what lstsq/pinv return).
  consequence: at equal shapes U~ = U_new exactly, so the old weights drop out and LoRA-Shift is the projection
    of delta_old onto the new weight's top-r singular subspaces (full rank: unchanged for square weights only).
  expression: the two-sided projection of the merged delta (Eq. 7); projecting B on the left and A on the
    right (Algorithm 1) is the same matrix, so delta_new keeps rank <= the LoRA rank.
  landing: delta_new is merged into the new weight (no re-factoring into A/B), the adapter layers removed.
"""

from collections.abc import Callable

import torch
from peft import PeftModel

from bench.core.errors import BenchError
from bench.models.loading import tensor_reader
from methods.base import METHODS, Method, MethodContext

PAPER_SVD_RANK = 320  # Cross-LoRA's truncation rank for 1.5B-3B bases (its rank ablation: 80..320, higher better)


def truncated_basis(w: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-`rank` left and right singular vectors of w (float32): U (m, r), V (n, r), r <= min(m, n)."""
    u, _, vh = torch.linalg.svd(w.float(), full_matrices=False)
    return u[:, :rank], vh[:rank].T


def aligned_basis(basis_old: torch.Tensor, basis_new: torch.Tensor) -> torch.Tensor:
    """LoRA-Align: P basis_old for P = argmin_P ||P basis_old - basis_new||_F (minimum norm), P = new @ pinv(old).

    pinv of an orthonormal basis is its transpose; the product is taken right to left so P (m' x m) is never formed.
    """
    return basis_new @ (basis_old.T @ basis_old)


def shift_delta(delta_old: torch.Tensor, w_old: torch.Tensor, w_new: torch.Tensor, rank: int) -> torch.Tensor:
    """LoRA-Shift: delta_old projected onto the aligned rank-`rank` subspaces of w_new (float32)."""
    u_old, v_old = truncated_basis(w_old, rank)
    u_new, v_new = truncated_basis(w_new, rank)
    u, v = aligned_basis(u_old, u_new), aligned_basis(v_old, v_new)
    return u @ (u.T @ delta_old.float() @ v) @ v.T


@torch.no_grad()
def land_cross_lora(peft_model, old_weights: Callable[[str], torch.Tensor], svd_rank: int):
    """Merge each LoRA layer's shifted delta into the new base's weight; returns the plain model, in eval mode."""
    moved = 0
    for name, layer in peft_model.named_modules():
        if not hasattr(layer, "lora_A"):
            continue
        for adapter in layer.active_adapters:
            if adapter not in layer.lora_A:
                continue
            if layer.use_dora.get(adapter):
                raise BenchError("cross_lora transfers plain LoRA deltas; DoRA's magnitude vector has no shift")
            weight = layer.base_layer.weight
            w_old = old_weights(name.removeprefix("base_model.model.") + ".weight").to(weight.device)
            a, b = layer.lora_A[adapter].weight.float(), layer.lora_B[adapter].weight.float()
            delta_old = layer.scaling[adapter] * b @ a
            weight += shift_delta(delta_old, w_old, weight, svd_rank).to(weight.dtype)
            moved += 1
    if not moved:
        raise BenchError("cross_lora needs a LoRA module; the one given has no LoRA layers")
    return peft_model.unload().eval()


@METHODS.register("cross_lora")
class CrossLoRA(Method):
    """Cross-LoRA (arXiv 2508.05232): finetune_old's LoRA, moved data-free into the new base's subspaces."""

    name = "cross_lora"
    reuses = "finetune_old"     # lands finetune_old's trained module through its own transform
    lands_on = "new"
    svd_rank = PAPER_SVD_RANK   # >= every dim of the tiny pairs (128/256), where the shift is the identity

    def land(self, module_dir, target_base, ctx: MethodContext):
        model = PeftModel.from_pretrained(target_base, module_dir)
        return land_cross_lora(model, tensor_reader(ctx.pair.base_dir("old")), self.svd_rank)
