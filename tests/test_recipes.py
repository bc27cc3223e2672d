"""Per-suite recipes (tasks/*/recipe*.yaml): how a recipe is resolved, what the dry-run shows of it, transformers'
schedules, truncation, and the resolved recipe in the results."""

import json
import re

import pytest
import torch
from typer.testing import CliRunner

import methods  # noqa: F401
from bench.cli import app
from bench.core.recipe import SCHEDULES, Recipe
from bench.core.results import load_results
from bench.engine.protocol import build_method, encode_examples, evaluate_cell
from bench.models.training import lr_scheduler
from bench.pairs import PAIRS
from methods.trans_peft import TransPEFT
from tasks import TASKS

runner = CliRunner()
QWEN = ["run", "--pair", "qwen2-qwen2.5", "--dry-run", "--offline"]


def recipe(method: str, task: str, overrides=None, pair=None):
    return build_method(method, overrides, pair, TASKS.get(task)()).recipe


def dry_run(*args) -> str:
    result = runner.invoke(app, [*QWEN, *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def training_lines(stdout: str, method: str) -> list[str]:
    """Each training of `method` in a plan: its header line and its recipe line."""
    lines = stdout.splitlines()
    return [lines[i] + "\n" + lines[i + 1] for i, line in enumerate(lines) if line.startswith(f"  train {method} ")]


# ---- the done-when checks of issue 15 ----------------------------------------------------------------

def test_dry_run_of_trans_peft_on_commonsense_shows_rank_32_up_proj_and_p_c_0_2():
    [training] = training_lines(dry_run("--tasks", "boolq_cs", "--methods", "trans_peft"), "trans_peft")
    targets = re.search(r" on ([\w,]+) \|", training).group(1).split(",")
    assert "r=32 " in training and "up_proj" in targets and "p_c=0.2" in training
    assert "linear, warm-up 100 steps" in training and "max length 256" in training


def test_dry_run_of_gsm8k_shows_rank_64_a_warm_up_and_max_length_512():
    out = dry_run("--tasks", "gsm8k_metamath", "--methods", "finetune_old,trans_peft")
    for training in training_lines(out, "finetune_old") + training_lines(out, "trans_peft"):
        assert "r=64 " in training and "cosine, warm-up ratio 0.03 (563 steps)" in training
        assert "max length 512" in training and "data meta-math/MetaMathQA" in training


@pytest.mark.parametrize("task", ["humaneval_plus", "mbpp_plus"])
def test_code_suite_trains_on_codefeedback_python105k_truncated_at_1024(task):
    [training] = training_lines(dry_run("--tasks", task, "--methods", "finetune_old"), "finetune_old")
    assert "data fxmeng/CodeFeedback-Python105K" in training and "max length 1024" in training
    code = TASKS.get(task)()
    assert code.train_ref == "fxmeng/CodeFeedback-Python105K"
    prompt, answer = code.render({"query": "Write f.", "response": "def f(): pass"})  # code.yaml's fields
    assert "### Instruction:\nWrite f." in prompt and answer == " def f(): pass"


# ---- the resolution rule ------------------------------------------------------------------------------

def test_the_suite_recipe_layers_over_the_method_class_and_the_methods_section_over_the_suite():
    assert recipe("finetune_old", "boolq_cs").rank == 32  # the suite over the Recipe defaults (64)
    portllm = recipe("portllm", "boolq_cs")  # methods.portllm over the suite: PortLLM's own knobs again
    assert (portllm.rank, portllm.lr, portllm.schedule, len(portllm.targets)) == (8, 4e-4, "constant", 7)
    assert recipe("trans_peft", "boolq_cs").p_c == 0.2 and recipe("trans_peft", "piqa_cs").p_i == 0.1
    assert (recipe("trans_peft", "gsm8k_metamath").p_c, recipe("trans_peft", "gsm8k_metamath").p_i) == (0.1, 0.0)
    defaults = TransPEFT().recipe  # the class defaults: the public script's
    assert (defaults.p_c, defaults.p_i) == (0.1, 0.0)


@pytest.mark.parametrize("text", ["q_proj,v_proj", "[q_proj, v_proj]", "['q_proj', 'v_proj']", " q_proj , v_proj "])
def test_targets_take_a_comma_list_or_a_yaml_style_list(text):
    assert recipe("finetune_old", "boolq_cs", {"targets": text}).targets == ("q_proj", "v_proj")


def test_warm_up_is_one_setting_given_as_steps_or_as_a_ratio():
    portllm = recipe("portllm", "gsm8k_metamath")  # its warmup_steps: 0 clears the suite's warmup_ratio: 0.03
    assert (portllm.warmup_steps, portllm.warmup_ratio) == (0, 0.0)
    user = recipe("finetune_old", "gsm8k_metamath", {"warmup_steps": 10})
    assert (user.warmup_steps, user.warmup_ratio) == (10, 0.0) and user.warmup_for(1000) == 10
    assert recipe("finetune_old", "gsm8k_metamath").warmup_for(18_750) == 563  # ceil(0.03 x steps), as transformers


def test_portllms_epochs_are_per_task():
    assert [recipe("finetune_old", t).epochs for t in ("boolq", "winogrande", "gsm8k")] == [5, 3, 1]
    assert recipe("trans_peft", "gsm8k").epochs == 1  # the budget stays with the suite, for every method
    assert recipe("trans_peft", "gsm8k_metamath").epochs == 3


def test_the_tiny_suite_puts_the_arithmetic_lora_on_every_linear_layer_and_the_others_on_attention():
    # tiny_arith's attention LoRA miscopied operands on some seeds (results/science/tiny-testbed)
    every_layer = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    for method in ("finetune_old", "finetune_new", "direct_transfer", "trans_peft", "portllm"):
        assert recipe(method, "tiny_arith").targets == every_layer
        assert recipe(method, "tiny_arith", {"targets": "q_proj"}).targets == ("q_proj",)  # --set still wins
    for task in ("tiny_knowledge", "tiny_code"):
        assert recipe("finetune_old", task).targets == every_layer[:4]
        assert recipe("portllm", task).targets == every_layer  # PortLLM's own shape on every task


def test_the_pair_rescales_after_the_suite_and_the_user_has_the_last_word(micro_pair):
    tiny = recipe("finetune_old", "tiny_arith", pair=micro_pair)
    assert (tiny.rank, tiny.alpha, tiny.schedule, tiny.min_lr_rate) == (8, 16, "cosine_with_min_lr", 0.1)
    assert tiny.lr == pytest.approx(3e-3)
    assert recipe("portllm", "tiny_arith", pair=micro_pair).lr == pytest.approx(4e-4 / 3e-4 * 3e-3)
    user = recipe("trans_peft", "boolq_cs", {"rank": 16, "trans_peft.p_c": 0.3, "finetune_old.rank": 4})
    assert (user.rank, user.p_c) == (16, 0.3)


def test_the_tiny_mild_update_keeps_portllms_patch_rank_far_below_the_update_rank():
    pair = PAIRS.get("tiny-mild")
    patch = recipe("portllm", "tiny_knowledge", pair=pair)
    assert pair.spec.update.kind == "lora-merged" and pair.spec.update.lora_rank == 8 * patch.rank  # 64 vs 8


# ---- schedules, truncation, results --------------------------------------------------------------------

def test_every_schedule_is_a_transformers_scheduler_with_warm_up_from_zero():
    from transformers import SchedulerType

    assert set(SCHEDULES) <= {s.value for s in SchedulerType}
    for name in SCHEDULES:
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        warmup = 0 if name == "constant" else 10
        scheduler = lr_scheduler(optimizer, name, 100, warmup, min_lr_rate=0.1)
        lrs = []
        for _ in range(100):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        assert lrs[0] == (1.0 if name == "constant" else 0.0) and max(lrs) == pytest.approx(1.0), name
    floor = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = lr_scheduler(floor, "cosine_with_min_lr", 10, 0, min_lr_rate=0.1)
    for _ in range(10):
        floor.step()
        scheduler.step()
    assert floor.param_groups[0]["lr"] == pytest.approx(0.1)


def test_max_length_cuts_prompt_plus_answer_at_the_end_and_drops_examples_left_without_an_answer(micro_pair):
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(micro_pair.base_dir("old"))
    examples = [("a b", " c d e"), ("a b c d e", " b")]
    whole = encode_examples(tokenizer, examples)
    assert [len(p) + len(a) for p, a in whole] == [6, 7]  # five or six words, and EOS
    cut = encode_examples(tokenizer, examples, max_length=4)
    assert cut == [(whole[0][0], whole[0][1][:2])]  # the second is cut inside its prompt: nothing to learn


def test_cells_record_the_resolved_recipe_and_results_have_a_schema_version(micro_pair, tmp_path):
    fast = {"steps": 4, "batch_size": 4, "warmup_steps": 2}
    task = TASKS.get("tiny_knowledge")()
    cell = evaluate_cell(build_method("direct_transfer", fast, micro_pair, task), micro_pair, task, 0, None, fast)
    assert cell.recipe["rank"] == 8 and cell.recipe["schedule"] == "cosine_with_min_lr"
    assert (cell.recipe["trained_steps"], cell.recipe["trained_warmup_steps"]) == (4, 2)
    assert cell.recipe["trained_lr"] == pytest.approx(3e-3 * task.lr_scale)
    from bench.core.results import write_results

    path = write_results([cell], micro_pair, tmp_path / "r.json")
    written = json.loads(path.read_text())
    assert written["schema_version"] == 2 and written["cells"][0]["recipe"]["targets"] == list(Recipe().targets)
    old = tmp_path / "old.json"  # before schema versions: still read
    old.write_text(json.dumps({"pair": "micro", "cells": [{k: v for k, v in written["cells"][0].items()
                                                           if k != "recipe"}]}))
    assert load_results(old)["cells"][0]["score"] == cell.score
