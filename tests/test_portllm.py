"""PortLLM's patch: merged weights are theta' + scaling * B @ A, and equal direct transfer of that LoRA."""

import copy

import pytest
import torch
from conftest import tiny_causal_lm

import methods  # noqa: F401
from methods.direct_transfer import DirectTransfer
from methods.portllm import PortLLM


@pytest.fixture
def trained_module(tmp_path):
    """A PortLLM LoRA 'trained' on an old base (random non-zero B so the delta is not zero)."""
    from peft import get_peft_model

    old = tiny_causal_lm("llama", seed=0)
    lora = get_peft_model(old, PortLLM().peft_config())
    torch.manual_seed(3)
    for name, param in lora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    lora.save_pretrained(tmp_path)
    return tmp_path, {n: p.detach().clone() for n, p in lora.named_parameters() if "lora_" in n}


def test_merged_weights_equal_new_base_plus_scaled_lora_delta(trained_module):
    module_dir, lora = trained_module
    new = tiny_causal_lm("llama", seed=1)
    new_weights = {n: p.detach().clone() for n, p in new.named_parameters()}
    patched = PortLLM().land(module_dir, new)
    scaling = PortLLM().recipe.alpha / PortLLM().recipe.rank
    checked = 0
    for name, weight in patched.named_parameters():
        a_key = next((k for k in lora if k.endswith(name.replace(".weight", ".lora_A.default.weight"))), None)
        if a_key is None:
            torch.testing.assert_close(weight, new_weights[name], rtol=0, atol=0)  # untouched elsewhere
            continue
        b = lora[a_key.replace("lora_A", "lora_B")]
        expected = new_weights[name] + scaling * b @ lora[a_key]
        torch.testing.assert_close(weight, expected, rtol=1e-5, atol=1e-6)
        checked += 1
    assert checked == 2 * 7  # 2 layers x q, k, v, o, gate, up, down


def test_patch_and_direct_transfer_of_the_same_lora_agree(trained_module):
    module_dir, _ = trained_module
    new = tiny_causal_lm("llama", seed=1)
    patched = PortLLM().land(module_dir, copy.deepcopy(new))
    adapter = DirectTransfer().land(module_dir, new)
    ids = torch.randint(0, 64, (3, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(patched(ids).logits, adapter(ids).logits, rtol=1e-4, atol=1e-5)
    assert not any("lora_" in n for n, _ in patched.named_parameters())  # the patch is plain weights
