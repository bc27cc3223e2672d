"""The scorers: lm-eval on the tiny tasks (gold answers score 100, shuffled ~0), evalplus on code."""

import json
import random
import re

import pytest
from lm_eval.api.model import LM

from tasks.base import TASKS
from tasks.lmeval import run_lmeval, score_with_lmeval
from tasks.tiny import score_solutions


class AnsweringLM(LM):
    """An lm-eval LM that answers from a table: context -> generated text / preferred continuation."""

    def __init__(self, generations=None, preferred=None):
        super().__init__()
        self.generations, self.preferred = generations or {}, preferred or {}

    def generate_until(self, requests, disable_tqdm=False):
        return [self.generations[r.args[0]] for r in requests]

    def loglikelihood(self, requests, disable_tqdm=False):
        return [(0.0 if self.preferred[r.args[0]] == r.args[1].strip() else -10.0, False) for r in requests]

    def loglikelihood_rolling(self, requests, disable_tqdm=False):
        raise NotImplementedError


def _docs(task, pair, version="old"):
    path = task.data_file(pair, version)
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_arith_scorer_gives_gold_worked_answers_100_and_shuffled_ones_about_0(micro_pair):
    task = TASKS.get("tiny_arith")()
    docs = _docs(task, micro_pair)
    config = task.lmeval_config(micro_pair, "old")
    gold = {d["question"]: d["answer"] + "\nQ: next" for d in docs}  # generation runs past the answer
    assert score_with_lmeval(AnsweringLM(generations=gold), config).score == 100.0
    answers = [d["answer"] for d in docs]
    random.Random(0).shuffle(answers)
    shuffled = {d["question"]: a for d, a in zip(docs, answers)}
    expected = 100 * sum(a.split("=")[-1].strip() == d["target"] for d, a in zip(docs, answers)) / len(docs)
    result = score_with_lmeval(AnsweringLM(generations=shuffled), config)
    assert result.score == pytest.approx(expected) and result.score < 20
    assert len(result.samples) == len(docs) and result.n == len(docs)


def test_a_tiny_task_whose_test_data_changed_never_reads_the_file_its_older_version_wrote(micro_pair, monkeypatch):
    task = TASKS.get("tiny_arith")()
    before = _docs(task, micro_pair)
    monkeypatch.setattr(type(task), "n_test", len(before) - 3)  # what a change to the task's data looks like
    after = _docs(task, micro_pair)
    assert after == before[:-3]  # the test set as the task now defines it, not the cached file of the older one
    assert task.data_file(micro_pair, "old").parent.name.endswith(task.test_data_hash(micro_pair, "old"))


def test_knowledge_scorer_reads_the_target_bases_facts(micro_pair):
    task = TASKS.get("tiny_knowledge")()
    world = micro_pair.spec.world.world()
    old_docs, new_docs = _docs(task, micro_pair, "old"), _docs(task, micro_pair, "new")
    assert any(a["gold"] != b["gold"] for a, b in zip(old_docs, new_docs))  # the update changed held-out facts
    knows_v0 = {d["question"]: d["choices"][d["gold"]] for d in old_docs}
    assert score_with_lmeval(AnsweringLM(preferred=knows_v0), task.lmeval_config(micro_pair, "old")).score == 100.0
    on_new = score_with_lmeval(AnsweringLM(preferred=knows_v0), task.lmeval_config(micro_pair, "new"))
    same = sum(a["gold"] == b["gold"] for a, b in zip(old_docs, new_docs))
    assert on_new.score == pytest.approx(100 * same / len(new_docs)) and on_new.score < 100
    assert all(d["question"].split(" of ")[1].split(" ?")[0] in world.held_out_entities for d in old_docs)


def test_lmeval_scores_an_in_memory_model_and_an_adapter_exactly_as_their_greedy_outputs(micro_pair):
    import torch
    from peft import LoraConfig, get_peft_model

    from bench.engine.protocol import load_base
    from tasks.generation import greedy_complete

    task = TASKS.get("tiny_arith")()
    docs = _docs(task, micro_pair)[:8]
    model, tokenizer = load_base(micro_pair, "old")
    adapter = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False)).eval()
    for candidate in (adapter.get_base_model(), adapter):
        result = run_lmeval(candidate, tokenizer, task.lmeval_config(micro_pair, "old"), limit=8)
        with torch.no_grad():
            outputs = greedy_complete(candidate, tokenizer, [d["question"] for d in docs], max_new_tokens=16)
        # lm-eval's regex filter, applied by hand to our own greedy decode of the same model
        expected = [(re.findall(r"=\s*(-?\d+)", o.split("\n")[0]) or ["[invalid]"])[0] for o in outputs]
        assert [s["response"] for s in result.samples] == expected
        assert [s["correct"] for s in result.samples] == [float(e == d["target"]) for e, d in zip(expected, docs)]
        assert result.score == pytest.approx(100 * sum(s["correct"] for s in result.samples) / 8)


def test_evalplus_scores_canonical_solutions_100_and_broken_ones_0(micro_pair):
    task = TASKS.get("tiny_code")()
    problems = task.problems(micro_pair.spec.world.world(), 0)
    canonical = {p["task_id"]: p["prompt"] + p["canonical_solution"] for p in problems}
    assert score_solutions("tiny_code", problems, canonical).score == 100.0
    broken = {p["task_id"]: p["prompt"] + "    return x + 1000\n" for p in problems}
    result = score_solutions("tiny_code", problems, broken)
    assert result.score == 0.0 and all(s["correct"] == 0 for s in result.samples)
    half = dict(canonical, **{p["task_id"]: broken[p["task_id"]] for p in problems[::2]})
    assert score_solutions("tiny_code", problems, half).score == pytest.approx(
        100 * (len(problems) - len(problems[::2])) / len(problems))
