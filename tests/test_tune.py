"""`bench tune`: seeded search on a validation split carved from training data; tuned recipes feed `bench run`."""

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bench.cli import app
from bench.core.store import Store
from bench.pairs import PAIRS
from tasks.base import TASKS

runner = CliRunner()
TINY_TASKS = ["tiny_arith", "tiny_knowledge", "tiny_code"]


def items(task, pair, version):
    """What a task trains on and what it scores, as comparable keys (prompts; code: task ids' prompts)."""
    world = pair.world()
    train = {prompt for prompt, _ in task.train_examples(pair, version)}
    if hasattr(task, "test_docs"):
        scored = {d["question"] for d in task.test_docs(world, {"old": 0, "new": 1}[version])}
    else:
        scored = {p["prompt"] for p in task.problems(world, {"old": 0, "new": 1}[version])}
    return train, scored


@pytest.mark.parametrize("pair_name", ["micro", "tiny"])
@pytest.mark.parametrize("task_name", TINY_TASKS)
def test_validation_is_carved_from_training_data_and_never_touches_test(pair_name, task_name):
    pair = PAIRS.get(pair_name)  # worlds only: nothing is built
    task = TASKS.get(task_name)()
    for version in ("old", "new"):
        train, test = items(task, pair, version)
        tune_train, validation = items(task.validation_task(), pair, version)
        assert validation and tune_train
        assert not validation & test and not tune_train & test  # tuning never reads test data
        assert not validation & tune_train                     # nor trains on what it scores
        assert validation <= train and tune_train <= train     # both carved from the training split
    assert task.split == "test"  # the task itself is unchanged
    if task_name == "tiny_arith":  # the operands too: no test sum is validated on under another name
        operands = lambda docs: {re.findall(r"\d+", d["question"])[0:2].__repr__() for d in docs}  # noqa: E731
        world = pair.world()
        assert not operands(task.test_docs(world, 0)) & operands(task.validation_task().test_docs(world, 0))


def tune(tmp_path, *args):
    return runner.invoke(app, ["tune", "--pair", "micro", "--out", str(tmp_path / "tuned"), *args])


FAST = ["--set", "steps=4", "--set", "batch_size=4"]


def test_tune_writes_a_recipe_and_trial_table_that_bench_run_uses(micro_pair, tmp_path):
    result = tune(tmp_path, "--method", "trans_peft", "--task", "tiny_knowledge", "--trials", "2", "--seed", "3",
                  "--knobs", "lr,p_c", *FAST)
    assert result.exit_code == 0, result.output
    recipe_path = tmp_path / "tuned" / "micro" / "trans_peft.yaml"
    tuned = yaml.safe_load(recipe_path.read_text())
    entry = tuned["tasks"]["tiny_knowledge"]
    assert tuned["pair"] == "micro" and tuned["method"] == "trans_peft"
    assert set(entry["recipe"]) == {"lr", "p_c", "steps", "batch_size"}  # the knobs, and the values held fixed
    assert entry["search"]["trials"] == 2 and entry["tuned_on"].startswith("old")
    table = (tmp_path / "tuned" / "micro" / "trans_peft.tiny_knowledge.trials.csv").read_text().splitlines()
    assert len(table) == 3 and table[0].startswith("trial,lr,p_c,validation")
    assert sorted(p.name for p in recipe_path.parent.iterdir()) == ["trans_peft.tiny_knowledge.trials.csv",
                                                                    "trans_peft.yaml"]  # data only, no lock files

    again = tune(tmp_path, "--method", "trans_peft", "--task", "tiny_knowledge", "--trials", "2", "--seed", "3",
                 "--knobs", "lr,p_c", *FAST)
    assert again.exit_code == 0 and yaml.safe_load(recipe_path.read_text()) == tuned  # seeded: same search

    out = tmp_path / "run.json"
    run = runner.invoke(app, ["run", "--pair", "micro", "--methods", "trans_peft", "--tasks", "tiny_knowledge",
                              "--tuned", str(tmp_path / "tuned"), "--set", "batch_size=2", "--out", str(out)])
    assert run.exit_code == 0, run.output
    results = json.loads(out.read_text())
    assert results["tuned_recipes"]["tiny_knowledge"]["trans_peft.p_c"] == entry["recipe"]["p_c"]
    module = json.loads((Store().root / "modules" / results["cells"][0]["module_key"] / "module.json").read_text())
    # the tuned values, under the user's --set (batch_size 2 beats the tuned 4)
    assert module["recipe"]["p_c"] == entry["recipe"]["p_c"] and module["recipe"]["batch_size"] == 2

    # the dry run plans what that run trained: the tuned p_c, and the module already in the store
    dry = runner.invoke(app, ["run", "--pair", "micro", "--methods", "trans_peft", "--tasks", "tiny_knowledge",
                              "--tuned", str(tmp_path / "tuned"), "--set", "batch_size=2", "--seeds", "0,1",
                              "--dry-run"])
    assert dry.exit_code == 0, dry.output
    header, *trainings = [line for line in dry.stdout.splitlines() if line.startswith("  train ")]
    assert "2 trainings (shared modules counted once; 1 already in the store)" in dry.stdout
    assert "seed 0 " in header and "(in the store: not retrained)" in header
    assert "seed 1 " in trainings[0] and "in the store" not in trainings[0]
    assert f"p_c={entry['recipe']['p_c']}" in dry.stdout

    plain = runner.invoke(app, ["run", "--pair", "micro", "--methods", "trans_peft", "--tasks", "tiny_knowledge",
                                "--tuned", str(tmp_path / "tuned"), "--no-tuned", *FAST,
                                "--out", str(tmp_path / "plain.json")])
    assert plain.exit_code == 0 and "tuned_recipes" not in json.loads((tmp_path / "plain.json").read_text())


