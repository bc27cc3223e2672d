"""Tiny chains of updates v0 -> v1 -> v2 -> ... (PortLLM Table A's shape, on the tiny world).

Tiny chains: v1 is the tiny pair's own v1 (same recipe, same cache entry); each later version continues
pre-training the previous one on the world's version-1 text drawn with another seed (the world has two
versions of its facts, so later steps move weights without changing the facts the tasks ask about).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from bench.pairs.base import Pair
from bench.pairs.tinypair import (
    TinyPairSpec,
    UpdateSpec,
    _shipped_or_cached,
    build_v0,
    build_v1,
    checkpoint_key,
    tiny_recipe_scale,
    update_checkpoint,
)


@dataclass(frozen=True)
class TinyChain(Pair):
    """v0 -> v1 (spec.update) -> v2 -> ... (later): each update continues the previous version."""

    name: str
    spec: TinyPairSpec
    later: tuple[UpdateSpec, ...]
    description: str
    trust_remote_code: bool = False

    def version_count(self) -> int:
        return 2 + len(self.later)

    def world(self):
        return self.spec.world.world()

    def step(self, k: int) -> Pair:
        self.index(f"v{k}")
        return ChainStep(self, k)

    def _config(self, k: int) -> dict:
        config = self.spec.v1_config() if k else self.spec.v0_config()
        return config | ({"chain": [dataclasses.asdict(u) for u in self.later[: k - 1]]} if k > 1 else {})

    def recipe_scale(self, recipe) -> dict:
        return tiny_recipe_scale(recipe)

    def version_id(self, version: str) -> str:
        k = self.index(version)
        return checkpoint_key(f"v{k}", self._config(k))

    def base_dir(self, version: str) -> Path:
        k = self.index(version)
        if k <= 1:
            return (build_v0 if k == 0 else build_v1)(self.spec)
        previous = self.base_dir(f"v{k - 1}")

        def build(out: Path):
            update_checkpoint(previous, self.spec, self.later[k - 2], out, {"version": k, "spec": self._config(k)},
                              corpus_seed=self.spec.seed + k - 1, batch_seed=self.spec.seed + k)

        return _shipped_or_cached(f"v{k}", self._config(k), build)


@dataclass(frozen=True)
class ChainStep(Pair):
    """The pair (v0, vk) of a tiny chain, as the protocol and the tiny tasks see a pair."""

    chain: TinyChain
    k: int

    @property
    def name(self) -> str:
        return f"{self.chain.name}@v{self.k}"

    @property
    def description(self) -> str:
        return f"{self.chain.description}: v0 -> v{self.k}"

    def version_count(self) -> int:
        return 2

    @property
    def trust_remote_code(self) -> bool:
        return self.chain.trust_remote_code

    def world(self):
        return self.chain.world()

    def step(self, k: int) -> Pair:
        self.index(f"v{k}")
        return self

    def recipe_scale(self, recipe) -> dict:
        return self.chain.recipe_scale(recipe)

    def _version(self, version: str) -> str:
        return f"v{self.index(version) * self.k}"

    def version_id(self, version: str) -> str:
        return self.chain.version_id(self._version(version))

    def base_dir(self, version: str) -> Path:
        return self.chain.base_dir(self._version(version))
