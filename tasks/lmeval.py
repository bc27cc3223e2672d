"""Score an in-memory model with lm-eval (EleutherAI lm-evaluation-harness)."""

from __future__ import annotations

import functools

import torch

from tasks.base import TaskScore
from tasks.vllm_backend import is_served


def run_lmeval(model, tokenizer, task_config: dict, batch_size: int = 32, limit: int | None = None) -> TaskScore:
    """Run one lm-eval task config (a YAML dict) on an in-memory model (a PeftModel too)."""
    return score_with_lmeval(in_memory_lm(model, tokenizer, batch_size), task_config, limit)


def in_memory_lm(model, tokenizer, batch_size: int):
    """lm-eval's HFLM around a model already in memory, on the model's device; an LM served by vLLM as it is."""
    if is_served(model):
        return model
    device = next(model.parameters()).device
    return _quiet_hflm()(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=str(device),
                         max_length=tokenizer.model_max_length)


def score_with_lmeval(lm, task_config: dict, limit: int | None = None) -> TaskScore:
    """Score any lm-eval LM on one task config; returns its main metric x 100 and per-sample results."""
    from lm_eval.tasks import TaskManager, get_task_dict

    task_dict = get_task_dict([task_config], TaskManager(include_defaults=False))
    metric = task_config["metric_list"][0]["metric"]
    filter_name = task_config["filter_list"][0]["name"] if task_config.get("filter_list") else "none"
    return score_task(lm, task_dict, task_config["task"], metric, filter_name, limit)


def score_task(lm, task_dict: dict, name: str, metric: str, filter_name: str, limit: int | None = None,
               label: str | None = None) -> TaskScore:
    """Score `lm` on task `name` of an lm-eval task dict (a YAML config's or a built-in's): metric x 100 under
    `filter_name`, and per-sample outcomes for the regression gate. `label` names the result (default: name)."""
    from lm_eval.evaluator import evaluate

    cache_lmeval_templates()
    # evaluate() rather than simple_evaluate(): the latter also collects environment info
    # (pip, nvidia-smi, git) on every call, seconds of work per cell that a grid repeats.
    with torch.no_grad():
        out = evaluate(lm=lm, task_dict=task_dict, limit=limit, log_samples=True, bootstrap_iters=0,
                       verbosity="WARNING")
    value = out["results"][name][f"{metric},{filter_name}"]
    samples = [
        {"id": s["doc_id"], "correct": float(s[metric]), "response": _response(s)}
        for s in out["samples"][name]
        if s.get("filter", filter_name) == filter_name
    ]
    samples.sort(key=lambda s: s["id"])
    return TaskScore(task=label or name, metric=metric, score=100.0 * value, n=len(samples), samples=samples)


def cache_lmeval_templates() -> None:
    """lm-eval compiles a task's jinja templates (doc_to_text, doc_to_choice, ...) anew for every document: half
    of a tiny task's scoring time (`bench perf`). A template is a pure function of its string, so each compiled
    one is kept and rendered again."""
    import lm_eval.utils as lm_utils

    if getattr(lm_utils.apply_template, "cached", False):
        return
    compiled = functools.lru_cache(maxsize=1024)(lm_utils.env.from_string)

    def apply_template(template: str, doc: dict) -> str:
        return compiled(template).render(**doc)

    apply_template.cached = True
    lm_utils.apply_template = apply_template


def _response(sample: dict):
    resp = sample.get("filtered_resps")
    if isinstance(resp, list) and resp and isinstance(resp[0], str):
        return resp[0]
    return None  # loglikelihood tasks: the choice scores are not worth storing


def _quiet_hflm():
    """HFLM without its per-request tqdm bars: the harness shows one rich bar over the grid instead."""
    from lm_eval.models.huggingface import HFLM

    class QuietHFLM(HFLM):
        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return super().loglikelihood(requests, disable_tqdm=True)

        def generate_until(self, requests, disable_tqdm: bool = False):
            return super().generate_until(requests, disable_tqdm=True)

    return QuietHFLM