def test_trial_0_is_the_default_recipe_and_a_trial_scores_its_seeds_mean(micro_pair, tmp_path):
    import csv

    from methods.trans_peft import TransPEFTRecipe

    result = tune(tmp_path, "--method", "trans_peft", "--task", "tiny_knowledge", "--trials", "2", "--seed", "1",
                  "--train-seeds", "2", "--knobs", "lr,p_c,p_i", *FAST)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "tuned" / "micro"
    rows = list(csv.DictReader((folder / "trans_peft.tiny_knowledge.trials.csv").open()))
    entry = yaml.safe_load((folder / "trans_peft.yaml").read_text())["tasks"]["tiny_knowledge"]
    default = TransPEFTRecipe()  # the tiny suite keeps the class defaults
    assert float(rows[0]["p_c"]) == default.p_c and float(rows[0]["p_i"]) == default.p_i  # the paper's script
    assert float(rows[1]["p_c"]) != default.p_c                                             # then the sampler's
    for row in rows:
        per_seed = [float(x) for x in row["validation_per_seed"].split()]
        assert len(per_seed) == 2 and len(row["module"].split()) == 2 and len(set(row["module"].split())) == 2
        assert float(row["validation"]) == pytest.approx(sum(per_seed) / 2, abs=1e-3)
    assert entry["search"]["train_seeds"] == 2 and "--train-seeds 2" in entry["command"]
    bad = tune(tmp_path, "--method", "trans_peft", "--task", "tiny_knowledge", "--trials", "2", "--train-seeds", "0")
    assert bad.exit_code == 2 and "--train-seeds must be a positive" in bad.stderr


