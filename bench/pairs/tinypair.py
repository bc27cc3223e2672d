"""Build the tiny evolving pair: a word-level tokenizer, v0 pretrained from scratch, v1 = v0 + an update.

Update kinds (each with a severity = steps x lr):
  full         every weight trains (a real release-to-release update)
  lora-merged  a LoRA on all linears, merged in (PortLLM's simulated update)
  ffn-only     attention and embeddings frozen, FFNs train (Trans-PEFT's premise)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

from bench.core.errors import BenchError
from bench.core.store import cache_dir, cached_dir, config_hash
from bench.models.training import packed_lm_batches, train_loop, train_update
from bench.pairs.base import Pair
from bench.pairs.world import WorldSpec

# Newlines, 4-space indents, words and digits (each with an optional leading space), punctuation.
TOKEN_PATTERN = r"\n|    | ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]| "
SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>"]
UPDATE_KINDS = ("full", "lora-merged", "ffn-only")
# Pretraining and updates: linear warm-up, then a cosine that stops at 10% of lr (transformers' schedule).
BUILD_SCHEDULE = {"schedule": "cosine_with_min_lr", "min_lr_rate": 0.1}


@dataclass(frozen=True)
class ModelSpec:
    arch: str = "llama"  # llama | qwen2
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    intermediate: int = 256
    max_positions: int = 128


@dataclass(frozen=True)
class UpdateSpec:
    kind: str = "full"
    steps: int = 1000
    lr: float = 1e-3
    # lora-merged only. 8x the tiny patch rank (PortLLM's rank 8, kept by tiny_recipe_scale), as PortLLM's own
    # simulated update (r=64) is 8x its patch: PortLLM's analysis assumes the patch rank << the update's.
    lora_rank: int = 64

    def __post_init__(self):
        if self.kind not in UPDATE_KINDS:
            raise ValueError(f"update kind must be one of {', '.join(UPDATE_KINDS)}, not {self.kind!r}")


@dataclass(frozen=True)
class TinyPairSpec:
    world: WorldSpec = field(default_factory=WorldSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    pretrain_steps: int = 3000
    update: UpdateSpec = field(default_factory=UpdateSpec)
    batch_size: int = 32
    seq_len: int = 64
    pretrain_lr: float = 3e-3
    seed: int = 0

    def v0_config(self) -> dict:
        d = asdict(self)
        d.pop("update")
        return d

    def v1_config(self) -> dict:
        return asdict(self)


def build_tokenizer(world_spec: WorldSpec) -> PreTrainedTokenizerFast:
    splitter = pre_tokenizers.Split(Regex(TOKEN_PATTERN), behavior="isolated")
    words = sorted({piece for text in world_spec.world().vocabulary_text()
                    for piece, _ in splitter.pre_tokenize_str(text)})
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = splitter
    backend.decoder = decoders.Fuse()  # pieces carry their own spaces: decode is concatenation
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>", eos_token="<eos>",
        clean_up_tokenization_spaces=False, model_max_length=ModelSpec.max_positions,
    )


def new_model(spec: ModelSpec, vocab_size: int, seed: int) -> torch.nn.Module:
    common = dict(vocab_size=vocab_size, hidden_size=spec.hidden, num_hidden_layers=spec.layers,
                  num_attention_heads=spec.heads, num_key_value_heads=spec.heads,
                  intermediate_size=spec.intermediate, max_position_embeddings=spec.max_positions,
                  tie_word_embeddings=True, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    config = {"llama": LlamaConfig, "qwen2": Qwen2Config}[spec.arch](**common)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def _corpus_ids(spec: TinyPairSpec, tokenizer, version: int, steps: int, corpus_seed: int | None = None) -> list[int]:
    # Random windows over ~1M tokens: the world is finite, so more text would only repeat it.
    n_docs = min(100_000, max(2000, steps * spec.batch_size * spec.seq_len // 10))
    docs = spec.world.world().corpus(version, n_docs, seed=spec.seed if corpus_seed is None else corpus_seed)
    ids: list[int] = []
    for doc_ids in tokenizer(docs)["input_ids"]:
        ids += doc_ids + [tokenizer.eos_token_id]
    return ids


def _save(model, tokenizer, out: Path, meta: dict) -> None:
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "bench_pair.json").write_text(json.dumps(meta, indent=2, sort_keys=True))


def build_v0(spec: TinyPairSpec) -> Path:
    def build(out: Path):
        tokenizer = build_tokenizer(spec.world)
        model = new_model(spec.model, len(tokenizer), spec.seed)
        batches = packed_lm_batches(_corpus_ids(spec, tokenizer, 0, spec.pretrain_steps),
                                    spec.seq_len, spec.batch_size, spec.seed)
        stats = train_loop(model, batches, spec.pretrain_steps, spec.pretrain_lr, warmup_steps=100,
                           **BUILD_SCHEDULE, description="pretraining v0")
        _save(model, tokenizer, out, {"version": 0, "spec": spec.v0_config(), **stats})

    return _shipped_or_cached("v0", spec.v0_config(), build)


def build_v1(spec: TinyPairSpec) -> Path:
    v0_dir = build_v0(spec)

    def build(out: Path):
        update_checkpoint(v0_dir, spec, spec.update, out, {"version": 1, "spec": spec.v1_config()},
                          corpus_seed=spec.seed, batch_seed=spec.seed + 1)

    return _shipped_or_cached("v1", spec.v1_config(), build)


def update_checkpoint(src_dir: Path, spec: TinyPairSpec, update: UpdateSpec, out: Path, meta: dict,
                      corpus_seed: int, batch_seed: int) -> None:
    """Continue pre-training the checkpoint in src_dir on the world's version-1 text; save it to out."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(src_dir)
    model = AutoModelForCausalLM.from_pretrained(src_dir, use_safetensors=True)
    batches = packed_lm_batches(_corpus_ids(spec, tokenizer, 1, update.steps, corpus_seed),
                                spec.seq_len, spec.batch_size, batch_seed)
    model, stats = train_update(model, update.kind, batches, update.steps, update.lr, update.lora_rank,
                                2 * update.lora_rank, warmup_steps=50, **BUILD_SCHEDULE,
                                description=f"updating {src_dir.name} ({update.kind})")
    _save(model, tokenizer, out, {**meta, **stats})


