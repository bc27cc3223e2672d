"""What a pair is to everything above it: versions of one base model, oldest first.

Every pair kind (tiny, tiny chain, hub, GGUF-backed hub) answers the same questions, so no caller
probes a pair for attributes. "old" is the first version and "new" the last; v0..vN name each.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path

import torch

from bench.core.errors import BenchError
from bench.models.loading import tensor_shapes


class Pair(ABC):
    name: str
    description: str
    trust_remote_code: bool = False  # only a pair that declares it runs a checkpoint's code
    suite: tuple[str, ...] = ()      # default tasks for `bench run --pair NAME`
    params_b: float = 0.0            # billions of parameters, for plan estimates (0: a tiny pair)
    dims: tuple[int, int, int] | None = None  # (hidden, layers, vocab) from config.json: memory plans offline
    shippable: bool = False          # its checkpoints can ship inside the package (tiny pairs)
    cpu_precision: str | None = None  # what --precision auto means on a CPU; None: the CPU probe decides

    @abstractmethod
    def version_count(self) -> int:
        """How many versions: 2 for a pair, 3 or more for a chain of updates."""

    @abstractmethod
    def version_id(self, version: str) -> str:
        """A stable name of exactly this version's weights, computed without building or downloading them."""

    @abstractmethod
    def base_dir(self, version: str) -> Path:
        """A local safetensors checkpoint directory of the version (built or downloaded on first use)."""

    @abstractmethod
    def step(self, k: int) -> Pair:
        """The two-version pair (v0, vk): one hop of a chain, landed from v0."""

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def recipe_scale(self, recipe) -> dict:
        """Recipe fields this pair changes for its model size (tiny pairs: rank and lr); none by default."""
        return {}

    def world(self):
        """The synthetic world the tiny tasks are generated from, or None for a pair of real models."""
        return None

    def with_update(self, kind: str, severity: float) -> Pair:
        """The same v0 with v1 = v0 + a `kind` update of `severity` x this pair's own update (sweep-update)."""
        raise BenchError(f"sweep-update builds updates locally from a tiny pair's v0; {self.name!r} is not one "
                         "(bench list pairs)")

    def ship(self, version: str) -> Path:
        """Copy a built version into the package (maintainers of shippable pairs; commit the result)."""
        raise BenchError("--ship is for tiny pairs, whose checkpoints ship with the package")

    def architecture(self, version: str) -> tuple[dict, dict[str, tuple[int, ...]]]:
        """(config.json, {tensor: shape}) of a version, from headers only (no weights are read)."""
        directory = Path(self.base_dir(version))
        try:
            return json.loads((directory / "config.json").read_text()), tensor_shapes(directory)
        except (OSError, ValueError, BenchError) as error:
            raise BenchError(f"cannot load the {version} base of pair {self.name!r} from {directory}: "
                             f"{str(error).splitlines()[0]}") from None

    def known_architecture(self, version: str) -> tuple[dict, dict[str, tuple[int, ...]]] | None:
        """architecture(), but only where nothing has to be built or downloaded for it (dry runs); else None."""
        return None

    def verify_revisions(self) -> list[tuple[str, str, str]]:
        """(version, status, line) per version: is the local copy at the pinned commit (`bench verify-pair`)."""
        raise BenchError(f"pair {self.name!r} is built here (bench make-pair): it has no hub revision to verify")

    def version_names(self) -> list[str]:
        return [f"v{i}" for i in range(self.version_count())]

    def index(self, version: str) -> int:
        last = self.version_count() - 1
        if version in ("old", "new"):
            return 0 if version == "old" else last
        if version.startswith("v") and version[1:].isdigit() and int(version[1:]) <= last:
            return int(version[1:])
        names = "old and new" if last == 1 else f"old, new, v0..v{last}"
        raise BenchError(f"pair {self.name} has versions {names}; not {version!r}")