def test_trials_train_and_score_in_the_precision_bench_run_would_use(micro_pair, tmp_path):
    """A recipe tuned in fp32 and run in bf16 was chosen for another computation: tune resolves --precision as run
    does (auto pins the tiny pairs to fp32) and records what it tuned in."""
    import csv

    def trial_modules(precision_args):
        result = tune(tmp_path / precision_args[-1], "--method", "finetune_old", "--task", "tiny_knowledge",
                      "--trials", "1", "--knobs", "lr", *FAST, *precision_args)
        assert result.exit_code == 0, result.output
        folder = tmp_path / precision_args[-1] / "tuned" / "micro"
        entry = yaml.safe_load((folder / "finetune_old.yaml").read_text())["tasks"]["tiny_knowledge"]
        row, = csv.DictReader((folder / "finetune_old.tiny_knowledge.trials.csv").open())
        meta = json.loads((Store().root / "modules" / row["module"] / "module.json").read_text())
        return entry, meta

    entry, meta = trial_modules(["--precision", "bf16"])
    assert meta["options"]["precision"] == "bf16" and entry["search"]["precision"] == "bf16"
    assert "--precision bf16" in entry["command"]
    entry, meta = trial_modules(["--precision", "auto"])
    assert meta["options"]["precision"] == "fp32" and entry["search"]["precision"] == "fp32"
    assert "--precision" not in entry["command"]


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("args,message", [
    (["--method", "trans_peft", "--task", "tiny_arith", "--trials", "0"], "--trials must be a positive"),
    (["--method", "trans_peft", "--task", "tiny_arith", "--trials", "-3"], "--trials must be a positive"),
    (["--method", "portllm", "--task", "tiny_arith", "--trials", "2", "--knobs", "p_c"], "no tunable knob 'p_c'"),
    (["--method", "direct_transfer", "--task", "tiny_arith", "--trials", "2"], "tune finetune_old"),
    (["--method", "trans_peft", "--task", "gsm8k_metamath", "--trials", "2"], "carves no validation split"),
    (["--method", "trans_pft", "--task", "tiny_arith", "--trials", "2"], "did you mean 'trans_peft'"),
    (["--method", "trans_peft", "--task", "tiny_arith"], "--trials is required"),
    (["--method", "trans_peft", "--task", "tiny_arith", "--trials", "2", "--precision", "fp8"],
     "--precision must be one of"),
    (["--method", "trans_peft", "--task", "tiny_arith", "--reselect"], "no tuned recipe for tiny_arith"),
])
def test_bad_tune_input_is_one_line_exit_2_and_overwrites_nothing(tmp_path, args, message):
    existing = write(tmp_path / "tuned" / "micro" / "trans_peft.yaml", "pair: micro\nmethod: trans_peft\ntasks: {}\n")
    result = tune(tmp_path, *args)
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert existing.read_text() == "pair: micro\nmethod: trans_peft\ntasks: {}\n"
    assert sorted(p.name for p in existing.parent.iterdir()) == ["trans_peft.yaml"]


def test_a_task_without_a_training_split_cannot_be_tuned():
    from bench.core.errors import BenchError
    from tasks.base import Task

    class EvalOnly(Task):
        name = "eval_only"

    with pytest.raises(BenchError, match="has no training split"):
        EvalOnly().validation_task()


@pytest.mark.parametrize("files,message", [
    ({"micro/tran_peft.yaml": "pair: micro\ntasks: {tiny_arith: {recipe: {lr: 0.01}}}\n"},
     "method 'tran_peft', which does not exist"),
    ({"mikro/trans_peft.yaml": "pair: mikro\ntasks: {tiny_arith: {recipe: {lr: 0.01}}}\n"},
     "pair 'mikro', which does not exist"),
    ({"micro/trans_peft.yaml": "pair: micro\ntasks: [1, 2]\n"}, "must hold pair, method and tasks"),
    ({"micro/trans_peft.yaml": "pair: micro\ntasks: {tiny_arith: {recipe: {lr: 0.01}, search: {trials: 4}}}\n",
      "micro/portllm.yaml": "pair: micro\ntasks: {tiny_arith: {recipe: {lr: 0.01}, search: {trials: 8}}}\n"},
     "unequal trial budgets"),
    ({"micro/trans_peft.yaml": "pair: micro\ntasks: {tiny_arith: {recipe: {nonsense: 1}}}\n"},
     "trans_peft has no option 'nonsense'"),
])
def test_bad_recipe_files_are_one_line_exit_2(micro_pair, tmp_path, files, message):
    for name, text in files.items():
        write(tmp_path / "tuned" / name, text)
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["run", "--pair", "micro", "--tasks", "tiny_arith", "--tuned",
                                 str(tmp_path / "tuned"), "--out", str(out)])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not out.exists()


TWELVE_TRIALS = Path(__file__).resolve().parents[1] / "results" / "science" / "tuning-12-trials" / "recipes"