SHIPPED = Path(__file__).parent / "assets" / "pairs"


# Bump when a change to the world's text or the builders changes what a recipe produces; kept apart
# from the store's CODE_VERSION so that invalidating cached modules does not force a pretraining rerun.
# 3: transformers' schedules (warm-up from lr 0); lora-merged updates at rank 64.
# 4: entities have rules (x -> x op k), stated as prose and as code; tiny_code asks for them.
PAIR_BUILD_VERSION = "4"


def checkpoint_key(version: str, config: dict) -> str:
    return f"{version}-{config_hash(config, PAIR_BUILD_VERSION)}"


def _shipped_or_cached(version: str, config: dict, build) -> Path:
    """Checkpoints shipped with the package are used as is when their recipe hash matches."""
    key = checkpoint_key(version, config)
    if (SHIPPED / key).is_dir():
        return SHIPPED / key
    return cached_dir("pairs", key, build)


def ship(path: Path) -> Path:
    """Copy a built checkpoint into the package (maintainers: commit the result)."""
    target = SHIPPED / path.name
    if not target.exists():
        shutil.copytree(path, target)
    return target


# Trans-PEFT's lr 3e-4 -> 3e-3. At 1e-2 (PAIR_BUILD_VERSION 3) the tiny arithmetic LoRA learnt all or nothing:
# finetune_new 86, 67, 17, 85, 84 on seeds 0-4, and a change of CPU flipped seeds. On those bases, at 3e-3 with a
# 10% warm-up and 1000 steps: 86.6 +- 0.9 and 91.0 +- 1.9 (finetune_old, finetune_new, seeds 0-4). The default
# leaderboard's spreads on the current bases: results/science/tiny-testbed.
TINY_LR_SCALE = 3e-3 / 3e-4


def tiny_recipe_scale(recipe) -> dict:
    """Paper recipes on a 0.7M-parameter model: rank 8 (alpha 2r) and learning rates x10 (every tiny pair)."""
    return {"rank": min(recipe.rank, 8), "alpha": 2 * min(recipe.rank, 8), "lr": recipe.lr * TINY_LR_SCALE}


@dataclass(frozen=True)
class TinyPair(Pair):
    """A pair built locally from a synthetic world: v0 pretrained from scratch, v1 = v0 + update."""

    name: str
    spec: TinyPairSpec
    description: str
    trust_remote_code: bool = False
    shippable = True
    # fp32 under --precision auto on every CPU, not the probe's choice: bench tune selects the recipes in fp32, and
    # bf16 is fast on some CPUs and emulated on others, so a probe would make the default leaderboard (and the CI
    # gate) depend on the machine. On validation data bf16 moved no mean beyond a seed sd but widened finetune_old's
    # tiny_knowledge spread, sd 8.7 against 2.4 (results/science/tiny-testbed/source-validation-precision-*.json).
    cpu_precision = "fp32"

    def version_count(self) -> int:
        return 2

    def base_dir(self, version: str) -> Path:
        return (build_v0, build_v1)[self.index(version)](self.spec)

    def recipe_scale(self, recipe) -> dict:
        return tiny_recipe_scale(recipe)

    def world(self):
        return self.spec.world.world()

    def step(self, k: int) -> Pair:
        self.index(f"v{k}")
        return self

    def ship(self, version: str) -> Path:
        return ship(self.base_dir(version))

    def with_update(self, kind: str, severity: float) -> Pair:
        if kind not in UPDATE_KINDS:
            raise BenchError(f"--kind must be one of {', '.join(UPDATE_KINDS)}, not {kind!r}")
        steps = round(severity * self.spec.update.steps)
        update = replace(self.spec.update, kind=kind, steps=steps)
        return TinyPair(f"{self.name}-{kind}-x{severity:g}", replace(self.spec, update=update),
                        f"{self.name} with a {kind} update of {steps} steps")

    def known_architecture(self, version: str):
        key = self.version_id(version)
        built = (SHIPPED / key).is_dir() or (cache_dir() / "pairs" / key).is_dir()
        return self.architecture(version) if built else None

    def version_id(self, version: str) -> str:
        """The recipe hash: names exactly what was (or will be) trained, without building it."""
        k = self.index(version)
        return checkpoint_key(f"v{k}", self.spec.v1_config() if k else self.spec.v0_config())
