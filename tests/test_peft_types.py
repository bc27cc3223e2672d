"""--peft lora|dora|adapter: every type through the protocol, PortLLM's DoRA patch, bottleneck adapters."""

import copy

import pytest
import torch
from conftest import landing_context, tiny_causal_lm

import methods  # noqa: F401
from bench.core.errors import BenchError
from bench.engine.protocol import build_method, evaluate_cell
from bench.models.adapters import AdaptedSublayer, BottleneckConfig, add_adapters, load_adapters, save_adapters
from bench.models.ffn import skipped_output
from methods.portllm import PortLLM
from methods.trans_peft import knowledge_masking_and_dropping
from tasks.base import TASKS

FAST = {"steps": 4, "batch_size": 4}


@pytest.mark.parametrize("peft", ["lora", "dora", "adapter"])
def test_every_peft_type_trains_transfers_and_evaluates_on_the_micro_pair(micro_pair, peft):
    overrides = FAST | {"peft": peft}
    task = TASKS.get("tiny_knowledge")()
    names = ["finetune_old", "direct_transfer", "trans_peft"] + (["portllm"] if peft != "adapter" else [])
    cells = {n: evaluate_cell(build_method(n, overrides, micro_pair, task), micro_pair, task, 0, None, overrides)
             for n in names}
    for cell in cells.values():
        assert 0 <= cell.score <= 100 and cell.n > 0 and cell.trainable_params > 0
    assert cells["direct_transfer"].module_key == cells["finetune_old"].module_key
    from bench.core.store import cache_dir

    module = cache_dir() / "modules" / cells["trans_peft"].module_key
    assert (module / "adapter_model.safetensors").exists() and not list(module.glob("*.bin"))


def test_portllm_refuses_bottleneck_adapters_in_one_line():
    with pytest.raises(BenchError, match="portllm is a LoRA/DoRA weight patch") as error:
        build_method("portllm", {"peft": "adapter"})
    assert "\n" not in str(error.value)
    with pytest.raises(BenchError, match="peft must be one of lora, dora, adapter"):
        build_method("finetune_old", {"peft": "ia3"})


def save_as_trained(dora, path):
    """Save a DoRA module as if trained: random B and magnitudes (seeded), so no merge term is trivially zero."""
    torch.manual_seed(3)
    for name, param in dora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
        if "lora_magnitude_vector" in name:
            param.data *= 1 + 0.2 * torch.rand_like(param)
    dora.save_pretrained(path)


