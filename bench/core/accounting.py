"""Wall time and peak memory of a phase (training a module, evaluating a cell).

On CUDA: torch's max_memory_allocated (and max_memory_reserved), reset per phase. On CPU: the
process's peak RSS (VmHWM), which Linux lets us reset per phase through /proc/self/clear_refs.
Device-hours (bench/costs.py) are wall x devices_used: GPUs on CUDA, torch's threads on CPU.

Throughput of a training: tokens/s (non-padding tokens / training wall) and MFU, model FLOPs utilisation:
6 x parameters x tokens / seconds / the device's peak FLOP/s in the compute dtype (dense, from PEAK_TFLOPS).
6 x params x tokens is the usual full fine-tuning count (forward 2, backward 4); a PEFT step skips the frozen
weights' gradients (about 4 x), so PEFT MFU reads high by up to 1.5x: comparable across methods, not to
pretraining MFU. Unknown devices and CPUs get None (shown as n/a).
"""

from __future__ import annotations

import os
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "transformers", "peft", "lm_eval", "evalplus", "datasets")


@dataclass
class Cost:
    wall_s: float = 0.0
    peak_mem_mb: float = 0.0
    memory_kind: str = ""  # what peak_mem_mb measured
    device: str = ""
    device_count: int = 1  # GPUs (CUDA) or CPU threads the phase ran on: device-hours = wall x this
    peak_reserved_mb: float = 0.0  # CUDA caching-allocator peak (what nvidia-smi sees); 0 on CPU


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def devices_used() -> int:
    # The protocol places a model on one device per process (torch.device("cuda") or the CPU's torch threads);
    # a --nproc run holds every process's device for the whole phase (the others wait while rank 0 evaluates).
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    processes = torch.distributed.get_world_size() if distributed else 1
    return (1 if torch.cuda.is_available() else torch.get_num_threads()) * processes


def _reset_cpu_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _cpu_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def measure():
    """with measure() as cost: ...  -> cost.wall_s, cost.peak_mem_mb filled in on exit."""
    cost = Cost(device=device_name(), device_count=devices_used())
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cost.memory_kind = "cuda max_memory_allocated"
    else:
        cost.memory_kind = "peak RSS" if _reset_cpu_peak() else "peak RSS since process start"
    start = time.perf_counter()
    try:
        yield cost
    finally:
        if cuda:
            torch.cuda.synchronize()
            cost.peak_mem_mb = torch.cuda.max_memory_allocated() / 2**20
            cost.peak_reserved_mb = torch.cuda.max_memory_reserved() / 2**20
        else:
            cost.peak_mem_mb = _cpu_peak_mb()
        cost.wall_s = time.perf_counter() - start


# Dense peak TFLOP/s by dtype (NVIDIA datasheets; fp32 without TF32, which torch leaves off for matmuls).
PEAK_TFLOPS = {
    "H100 PCIe": {"bf16": 756.0, "fp16": 756.0, "fp32": 51.0},
    "H100": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0},   # SXM
    "H200": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0},
    "A100": {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5},
    "A800": {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5},   # an A100 with less NVLink bandwidth
    "L40S": {"bf16": 362.0, "fp16": 362.0, "fp32": 91.6},
}


def peak_flops(device: str, precision: str) -> float | None:
    """Peak FLOP/s of a device (torch.cuda.get_device_name()) in a precision; None if not in the table."""
    for name, by_dtype in PEAK_TFLOPS.items():  # "H100 PCIe" before "H100"
        if all(part in device for part in name.split()):
            return by_dtype.get(precision, 0.0) * 1e12 or None
    return None


def mfu(params: int, tokens: int, seconds: float, device: str, precision: str) -> float | None:
    peak = peak_flops(device, precision)
    if not peak or seconds <= 0 or not params:
        return None
    return 6 * params * tokens / seconds / peak


def module_size_mb(module_dir: Path) -> float:
    """Everything the module directory holds on disk (adapter weights, config, metadata)."""
    return sum(f.stat().st_size for f in Path(module_dir).rglob("*") if f.is_file()) / 2**20


# ISA extensions that change which kernels torch/oneDNN/MKL pick, and so the rounding of every matmul.
ISA_FLAGS = ("avx", "avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile",
             "amx_bf16", "amx_int8")
# Variables that select those kernels: the same machine under other values is numerically another machine.
ISA_ENV = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
           "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_info() -> dict:
    """The CPU model and ISA flags (Linux /proc/cpuinfo), torch's chosen CPU kernel level, and the variables
    that override it: what explains a difference between two machines' results."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
            if flags and model:
                break
    except OSError:
        pass
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    return {"model": model, "isa": [f for f in ISA_FLAGS if f in flags], "torch_cpu_capability": capability,
            "env": {k: os.environ[k] for k in ISA_ENV if k in os.environ}}


def environment() -> dict:
    """Where a results file was measured: kept in the costs file, shown under every leaderboard."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"device": device_name(), "python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu_info(), "packages": versions}
