"""Trans-PEFT: while fine-tuning on the old base, mask and drop FFN knowledge; land unchanged on the new base.

During training only (never at evaluation), for each FFN sub-layer:
  masking:  h = act(gate(x)) * up(x);  h = h * m,  m ~ Bernoulli(1 - p_i) elementwise, no rescale; then down(h)
  dropping: with probability p_c per layer per forward the whole FFN sub-layer is skipped (not computed):
            the residual stream passes through unchanged.
Defaults: p_c = 0.1, p_i = 0, the only public script's (gccnlp/Trans-PEFT scripts/trans-peft-qwen.sh), on every
suite that says nothing else; commonsense sets p_c = 0.2 (the paper's Fig. 6) and p_i = 0.1 (the smallest of its
grid: docs/FIDELITY.md), in tasks/papers/recipes/commonsense.yaml.

The mask is drawn as the gaps between its zeros rather than one uniform number per activation: in a sequence of
independent Bernoulli(p_i) trials the gaps between successes are independent Geometric(p_i), so drawing about
p_i x n gaps gives exactly the same distribution from a twentieth of the random numbers (p_i = 0.05). One
uniform per activation cost more than skipping p_c of the FFNs saved (`bench perf`). The positions are all
the backward pass keeps (0.4 bytes per activation instead of a 1-byte mask).

Which FFNs a training forward drops is drawn once per forward from a generator seeded by (seed, step), the
step being the index of the training forward (one per optimizer step in the harness's loop; one per
micro-batch under --micro-batch): every process of a data-parallel run drops the same sub-layers at a given
step, and a checkpointed layer recomputed in the backward pass drops as it did forward. The masks stay per
sample, from the process's own random stream.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from bench.core.errors import BenchError
from bench.core.recipe import Recipe
from bench.models.ffn import ffn_sublayers, skipped_output
from methods.base import METHODS, Method, MethodContext


@dataclass(frozen=True)
class TransPEFTRecipe(Recipe):
    p_c: float = 0.1  # cross-layer knowledge dropping: P(skip an FFN sub-layer) per layer per forward
    p_i: float = 0.0  # intra-layer knowledge masking: P(zero an FFN intermediate activation)

    def check(self) -> None:
        super().check()
        for name in ("p_c", "p_i"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise BenchError(f"{name} must be in [0, 1), got {value}")


@METHODS.register("trans_peft")
class TransPEFT(Method):
    name = "trans_peft"
    trains_on = "old"
    lands_on = "new"  # as an adapter, unchanged
    recipe_class = TransPEFTRecipe
    default_recipe = TransPEFTRecipe()
    training_version = "2"  # 2: masks drawn as geometric gaps (same distribution, other draws than uniforms)

    def during_training(self, model, ctx: MethodContext | None = None):
        return knowledge_masking_and_dropping(model, self.recipe.p_i, self.recipe.p_c, seed=ctx.seed if ctx else 0)


@contextmanager
def knowledge_masking_and_dropping(model: torch.nn.Module, p_i: float, p_c: float, seed: int = 0):
    """Patch every FFN sub-layer of `model` for the duration; active only while module.training is True."""
    handles, originals = [], []
    sublayers = ffn_sublayers(model)

    def decide(step: int) -> torch.Tensor:  # which sub-layers step `step` drops: the same in every process
        generator = torch.Generator().manual_seed(hash((seed, step)) & (2**63 - 1))
        return torch.rand(len(sublayers), generator=generator) < p_c

    dropped, step = decide(0), 0  # ready before the first forward (a sub-layer may be called on its own)

    def draw(module, args):
        nonlocal dropped, step
        if module.training:
            dropped, step = decide(step), step + 1

    if p_c > 0:
        handles.append(model.register_forward_pre_hook(draw))
    for i, (ffn, down) in enumerate(sublayers):
        if p_i > 0:
            handles.append(down.register_forward_pre_hook(_mask_input(p_i)))
        if p_c > 0:
            originals.append((ffn, ffn.__dict__.get("forward")))  # usually None: the class's forward
            ffn.forward = _droppable(ffn, ffn.forward, lambda i=i: bool(dropped[i]))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for ffn, instance_forward in originals:
            if instance_forward is None:
                del ffn.forward
            else:
                ffn.forward = instance_forward


def _mask_input(p_i: float):
    def hook(module, args):
        if not module.training:
            return None
        h = args[0]
        return (h.reshape(-1).index_fill(0, masked_positions(h.numel(), p_i, h.device), 0).view_as(h),) + args[1:]

    return hook


def masked_positions(n: int, p: float, device) -> torch.Tensor:
    """Flat positions of the zeros of an n-element Bernoulli(p) mask, drawn for the whole batch at once: cumulative
    sums of Geometric(p) gaps, enough for 6 sd past the expected count (more if ever short)."""
    expected = n * p
    count = int(expected + 6 * math.sqrt(expected) + 16)
    ends = geometric_gaps(count, p, device).cumsum(0)
    while int(ends[-1]) < n:
        ends = torch.cat([ends, geometric_gaps(count, p, device).cumsum(0) + ends[-1]])
    return ends[: int(torch.searchsorted(ends, n, right=True))] - 1


def geometric_gaps(count: int, p: float, device) -> torch.Tensor:
    """Geometric(p) on {1, 2, ...} by inversion, 1 + floor(log(1 - U) / log(1 - p)): five times faster on a CPU than
    torch's geometric_. float32 U truncates gaps whose probability is below 2^-24, as a float32 uniform mask does."""
    u = torch.rand(count, device=device)
    return u.neg_().log1p_().div_(math.log1p(-p)).floor_().long() + 1


def _droppable(ffn: torch.nn.Module, forward, is_dropped):
    def maybe_skipped(hidden_states, *args, **kwargs):
        if ffn.training and is_dropped():
            return skipped_output(hidden_states)  # residual + 0, no FFN compute at all
        return forward(hidden_states, *args, **kwargs)

    return maybe_skipped
