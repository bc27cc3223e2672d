"""`--eval-backend vllm`: score through lm-eval's `vllm` model (lm_eval.models.vllm_causallms.VLLM).

serve() returns that lm-eval LM; the tasks take it where they take an in-memory model: lm-eval tasks score it
directly (tasks/lmeval.py), code tasks generate with its vLLM engine (tasks/generation.py), evalplus executes.
A LoRA is served beside its base (enable_lora, max_lora_rank = the module's rank); the protocol hands anything
else over as merged weights. One engine is kept per base and rank, so the cells that land LoRAs on one base
share it and only switch the LoRA request.

vLLM is imported only here and only when used: it pins its own torch build, so it is an optional extra
(`pip install 'peft-transfer-bench[vllm]'`) and the harness imports without it.
"""

from __future__ import annotations

import gc
import importlib.util
import os
from contextlib import contextmanager
from pathlib import Path

import torch

GPU_SHARE = 0.8  # of the GPU's memory for vLLM: this process (a --nproc rank 0, a training just done) keeps some
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                      "MASTER_ADDR", "MASTER_PORT")
_engine: dict = {"key": None, "lm": None}
_lora_ids: dict[str, int] = {}


def unavailable() -> str | None:
    """Why --eval-backend vllm cannot run here, or None."""
    if not torch.cuda.is_available():
        return "--eval-backend vllm needs a CUDA GPU (none here); use --eval-backend hf"
    if importlib.util.find_spec("vllm") is None:
        return ("--eval-backend vllm needs vLLM: pip install 'peft-transfer-bench[vllm]' "
                "(in its own environment: it installs its own torch)")
    return None


def serve(model_dir: Path, dtype: torch.dtype, trust_remote_code: bool = False, lora: Path | None = None,
          rank: int | None = None):
    """lm-eval's VLLM LM on `model_dir` (a safetensors checkpoint with its tokenizer), with `lora` as its LoRA."""
    from vllm.lora.request import LoRARequest

    key = (str(model_dir), str(dtype), rank if lora else None)
    if _engine["key"] != key:
        release()
        # The engine runs in a process of its own (vLLM's default): in this one it would join, or start, the torch
        # process group a --nproc run already has, and a second engine could not start after the first. So a
        # served cell's peak memory is this process's, without the engine's.
        from lm_eval.models.vllm_causallms import VLLM

        with _without_launcher_environment():
            _engine["lm"] = VLLM(pretrained=str(model_dir), dtype=str(dtype).removeprefix("torch."),
                                 trust_remote_code=trust_remote_code, lora_local_path=str(lora) if lora else None,
                                 max_lora_rank=rank or 16, gpu_memory_utilization=GPU_SHARE, batch_size="auto")
        _engine["key"] = key
    lm = _engine["lm"]
    if lora is not None:  # vLLM caches LoRAs by id: one id per module directory
        lora_id = _lora_ids.setdefault(str(lora), len(_lora_ids) + 1)
        lm.lora_request = LoRARequest(Path(lora).name, lora_id, str(lora))
    return lm


@contextmanager
def _without_launcher_environment():
    """The engine process must not take itself for a rank of this --nproc run (torchrun's variables)."""
    saved = {k: os.environ.pop(k) for k in list(os.environ)
             if k in LAUNCHER_VARIABLES or k.startswith("TORCHELASTIC_")}
    try:
        yield
    finally:
        os.environ.update(saved)


def release() -> None:
    """Shut the kept engine down and give its GPU memory back (before another engine or a training)."""
    lm, _engine["lm"], _engine["key"] = _engine["lm"], None, None
    if lm is None:
        return
    engine = getattr(lm.model, "llm_engine", None)
    shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
    if shutdown is not None:
        shutdown()
    del lm, engine
    gc.collect()
    torch.cuda.empty_cache()


def is_served(model) -> bool:
    """An lm-eval LM served elsewhere (vLLM), rather than an in-memory torch model."""
    return not isinstance(model, torch.nn.Module)


def greedy(lm, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy completions from the served engine, with the cell's LoRA (as tasks/generation.py does with HF)."""
    from vllm import SamplingParams

    outputs = lm.model.generate(prompts, SamplingParams(temperature=0.0, max_tokens=max_new_tokens),
                                lora_request=lm.lora_request, use_tqdm=False)
    return [output.outputs[0].text for output in outputs]
