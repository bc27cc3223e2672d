"""Data parallelism over processes: `bench run --nproc N` and `accelerate launch -m bench run ...`.

Every process runs the same command. A module is trained by all of them together: each trains on its
shard of every global batch, the gradients are summed over processes, and so each step equals the
one-process step on the whole batch (the recipe's batch size), up to float order. Everything else
(building pairs, storing modules, evaluating, writing results) is rank 0's alone; the other ranks wait.
The process group comes from accelerate: NCCL on GPUs, gloo on CPU.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist

from bench.core.errors import BenchError

# Ranks wait for rank 0 while it builds a pair or evaluates a cell (hours for a 7B GSM8K with HF generate):
# the default collective timeout (10-30 minutes) would kill a healthy run.
WAIT = timedelta(hours=24)
_alone = False  # rank 0 inside work of its own (an evaluation): no collective may start there


def launched_processes() -> int:
    """WORLD_SIZE as a launcher (accelerate launch, torchrun) set it; 1 when this process was started alone."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def available_devices() -> int:
    """What --nproc may use: the GPUs, or on CPU the cores this process may run on."""
    if torch.cuda.is_available():
        return torch.cuda.device_count()
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_nproc(nproc: int) -> None:
    """Bad --nproc values, before anything starts."""
    if nproc < 1:
        raise BenchError(f"--nproc must be at least 1, got {nproc}")
    launched = launched_processes()
    if launched > 1 and nproc not in (1, launched):
        raise BenchError(f"--nproc {nproc} under a launcher that started {launched} processes; drop --nproc")
    available = available_devices()
    if launched == 1 and nproc > available:
        what = "GPUs" if torch.cuda.is_available() else "CPU cores"
        raise BenchError(f"--nproc {nproc} is more than the {available} {what} here")


def launch(nproc: int, args: list[str]) -> int:
    """Run `python -m bench ARGS` in `nproc` processes through accelerate; returns the exit code.

    `--multi_gpu` is accelerate's torchrun launcher (its CPU path goes through MPI instead); each process then
    joins with NCCL or gloo as its device allows (start()).
    """
    with socket.socket() as probe:  # a free port, so two runs on one machine do not meet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(nproc),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(port), "-m", "bench", *args]
    return subprocess.run(command).returncode


def start() -> None:
    """Join the process group a launcher prepared (no-op when started alone or already joined)."""
    if launched_processes() <= 1 or (dist.is_available() and dist.is_initialized()):
        return
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available(), timeout=WAIT)  # sets the rank's GPU as the current device
    if rank() != 0:
        os.environ["BENCH_PROGRESS"] = "0"  # one set of progress bars: rank 0's


def world_size() -> int:
    """Processes in this run (1 when started alone)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def collective() -> bool:
    """Whether the processes act together here: a data-parallel run, outside rank 0's own work (alone())."""
    return world_size() > 1 and not _alone


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def _tensor(values) -> torch.Tensor:
    # NCCL moves only CUDA tensors; gloo only CPU ones.
    return torch.tensor(values, dtype=torch.float64,
                        device="cuda" if dist.get_backend() == "nccl" else "cpu")


def broadcast_flag(value: bool = False) -> bool:
    """Rank 0's `value` on every rank."""
    flag = _tensor([float(value)])
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def barrier() -> None:
    dist.barrier()


@contextmanager
def alone():
    """Rank 0 doing work the others do not share (they wait at a barrier): nothing inside is collective."""
    global _alone
    previous, _alone = _alone, True
    try:
        yield
    finally:
        _alone = previous


@contextmanager
def main_first():
    """Rank 0 runs the block first (it builds and stores what the block needs), then the others run it."""
    if not collective():
        yield
        return
    if is_main():
        with alone():
            yield
        barrier()
    else:
        barrier()
        yield


def shard_of(batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], float]:
    """This rank's rows of the global `batch`, and the weight of its loss.

    The model's loss is a mean over this shard's answer tokens; weighted by the shard's share of the global
    batch's answer tokens, the ranks' gradients add up to the gradient of the global batch's mean loss.
    """
    n, r = world_size(), rank()
    rows = batch["input_ids"].shape[0]
    if rows < n:
        raise BenchError(f"a batch of {rows} cannot be split over {n} processes; raise batch_size or lower --nproc")
    shard = {k: torch.tensor_split(v, n)[r] for k, v in batch.items()}
    counted = [int((b["labels"][:, 1:] != -100).sum()) for b in (batch, shard)]  # what the causal LM loss averages
    return shard, counted[1] / max(1, counted[0])


def sum_gradients(params: list[torch.nn.Parameter], loss: torch.Tensor) -> torch.Tensor:
    """Sum every rank's gradients (and weighted losses) in place; returns the global batch's loss.

    One all-reduce: every gradient (zeros where a parameter got none), a presence flag per parameter (a
    parameter with no gradient anywhere keeps None, as in one process: AdamW skips it) and the loss."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    present = torch.tensor([float(p.grad is not None) for p in params], device=loss.device)
    flat = torch.cat([g.detach().flatten().to(torch.float32) for g in grads] + [present, loss.detach().reshape(1)])
    dist.all_reduce(flat)
    offset = 0
    for param, grad, seen in zip(params, grads, flat[-len(params) - 1 : -1].tolist()):
        size = grad.numel()
        param.grad = flat[offset : offset + size].view_as(grad).to(grad.dtype) if seen else None
        offset += size
    return flat[-1]