@pytest.mark.parametrize("tuned_dir", [None, TWELVE_TRIALS], ids=["shipped", "12-trials"])
def test_the_shipped_tuned_recipes_are_valid_and_equal_budget(tuned_dir):
    """Every shipped pair's folder (and the 12-trial searches' folder, README "Twelve trials") tunes the four trained
    methods on the same tasks with the same trials, each on the base it trains on, and each recipe is the best row of
    its committed trial table."""
    import csv

    from bench.cli import tuned_for
    from bench.science.tune import choose_trial
    from methods import METHODS
    from tasks.recipes import TUNED_DIR, read_recipe_file

    tuned_dir = tuned_dir or TUNED_DIR
    trained = ["finetune_old", "finetune_new", "portllm", "trans_peft"]
    for folder in (p for p in tuned_dir.iterdir() if p.is_dir()) if tuned_dir.is_dir() else []:
        pair = PAIRS.get(folder.name)
        tuned_for(tuned_dir, pair, trained, [TASKS.get(t)() for t in TINY_TASKS])  # loads; equal trials per task
        files = {m: read_recipe_file(folder / f"{m}.yaml") for m in trained}
        assert len({tuple(sorted(f["tasks"])) for f in files.values()}) == 1  # the same tasks for every method
        assert len({e["search"].get("train_seeds", 1) for f in files.values() for e in f["tasks"].values()}) == 1
        for method, data in files.items():
            for entry in data["tasks"].values():
                assert entry["tuned_on"].split()[0] == METHODS.get(method).trains_on
                assert entry["tuned_on"].split()[1] == f"({pair.version_id(entry['tuned_on'].split()[0])})"
                rows = list(csv.DictReader((folder / entry["trials_table"]).open()))
                assert len(rows) == entry["search"]["trials"]
                chosen, selection = choose_trial(rows)  # the committed choice is the current rule's
                assert entry["selection"] == selection
                assert float(chosen["validation"]) == pytest.approx(entry["validation"]["score"])
                assert float(chosen["lr"]) == pytest.approx(entry["recipe"]["lr"])
                assert int(chosen["steps"]) == entry["recipe"]["steps"]


def test_portllm_chooses_between_its_papers_targets_and_the_suites_where_they_differ():
    from bench.engine.protocol import build_method
    from bench.science.tune import default_point, recipe_value, search_space
    from methods.portllm import ALL_LINEAR

    pair = PAIRS.get("tiny")  # recipes only: nothing is built
    for task_name, suite_targets in [("tiny_knowledge", ["q_proj", "k_proj", "v_proj", "o_proj"]),
                                     ("tiny_arith", list(ALL_LINEAR))]:
        task = TASKS.get(task_name)()
        portllm = build_method("portllm", {}, pair, task)
        assert task.recipe_layers("portllm")[0]["targets"] == suite_targets
        space = search_space(portllm, 400, ["lr", "rank", "targets"], suite_targets)
        if task_name == "tiny_arith":  # the suite's targets are PortLLM's: no choice, the search draws as before
            assert list(space) == ["lr", "rank"]
            continue
        assert space["targets"] == ("choice", (",".join(ALL_LINEAR), ",".join(suite_targets)))
        assert default_point(portllm, 400, space)["targets"] == ",".join(ALL_LINEAR)  # trial 0: PortLLM's paper
        assert recipe_value("targets", space["targets"][1][1]) == suite_targets
        drawn = build_method("portllm", {"portllm.targets": recipe_value("targets", space["targets"][1][1])}, pair,
                             task)
        assert list(drawn.recipe.targets) == suite_targets
    # the re-tuning references train on the suite's targets: they have no such knob
    bad = runner.invoke(app, ["tune", "--pair", "micro", "--method", "finetune_old", "--task", "tiny_knowledge",
                              "--trials", "2", "--knobs", "targets"])
    assert bad.exit_code == 2 and "no tunable knob 'targets'" in bad.stderr


def test_trans_peft_chooses_between_its_math_scripts_targets_and_the_suites_where_they_differ():
    from bench.core.recipe import ALL_LINEAR, ATTENTION
    from bench.engine.protocol import build_method
    from bench.science.tune import default_point, search_space

    pair = PAIRS.get("tiny")  # recipes only: nothing is built
    for task_name in ("tiny_knowledge", "tiny_arith"):
        task = TASKS.get(task_name)()
        suite_targets = task.recipe_layers("trans_peft")[0]["targets"]
        trans_peft = build_method("trans_peft", {}, pair, task)
        space = search_space(trans_peft, 400, ["lr", "p_c", "targets"], suite_targets)
        if task_name == "tiny_knowledge":  # the suite's targets are the math script's: no choice, draws as before
            assert suite_targets == list(ATTENTION) and list(space) == ["lr", "p_c"]
            continue
        assert space["targets"] == ("choice", (",".join(ALL_LINEAR), ",".join(ATTENTION)))
        assert default_point(trans_peft, 400, space)["targets"] == ",".join(ALL_LINEAR)  # trial 0: the suite's


