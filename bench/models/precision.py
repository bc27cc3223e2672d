"""The precision policy: which dtype a run computes in, and the autocast that applies it.

  auto  CUDA: bf16 where the GPU has it natively (compute capability 8.0+), else fp16 with a GradScaler.
        CPU:  bf16 only where a ~50 ms probe (cached per process) shows a bf16 matmul clearly faster than
              an fp32 one (CPUs with AMX / AVX512-BF16); otherwise fp32. CPUs without native bf16 emulate it,
              and an AVX2-only EPYC ran a bf16 matmul over 100x slower than fp32.
  fp32 | bf16 | fp16  as asked; a device that cannot run it is a one-line error (fp16 needs CUDA; bf16 on a
        GPU without native bf16 is refused rather than silently emulated).

Only the forward pass runs under autocast. Adapter parameters and the optimizer state stay fp32 (the
protocol casts trainable parameters up after attaching the module); the frozen base loads in the
compute dtype, which halves its memory on a GPU.
"""

from __future__ import annotations

import functools
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

from bench.core.errors import BenchError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# bf16 must beat fp32 by this factor in the bare-matmul probe: training under autocast also pays casts of
# weights and activations that the probe does not, so a near tie would be a loss. 1.5 and not less: on an
# AVX512-BF16 EPYC the 128 probe's ratio ranged 0.87-1.31 across processes, so a margin of 1.25 flipped the tiny
# pairs' precision from run to run (and the CI gate with it); at 256 and 512 it was 1.9-2.9.
CPU_BF16_MARGIN = 1.5
PROBE_SIZE = 128          # a 128 x 128 matmul: microseconds in fp32, a few ms where bf16 is emulated
# The probe runs at the model's width (capped): on an AVX512-BF16 EPYC bf16 tied fp32 at 128 (1.0-1.3x) but was 2x
# faster at 256 and 512, and a SmolLM2-135M (width 576) training step 1.5x faster; the tiny pairs (width 128) keep
# the 128 probe. An AVX2-only CPU emulates bf16 at every size (over 100x slower), so it stays fp32 there.
MAX_PROBE_SIZE = 512
PROBE_BUDGET_S = 0.05


@dataclass(frozen=True)
class Probe:
    fp32_s: float   # best time of one probe matmul
    bf16_s: float
    choice: str     # "bf16" | "fp32"


def choose_cpu_precision(fp32_s: float, bf16_s: float) -> str:
    """The CPU decision: bf16 only when it is clearly faster; a tie or noise keeps fp32."""
    return "bf16" if bf16_s * CPU_BF16_MARGIN < fp32_s else "fp32"


def probe_size(width: int | None) -> int:
    """The probe matmul's size for a model of hidden size `width`: the largest power of two <= width, in 128-512."""
    if not width:
        return PROBE_SIZE
    return max(PROBE_SIZE, min(MAX_PROBE_SIZE, 1 << (int(width).bit_length() - 1)))


def time_matmul(dtype: torch.dtype, n: int = PROBE_SIZE) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    start = time.perf_counter()
    a @ b
    return time.perf_counter() - start


@contextmanager
def one_thread():
    """Probe per-core kernel speed: on a shared, oversubscribed machine a multi-threaded matmul's time is mostly
    waiting for its threads to be scheduled (measured here: 44 ms stalls on a 0.04 ms matmul)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def probe_cpu(timer=time_matmul, budget_s: float = PROBE_BUDGET_S, size: int = PROBE_SIZE) -> Probe:
    """Best-of-n timings of the same matmul in fp32 and bf16, alternated so that load hits both alike; at least
    3 rounds, then more while within the budget (at most 50)."""
    best = {torch.float32: float("inf"), torch.bfloat16: float("inf")}
    start = time.perf_counter()
    with one_thread():
        for round_ in range(50):
            if round_ >= 3 and time.perf_counter() - start > budget_s:
                break
            for dtype in best:
                best[dtype] = min(best[dtype], timer(dtype, size))
    fp32_s, bf16_s = best[torch.float32], best[torch.bfloat16]
    return Probe(fp32_s, bf16_s, choose_cpu_precision(fp32_s, bf16_s))


def cpu_probe(size: int = PROBE_SIZE) -> Probe:
    """Once per process and size: `cpu_probe()` and `cpu_probe(128)` are the same probe."""
    return _probe_once(int(size))


@functools.cache
def _probe_once(size: int) -> Probe:
    return probe_cpu(size=size)


def resolve_precision(requested: str, device: torch.device | None = None, width: int | None = None,
                      cpu_auto: str | None = None) -> str:
    """`auto` made concrete for `device` (default: the one the protocol trains on) and a model of hidden size
    `width` (the CPU probe's matmul size); impossible requests refused. `cpu_auto`: what auto means on a CPU for a
    pair that pins it (the tiny pairs: fp32, bench.pairs.base.Pair.cpu_precision); None runs the probe."""
    if requested not in PRECISIONS:
        raise BenchError(f"--precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        if requested == "auto":
            return "bf16" if native_bf16 else "fp16"
        if requested == "bf16" and not native_bf16:
            raise BenchError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no native bf16; "
                             "use --precision fp16 (or auto)")
        return requested
    if requested == "fp16":
        raise BenchError("--precision fp16 needs a CUDA GPU (fp16 training on a CPU is not supported); "
                         "use bf16, fp32 or auto")
    if requested != "auto":
        return requested
    return cpu_auto or cpu_probe(probe_size(width)).choice


def compute_dtype(precision: str) -> torch.dtype:
    return DTYPES[precision]


def autocast(precision: str, device: torch.device):
    """The forward pass's autocast; nothing at all for fp32 (so fp32 runs are exactly the code they always were)."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


def keep_trainable_fp32(model: torch.nn.Module) -> torch.nn.Module:
    """Adapter weights (and so AdamW's state) in fp32 even on a bf16/fp16 base: updates of lr x grad are far below
    bf16's resolution of a weight."""
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return model
