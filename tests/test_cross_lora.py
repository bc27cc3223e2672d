"""Cross-LoRA: LoRA-Align + LoRA-Shift on toy weights, and the landing on a tiny Llama."""

import torch
from conftest import tiny_causal_lm
from peft import LoraConfig, get_peft_model

from methods.cross_lora import land_cross_lora, shift_delta, truncated_basis


def _weights_and_delta(m=16, n=16, lora_rank=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    w_old = torch.randn(m, n, generator=g)
    delta = torch.randn(m, lora_rank, generator=g) @ torch.randn(lora_rank, n, generator=g) * 0.1
    return w_old, delta, g


def _projected(delta, u, v):
    return u @ u.T @ delta @ v @ v.T


def test_same_base_full_rank_returns_the_old_delta():
    w, delta, _ = _weights_and_delta()
    torch.testing.assert_close(shift_delta(delta, w, w, rank=16), delta, atol=1e-5, rtol=0)
    torch.testing.assert_close(shift_delta(delta, w, w, rank=320), delta, atol=1e-5, rtol=0)  # rank clipped
    # A non-square weight spans only min(m, n) dims on its longer side: even at full rank that side is projected.
    w, delta, _ = _weights_and_delta(m=24)
    u, v = truncated_basis(w, 16)
    torch.testing.assert_close(shift_delta(delta, w, w, rank=320), u @ u.T @ delta, atol=1e-5, rtol=0)


def test_same_base_truncated_is_the_projection_onto_its_top_subspaces():
    w, delta, _ = _weights_and_delta()
    u, v = truncated_basis(w, 6)
    torch.testing.assert_close(shift_delta(delta, w, w, rank=6), _projected(delta, u, v), atol=1e-5, rtol=0)


def test_output_rotation_moves_the_subspace_not_the_delta():
    # W_new = Q W_old: the new left subspace is Q span(U_old), and the delta is projected onto it.
    # The paper's shift is a projection, so it does not rotate the delta: at full rank it is delta_old, not Q delta_old.
    w, delta, g = _weights_and_delta()
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g))
    u_old, v_old = truncated_basis(w, 6)
    shifted = shift_delta(delta, w, q @ w, rank=6)
    torch.testing.assert_close(shifted, _projected(delta, q @ u_old, v_old), atol=1e-5, rtol=0)
    full = shift_delta(delta, w, q @ w, rank=16)
    torch.testing.assert_close(full, delta, atol=1e-5, rtol=0)
    assert torch.linalg.norm(full - q @ delta) > 0.5 * torch.linalg.norm(delta)


def test_shifted_delta_lies_in_the_new_truncated_subspaces_with_the_lora_rank():
    w_old, delta, g = _weights_and_delta(m=24)
    w_new = w_old + 0.3 * torch.randn(24, 16, generator=g)
    shifted = shift_delta(delta, w_old, w_new, rank=6)
    u_new, v_new = truncated_basis(w_new, 6)
    torch.testing.assert_close(_projected(shifted, u_new, v_new), shifted, atol=1e-5, rtol=0)
    assert torch.linalg.matrix_rank(shifted) <= 4  # re-factoring into a rank-4 LoRA would be lossless
    assert torch.linalg.norm(shifted - delta) > 1e-3  # truncation did remove something


def test_landing_with_old_equal_new_matches_the_merged_lora():
    base = tiny_causal_lm("llama", num_key_value_heads=4)
    old = {key: t.clone() for key, t in base.state_dict().items()}
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(std=0.5)
    ids = torch.randint(0, 64, (2, 10))
    with torch.no_grad():
        expected = model.eval()(ids).logits
        landed = land_cross_lora(model, old.__getitem__, svd_rank=320)
        assert not any("lora" in name for name, _ in landed.named_modules())
        torch.testing.assert_close(landed(ids).logits, expected, atol=1e-4, rtol=0)
