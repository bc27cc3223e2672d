"""Every pair family's architecture class through train -> transfer -> evaluate on CPU, as a local-path pair."""

import pytest
import torch

import methods  # noqa: F401
from bench.engine.protocol import run_grid
from bench.pairs import get_pair
from tasks.base import TASKS, Task

FAST = {"steps": 3, "batch_size": 4}


class OnMicroWorld(Task):
    """tiny_knowledge's data and scorer, with a model pair that is not itself built from the world."""

    name, metric = "tiny_knowledge", "acc"

    def __init__(self, world_pair):
        self.inner, self.world_pair = TASKS.get("tiny_knowledge")(), world_pair

    def train_examples(self, pair, version):
        return self.inner.train_examples(self.world_pair, version)

    def evaluate(self, model, tokenizer, pair, version, limit=None):
        return self.inner.evaluate(model, tokenizer, self.world_pair, version, limit)


def _config(arch: str, vocab: int):
    from transformers import Gemma2Config, LlamaConfig, MistralConfig, Qwen2Config

    fields = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    if arch == "gemma2":
        fields |= dict(head_dim=8, sliding_window=16)
    classes = {"qwen2": Qwen2Config, "llama": LlamaConfig, "mistral": MistralConfig, "gemma2": Gemma2Config}
    return classes[arch](**fields)


@pytest.mark.parametrize("arch", ["qwen2", "llama", "mistral", "gemma2"])
def test_family_runs_all_five_methods_as_a_local_path_pair(micro_pair, tmp_path, arch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(micro_pair.base_dir("old"))
    for seed, version in enumerate(("old", "new")):
        torch.manual_seed(seed)
        AutoModelForCausalLM.from_config(_config(arch, len(tokenizer))).save_pretrained(tmp_path / version)
        tokenizer.save_pretrained(tmp_path / version)
    pair = get_pair(f"{tmp_path / 'old'},{tmp_path / 'new'}")  # local paths, exactly as hub ids are used
    methods_ = ["finetune_old", "finetune_new", "direct_transfer", "portllm", "trans_peft"]
    cells = run_grid(methods_, pair, [OnMicroWorld(micro_pair)], [0], FAST, limit=8)
    assert [c.method for c in cells] == methods_
    assert all(0 <= c.score <= 100 and c.n == 8 for c in cells)
    assert {c.evaluated_on for c in cells} == {"old", "new"}
