"""Running at scale, as CPU twins of the GPU paths: precision policy, gradient accumulation, checkpointing,
memory estimates and plans, throughput accounting, pinned revisions. The @pytest.mark.gpu tests at the end run
the same code on CUDA where there is one (skipped otherwise). No assertion here depends on timing."""

import json
from contextlib import nullcontext
from itertools import repeat

import pytest
import torch
from conftest import tiny_causal_lm
from typer.testing import CliRunner

from bench.cli import app
from bench.core.accounting import mfu, peak_flops
from bench.core.errors import BenchError
from bench.engine.plan import PLAN_SEQ_LEN, longest
from bench.models import precision
from bench.models.memory import Shape, estimate_bytes, largest_fitting
from bench.models.training import (
    TrainOptions,
    check_micro_batch,
    checkpointing,
    collate,
    forward_backward,
    supervised_batches,
    train_loop,
)
from methods.trans_peft import knowledge_masking_and_dropping, masked_positions
from tasks.base import TASKS

runner = CliRunner()
FAST = ["--pair", "micro", "--set", "steps=4", "--set", "batch_size=4", "--tasks", "tiny_knowledge",
        "--methods", "finetune_old"]


def lora_model(seed: int = 0, dropout: float = 0.0):
    from peft import LoraConfig, get_peft_model

    model = tiny_causal_lm("llama", intermediate_size=128)
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=["q_proj", "v_proj", "down_proj"])
    return get_peft_model(model, config)


