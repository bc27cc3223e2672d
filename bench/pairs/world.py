"""The synthetic world behind the tiny pairs: entities with facts, arithmetic, templated code.

Version 0 of the world is what the old base is pretrained on; version 1 changes some
facts, adds entities and shifts the text mix, and is what continued pre-training sees.
Everything is a pure function of (WorldSpec, version): no randomness escapes the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property

COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"]
CITIES = ["Aldon", "Brisk", "Corvo", "Dunmere", "Elsa", "Fenwick", "Garrow", "Hollis", "Ivra", "Jessop"]
ATTRIBUTES = {"color": COLORS, "city": CITIES}  # the multiple-choice facts (tiny_knowledge)
# Each entity also has a rule, x -> x <op> k: a fact the base learns as prose and as code, that tiny_code asks
# it to write as a function. The update changes some rules, as a library release changes some APIs.
RULES = [f"x {op} {k}" for op in ("+", "-", "*") for k in range(1, 10)]
FACT_VALUES = {**ATTRIBUTES, "rule": RULES}
SYLLABLES = ["ba", "ko", "ti", "ru", "me", "sa", "lo", "ne", "vi", "da", "gu", "pe", "zo", "ha", "ki", "mu"]

# Filler text: v0 and v1 speak about different things, which is what makes the update move weights.
FILLER = {
    0: (["the", "a"], ["cat", "dog", "bird", "horse", "fish"], ["sat", "ran", "slept", "jumped"],
        ["on the mat", "near the door", "in the yard", "by the river"]),
    1: (["every", "some"], ["robot", "engine", "rocket", "server", "drone"], ["hums", "spins", "waits", "glows"],
        ["in the lab", "at night", "under the dome", "beside the rack"]),
}


@dataclass(frozen=True)
class WorldSpec:
    """Size and seed of a synthetic world; everything else is derived from it."""

    seed: int = 0
    n_entities: int = 200
    n_new_entities: int = 20       # entities that only version 1 knows
    changed_fraction: float = 0.2  # share of version-0 facts that version 1 changes
    max_operand: int = 99          # arithmetic operands are in [0, max_operand]
    held_out_fraction: float = 0.3  # entities (and code functions) kept out of every task's train split

    def world(self) -> World:
        return World(self)


class World:
    def __init__(self, spec: WorldSpec):
        self.spec = spec

    @cached_property
    def names(self) -> list[str]:
        rng = random.Random(f"{self.spec.seed}-names")
        total = self.spec.n_entities + self.spec.n_new_entities
        pool = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES]
        return [n.capitalize() for n in rng.sample(pool, total)]

    def entities(self, version: int) -> list[str]:
        return self.names if version >= 1 else self.names[: self.spec.n_entities]

    @cached_property
    def _facts_by_version(self) -> dict[int, dict[tuple[str, str], str]]:
        rng = random.Random(f"{self.spec.seed}-facts")
        v0 = {(n, a): rng.choice(vals) for n in self.names[: self.spec.n_entities] for a, vals in FACT_VALUES.items()}
        v1 = dict(v0)
        for key in rng.sample(sorted(v0), int(len(v0) * self.spec.changed_fraction)):
            v1[key] = rng.choice([v for v in FACT_VALUES[key[1]] if v != v0[key]])
        for n in self.names[self.spec.n_entities:]:
            for a, vals in FACT_VALUES.items():
                v1[(n, a)] = rng.choice(vals)
        return {0: v0, 1: v1}

    def facts(self, version: int) -> dict[tuple[str, str], str]:
        return self._facts_by_version[min(version, 1)]

    @cached_property
    def held_out_entities(self) -> set[str]:
        """Entities no task trains on: evaluation on them must read facts from the base."""
        rng = random.Random(f"{self.spec.seed}-held-out")
        old = self.names[: self.spec.n_entities]
        return set(rng.sample(old, int(len(old) * self.spec.held_out_fraction)))

    # ---- pretraining text -------------------------------------------------------------

    def corpus(self, version: int, n_docs: int, seed: int) -> list[str]:
        """Pretraining documents. Version 1 repeats its changed and new facts and has more arithmetic. Facts are
        colors, cities and rules; a code document defines an entity's rule as a function."""
        rng = random.Random(f"{self.spec.seed}-corpus-{version}-{seed}")
        facts = self.facts(version)
        keys = sorted(facts)
        if version >= 1:
            fresh = [k for k in keys if self.facts(0).get(k) != facts[k]]
            keys = keys + fresh * 3  # the update is mostly about what changed
        mix = [("fact", 0.45), ("arith", 0.2), ("story", 0.1), ("code", 0.1), ("filler", 0.15)]
        if version >= 1:
            mix = [("fact", 0.35), ("arith", 0.3), ("story", 0.1), ("code", 0.1), ("filler", 0.15)]
        kinds, weights = zip(*mix)
        docs = []
        for _ in range(n_docs):
            kind = rng.choices(kinds, weights)[0]
            if kind == "fact":
                docs.append(self.fact_sentence(rng.choice(keys), facts, rng))
            elif kind == "arith":
                docs.append(self.equation(rng, allow_minus=version >= 1))
            elif kind == "story":
                docs.append(self.story(rng.choice(self.entities(version)), rng))
            elif kind == "code":
                name = rng.choice(self.entities(version))
                docs.append(self.rule_definition(name, facts[(name, "rule")]))
            else:
                docs.append(self.filler(version, rng))
        return docs

    @staticmethod
    def fact_sentence(key, facts, rng) -> str:
        name, attr = key
        value = facts[key]
        return rng.choice([f"the {attr} of {name} is {value} .", f"{name} has the {attr} {value} ."])

    @staticmethod
    def rule_definition(name: str, rule: str) -> str:
        """How code in the corpus states a rule (tiny_code asks for it in another form)."""
        return f"def {name}(x):\n    return {rule}\n"

    def equation(self, rng, allow_minus: bool = False) -> str:
        a, b = rng.randint(0, self.spec.max_operand), rng.randint(0, self.spec.max_operand)
        if allow_minus and rng.random() < 0.3:
            a, b = max(a, b), min(a, b)
            return f"{a} - {b} = {a - b} ."
        return f"{a} + {b} = {a + b} ."

    def story(self, name: str, rng) -> str:
        """Narrative arithmetic: the base learns to carry numbers from context into a sum."""
        a, b = rng.randint(0, self.spec.max_operand), rng.randint(0, self.spec.max_operand)
        return f"{name} has {a} stones . {name} finds {b} more . now {name} has {a} + {b} = {a + b} stones ."

    @staticmethod
    def filler(version: int, rng) -> str:
        dets, nouns, verbs, places = FILLER[min(version, 1)]
        return f"{rng.choice(dets)} {rng.choice(nouns)} {rng.choice(verbs)} {rng.choice(places)} ."

    # ---- task documents (the tasks in tasks/tiny split and score these) --------------

    @staticmethod
    def word_problem(name: str, a: int, b: int) -> tuple[str, str]:
        """An arithmetic word problem and its short worked answer."""
        question = f"Q: {name} has {a} stones and finds {b} more . How many stones does {name} have ?\nA:"
        return question, f" {a} + {b} = {a + b}"

    @staticmethod
    def knowledge_question(name: str, attr: str) -> tuple[str, list[str]]:
        return f"Q: What is the {attr} of {name} ?\nA:", list(ATTRIBUTES[attr])

    @staticmethod
    def rule_prompt(name: str) -> str:
        """tiny_code's prompt: a function whose body is the entity's rule, which only the base knows."""
        return f'def apply_{name}(x):\n    """Return the rule of {name} applied to x."""\n'

    @staticmethod
    def rule_body(rule: str) -> str:
        return f"    return {rule}\n"

    # ---- tokenizer vocabulary ---------------------------------------------------------

    def vocabulary_text(self) -> list[str]:
        """Every string the world can produce, so both versions share one vocabulary."""
        texts = [f"the {a} of {n} is {v} . {n} has the {a} {v} ." for n in self.names
                 for a, vals in FACT_VALUES.items() for v in vals]
        texts += [f"{d} {d} - + * = ." for d in range(10)] + [self.story(self.names[0], random.Random(0))]
        texts += [self.rule_prompt(n) + self.rule_definition(n, RULES[0]) for n in self.names]
        texts += [" ".join(" ".join(part) for part in FILLER[version]) for version in FILLER]
        texts += [det for version in FILLER for det in FILLER[version][0]]  # a document's first word: no space
        texts += [self.word_problem(self.names[0], 1, 2)[0], self.knowledge_question(self.names[0], "color")[0]]
        return texts
