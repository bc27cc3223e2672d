"""The default tiny world: what its text and tasks are made of (PAIR_BUILD_VERSION 4)."""

from bench.pairs import PAIRS
from bench.pairs.tinypair import build_tokenizer
from bench.pairs.world import RULES
from tasks.tiny import TinyArith, TinyCode, TinyKnowledge

PAIR = PAIRS.get("tiny")
WORLD = PAIR.world()


def test_every_word_of_the_corpus_and_the_tasks_is_in_the_vocabulary():
    tokenizer = build_tokenizer(PAIR.spec.world)
    texts = WORLD.corpus(0, 3000, seed=0) + WORLD.corpus(1, 3000, seed=0)
    for task in (TinyArith(), TinyKnowledge(), TinyCode()):
        for version in ("old", "new"):
            texts += [prompt + answer for prompt, answer in task.train_examples(PAIR, version)]
    unknown = [t for t, ids in zip(texts, tokenizer(texts)["input_ids"]) if tokenizer.unk_token_id in ids]
    assert unknown == []


def test_the_code_task_has_50_problems_that_need_the_bases_rules_and_the_update_changes_some():
    old, new = TinyCode().problems(WORLD, 0), TinyCode().problems(WORLD, 1)
    assert len(old) >= 50 and [p["prompt"] for p in old] == [p["prompt"] for p in new]
    changed = [p for p, q in zip(old, new) if p["canonical_solution"] != q["canonical_solution"]]
    assert 0 < len(changed) < len(old) / 2
    # The prompt names the entity, not its rule: the body can only come from what the base learnt.
    assert not any(rule in p["prompt"] for p in old for rule in RULES)
    # The rules differ on the tests' inputs, so a wrong rule fails.
    inputs = (0, 1, 7, -3, 12)
    assert len({tuple(eval(f"lambda x: {rule}")(x) for x in inputs) for rule in RULES}) == len(RULES)


def test_no_code_problem_is_trained_on():
    trained = {prompt for version in ("old", "new") for prompt, _ in TinyCode().train_examples(PAIR, version)}
    assert not trained & {p["prompt"] for v in (0, 1) for p in TinyCode().problems(WORLD, v)}
