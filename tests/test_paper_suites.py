"""The papers' commonsense-8 and MATH scorers, run offline on a local mirror written by the test."""

import json
import re

import pytest
from test_scoring import AnsweringLM

from tasks.base import TASKS
from tasks.lmeval import score_with_lmeval

COMMONSENSE = ["boolq_cs", "piqa_cs", "siqa_cs", "hellaswag_cs", "winogrande_cs", "arc_e_cs", "arc_c_cs", "obqa_cs"]


class ByInstructionLM(AnsweringLM):
    """Answers by the instruction inside the task's prompt (the template is the task's own)."""

    def generate_until(self, requests, disable_tqdm=False):
        return [self.generations[r.args[0].split("### Instruction:\n")[1].split("\n\n### Response:")[0]]
                for r in requests]


def _choices(task_name: str) -> list[str]:
    from tasks.papers import load_task_yaml

    pattern = load_task_yaml(task_name)["filter_list"][0]["filter"][0]["regex_pattern"]
    return pattern.strip("()").split("|")


@pytest.mark.parametrize("name", COMMONSENSE)
def test_commonsense_scorer_gives_gold_answers_100_and_wrong_ones_0(name, tmp_path, monkeypatch):
    from tasks.papers import load_task_yaml

    choices = _choices(name)
    records = [{"instruction": f"question {i} of {name}?", "input": "", "answer": choices[i % len(choices)],
                "output": f"the correct answer is {choices[i % len(choices)]}"} for i in range(12)]
    folder = tmp_path / "llm-adapters" / load_task_yaml(name)["dataset_name"]
    folder.mkdir(parents=True)
    (folder / "test.json").write_text("\n".join(json.dumps(r) for r in records))
    monkeypatch.setenv("PEFT_TRANSFER_BENCH_DATA", str(tmp_path))
    config = TASKS.get(name)().lmeval_config()
    gold = {r["instruction"]: f"the correct answer is {r['answer']}\n\n### Instruction: next" for r in records}
    assert score_with_lmeval(ByInstructionLM(generations=gold), config).score == 100.0
    wrong = {r["instruction"]: f"the correct answer is {choices[(i + 1) % len(choices)]}"
             for i, r in enumerate(records)}
    assert score_with_lmeval(ByInstructionLM(generations=wrong), config).score == 0.0
    # the training rendering is LLM-Adapters' prompt with its answer sentence as the target
    prompt, target = TASKS.get(name)().render(records[0])
    assert prompt.endswith("### Response:\n") and re.search(records[0]["answer"], target)


def test_math_scorer_compares_the_answer_is_with_the_boxed_answer(tmp_path, monkeypatch):
    records = [{"problem": "What is $1+1$?", "solution": "We add: $\\boxed{2}$.", "level": "1", "type": "a"},
               {"problem": "Half of 1?", "solution": "It is $\\boxed{\\frac{1}{2}}$.", "level": "1", "type": "a"},
               {"problem": "3 squared?", "solution": "$\\boxed{9}$", "level": "1", "type": "a"}]
    folder = tmp_path / "DigitalLearningGmbH" / "MATH-lighteval"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    monkeypatch.setenv("PEFT_TRANSFER_BENCH_DATA", str(tmp_path))
    config = TASKS.get("math_metamath")().lmeval_config()
    assert config["doc_to_text"].endswith("### Response: Let's think step by step.")  # MetaMath's prompt

    right = {"What is $1+1$?": " 1+1=2. The answer is: 2", "Half of 1?": " The answer is: \\frac{1}{2}",
             "3 squared?": " The answer is: $9$."}
    assert score_with_lmeval(ByInstructionLM(generations=right), config).score == 100.0
    wrong = {"What is $1+1$?": " The answer is: 3", "Half of 1?": " it is a half", "3 squared?": " The answer is: 6"}
    assert score_with_lmeval(ByInstructionLM(generations=wrong), config).score == 0.0
