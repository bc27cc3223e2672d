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


def test_a_scheduled_capped_update_runs_its_steps_and_rebuilds_identically(micro_pair, tmp_path, monkeypatch):
    """`bench make-pair`'s result is the same weights every time it is rebuilt from nothing (same machine)."""
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": f"def f{i}(x):\n    return x + {i}\n"}) for i in range(60)))
    parent = micro_pair.base_dir("old")
    update = SimulatedUpdate(corpus=str(corpus), kind="full", lr=1e-2, epochs=50, seq_len=16, batch_size=2,
                             schedule="cosine", warmup_steps=3, max_steps=12, precision="fp32")
    pair = HubPair("sim", (Model(str(parent)), update), family="LlamaForCausalLM", update="test",
                   description="a capped, scheduled update", params_b=0.0, dtype_name="float32")
    builds = []
    for cache in ("a", "b"):
        monkeypatch.setenv("PEFT_TRANSFER_BENCH_CACHE", str(tmp_path / cache))
        new_dir = pair.base_dir("new")
        meta = json.loads((new_dir / "bench_pair.json").read_text())
        assert meta["steps"] == 12 and meta["precision"] == "fp32"  # capped: 50 epochs would be far more
        builds.append(load_file(new_dir / "model.safetensors"))
    assert builds[0].keys() == builds[1].keys()
    assert all(torch.equal(builds[0][k], builds[1][k]) for k in builds[0])


def test_fields_added_later_keep_old_version_ids():
    """Bases built before schedule/warm-up/step cap/precision existed keep their ids, hence their caches."""
    update = SimulatedUpdate("Open-Orca/OpenOrca", kind="full", lr=1e-5, max_examples=100_000)
    later = {"schedule", "warmup_steps", "max_steps", "precision"}
    assert update.identity() == {k: v for k, v in update.__dict__.items() if k not in later}
    assert SimulatedUpdate("x", max_steps=5).identity()["max_steps"] == 5
