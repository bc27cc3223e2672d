"""The shared protocol: which base each method trains on and lands on, module reuse, caching."""

import pytest

import methods  # noqa: F401
from bench.core.errors import BenchError
from bench.engine.protocol import build_method, evaluate_cell, train_module
from tasks.base import TASKS

FAST = {"steps": 4, "batch_size": 4}


@pytest.mark.parametrize("name,trains_on,lands_on", [
    ("finetune_old", "old", "old"), ("finetune_new", "new", "new"), ("direct_transfer", "old", "new"),
    ("portllm", "old", "new"), ("trans_peft", "old", "new"),
])
def test_each_method_trains_and_lands_where_the_papers_say(micro_pair, name, trains_on, lands_on):
    task = TASKS.get("tiny_knowledge")()
    cell = evaluate_cell(build_method(name, FAST, micro_pair, task), micro_pair, task, 0, None, FAST)
    assert (cell.trained_on, cell.evaluated_on) == (trains_on, lands_on)
    assert 0 <= cell.score <= 100 and cell.n == len(cell.samples) > 0
    assert cell.trainable_params > 0


def test_direct_transfer_reuses_finetune_olds_module_and_never_retrains(micro_pair, trained_count):
    task = TASKS.get("tiny_arith")()
    old = evaluate_cell(build_method("finetune_old", FAST, micro_pair, task), micro_pair, task, 7, None, FAST)
    trainings_so_far = trained_count()
    direct = evaluate_cell(build_method("direct_transfer", FAST, micro_pair, task), micro_pair, task, 7, None, FAST)
    assert trained_count() == trainings_so_far
    assert direct.module_key == old.module_key and direct.module_from == "finetune_old"
    assert direct.train_wall_s == 0.0 and direct.train_tokens == 0


def test_trained_modules_are_cached_by_recipe(micro_pair, trained_count):
    task = TASKS.get("tiny_code")()
    first, _ = train_module(build_method("trans_peft", FAST, micro_pair, task), micro_pair, task, 11)
    again, _ = train_module(build_method("trans_peft", FAST, micro_pair, task), micro_pair, task, 11)
    assert first == again and trained_count() == 1
    other, meta = train_module(build_method("trans_peft", FAST | {"p_c": 0.3}, micro_pair, task), micro_pair, task, 11)
    assert other != first and trained_count() == 2 and meta["recipe"]["p_c"] == 0.3
    assert (other / "adapter_model.safetensors").exists() and not list(other.glob("*.bin"))


def test_trans_peft_trains_with_its_interventions_and_portllm_on_all_linears(micro_pair):
    task = TASKS.get("tiny_code")()
    _, portllm = train_module(build_method("portllm", FAST, micro_pair, task), micro_pair, task, 0)
    _, lora = train_module(build_method("finetune_old", FAST, micro_pair, task), micro_pair, task, 0)
    assert portllm["trainable_params"] > lora["trainable_params"]  # q,k,v,o,gate,up,down vs q,k,v,o


def test_overrides_are_scoped_and_typed():
    assert build_method("trans_peft", {"trans_peft.p_c": "0.3", "lr": 0.01}).recipe.p_c == 0.3
    assert build_method("finetune_old", {"trans_peft.p_c": 0.3}).recipe.lr == 3e-4
    assert build_method("portllm", {"targets": "q_proj,v_proj"}).recipe.targets == ("q_proj", "v_proj")
    with pytest.raises(BenchError, match="rank"):
        build_method("finetune_old", {"rank": "many"})
    with pytest.raises(BenchError, match="rank must be a positive"):
        build_method("finetune_old", {"rank": -1})


def test_tiny_pairs_rescale_the_paper_recipes_and_user_overrides_win(micro_pair):
    paper = build_method("finetune_old")
    assert (paper.recipe.rank, paper.recipe.lr) == (64, 3e-4)  # Trans-PEFT's script, for real pairs
    tiny = build_method("finetune_old", None, micro_pair)
    assert (tiny.recipe.rank, tiny.recipe.alpha) == (8, 16) and tiny.recipe.lr == pytest.approx(3e-3)
    assert build_method("portllm", None, micro_pair).recipe.lr == pytest.approx(4e-4 / 3e-4 * 3e-3)
    assert build_method("finetune_old", {"lr": 0.005}, micro_pair).recipe.lr == 0.005


def test_the_task_sets_the_training_budget_unless_the_recipe_does(micro_pair):
    task = TASKS.get("tiny_knowledge")()
    _, meta = train_module(build_method("finetune_old", {"batch_size": 4}, micro_pair, task), micro_pair, task, 3)
    assert meta["steps"] == task.fixed_steps == 400
    assert meta["lr"] == pytest.approx(3e-3 * task.lr_scale)
    assert TASKS.get("gsm8k_metamath")().train_steps(100_000, 16, 3) == 18_750  # 3 epochs of batch 16
