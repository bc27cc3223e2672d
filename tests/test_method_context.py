"""The method context: hooks see the pair, task, seed and store; a method may start from another's module.

warm_retune and cross_lora are each one file under methods/ with no edit to the engine.
"""

import json

import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from bench.cli import app
from bench.engine.plan import plan
from bench.engine.protocol import build_method, evaluate_cell, train_module
from methods.base import METHODS, Method, MethodContext
from tasks import TASKS

RUNNER = CliRunner()
WARM = {"steps": 6, "batch_size": 4, "warm_retune.steps": 2}


def test_warm_retune_starts_from_finetune_olds_module_and_pays_only_its_own_steps(micro_pair, trained_count):
    task = TASKS.get("tiny_knowledge")()
    old_dir, old_meta = train_module(build_method("finetune_old", WARM, micro_pair, task), micro_pair, task, 3, WARM)
    still = WARM | {"warm_retune.lr": 1e-12}  # a step this small leaves the starting module where it was
    warm = build_method("warm_retune", still, micro_pair, task)
    warm_dir, warm_meta = train_module(warm, micro_pair, task, 3, still)
    assert trained_count() == 2 and warm_meta["trained_on"] == "new" and warm_meta["steps"] == 2
    start, end = load_file(old_dir / "adapter_model.safetensors"), load_file(warm_dir / "adapter_model.safetensors")
    assert start.keys() == end.keys() and any(t.abs().sum() > 0 for k, t in start.items() if "lora_B" in k)
    for key in start:
        torch.testing.assert_close(end[key], start[key], atol=1e-6, rtol=0)
    cell = evaluate_cell(warm, micro_pair, task, 3, None, still)
    assert cell.module_from == "warm_retune" and cell.evaluated_on == "new"
    assert cell.train_tokens == warm_meta["train_tokens"] < old_meta["train_tokens"]  # charged for 2 steps, not 8


def test_the_plan_honours_recipe_steps_and_includes_the_module_a_warm_start_needs(micro_pair):
    tasks = [TASKS.get("tiny_arith")()]
    trainings = plan(["warm_retune"], micro_pair, tasks, [0], WARM)["trainings"]
    assert [(t["method"], t["examples"]) for t in trainings] == [("warm_retune", 2 * 4), ("finetune_old", 6 * 4)]


def test_hooks_receive_the_pair_task_seed_and_recipe(micro_pair):
    seen = []

    class Recorder(Method):
        name = "recorder_under_test"
        lands_on = "new"

        def land(self, module_dir, target_base, ctx: MethodContext):
            seen.append((ctx.pair.name, ctx.task.name, ctx.seed, ctx.recipe.rank, ctx.module_of("finetune_old")))
            return super().land(module_dir, target_base, ctx)

    METHODS.register("recorder_under_test", Recorder)
    try:
        task = TASKS.get("tiny_code")()
        evaluate_cell(build_method("recorder_under_test", WARM, micro_pair, task), micro_pair, task, 5, 2, WARM)
    finally:
        METHODS._items.pop("recorder_under_test")
    (pair, task_name, seed, rank, finetune_old_dir), = seen
    assert (pair, task_name, seed, rank) == ("micro", "tiny_code", 5, 8)
    meta = json.loads((finetune_old_dir / "module.json").read_text())  # content-addressed: the same recipe on the
    assert meta["trained_on"] == "old" and meta["seed"] == 5          # same base is one module, whoever asked


def test_a_plugin_written_before_contexts_still_lands(micro_pair):
    class OldStyle(Method):
        name = "old_style_under_test"
        lands_on = "new"

        def land(self, module_dir, target_base):  # the 0.1 signature
            return super().land(module_dir, target_base)

    METHODS.register("old_style_under_test", OldStyle)
    try:
        task = TASKS.get("tiny_code")()
        cell = evaluate_cell(build_method("old_style_under_test", WARM, micro_pair, task), micro_pair, task, 5, 2, WARM)
    finally:
        METHODS._items.pop("old_style_under_test")
    assert cell.evaluated_on == "new" and cell.n == 2


def test_bench_run_shows_warm_retune_and_cross_lora_with_their_costs(micro_pair, tmp_path):
    out = tmp_path / "new-methods.json"
    result = RUNNER.invoke(app, ["run", "--pair", "micro", "--methods", "finetune_old,warm_retune,cross_lora",
                                 "--tasks", "tiny_knowledge", "--set", "steps=6", "--set", "batch_size=4",
                                 "--set", "warm_retune.steps=2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "warm_retune" in result.stdout and "cross_lora" in result.stdout
    costs = {c["method"]: c for c in json.loads(out.with_suffix(".costs.json").read_text())["costs"]}
    cells = {c["method"]: c for c in json.loads(out.read_text())["cells"]}
    assert costs["warm_retune"]["train_wall_s"] > 0 and cells["warm_retune"]["module_from"] == "warm_retune"
    assert costs["cross_lora"]["train_wall_s"] == 0 and cells["cross_lora"]["module_from"] == "finetune_old"
    assert costs["cross_lora"]["land_wall_s"] > 0
    listed = RUNNER.invoke(app, ["list", "methods"]).stdout
    assert all(name in listed for name in ("warm_retune", "cross_lora", "trans_peft", "portllm"))
