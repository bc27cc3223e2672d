"""Peak training memory, estimated before anything loads, and the micro-batch that fits a device.

The estimate (bytes) of one PEFT training, micro-batch b, sequence length s, L layers, hidden h, vocabulary V,
P base parameters stored in w bytes each (2 for bf16/fp16, 4 for fp32), T trainable parameters, activations
in a bytes (the compute dtype):

  weights      P * w
  adapter      16 * T                  fp32 parameter + gradient + AdamW's two moments
  activations  34 * b * s * h * L * a/2    Korthikanti et al. 2022: ~34 s b h bytes per layer in 16-bit, without
                                            the 5 a s^2 b attention-score term that SDPA's fused kernels never store
               with --gradient-checkpointing: b * s * h * a per layer (its input, kept) + one layer's 34 b s h a/2
                                            (recomputed during backward)
  logits       b * s * V * (a + 8)     the logits, their fp32 upcast for the loss, and its fp32 gradient

Not counted: the CUDA context and allocator slack (compare max_memory_reserved), Python and library memory on
a CPU. The formula is a planning figure; tests/test_scale.py's gpu test checks it against CUDA's measured peak.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ACTIVATION_BYTES_PER_LAYER = 34  # x b s h, for 16-bit activations
FIT_FRACTION = 0.9               # leave 10% of the device for what the formula does not count


@dataclass(frozen=True)
class Shape:
    """What the estimate needs of a model: from its config.json (or a loaded model's config)."""

    params: int
    hidden: int
    layers: int
    vocab: int
    context: int = 0  # max_position_embeddings (0: unknown)

    @classmethod
    def of_config(cls, config: dict, params: int) -> Shape:
        """From config.json's fields (a loaded model: model.config.to_dict())."""
        return cls(params=params, hidden=int(config["hidden_size"]), layers=int(config["num_hidden_layers"]),
                   vocab=int(config["vocab_size"]), context=int(config.get("max_position_embeddings") or 0))


def estimate_bytes(shape: Shape, micro_batch: int, seq_len: int, trainable: int, dtype_bytes: int,
                   checkpointing: bool = False) -> dict[str, int]:
    """The formula above, per term; "total" sums them."""
    b, s, h, n_layers, a = micro_batch, seq_len, shape.hidden, shape.layers, dtype_bytes
    one_layer = ACTIVATION_BYTES_PER_LAYER * b * s * h * a // 2
    activations = (b * s * h * a * n_layers + one_layer) if checkpointing else one_layer * n_layers
    terms = {"weights": shape.params * dtype_bytes, "adapter": 16 * trainable, "activations": activations,
             "logits": b * s * shape.vocab * (a + 8)}
    return terms | {"total": sum(terms.values())}


def largest_fitting(batch_size: int, fits) -> int:
    """The largest divisor of batch_size for which fits(micro_batch) holds; 1 if none does."""
    for micro in sorted((d for d in range(1, batch_size + 1) if batch_size % d == 0), reverse=True):
        if fits(micro):
            return micro
    return 1


def device_memory_bytes(device) -> int:
    """Memory a training may still use: CUDA's free memory on the device; on a CPU, MemAvailable (RAM)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return available_ram_bytes()


def available_ram_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


# A worker for a real (hub) model holds the libraries and, at its peak, about this many bytes per parameter:
# SmolLM2-135M peaked at 2.3 GB of RSS with one thread in fp32 and 4.7-5.3 GB with two in bf16 (training a LoRA,
# lm-eval's model loaded): the estimate keeps to the larger.
WORKER_BASE_BYTES = 2**30
WORKER_BYTES_PER_PARAM = 32


def worker_peak_bytes(params_b: float) -> int | None:
    """Peak memory of one `--workers` process for a model of `params_b` billion parameters (None: size unknown)."""
    return int(WORKER_BASE_BYTES + WORKER_BYTES_PER_PARAM * params_b * 1e9) if params_b > 0 else None


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 / 10 else f"{n_bytes / 2**20:.0f} MiB"


def auto_micro_batch(model, seq_len: int, batch_size: int, precision: str, checkpointing: bool, device) -> int:
    """`--micro-batch auto` for a loaded model: the largest divisor of the batch whose estimate, less the weights
    (already loaded, so no longer in the free memory), fits FIT_FRACTION of what the device has free."""
    from bench.models.precision import compute_dtype

    params = list(model.parameters())
    shape = Shape.of_config(model.config.to_dict(), sum(p.numel() for p in params))
    trainable = sum(p.numel() for p in params if p.requires_grad)
    free = device_memory_bytes(device) * FIT_FRACTION
    dtype_bytes = compute_dtype(precision).itemsize

    def fits(micro: int) -> bool:
        need = estimate_bytes(shape, micro, seq_len, trainable, dtype_bytes, checkpointing)
        return need["total"] - need["weights"] <= free

    return largest_fitting(batch_size, fits)
