"""PortLLM's simulated update: `bench make-pair`'s continued pre-training of a real model dir on a local corpus."""

import json

import pytest
import torch
from safetensors.torch import load_file

from bench.pairs.hub import HubPair, Model, SimulatedUpdate


@pytest.mark.parametrize("kind", ["lora-merged", "full"])
def test_continued_pretraining_moves_the_weights_and_keeps_every_shape(micro_pair, tmp_path, kind):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": f"every robot hums at night . {i} + {i} = {2 * i} ."})
                                for i in range(40)))
    parent = micro_pair.base_dir("old")
    update = SimulatedUpdate(corpus=str(corpus), kind=kind, rank=4, alpha=8, lr=1e-2, epochs=2, seq_len=16,
                             batch_size=4)
    pair = HubPair("sim", (Model(str(parent)), update), family="LlamaForCausalLM", update="test",
                   description="a simulated update of the micro v0", params_b=0.0, dtype_name="float32")
    new_dir = pair.base_dir("new")
    assert pair.base_dir("new") == new_dir  # built once, then cached by recipe
    before, after = load_file(parent / "model.safetensors"), load_file(new_dir / "model.safetensors")
    assert before.keys() == after.keys() and all(before[k].shape == after[k].shape for k in before)
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    linear = [k for k in before if k.endswith("proj.weight")]
    assert set(linear) <= set(moved)  # every linear changed (LoRA merged into all of them, or full weight)
    if kind == "lora-merged":  # a merged LoRA touches only the linears it targets
        assert not any("norm" in k for k in moved)
    assert pair.version_id("new").startswith(f"{parent}@main+cpt-")