def trial_row(trial, validation_per_seed, n, **knobs):
    scores = [float(x) for x in validation_per_seed.split()]
    return {"trial": trial, **knobs, "validation": sum(scores) / len(scores),
            "validation_per_seed": validation_per_seed, "n": n}


def test_the_default_stays_unless_a_trial_beats_it_by_more_than_a_standard_error():
    from bench.science.tune import choose_trial, standard_error

    # 50% on 100 items is +-5 points from the items alone; seeds 40 and 60 add (sd 14.1 / sqrt 2) = 10 more
    assert standard_error(trial_row(0, "50 50", 100)) == pytest.approx(5.0)
    assert standard_error(trial_row(0, "40 60", 100)) == pytest.approx((25 + 100) ** 0.5)
    default = trial_row(0, "82 82", 56)
    close, far = trial_row(1, "83.93 87.5", 56), trial_row(2, "91 93", 56)  # +3.7 vs SE 5.0; +10 vs SE 3.8
    chosen, selection = choose_trial([default, close])
    assert chosen is default and selection["best_trial"] == 1 and selection["chosen_trial"] == 0
    assert selection["standard_error"] == pytest.approx(5.0, abs=0.05)
    chosen, selection = choose_trial([default, close, far])
    assert chosen is far and selection["chosen_trial"] == 2
    assert choose_trial([trial_row(0, "70 70", 400), trial_row(1, "74 74", 400)])[0]["trial"] == 1  # 400 items: +-2.2


def test_reselect_chooses_again_from_the_committed_table_and_trains_nothing(tmp_path):
    folder = tmp_path / "tuned" / "micro"
    table = write(folder / "portllm.tiny_code.trials.csv",
                  "trial,lr,steps,rank,alpha,validation,validation_per_seed,n,train_wall_s,module\n"
                  "0,0.004,500,8,16,80.36,67.86 92.86,28,109.0,a b\n"
                  "1,0.0026,337,32,64,89.29,89.29 89.29,28,75.0,c d\n"
                  "2,0.0017,431,4,8,83.93,89.29 78.57,28,91.5,e f\n")
    before = table.read_text()
    entry = {"recipe": {"lr": 0.0017, "steps": 431, "rank": 4, "alpha": 8},  # an older rule's pick
             "validation": {"metric": "pass@1", "score": 83.93, "n": 28}, "tuned_on": "old (v0-x)",
             "search": {"trials": 3, "space": {"lr": [0.0004, 0.012, True], "steps": [125, 500, True],
                                               "rank": [4, 8, 16, 32]}, "fixed": {}},
             "command": "bench tune --method portllm --pair micro --task tiny_code --trials 3",
             "trials_table": table.name}
    write(folder / "portllm.yaml", yaml.safe_dump({"pair": "micro", "method": "portllm",
                                                   "tasks": {"tiny_code": entry}}))
    modules = Store().keys("modules")
    result = tune(tmp_path, "--method", "portllm", "--task", "tiny_code", "--reselect")
    assert result.exit_code == 0, result.output
    again = yaml.safe_load((folder / "portllm.yaml").read_text())["tasks"]["tiny_code"]
    # trial 1 beats the default by 8.9 points, more than its standard error (5.8): it is chosen, typed as in a search
    assert again["recipe"] == {"lr": 0.0026, "steps": 337, "rank": 32, "alpha": 64}
    assert again["validation"] == {"metric": "pass@1", "score": 89.29, "n": 28}
    assert again["selection"]["chosen_trial"] == 1 and again["selection"]["standard_error"] == pytest.approx(5.84)
    assert again["command"] == entry["command"] and again["search"] == entry["search"]  # the search that ran
    assert table.read_text() == before and Store().keys("modules") == modules  # the trials stand; nothing trained
    assert "chosen: {'lr': 0.0026" in result.stdout and "best trial 1 89.3 +- 5.8, default 80.4" in result.stdout
