"""One finder of decoder layers, attention and FFN sub-layers, for every architecture family the pairs use."""

import pytest
import torch
import transformers as hf

from bench.models.ffn import decoder_layers, ffn_sublayers, sublayer_of
from bench.models.training import train_update
from methods.trans_peft import knowledge_masking_and_dropping

SMALL = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64)


class InternLM2Layer(torch.nn.Module):
    """InternLM2's module names (its modeling code is remote): attention.wqkv/wo, feed_forward.w1/w2/w3."""

    def __init__(self, hidden=32, inner=64):
        super().__init__()
        self.attention_norm, self.ffn_norm = torch.nn.LayerNorm(hidden), torch.nn.LayerNorm(hidden)
        self.attention = torch.nn.Module()
        self.attention.wqkv, self.attention.wo = torch.nn.Linear(hidden, 3 * hidden), torch.nn.Linear(hidden, hidden)
        self.feed_forward = torch.nn.Module()
        self.feed_forward.w1, self.feed_forward.w3 = torch.nn.Linear(hidden, inner), torch.nn.Linear(hidden, inner)
        self.feed_forward.w2 = torch.nn.Linear(inner, hidden)


def internlm2_like():
    model = torch.nn.Module()
    model.model = torch.nn.Module()
    model.model.layers = torch.nn.ModuleList([InternLM2Layer(), InternLM2Layer()])
    return model


def hf_model(config):
    torch.manual_seed(0)
    return hf.AutoModelForCausalLM.from_config(config)


FAMILIES = {
    "llama": (lambda: hf_model(hf.LlamaConfig(**SMALL)), "down_proj"),
    "qwen2": (lambda: hf_model(hf.Qwen2Config(**SMALL)), "down_proj"),
    "mistral": (lambda: hf_model(hf.MistralConfig(**SMALL)), "down_proj"),
    "gemma2": (lambda: hf_model(hf.Gemma2Config(**SMALL, head_dim=8)), "down_proj"),
    "phi3": (lambda: hf_model(hf.Phi3Config(**SMALL, pad_token_id=0)), "down_proj"),
    "gpt2": (lambda: hf_model(hf.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                                   resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)), "c_proj"),
    "internlm2": (internlm2_like, "w2"),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_layer_has_one_attention_one_ffn_and_the_ffn_output_projection(family):
    build, down_name = FAMILIES[family]
    model = build()
    layers = decoder_layers(model)
    assert len(layers) == 2
    found = ffn_sublayers(model)
    assert len(found) == 2
    for (layer, attention, ffn), (ffn_module, down) in zip(layers, found):
        assert getattr(layer, ffn) is ffn_module and getattr(ffn_module, down_name) is down
        assert down not in set(getattr(layer, attention).modules())  # GPT-2's attention has a c_proj too


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_parameter_names_split_into_attention_and_ffn_like_the_modules(family):
    model = FAMILIES[family][0]()
    for layer, attention, ffn in decoder_layers(model):
        prefix = next(n for n, m in model.named_modules() if m is layer)
        for name, _ in getattr(layer, attention).named_parameters():
            assert sublayer_of(f"{prefix}.{attention}.{name}") == "attention"
        for name, _ in getattr(layer, ffn).named_parameters():
            assert sublayer_of(f"{prefix}.{ffn}.{name}") == "ffn"
    assert sublayer_of("model.embed_tokens.weight") is None and sublayer_of("model.norm.weight") is None


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - {"internlm2"}))
def test_ffn_only_update_moves_exactly_the_ffn_weights(family):
    model = FAMILIES[family][0]()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(0))
    batches = iter([{"input_ids": ids, "labels": ids, "attention_mask": torch.ones_like(ids)}] * 2)
    model, _ = train_update(model, "ffn-only", batches, 2, 1e-2, 4, 8)
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all(sublayer_of(n) == "ffn" for n in moved)


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - {"internlm2"}))
def test_trans_peft_drops_every_family_s_ffn_during_training_only(family):
    model = FAMILIES[family][0]()
    ids = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain_train, plain_eval = model.train()(ids).logits, model.eval()(ids).logits
        with knowledge_masking_and_dropping(model, p_i=0.0, p_c=0.999):
            dropped = model.train()(ids).logits
            assert torch.equal(model.eval()(ids).logits, plain_eval)  # evaluation: never dropped
    assert not torch.allclose(dropped, plain_train, atol=1e-4)
