"""Loading bases and reading checkpoints: safetensors only, remote code only where a pair declares it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch

from bench.core.errors import BenchError
from bench.core.store import one_line


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(path: Path, dtype=torch.float32, trust_remote_code: bool = False, what: str = "model"):
    """(model on the device, in eval mode; tokenizer with a pad token) from a local checkpoint directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        load = functools.partial(AutoModelForCausalLM.from_pretrained, path, dtype=dtype,
                                 trust_remote_code=trust_remote_code, use_safetensors=True)  # never a pickle
        try:
            # SDPA: fused attention that never stores the s x s score matrix (the memory estimate assumes it);
            # remote-code models (InternLM2) keep the attention their own code implements.
            model = load() if trust_remote_code else load(attn_implementation="sdpa")
        except ValueError as error:
            if "scaled_dot_product_attention" not in str(error):
                raise
            model = load()  # an architecture without an SDPA path (Gemma2's logit soft-capping): its default
    except (OSError, ValueError) as error:  # missing offline, no safetensors, undeclared remote code
        raise BenchError(f"cannot load {what} from {path}: {one_line(error)}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device()).eval(), tokenizer


def safetensors_headers(directory: Path, missing: str | None = None):
    """(file, tensor name, shape) for every tensor of a checkpoint directory, from the headers only; `missing`
    is the error when there are no safetensors files."""
    from safetensors import safe_open

    files = sorted(Path(directory).glob("*.safetensors"))
    if not files:
        raise BenchError(missing or f"no safetensors checkpoint in {directory}")
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                yield file, name, tuple(handle.get_slice(name).get_shape())


def tensor_shapes(directory: Path) -> dict[str, tuple[int, ...]]:
    missing = f"{directory} has no *.safetensors weights (only safetensors are loaded)"
    return {name: shape for _, name, shape in safetensors_headers(directory, missing)}


def tensor_files(directory: Path, missing: str | None = None) -> dict[str, Path]:
    """{tensor name: the safetensors file that holds it}, so single tensors can be read without loading a model."""
    return {name: file for file, name, _ in safetensors_headers(directory, missing)}


def tensor_reader(directory: Path, missing: str | None = None) -> Callable[[str], torch.Tensor]:
    """read(name) -> that tensor of a checkpoint directory, in float32, read alone from its safetensors file."""
    from safetensors import safe_open

    files = tensor_files(directory, missing)

    def read(name: str) -> torch.Tensor:
        if name not in files:
            raise BenchError(f"tensor {name} is not in the checkpoint {directory}")
        with safe_open(str(files[name]), framework="pt") as handle:
            return handle.get_tensor(name).float()

    return read
