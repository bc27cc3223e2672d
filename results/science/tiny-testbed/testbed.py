"""What the diagnostics in this folder share: the LoRA targets they compare, and the pair as it was before the
testbed changes of 2026-12-04, so that a script reruns what it measured (the default pair now has a 2,400-step
update, and the tiny suite puts tiny_arith's LoRA on every linear layer)."""

from bench.pairs import PAIRS

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
EVERY_LINEAR = ATTENTION + ["gate_proj", "up_proj", "down_proj"]


def pair_with_800_step_update():
    """The default tiny pair with v1's update of before 2026-12-04 (800 steps): the same shipped checkpoint."""
    return PAIRS.get("tiny").with_update("full", 800 / PAIRS.get("tiny").spec.update.steps)


def validation_scores(executor, task_name: str, method: str, changes: dict | None = None, options=None,
                      seeds=range(6)) -> list[float]:
    """Per seed, `method`'s module scored on the base it trained on (its source score where it lands elsewhere), on
    the task's validation split: the method's tuned recipe with `changes` on top. Test data is never read."""
    from bench.engine.protocol import run_grid
    from methods import METHODS
    from tasks.base import TASKS
    from tasks.recipes import TUNED_DIR, tuned_overrides

    pair = PAIRS.get("tiny")
    tuned = tuned_overrides(TUNED_DIR, pair.name, set(METHODS.names()), set(PAIRS.names()))
    recipe = {k: v for k, v in tuned[task_name].items() if k.split(".")[0] == method}
    cells = run_grid([method], pair, [TASKS.get(task_name)().validation_task()], list(seeds),
                     {f"{method}.{k}": v for k, v in (changes or {}).items()}, executor=executor,
                     task_overrides={task_name: recipe}, options=options)
    return [c.score if c.source_score is None else c.source_score for c in cells]


def report(label: str, scores: list[float]) -> None:
    """One progress line on stderr: the label, mean +- sd, the scores."""
    import statistics
    import sys

    print(label, f"{statistics.fmean(scores):.1f} +- {statistics.stdev(scores):.1f}", scores, file=sys.stderr,
          flush=True)


def run_variants(task_name: str, variants: dict) -> dict:
    """{label: validation_scores(...)} for variants {label: (method, changes to its tuned recipe)}, in two one-thread
    worker processes, a progress line per variant."""
    from bench.engine.executors import LocalExecutor

    scores = {}
    with LocalExecutor(workers=2, threads=1) as executor:
        for label, (method, changes) in variants.items():
            scores[label] = validation_scores(executor, task_name, method, changes)
            report(label, scores[label])
    return scores