@pytest.fixture
def dora_module(tmp_path):
    """A DoRA module 'trained' on an old base saved to disk (random B and magnitude so nothing is trivial)."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    tiny_causal_lm("llama", seed=0).save_pretrained(tmp_path / "old")
    old = AutoModelForCausalLM.from_pretrained(tmp_path / "old")
    dora = get_peft_model(old, PortLLM(peft="dora").peft_config())
    save_as_trained(dora, tmp_path / "module")
    return tmp_path / "module", dora.merge_and_unload()


def test_portllm_dora_patch_is_the_old_bases_delta_added_to_the_new_weights(dora_module, tmp_path):
    from transformers import AutoModelForCausalLM

    module_dir, merged_on_old = dora_module
    old = AutoModelForCausalLM.from_pretrained(tmp_path / "old")
    # on the very base it was trained on, the patch is exactly DoRA's own merge
    ctx = landing_context(tmp_path / "old")
    same = PortLLM(peft="dora").land(module_dir, AutoModelForCausalLM.from_pretrained(tmp_path / "old"), ctx)
    for (name, got), (_, want) in zip(same.named_parameters(), merged_on_old.named_parameters()):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)
    new = tiny_causal_lm("llama", seed=1)
    new_weights = {n: p.detach().clone() for n, p in new.named_parameters()}
    patched = PortLLM(peft="dora").land(module_dir, copy.deepcopy(new), ctx)
    old_weights, merged = dict(old.named_parameters()), dict(merged_on_old.named_parameters())
    for name, weight in patched.named_parameters():
        expected = new_weights[name] + (merged[name] - old_weights[name])
        torch.testing.assert_close(weight, expected, rtol=1e-5, atol=1e-5, msg=name)
    # direct transfer renormalises the magnitude against the new weights instead: a different model
    from methods.direct_transfer import DirectTransfer

    adapter = DirectTransfer(peft="dora").land(module_dir, new)
    ids = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert not torch.allclose(patched(ids).logits, adapter(ids).logits, atol=1e-3)


def test_bottleneck_adapters_start_as_the_reference_and_round_trip_through_safetensors(tmp_path):
    base = tiny_causal_lm("qwen2", seed=0)
    ids = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = base(ids).logits
    model = add_adapters(copy.deepcopy(base), BottleneckConfig(bottleneck=4))
    assert sum(isinstance(m, AdaptedSublayer) for m in model.modules()) == 4  # 2 layers x (attention, FFN)
    assert all(p.requires_grad == (".bottleneck_adapter." in n) for n, p in model.named_parameters())
    # Trans-PEFT's init: A ~ N(0, 0.02), B's weight zero, B's bias left at nn.Linear's default (not zero), so an
    # untrained adapter adds the constant B.bias to whatever it sees.
    adapters = [m.bottleneck_adapter for m in model.modules() if isinstance(m, AdaptedSublayer)]
    down = torch.cat([a.down.weight.flatten() for a in adapters])
    assert abs(down.std().item() - 0.02) < 0.004 and abs(down.mean().item()) < 0.004
    assert all(torch.count_nonzero(a.up.weight) == 0 and torch.count_nonzero(a.up.bias) > 0 for a in adapters)
    h = torch.randn(3, 32)
    torch.testing.assert_close(adapters[0].delta(h), adapters[0].up.bias.expand(3, -1))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".bottleneck_adapter.up." in name:
                param.normal_(std=0.5)
        adapted = model(ids).logits
    assert not torch.allclose(adapted, before)
    save_adapters(model, tmp_path / "module")
    assert sorted(p.name for p in (tmp_path / "module").iterdir()) == [
        "adapter_model.safetensors", "bottleneck_adapter.json"]
    with torch.no_grad():
        torch.testing.assert_close(load_adapters(copy.deepcopy(base), tmp_path / "module")(ids).logits, adapted)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_a_dropped_ffn_outputs_residual_plus_adapter_of_the_raw_residual(arch):
    """As Trans-PEFT's reference (modeling_qwen2.py): with the FFN dropped, the decoder layer outputs
    residual + up(act(down(residual))), the residual taken before the post-attention LayerNorm."""
    model = add_adapters(tiny_causal_lm(arch, seed=0), BottleneckConfig(bottleneck=4))
    layer = model.model.layers[0]
    wrapped = layer.mlp
    for param in wrapped.bottleneck_adapter.parameters():
        torch.nn.init.normal_(param, std=0.5)
    seen = {}
    layer.post_attention_layernorm.register_forward_pre_hook(lambda m, args: seen.update(residual=args[0].clone()))
    layer.register_forward_hook(lambda m, args, out: seen.update(out=(out[0] if isinstance(out, tuple) else out)))
    ids = torch.randint(0, 64, (2, 6), generator=torch.Generator().manual_seed(0))
    model.train()
    with torch.no_grad(), knowledge_masking_and_dropping(model, p_i=0.0, p_c=0.999999):  # dropped, via the real patch
        model(ids)
    residual = seen["residual"]
    with torch.no_grad():
        expected = residual + wrapped.bottleneck_adapter.delta(residual)
    assert torch.equal(seen["out"], expected)
    assert wrapped.residual is None  # the residual is not kept past the forward
    # not the old path, where the adapter saw the LayerNorm'd stream
    with torch.no_grad():
        normed = layer.post_attention_layernorm(residual)
        assert not torch.allclose(seen["out"], residual + wrapped.bottleneck_adapter.delta(normed))


def test_a_dropped_ffn_without_a_known_norm_is_one_clear_error():
    model = add_adapters(tiny_causal_lm("llama", seed=0), BottleneckConfig(bottleneck=4))
    wrapped = model.model.layers[0].mlp
    wrapped.mlp.forward = skipped_output  # as if the FFN were dropped, called without its norm in front
    with pytest.raises(BenchError, match="needs the residual stream"):
        wrapped(torch.randn(2, 5, 32))


def test_portllm_dora_patch_transposes_gpt2_conv1d_weights(tmp_path):
    """GPT-2's Conv1D stores (in, out), the transpose of nn.Linear: the patch is still theta' + (merged - theta)."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    def gpt2(seed):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                          bos_token_id=0, eos_token_id=0)).eval()

    gpt2(0).save_pretrained(tmp_path / "old")
    portllm = PortLLM(peft="dora", targets="c_attn,c_proj,c_fc")
    dora = get_peft_model(AutoModelForCausalLM.from_pretrained(tmp_path / "old"), portllm.peft_config())
    save_as_trained(dora, tmp_path / "module")
    merged = dict(dora.merge_and_unload().named_parameters())
    old = dict(AutoModelForCausalLM.from_pretrained(tmp_path / "old").named_parameters())
    new = gpt2(1)
    new_weights = {n: p.detach().clone() for n, p in new.named_parameters()}
    patched = portllm.land(tmp_path / "module", new, landing_context(tmp_path / "old"))
    changed = 0
    for name, weight in patched.named_parameters():
        torch.testing.assert_close(weight, new_weights[name] + (merged[name] - old[name]), rtol=1e-5, atol=1e-5,
                                   msg=name)
        changed += not torch.equal(weight, new_weights[name])
    assert changed == 2 * 4  # 2 layers x attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj
