"""Trans-PEFT's training-time interventions: masking rate, dropping rate, eval mode untouched."""

import pytest
import torch
from conftest import tiny_causal_lm

from bench.models.ffn import ffn_sublayers
from methods.trans_peft import TransPEFT, knowledge_masking_and_dropping

ARCHS = ["llama", "qwen2", "mistral"]


def _batch(n=8, length=32):
    torch.manual_seed(1)
    return torch.randint(0, 64, (n, length))


def _capture_down_inputs(model):
    seen = []
    hooks = [down.register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))
             for _, down in ffn_sublayers(model)]
    return seen, hooks


@pytest.mark.parametrize("arch", ARCHS)
def test_masking_zeroes_a_fraction_p_i_of_ffn_activations_in_training_only(arch):
    model = tiny_causal_lm(arch, intermediate_size=256)
    ids = _batch()
    seen, hooks = _capture_down_inputs(model)
    model.train()
    torch.manual_seed(0)
    with knowledge_masking_and_dropping(model, p_i=0.3, p_c=0.0):
        model(ids)
    masked = torch.cat([h.flatten() for h in seen])
    assert abs((masked == 0).float().mean().item() - 0.3) < 0.01
    seen.clear()
    model.eval()
    with knowledge_masking_and_dropping(model, p_i=0.3, p_c=0.0):
        model(ids)
    assert (torch.cat([h.flatten() for h in seen]) == 0).float().mean().item() < 1e-3
    for h in hooks:
        h.remove()


def test_masked_activations_are_not_rescaled():
    model = tiny_causal_lm("llama", intermediate_size=256).train()
    ids = _batch()
    seen, _ = _capture_down_inputs(model)
    torch.manual_seed(0)
    model(ids)
    plain = seen[0].clone()
    seen.clear()
    torch.manual_seed(0)
    with knowledge_masking_and_dropping(model, p_i=0.5, p_c=0.0):
        model(ids)
    kept = seen[0] != 0
    assert torch.equal(seen[0][kept], plain[kept])  # no 1/(1-p) factor on what survives


@pytest.mark.parametrize("arch", ARCHS)
def test_dropping_skips_the_ffn_forward_at_rate_p_c(arch):
    model = tiny_causal_lm(arch).train()
    calls = []
    for _, down in ffn_sublayers(model):
        down.register_forward_hook(lambda *a: calls.append(1))
    forwards, layers = 400, len(ffn_sublayers(model))
    ids = _batch(1, 4)
    torch.manual_seed(0)
    with knowledge_masking_and_dropping(model, p_i=0.0, p_c=0.25), torch.no_grad():
        for _ in range(forwards):
            model(ids)
    rate_skipped = 1 - len(calls) / (forwards * layers)
    assert abs(rate_skipped - 0.25) < 0.05


def test_a_dropped_ffn_leaves_the_residual_stream_unchanged():
    model = tiny_causal_lm("llama").train()
    ids = _batch(2, 8)
    torch.manual_seed(0)
    with knowledge_masking_and_dropping(model, p_i=0.0, p_c=0.999999), torch.no_grad():
        dropped = model(ids).logits
    for _, down in ffn_sublayers(model):
        torch.nn.init.zeros_(down.weight)  # an FFN that outputs zero: the residual passes unchanged
    with torch.no_grad():
        reference = model(ids).logits
    torch.testing.assert_close(dropped, reference)


def test_eval_mode_and_after_exit_outputs_are_untouched():
    model = tiny_causal_lm("qwen2")
    ids = _batch(2, 16)
    with torch.no_grad():
        before = model(ids).logits
        with knowledge_masking_and_dropping(model, p_i=0.5, p_c=0.5):
            during_eval = model(ids).logits
        model.train()
        with knowledge_masking_and_dropping(model, p_i=0.5, p_c=0.5):
            model(ids)
        model.eval()
        after = model(ids).logits
    assert torch.equal(before, during_eval)
    assert torch.equal(before, after)
    for ffn, down in ffn_sublayers(model):
        assert "forward" not in ffn.__dict__ and not down._forward_pre_hooks


def test_interventions_reach_ffns_inside_a_peft_model():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_causal_lm("llama", intermediate_size=256),
                           LoraConfig(r=4, target_modules=["q_proj", "down_proj"])).train()
    seen, _ = _capture_down_inputs(model)
    torch.manual_seed(0)
    with knowledge_masking_and_dropping(model, p_i=0.2, p_c=0.0):
        model(_batch())
    assert abs((torch.cat([h.flatten() for h in seen]) == 0).float().mean().item() - 0.2) < 0.02


@pytest.mark.parametrize("bad", [{"p_c": 1.0}, {"p_i": -0.1}, {"p_c": 1.5}, {"rank": 0}])
def test_out_of_range_options_are_rejected(bad):
    from bench.core.errors import BenchError

    with pytest.raises(BenchError):
        TransPEFT(**bad)