def ragged_examples(n: int = 16, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """Prompts and answers of different lengths: padding, trimming and answer-token weighting all matter."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 12, (n, 2), generator=g).tolist()
    return [(torch.randint(4, 64, (p,), generator=g).tolist(), torch.randint(4, 64, (a,), generator=g).tolist())
            for p, a in lengths]


def trainable(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


# --- gradient accumulation ------------------------------------------------------------------------------------

def test_micro_batches_of_4_accumulate_to_the_batch_of_16_step():
    batches = [collate(ragged_examples(16, seed=s), pad_id=0) for s in range(5)]
    losses, modules = {}, {}
    for micro in (None, 4):
        model = lora_model().train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        losses[micro] = []
        for batch in batches:
            losses[micro].append(forward_backward(model, batch, micro, "fp32").item())
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        modules[micro] = trainable(model)
    assert losses[None] == pytest.approx(losses[4], abs=1e-5, rel=0)
    for name, full in modules[None].items():
        torch.testing.assert_close(modules[4][name], full, rtol=1e-4, atol=1e-5)


def test_train_loop_with_micro_batches_trains_the_same_module():
    examples = ragged_examples(64)
    results = {}
    for micro in (None, 4):
        model = lora_model()
        stats = train_loop(model, supervised_batches(examples, 16, 0, seed=3), 5, 1e-2,
                           options=TrainOptions(micro_batch=micro))
        results[micro] = (stats, trainable(model))
    assert results[None][0]["train_tokens"] == results[4][0]["train_tokens"]
    assert results[None][0]["final_loss"] == pytest.approx(results[4][0]["final_loss"], abs=1e-5)
    for name, full in results[None][1].items():
        torch.testing.assert_close(results[4][1][name], full, rtol=1e-4, atol=1e-5)


def test_a_micro_batch_without_answer_tokens_adds_nothing():
    examples = ragged_examples(8)
    examples[:4] = [(prompt + answer, []) for prompt, answer in examples[:4]]  # no answer: no loss there
    batch = collate(examples, pad_id=0)
    grads = {}
    for micro in (None, 4):
        model = lora_model()
        loss = forward_backward(model, batch, micro, "fp32")
        assert torch.isfinite(loss)
        grads[micro] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    for name, full in grads[None].items():
        torch.testing.assert_close(grads[4][name], full, rtol=1e-4, atol=1e-6)


# --- gradient checkpointing -----------------------------------------------------------------------------------

@pytest.mark.parametrize("trans_peft", [False, True])
def test_checkpointing_gives_identical_gradients(trans_peft):
    """Non-reentrant recomputation restores the RNG, so LoRA dropout and Trans-PEFT's masks and drops replay."""
    batch = collate(ragged_examples(8), pad_id=0)
    grads = {}
    for enabled in (False, True):
        model = lora_model(dropout=0.1).train()
        masking = knowledge_masking_and_dropping(model, 0.05, 0.3) if trans_peft else nullcontext()
        torch.manual_seed(7)
        with checkpointing(model, enabled), masking:
            forward_backward(model, batch, None, "fp32")
        grads[enabled] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        assert not model.base_model.model.is_gradient_checkpointing  # switched off again on exit
    assert grads[False].keys() == grads[True].keys() and grads[False]
    for name, plain in grads[False].items():
        assert torch.equal(grads[True][name], plain), name


# --- the precision policy -------------------------------------------------------------------------------------

def fake_timer(fp32_s: float, bf16_s: float):
    return lambda dtype, size=128: {torch.float32: fp32_s, torch.bfloat16: bf16_s}[dtype]


@pytest.mark.parametrize("fp32_s,bf16_s,choice", [
    (1e-3, 2e-4, "bf16"),   # a CPU with native bf16 (AMX): bf16 clearly faster
    (1e-4, 1.7e-2, "fp32"),  # this machine's AVX2 EPYC: bf16 emulated, ~170x slower
    (1e-3, 9e-4, "fp32"),    # a near tie is not worth autocast's casts
    (1e-3, 1e-3, "fp32"),
])
def test_auto_on_a_cpu_never_picks_the_slower_dtype(fp32_s, bf16_s, choice, monkeypatch):
    probe = precision.probe_cpu(timer=fake_timer(fp32_s, bf16_s))
    assert (probe.fp32_s, probe.bf16_s, probe.choice) == (fp32_s, bf16_s, choice)
    monkeypatch.setattr(precision, "cpu_probe", lambda size=128: probe)
    assert precision.resolve_precision("auto", torch.device("cpu")) == choice
    if choice == "bf16":
        assert bf16_s < fp32_s  # whatever auto picks was measured faster


def test_the_probe_runs_at_the_model_width_within_128_to_512(monkeypatch):
    assert [precision.probe_size(w) for w in (None, 64, 128, 576, 896, 4096)] == [128, 128, 128, 512, 512, 512]
    sizes = []
    precision.probe_cpu(timer=lambda dtype, size: sizes.append(size) or 1e-3, size=512)
    assert set(sizes) == {512}
    asked = []
    monkeypatch.setattr(precision, "cpu_probe", lambda size=128: asked.append(size) or precision.Probe(1, 1, "fp32"))
    precision.resolve_precision("auto", torch.device("cpu"), width=576)
    precision.resolve_precision("auto", torch.device("cpu"))
    assert asked == [512, 128]  # a tiny pair (width 128, or unknown) keeps the probe its results were made with


def test_the_real_probe_is_cached_and_consistent_with_its_own_timings():
    threads = torch.get_num_threads()
    first = precision.cpu_probe()
    assert precision.cpu_probe() is first  # once per process
    assert precision.cpu_probe(precision.PROBE_SIZE) is first  # however the size is spelled
    assert torch.get_num_threads() == threads  # the probe's single thread is given back
    assert 0 < first.fp32_s < float("inf") and 0 < first.bf16_s < float("inf")
    assert first.choice == precision.choose_cpu_precision(first.fp32_s, first.bf16_s)
    assert precision.resolve_precision("auto", torch.device("cpu")) == first.choice


def test_explicit_precisions_and_what_a_device_cannot_do(monkeypatch):
    cpu = torch.device("cpu")
    assert precision.resolve_precision("fp32", cpu) == "fp32" and precision.resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(BenchError, match="fp16 needs a CUDA GPU"):
        precision.resolve_precision("fp16", cpu)
    with pytest.raises(BenchError, match="must be one of auto, fp32, bf16, fp16"):
        precision.resolve_precision("fp8", cpu)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100-SXM2-32GB")
    cuda = torch.device("cuda")
    assert precision.resolve_precision("auto", cuda) == "fp16"  # older GPUs: fp16 with a GradScaler
    with pytest.raises(BenchError, match="V100.* has no native bf16"):
        precision.resolve_precision("bf16", cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert precision.resolve_precision("auto", cuda) == "bf16"


def test_a_pair_that_pins_auto_on_a_cpu_gets_its_precision_not_the_probes(monkeypatch):
    monkeypatch.setattr(precision, "cpu_probe", lambda size=128: precision.Probe(1e-3, 1e-4, "bf16"))
    cpu = torch.device("cpu")
    assert precision.resolve_precision("auto", cpu) == "bf16"  # the probe decides for a pair that pins nothing
    assert precision.resolve_precision("auto", cpu, cpu_auto="fp32") == "fp32"
    assert precision.resolve_precision("bf16", cpu, cpu_auto="fp32") == "bf16"  # an explicit --precision wins
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert precision.resolve_precision("auto", torch.device("cuda"), cpu_auto="fp32") == "bf16"  # CPUs only


def test_bench_run_trains_the_tiny_pairs_in_fp32_where_the_probe_prefers_bf16(micro_pair, tmp_path, monkeypatch):
    """bench tune selects the tiny recipes in fp32, and bf16 is fast on some CPUs and emulated on others: the default
    leaderboard must not change precision with the machine."""
    from bench.pairs import PAIRS

    assert PAIRS.get("tiny").cpu_precision == micro_pair.cpu_precision == "fp32"
    assert PAIRS.get("smollm2-135m-cpt").cpu_precision is None  # real pairs keep the probe
    monkeypatch.setattr(precision, "cpu_probe", lambda size=128: precision.Probe(1e-3, 1e-4, "bf16"))
    out = tmp_path / "auto.json"
    run = runner.invoke(app, ["run", "--pair", "micro", "--methods", "finetune_old", "--tasks", "tiny_knowledge",
                              "--set", "steps=2", "--set", "batch_size=8", "--limit", "4", "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert [cell["precision"] for cell in json.loads(out.read_text())["cells"]] == ["fp32"]


def test_fp32_runs_no_autocast_and_adapters_stay_fp32():
    assert isinstance(precision.autocast("fp32", torch.device("cpu")), type(precision.nullcontext()))
    model = lora_model().to(torch.bfloat16)
    precision.keep_trainable_fp32(model)
    dtypes = {p.dtype for p in model.parameters() if p.requires_grad}
    assert dtypes == {torch.float32}
    assert {p.dtype for p in model.parameters() if not p.requires_grad} == {torch.bfloat16}  # the base stays


def test_bf16_autocast_trains_on_cpu_as_the_gpu_path_does():
    """The CPU twin of the bf16 GPU path: base in bf16, adapters and AdamW state in fp32, forward under autocast."""
    model = precision.keep_trainable_fp32(lora_model().to(torch.bfloat16))
    before = trainable(model)
    stats = train_loop(model, supervised_batches(ragged_examples(32), 8, 0, seed=0), 2, 1e-2,
                       options=TrainOptions(precision="bf16", micro_batch=4))
    assert stats["final_loss"] == stats["final_loss"]  # not nan
    after = trainable(model)
    assert all(p.dtype == torch.float32 for p in after.values())
    assert any(not torch.equal(after[n], before[n]) for n in before)


def test_bases_load_with_sdpa_attention_in_the_compute_dtype(micro_pair):
    from bench.engine.protocol import load_base

    model, _ = load_base(micro_pair, "old", "bf16")
    assert model.config._attn_implementation == "sdpa" and next(model.parameters()).dtype == torch.bfloat16


# --- what goes into the cache key -----------------------------------------------------------------------------

def test_only_options_that_change_the_module_enter_its_key():
    assert TrainOptions().key(16) == {}  # fp32, full batch: keys (and results) from before stay valid
    assert TrainOptions(micro_batch=16, gradient_checkpointing=True).key(16) == {}
    assert TrainOptions(precision="bf16").key(16) == {"precision": "bf16"}
    assert TrainOptions(micro_batch=4, group_by_length=True).key(16) == {"micro_batch": 4, "group_by_length": True}
    assert TrainOptions(micro_batch="auto").key(16) == {"micro_batch": "auto"}


def test_micro_batch_must_divide_the_batch():
    check_micro_batch(4, 16)
    check_micro_batch("auto", 16)
    with pytest.raises(BenchError, match="--micro-batch 5 does not divide the batch size 16"):
        check_micro_batch(5, 16)


def test_length_grouped_batches_are_deterministic_and_less_padded():
    examples = ragged_examples(400, seed=1)

    def first(n, **kw):
        stream = supervised_batches(examples, 8, 0, seed=5, **kw)
        return [next(stream) for _ in range(n)]

    grouped, again, plain = first(25, group_by_length=True), first(25, group_by_length=True), first(25)
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(grouped, again))
    padding = [sum(int((b["attention_mask"] == 0).sum()) for b in run) for run in (grouped, plain)]
    assert padding[0] < padding[1] / 2
    rows = sorted(tuple(r.tolist()) for b in grouped for r in b["input_ids"])
    assert len(set(rows)) == len(rows)  # an epoch's rows, each once


# --- Trans-PEFT's masks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.01, 0.05, 0.3])
def test_mask_positions_are_a_bernoulli_mask(p):
    torch.manual_seed(0)
    n = 400_000
    positions = masked_positions(n, p, torch.device("cpu"))
    assert positions.dtype == torch.int64 and int(positions.min()) >= 0 and int(positions.max()) < n
    assert bool((positions[1:] > positions[:-1]).all())  # distinct, in order
    mask = torch.zeros(n, dtype=torch.bool)
    mask[positions] = True
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(mask.float().mean().item() - p) < 5 * sd
    for part in mask.view(4, -1):  # the same rate at the start and the end of the batch
        assert abs(part.float().mean().item() - p) < 5 * 2 * sd
    pairs = (mask[1:] & mask[:-1]).float().mean().item()  # neighbours independent: P(both) = p^2
    assert abs(pairs - p * p) < 5 * (p * p / n) ** 0.5 + 1e-4


def test_mask_positions_on_tiny_tensors():
    torch.manual_seed(0)
    sizes = [len(masked_positions(10, 0.05, torch.device("cpu"))) for _ in range(200)]
    assert min(sizes) == 0 and max(sizes) <= 10


# --- memory estimates and plans -------------------------------------------------------------------------------

def test_memory_estimate_terms():
    shape = Shape(params=7_600_000_000, hidden=3584, layers=28, vocab=152064)
    full = estimate_bytes(shape, 16, 1024, 40_000_000, 2)
    assert full["weights"] == 2 * 7_600_000_000 and full["adapter"] == 16 * 40_000_000
    assert full["activations"] == 34 * 16 * 1024 * 3584 * 28  # the issue's ~60 GB for 16 x 1,024 tokens
    assert 50 * 2**30 < full["activations"] < 60 * 2**30
    saved = estimate_bytes(shape, 16, 1024, 40_000_000, 2, checkpointing=True)
    assert saved["activations"] < full["activations"] / 10 and saved["total"] == sum(
        v for k, v in saved.items() if k != "total")
    assert estimate_bytes(shape, 4, 1024, 0, 2)["activations"] * 4 == full["activations"]


def test_auto_micro_batch_is_the_largest_divisor_that_fits():
    assert largest_fitting(16, lambda m: m <= 6) == 4
    assert largest_fitting(16, lambda m: True) == 16
    assert largest_fitting(16, lambda m: False) == 1


def test_the_plan_bounds_a_training_sequence_by_the_longest_generated_example(micro_pair):
    """The memory estimate's sequence length: no shorter than any row the training will see, far under the 1,024
    tokens assumed where the data is not at hand (a 135M model's estimate was 14 GiB at 1,024, 2.3 GB measured)."""
    from transformers import AutoTokenizer

    from bench.engine.protocol import encode_examples

    tokenizer = AutoTokenizer.from_pretrained(micro_pair.base_dir("old"))
    for name in ("tiny_arith", "tiny_knowledge", "tiny_code"):
        task = TASKS.get(name)()
        for version in ("old", "new"):
            bound = longest(task, micro_pair, version, {})
            rows = encode_examples(tokenizer, task.train_examples(micro_pair, version))
            assert max(len(prompt) + len(answer) for prompt, answer in rows) <= bound < PLAN_SEQ_LEN, (name, version)
    assert longest(TASKS.get("gsm8k_metamath")(), micro_pair, "old", {}) is None  # its data is a download away


def test_dry_run_prints_peak_memory_and_picks_a_micro_batch(micro_pair, tmp_path):
    result = runner.invoke(app, ["run", *FAST, "--dry-run", "--micro-batch", "auto", "--gradient-checkpointing",
                                 "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    line = next(t for t in result.stdout.splitlines() if t.strip().startswith("train"))
    bound = longest(TASKS.get("tiny_knowledge")(), micro_pair, "old", {})  # under the micro pair's 64 positions
    assert "peak ~" in line and f"micro-batch 4 x {bound} tokens" in line and "fits here" in line and bound < 64
    qwen = runner.invoke(app, ["run", "--pair", "qwen2-qwen2.5", "--dry-run", "--offline", "--precision", "bf16",
                               "--micro-batch", "4", "--methods", "finetune_old", "--tasks", "gsm8k_metamath"])
    assert qwen.exit_code == 0, qwen.output
    assert "micro-batch 4 x 512 tokens, bf16" in qwen.stdout  # dims from the registry (offline); its max_length


def test_dry_run_projects_from_measured_throughput(micro_pair, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    cell = {"method": "finetune_old", "task": "tiny_knowledge", "seed": 0, "train_tokens": 4000,
            "train_examples": 100, "score": 50.0, "metric": "acc", "trained_on": "old", "evaluated_on": "old",
            "module_from": "finetune_old", "trainable_params": 1000}
    (results / "earlier.json").write_text(json.dumps({"pair": "micro", "cells": [cell]}))
    (results / "earlier.costs.json").write_text(json.dumps({"costs": [
        {"method": "finetune_old", "task": "tiny_knowledge", "seed": 0, "tokens_per_s": 2000.0,
         "device": "NVIDIA H100 80GB HBM3"}]}))
    (results / "other-pair.json").write_text(json.dumps({"pair": "tiny", "cells": [cell]}))
    (results / "not-results.json").write_text("[1, 2]")
    result = runner.invoke(app, ["run", *FAST, "--dry-run", "--out", str(results / "new.json")])
    assert result.exit_code == 0, result.output
    # 4 steps x batch 4 = 16 examples x 40 tokens each / 2000 tokens/s = 0.32 s
    line = next(t for t in result.stdout.splitlines() if t.startswith("measured:"))
    assert "2,000 training tokens/s on NVIDIA H100 80GB HBM3" in line and "earlier.json" in line
    assert f"{16 * 40 / 2000 / 3600:.2g} hours of training on that device" in line


# --- throughput accounting ------------------------------------------------------------------------------------

def test_mfu_from_the_peak_table():
    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16") == 989e12
    assert peak_flops("NVIDIA H100 PCIe", "bf16") == 756e12
    assert peak_flops("NVIDIA A800-SXM4-80GB", "fp32") == 19.5e12
    assert peak_flops("cpu (x86_64, 2 threads)", "fp32") is None
    assert mfu(7_000_000_000, 1000, 1.0, "NVIDIA H200", "bf16") == pytest.approx(6 * 7e9 * 1000 / 989e12)
    assert mfu(1000, 1000, 1.0, "cpu (x86_64, 2 threads)", "fp32") is None


def test_cells_record_precision_throughput_and_options(micro_pair, tmp_path):
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["run", *FAST, "--precision", "fp32", "--micro-batch", "2",
                                 "--gradient-checkpointing", "--out", str(out)])
    assert result.exit_code == 0, result.output
    cell = json.loads(out.read_text())["cells"][0]
    assert cell["precision"] == "fp32" and cell["train_examples"] == 16
    cost = json.loads(out.with_suffix(".costs.json").read_text())["costs"][0]
    assert cost["tokens_per_s"] > 0 and cost["mfu"] is None  # a CPU: n/a
    assert "train tok/s" in result.stdout and "n/a" in result.stdout
    from bench.core.store import cache_dir

    meta = json.loads((cache_dir() / "modules" / cell["module_key"] / "module.json").read_text())
    assert meta["options"] == {"precision": "fp32", "micro_batch": 2, "gradient_checkpointing": True,
                               "group_by_length": False}


def test_a_bf16_run_end_to_end_on_cpu(micro_pair, tmp_path):
    """The GPU's default path on a CPU: base in bf16, autocast training, evaluation in bf16, its own cache key."""
    cells = {}
    for dtype in ("fp32", "bf16"):
        out = tmp_path / f"{dtype}.json"
        result = runner.invoke(app, ["run", *FAST, "--precision", dtype, "--methods", "finetune_old,direct_transfer",
                                     "--out", str(out)])
        assert result.exit_code == 0, result.output
        cells[dtype] = json.loads(out.read_text())["cells"]
    assert {c["precision"] for c in cells["bf16"]} == {"bf16"}
    assert cells["bf16"][0]["module_key"] != cells["fp32"][0]["module_key"]
    assert cells["bf16"][1]["module_key"] == cells["bf16"][0]["module_key"]  # direct_transfer reuses it
    assert all(0 <= c["score"] <= 100 for c in cells["bf16"])


# --- bad input ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--precision", "fp16"], "--precision fp16 needs a CUDA GPU"),
    (["--precision", "fp8"], "--precision must be one of auto, fp32, bf16, fp16, got 'fp8'"),
    (["--micro-batch", "3"], "--micro-batch 3 does not divide the batch size 4"),
    (["--micro-batch", "0"], "--micro-batch takes a positive integer or auto, got '0'"),
    (["--micro-batch", "half"], "--micro-batch takes a positive integer or auto, got 'half'"),
])
def test_bad_scale_options_are_one_line(args, message, tmp_path, trained_count):
    result = runner.invoke(app, ["run", *FAST, *args, "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert trained_count() == 0 and not (tmp_path / "r.json").exists()


def test_bf16_on_a_gpu_without_it_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    result = runner.invoke(app, ["run", *FAST, "--precision", "bf16", "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2 and result.stderr.strip() == (
        "error: --precision bf16: Tesla T4 has no native bf16; use --precision fp16 (or auto)")


# --- pinned revisions -----------------------------------------------------------------------------------------

PINNED = {"Qwen/Qwen2-0.5B": "91d2aff3f957f99e4c74c962f2f408dcc88a18d8",
          "Qwen/Qwen2.5-0.5B": "060db6499f32faf8b98477b0a26969ef7d8b9987"}


def test_registry_pins_hub_models_and_results_name_the_commit():
    from bench.pairs import PAIRS

    pair = PAIRS.get("qwen2-qwen2.5-0.5b")
    assert pair.version_id("old") == f"Qwen/Qwen2-0.5B@{PINNED['Qwen/Qwen2-0.5B']}"  # base_versions in every cell
    unpinned = {m.ref for name in PAIRS.names() for m in getattr(PAIRS.get(name), "versions", ())
                if getattr(m, "revision", None) == "main" and not m.ref.startswith("package:")}
    assert unpinned == {"deepseek-ai/deepseek-coder-7b-base-v1.5", "deepseek-ai/deepseek-math-7b-base"}


def test_verify_pair_checks_local_copies_against_the_pins(tmp_path, monkeypatch):
    import huggingface_hub.constants

    hub_cache = tmp_path / "hub"
    old = hub_cache / "models--Qwen--Qwen2-0.5B"
    (old / "snapshots" / PINNED["Qwen/Qwen2-0.5B"]).mkdir(parents=True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache))
    mirror = tmp_path / "mirror"
    new = mirror / "Qwen" / "Qwen2.5-0.5B"
    (new / ".cache" / "huggingface" / "download").mkdir(parents=True)
    metadata = new / ".cache" / "huggingface" / "download" / "config.json.metadata"
    metadata.write_text(f"{'0' * 40}\netag\n1700000000.0\n")  # a --local-dir download of another commit
    monkeypatch.setenv("PEFT_TRANSFER_BENCH_MODELS", str(mirror))
    result = runner.invoke(app, ["verify-pair", "qwen2-qwen2.5-0.5b"])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("v0  ok") and "huggingface cache snapshot" in lines[0]
    assert lines[1].startswith("v1  mismatch") and f"is commit {'0' * 40}" in lines[1]

    metadata.write_text(f"{PINNED['Qwen/Qwen2.5-0.5B']}\netag\n1700000000.0\n")
    assert runner.invoke(app, ["verify-pair", "qwen2-qwen2.5-0.5b"]).exit_code == 0

    metadata.unlink()  # a git clone instead
    (new / ".git" / "refs" / "heads").mkdir(parents=True)
    (new / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (new / ".git" / "refs" / "heads" / "main").write_text(PINNED["Qwen/Qwen2.5-0.5B"] + "\n")
    result = runner.invoke(app, ["verify-pair", "qwen2-qwen2.5-0.5b"])
    assert result.exit_code == 0 and "git refs/heads/main" in result.stdout, result.output

    monkeypatch.delenv("PEFT_TRANSFER_BENCH_MODELS")
    result = runner.invoke(app, ["verify-pair", "qwen2-qwen2.5-0.5b"])
    assert result.exit_code == 1 and "v1  missing" in result.stdout
    assert runner.invoke(app, ["verify-pair", "deepseek-math"]).exit_code == 1  # unpinned: nothing to check
    tiny = runner.invoke(app, ["verify-pair", "micro"])
    assert tiny.exit_code == 2 and "no hub revision" in tiny.stderr


# --- on a GPU (skipped without CUDA) --------------------------------------------------------------------------

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_gpu_autocast_training_with_trans_peft(dtype):
    if dtype == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        pytest.skip("no native bf16")
    cuda = torch.device("cuda")
    model = precision.keep_trainable_fp32(lora_model().to(cuda, precision.compute_dtype(dtype)))
    batches = ({k: v.to(cuda) for k, v in b.items()} for b in supervised_batches(ragged_examples(64), 16, 0, 0))
    with knowledge_masking_and_dropping(model, 0.05, 0.1):
        stats = train_loop(model, batches, 5, 1e-2, options=TrainOptions(precision=dtype, micro_batch=4,
                                                                          gradient_checkpointing=True))
    assert torch.isfinite(torch.tensor(stats["final_loss"]))
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    assert all(p.dtype == precision.compute_dtype(dtype) for p in model.parameters() if not p.requires_grad)


@pytest.mark.gpu
@gpu
def test_gpu_peak_memory_falls_with_checkpointing_and_micro_batches_and_matches_the_estimate():
    from transformers import LlamaConfig, LlamaForCausalLM

    cuda = torch.device("cuda")
    config = LlamaConfig(vocab_size=1024, hidden_size=512, intermediate_size=1376, num_hidden_layers=8,
                         num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=512)
    torch.manual_seed(0)
    base = LlamaForCausalLM(config).to(cuda, torch.bfloat16)
    from peft import LoraConfig, get_peft_model

    model = precision.keep_trainable_fp32(get_peft_model(base, LoraConfig(r=8, target_modules=["q_proj", "v_proj"])))
    ids = torch.randint(4, 1024, (16, 512), device=cuda)
    batch = {"input_ids": ids, "labels": ids, "attention_mask": torch.ones_like(ids)}
    peaks = {}
    for options in [TrainOptions("bf16"), TrainOptions("bf16", gradient_checkpointing=True),
                    TrainOptions("bf16", micro_batch=4)]:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        train_loop(model, repeat(batch), 1, 1e-3, options=options)
        peaks[options] = torch.cuda.max_memory_allocated() - start
    plain, ckpt, micro = peaks.values()
    assert ckpt < plain and micro < plain
    shape = Shape(params=0, hidden=512, layers=8, vocab=1024)  # weights are already allocated: not in the peak
    estimate = estimate_bytes(shape, 16, 512, sum(p.numel() for p in model.parameters() if p.requires_grad), 2)
    assert estimate["total"] / 3 < plain < estimate["total"] * 3
