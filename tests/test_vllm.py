"""`--eval-backend vllm`: the serving routes on CPU (vLLM's engine stood in for by lm-eval's HF model on the same
weights), the agreement with HF on a GPU with vLLM (@pytest.mark.gpu), and the bad input.

Routes: a LoRA landed unchanged is served beside its base with max_lora_rank = its rank; PortLLM's merged patch
and DoRA are merged once into safetensors weights in the store and served as a plain model.
"""

import importlib.util

import pytest
import torch
from typer.testing import CliRunner

import tasks.generation
from bench.cli import app
from bench.core.store import CACHE_ENV, Store
from bench.engine.protocol import build_method, evaluate_cell
from bench.pairs import PAIRS
from tasks import vllm_backend
from tasks.base import TASKS
from tasks.generation import greedy_complete
from tasks.lmeval import in_memory_lm

FAST = {"steps": 4, "batch_size": 4}
CELLS = [("finetune_old", FAST), ("portllm", FAST), ("finetune_old", FAST | {"peft": "dora"})]


@pytest.fixture
def hf_standing_in_for_vllm(monkeypatch):
    """serve() loads what vLLM would be given (the base and its LoRA, or the merged weights) with HF instead."""
    served = []

    def serve(model_dir, dtype, trust_remote_code=False, lora=None, rank=None):
        from peft import PeftModel

        from bench.models.loading import load_model

        model, tokenizer = load_model(model_dir, dtype)
        if lora is not None:
            model = PeftModel.from_pretrained(model, lora).eval()
        served.append({"model_dir": model_dir, "lora": lora, "rank": rank})
        return in_memory_lm(model, tokenizer, batch_size=32)

    monkeypatch.setattr(vllm_backend, "serve", serve)
    monkeypatch.setattr(tasks.generation, "greedy", lambda lm, prompts, n: greedy_complete(lm.model, lm.tokenizer,
                                                                                           prompts, n))
    return served


@pytest.mark.parametrize("task_name", ["tiny_knowledge", "tiny_code"])
def test_served_routes_score_as_hf_does(micro_pair, hf_standing_in_for_vllm, task_name):
    task = TASKS.get(task_name)()
    for name, recipe in CELLS:
        method = build_method(name, recipe, micro_pair, task)
        hf = evaluate_cell(method, micro_pair, task, 0, None, recipe)
        served = evaluate_cell(method, micro_pair, task, 0, None, recipe, backend="vllm")
        assert (served.score, served.samples) == (hf.score, hf.samples), name
    lora, portllm, dora = hf_standing_in_for_vllm
    assert lora["lora"] is not None and lora["rank"] == 8 and lora["model_dir"] == micro_pair.base_dir("old")
    for merged in (portllm, dora):
        assert merged["lora"] is None and merged["model_dir"].parent == Store().root / "merged"
        assert list(merged["model_dir"].glob("*.safetensors")) and not list(merged["model_dir"].glob("*.bin"))


def test_merged_weights_are_stored_once_per_module_and_target(micro_pair, hf_standing_in_for_vllm):
    before = {kind: set(Store().keys(kind)) for kind in ("merged", "evals")}
    task = TASKS.get("tiny_arith")()
    method = build_method("portllm", FAST, micro_pair, task)
    for limit in (5, 10):  # two evaluations of one module on one target: one merge
        evaluate_cell(method, micro_pair, task, 5, limit, FAST, backend="vllm")
    # evaluations: the landed module and its source (on the old base), per limit
    assert [len(set(Store().keys(kind)) - before[kind]) for kind in ("merged", "evals")] == [1, 4]


@pytest.mark.skipif(torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None,
                    reason="vLLM can run here")
def test_eval_backend_vllm_without_cuda_or_vllm_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["run", "--pair", "micro", "--eval-backend", "vllm",
                                      "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --eval-backend vllm needs"), result.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "r.json").exists()


def test_unknown_eval_backend():
    result = CliRunner().invoke(app, ["run", "--pair", "micro", "--eval-backend", "tgi"])
    assert result.exit_code == 2 and "--eval-backend must be hf or vllm" in result.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None,
                    reason="needs CUDA and vLLM (pip install 'peft-transfer-bench[vllm]')")
@pytest.mark.parametrize("task_name", ["tiny_arith", "tiny_knowledge", "tiny_code"])
def test_vllm_and_hf_agree_within_one_point_on_greedy_decoding(task_name):
    """The tiny pair on a GPU: a LoRA served beside its base (finetune_old) and merged weights (portllm)."""
    pair, task, recipe = PAIRS.get("tiny"), TASKS.get(task_name)(), {"steps": 100}
    for name in ("finetune_old", "portllm"):
        method = build_method(name, recipe, pair, task)
        hf = evaluate_cell(method, pair, task, 0, None, recipe)
        served = evaluate_cell(method, pair, task, 0, None, recipe, backend="vllm")
        assert abs(served.score - hf.score) <= 1.0, (name, task_name, hf.score, served.score)
    vllm_backend.release()
