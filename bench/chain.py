"""Chain transfer (PortLLM Table A; Trans-PEFT's open question of multi-step transfer): a module trained on
v0 landed on v1, v2, v3, ... of a chain of updates, as a curve.

Each step k is run as the pair (v0, vk) through bench.protocol.run_grid: the v0 module's cache key names only
v0, so it is trained once and landed on every version; finetune_new re-tunes on each vk as the reference.

Tiny chains: v1 is the tiny pair's own v1 (same recipe, same cache entry); each later version continues
pre-training the previous one on the world's version-1 text drawn with another seed (the world has two
versions of its facts, so later steps move weights without changing the facts the tasks ask about).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.tinypair import TinyPairSpec, UpdateSpec, build_v0, build_v1, checkpoint_key, update_checkpoint


@dataclass(frozen=True)
class TinyChain:
    """v0 -> v1 (spec.update) -> v2 -> ... (later): each update continues the previous version."""

    name: str
    spec: TinyPairSpec
    later: tuple[UpdateSpec, ...]
    description: str
    trust_remote_code: bool = False

    @property
    def versions(self) -> tuple:
        return (None, self.spec.update) + self.later  # length = number of versions (bench.compat reads it)

    def _index(self, version: str) -> int:
        last = len(self.versions) - 1
        if version in ("old", "new"):
            return 0 if version == "old" else last
        if version.startswith("v") and version[1:].isdigit() and int(version[1:]) <= last:
            return int(version[1:])
        raise BenchError(f"pair {self.name} has versions old, new, v0..v{last}; not {version!r}")

    def _config(self, k: int) -> dict:
        config = self.spec.v1_config() if k else self.spec.v0_config()
        return config | ({"chain": [dataclasses.asdict(u) for u in self.later[: k - 1]]} if k > 1 else {})

    def recipe_scale(self, recipe) -> dict:
        from bench.pairs import tiny_recipe_scale

        return tiny_recipe_scale(recipe)

    def version_id(self, version: str) -> str:
        k = self._index(version)
        return checkpoint_key(f"v{k}", self._config(k))

    def base_dir(self, version: str) -> Path:
        k = self._index(version)
        if k <= 1:
            return (build_v0 if k == 0 else build_v1)(self.spec)
        from bench.tinypair import _shipped_or_cached

        previous = self.base_dir(f"v{k - 1}")

        def build(out: Path):
            update_checkpoint(previous, self.spec, self.later[k - 2], out, {"version": k, "spec": self._config(k)},
                              corpus_seed=self.spec.seed + k - 1, batch_seed=self.spec.seed + k)

        return _shipped_or_cached(f"v{k}", self._config(k), build)


@dataclass(frozen=True)
class ChainStep:
    """The pair (v0, vk) of a tiny chain, as the protocol and the tiny tasks see a pair."""

    chain: TinyChain
    k: int

    @property
    def name(self) -> str:
        return f"{self.chain.name}@v{self.k}"

    @property
    def spec(self) -> TinyPairSpec:  # the tiny tasks read the world from here
        return self.chain.spec

    @property
    def trust_remote_code(self) -> bool:
        return self.chain.trust_remote_code

    def recipe_scale(self, recipe) -> dict:
        return self.chain.recipe_scale(recipe)

    def _version(self, version: str) -> str:
        if version not in ("old", "new"):
            raise BenchError(f"pair {self.name} has versions old and new; not {version!r}")
        return "v0" if version == "old" else f"v{self.k}"

    def version_id(self, version: str) -> str:
        return self.chain.version_id(self._version(version))

    def base_dir(self, version: str) -> Path:
        return self.chain.base_dir(self._version(version))


def chain_steps(pair) -> list:
    """(v0, v1), (v0, v2), ... of a chain: a tiny chain, or a hub pair with three or more versions."""
    from bench.pairs import HubPair

    n = len(getattr(pair, "versions", ()))
    if n < 3:
        raise BenchError(f"pair {pair.name!r} is not a chain (it has {max(n, 2)} versions; a chain has three or "
                         "more, e.g. tiny-chain or mistral-7b-chain)")
    if isinstance(pair, HubPair):
        return [dataclasses.replace(pair, name=f"{pair.name}@v{k}", versions=pair.versions[: k + 1])
                for k in range(1, n)]
    return [ChainStep(pair, k) for k in range(1, n)]


def chain_transfer(pair, methods: list[str], tasks: list, seeds: list[int], out: Path,
                   limit: int | None = None) -> dict:
    """One point per version after v0 and per method; writes a results file per step, summary.json, chain.png."""
    from bench.diagnose import weight_change
    from bench.sweeps import cell_scores, check_out_dir, run_point, summarize

    check_out_dir(out)
    steps = chain_steps(pair)  # checked before anything trains
    points = []
    for step in steps:
        change = weight_change(Path(step.base_dir("old")), Path(step.base_dir("new")))
        version = f"v{len(points) + 1}"
        path = out / f"{pair.name}-{version}.json"
        cells = run_point(methods, step, tasks, seeds, {}, limit, path, {"chain_version": version,
                                                                         "weight_change": change})
        points.append({"version": version, "pair": step.name, "results": path.name,
                       "version_id": step.version_id("new"), "weight_change": change,
                       "methods": {m: summarize(s) for m, s in cell_scores(cells).items()}})
    summary = {"kind": "chain", "pair": pair.name, "methods": methods, "tasks": [t.name for t in tasks],
               "seeds": seeds, "points": points}
    from bench.store import write_json_atomic

    write_json_atomic(out / "summary.json", summary)
    plot_chain(summary, out / "chain.png")
    return summary


def plot_chain(summary: dict, path: Path) -> Path:
    from bench.plots import errorbars_per_method, pyplot, save_png, score_axis_label

    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    errorbars_per_method(ax, [p["version"] for p in summary["points"]], summary["points"], summary["methods"])
    ax.set(xlabel="version the module lands on (trained on v0; finetune_new re-tunes on each)",
           ylabel=score_axis_label(summary), title=f"{summary['pair']}: chain transfer")
    ax.legend()
    return save_png(fig, path)
