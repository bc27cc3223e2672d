"""Shared fixtures: an isolated artifact cache and tiny models built in memory."""

import os
import tempfile

import pytest
import torch

# Before any bench import: one cache for the whole session (the micro pair is built once), no progress bars.
os.environ.setdefault("PEFT_TRANSFER_BENCH_CACHE", tempfile.mkdtemp(prefix="bench-test-cache-"))
os.environ["BENCH_PROGRESS"] = "0"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def micro_pair():
    from bench.pairs import PAIRS

    pair = PAIRS.get("micro")
    pair.base_dir("new")  # builds v0 and v1 (a few seconds)
    return pair


@pytest.fixture
def trained_count():
    """How many modules the store has trained since the test began (the store is the seam, not the loop)."""
    from bench.core.store import Store

    before = set(Store().keys("modules"))
    return lambda: len(set(Store().keys("modules")) - before)


def landing_context(old_dir, new_dir=None):
    """What the protocol hands a method's land(): here, a pair of two local checkpoint folders."""
    from bench.core.store import Store
    from bench.pairs import get_pair
    from methods.base import MethodContext, Recipe

    pair = get_pair(f"{old_dir},{new_dir or old_dir}")
    return MethodContext(pair=pair, task=None, seed=0, recipe=Recipe(), store=Store(), trained_module=None)


def tiny_causal_lm(arch: str = "llama", seed: int = 0, **overrides):
    """A random decoder of the given architecture class, small enough for unit tests."""
    from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config

    config_class = {"llama": LlamaConfig, "qwen2": Qwen2Config, "mistral": MistralConfig}[arch]
    fields = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64) | overrides
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config_class(**fields)).eval()
