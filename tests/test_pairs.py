"""Real pairs as data: the registry, offline behaviour, the compatibility check, and the dry-run plan."""

import pytest
import torch
from conftest import tiny_causal_lm
from typer.testing import CliRunner

import bench.engine.protocol as protocol
import methods  # noqa: F401
from bench.cli import app
from bench.core.errors import BenchError
from bench.pairs import PAIRS, get_pair
from bench.pairs.compat import check_pair
from bench.pairs.hub import HubPair
from bench.pairs.registry import REVISIONS
from tasks import TASKS

runner = CliRunner()
PAPER_PAIRS = ["qwen2-qwen2.5", "qwen2-qwen2.5-0.5b", "qwen2-qwen2.5-1.5b", "internlm2-internlm2.5", "deepseek-coder",
               "deepseek-math", "llama3-llama3.1", "mistral-7b-openorca", "llama2-7b-openorca",
               "llama3.1-8b-openorca", "gemma2-9b-openorca", "mistral-7b-chain"]


@pytest.fixture
def no_hub(monkeypatch):
    """Any attempt to reach the hub fails the test."""
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("tried to reach the hub")

    for name in ("snapshot_download", "hf_hub_download", "get_safetensors_metadata"):
        monkeypatch.setattr(huggingface_hub, name, refuse)


def test_bench_list_pairs_shows_every_paper_pair():
    result = runner.invoke(app, ["list", "pairs"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.stdout.splitlines()}
    assert set(PAPER_PAIRS) <= listed and "micro" in listed


def test_paper_pairs_are_data_and_name_versions_without_downloading(no_hub):
    qwen = PAIRS.get("qwen2-qwen2.5")
    assert qwen.version_id("old") == f"Qwen/Qwen2-7B@{REVISIONS['Qwen/Qwen2-7B']}"  # a pinned commit
    assert qwen.version_id("new") == f"Qwen/Qwen2.5-7B@{REVISIONS['Qwen/Qwen2.5-7B']}"
    assert PAIRS.get("internlm2-internlm2.5").trust_remote_code and not qwen.trust_remote_code
    assert qwen.dtype == torch.bfloat16
    chain = PAIRS.get("mistral-7b-chain")
    ids = [chain.version_id(f"v{i}") for i in range(5)]
    assert len(set(ids)) == 5 and all(ids[i + 1].startswith(ids[i]) for i in range(4))  # each update builds on the last
    assert chain.version_id("new") == ids[-1]
    with pytest.raises(BenchError, match="v0..v4"):
        chain.version_id("v9")


def test_dry_run_prints_the_plan_offline_without_downloading(no_hub, trained_count):
    result = runner.invoke(app, ["run", "--pair", "qwen2-qwen2.5", "--dry-run", "--offline"])
    assert result.exit_code == 0, result.output
    # 4 tasks (2 training sets) x 5 methods; direct_transfer reuses finetune_old's modules: 2 x 4 trainings;
    # 20 cells plus the source scores of portllm and trans_peft (direct_transfer's is finetune_old's own)
    assert "8 trainings (shared modules counted once; 0 already in the store), 28 evaluations" in result.stdout
    assert "A800 GPU-hours" in result.stdout and f"Qwen/Qwen2.5-7B@{REVISIONS['Qwen/Qwen2.5-7B']}" in result.stdout
    commonsense = runner.invoke(app, ["run", "--pair", "qwen2-qwen2.5", "--dry-run", "--methods", "finetune_old",
                                      "--tasks", "boolq_cs,piqa_cs,siqa_cs,hellaswag_cs,winogrande_cs,arc_e_cs,"
                                      "arc_c_cs,obqa_cs"])
    # one Commonsense170K module serves all eight tasks: Fig. 7's 14-24 h, scaled to Qwen2-7B's 7.6B parameters
    assert "1 trainings" in commonsense.stdout and "15-26 A800 GPU-hours" in commonsense.stdout
    assert trained_count() == 0


def test_offline_without_a_copy_is_one_line_naming_the_model_and_the_fix(tmp_path):
    result = runner.invoke(app, ["run", "--pair", "qwen2-qwen2.5", "--offline", "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    assert "Qwen/Qwen2-7B" in result.stderr and "PEFT_TRANSFER_BENCH_MODELS" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.json").exists()


def _save(tmp_path, name, arch="qwen2", **overrides):
    path = tmp_path / name
    tiny_causal_lm(arch, **overrides).save_pretrained(path, safe_serialization=True)
    return str(path)


def test_compatible_local_pair_passes_the_check(tmp_path):
    check_pair(get_pair(f"{_save(tmp_path, 'a', seed=0)},{_save(tmp_path, 'b', seed=1)}"))


@pytest.mark.parametrize("change,named", [
    ({"num_key_value_heads": 4}, r"layers.0.self_attn.k_proj.(bias|weight) has shape \[16(, 32)?\].*\[32(, 32)?\]"),
    ({"vocab_size": 80}, r"(lm_head|embed_tokens).weight has shape \[64, 32\].*\[80, 32\]"),
])
def test_incompatible_pair_fails_before_training_naming_the_tensor(tmp_path, trained_count, change, named):
    pair = get_pair(f"{_save(tmp_path, 'old')},{_save(tmp_path, 'new', **change)}")
    with pytest.raises(BenchError, match=named):
        protocol.run_grid(["finetune_old"], pair, [TASKS.get("tiny_knowledge")()], [0])
    assert trained_count() == 0


def test_grown_vocabulary_like_qwen_tokenizer_vs_embedding_rows_is_refused(tmp_path):
    # 151665 tokenizer entries vs 152064 embedding rows: refused by shape, read from headers only.
    old = _save(tmp_path, "old", vocab_size=151665, hidden_size=8, intermediate_size=16, num_attention_heads=2,
                num_key_value_heads=1, tie_word_embeddings=True)
    new = _save(tmp_path, "new", vocab_size=152064, hidden_size=8, intermediate_size=16, num_attention_heads=2,
                num_key_value_heads=1, tie_word_embeddings=True)
    with pytest.raises(BenchError, match=r"embed_tokens.weight has shape \[151665, 8\].*\[152064, 8\]"):
        check_pair(get_pair(f"{old},{new}"))


def test_architecture_class_change_is_refused(tmp_path):
    pair = get_pair(f"{_save(tmp_path, 'q', 'qwen2')},{_save(tmp_path, 'l', 'llama')}")
    with pytest.raises(BenchError, match="architecture .*Qwen2ForCausalLM.*LlamaForCausalLM"):
        check_pair(pair)


def test_a_missing_local_path_is_one_clear_error(tmp_path):
    pair = get_pair(f"{tmp_path / 'nope'},{tmp_path / 'nope2'}")
    assert isinstance(pair, HubPair)
    with pytest.raises(BenchError, match="does not exist"):
        pair.base_dir("old")
