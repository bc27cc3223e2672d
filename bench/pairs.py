"""The pair registry: an old base and its update. Tiny pairs are built by the project itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.registry import Registry
from bench.tinypair import ModelSpec, TinyPairSpec, UpdateSpec, build_v0, build_v1, checkpoint_key
from bench.world import WorldSpec

PAIRS = Registry("pair", entry_point_group="peft_transfer_bench.pairs")


@dataclass(frozen=True)
class TinyPair:
    """A pair built locally from a synthetic world: v0 pretrained from scratch, v1 = v0 + update."""

    name: str
    spec: TinyPairSpec
    description: str
    trust_remote_code: bool = False

    def base_dir(self, version: str) -> Path:
        return {"old": build_v0, "new": build_v1}[version](self.spec)

    def version_id(self, version: str) -> str:
        """The recipe hash: names exactly what was (or will be) trained, without building it."""
        config = self.spec.v0_config() if version == "old" else self.spec.v1_config()
        return checkpoint_key("v0" if version == "old" else "v1", config)


def register_tiny(name: str, description: str, **spec_fields) -> None:
    PAIRS.register(name, TinyPair(name, TinyPairSpec(**spec_fields), description))


register_tiny("tiny", "default: full-weight update of moderate severity",
              update=UpdateSpec("full", steps=800, lr=1e-3))
register_tiny("tiny-mild", "PortLLM's regime: a LoRA continued pre-training merged into v0",
              update=UpdateSpec("lora-merged", steps=800, lr=1e-3))
register_tiny("tiny-severe", "a long full-weight update at a high learning rate",
              update=UpdateSpec("full", steps=1500, lr=2e-3))
register_tiny("tiny-ffn", "Trans-PEFT's premise: only the FFNs change",
              update=UpdateSpec("ffn-only", steps=1500, lr=2e-3))
register_tiny("tiny-qwen2", "the default update on a Qwen2ForCausalLM base",
              model=ModelSpec(arch="qwen2"), update=UpdateSpec("full", steps=800, lr=1e-3))
# A world small enough for the test suite: seconds to build, too small to learn much.
register_tiny("micro", "test-sized world (seconds on CPU; scores are noise)",
              world=WorldSpec(n_entities=24, n_new_entities=4, max_operand=9),
              model=ModelSpec(hidden=32, layers=2, heads=2, intermediate=64, max_positions=64),
              pretrain_steps=40, update=UpdateSpec("full", steps=20, lr=3e-3), batch_size=8, seq_len=32)
