"""The generated tasks for real bases (synth_arith, synth_pyexec): disjoint splits, true targets, and lm-eval
scoring gold answers 100."""

import contextlib
import io
import random
import re

import pytest
from test_scoring import AnsweringLM

from tasks.base import TASKS
from tasks.lmeval import score_with_lmeval

NAMES = ["synth_arith", "synth_pyexec"]


@pytest.mark.parametrize("name", NAMES)
def test_train_validation_and_test_items_are_disjoint_and_tuning_never_sees_test_items(name):
    task = TASKS.get(name)()
    train, validation, test = task.splits()
    questions = [set(q for q, _ in split) for split in (train, validation, test)]
    assert [len(s) for s in questions] == [800, 200, 100]
    assert not (questions[0] & questions[1]) and not (questions[0] | questions[1]) & questions[2]
    tuned = task.validation_task()
    trained_on = {p for p, _ in tuned.train_examples(None, "old")}
    scored_on = {d["question"] for d in tuned.test_docs()}
    assert not trained_on & scored_on and len(scored_on) == 200
    assert not scored_on & {d["question"] for d in task.test_docs()}  # validation is never test
    assert {p for p, _ in task.train_examples(None, "old")} == {task.prompt(q) for q in questions[0] | questions[1]}
    assert task.splits() == TASKS.get(name)().splits()  # seeded: the same items every time


def test_pyexec_targets_are_what_python_prints():
    for question, target in TASKS.get("synth_pyexec")().generate(random.Random(0))[:300]:
        program = re.search(r"```python\n(.*)\n```", question, re.S).group(1)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(program, {})  # the harness's own generated arithmetic, not model output
        assert out.getvalue().strip() == target


@pytest.mark.parametrize("name", NAMES)
def test_lmeval_scores_gold_answers_100_and_shuffled_ones_near_0(name):
    task = TASKS.get(name)()
    docs, config = task.test_docs(), task.lmeval_config()
    gold = {d["question"]: f" {d['target']}\nQuestion: next" for d in docs}  # generation runs past the answer
    assert score_with_lmeval(AnsweringLM(generations=gold), config).score == 100.0
    targets = [d["target"] for d in docs]
    random.Random(0).shuffle(targets)
    shuffled = {d["question"]: f" {t}" for d, t in zip(docs, targets)}
    expected = 100 * sum(t == d["target"] for d, t in zip(docs, targets)) / len(docs)
    result = score_with_lmeval(AnsweringLM(generations=shuffled), config)
    assert result.score == pytest.approx(expected) and result.score < 25 and result.n == 100
