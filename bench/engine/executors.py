"""Where the grid's jobs run. The protocol hands an executor a module-level function and a list of picklable
jobs; the local executor runs them in order in this process, with a progress bar, or with `workers` > 1 in that
many processes of this machine (each distinct training, then the evaluations that land it); the Ray executor runs
each distinct training and each evaluation as a Ray task, on any machine of a Ray cluster.

Both take `needs(job) -> (key, fn, args)`, the training a job lands (trained once per key), and `gpus`, what
each task asks for. Locally the job trains what it needs itself, in order. On Ray a training is a task of its
own and the evaluations that land it wait for it; workers share the content-addressed store
($PEFT_TRANSFER_BENCH_CACHE on a shared file system), whose per-key locks keep concurrent builders apart.
"""

from __future__ import annotations

import concurrent.futures as futures
import importlib.util
import multiprocessing
import os
from collections.abc import Callable, Sequence

from bench.core.errors import BenchError
from bench.core.progress import progress_bar, quiet_libraries
from bench.models.memory import available_ram_bytes

EXECUTORS = ("local", "ray")
# What a worker must see as the driver does: where the store, mirrors and models are, offline, quiet.
FORWARDED_ENV = ("PEFT_TRANSFER_BENCH_", "BENCH_", "HF_", "TRANSFORMERS_", "TQDM_DISABLE")
RAY_MISSING = "--executor ray needs Ray: pip install 'peft-transfer-bench[scale]'"
RETRIES = 3  # a task whose worker died (killed, node lost) runs again; it resumes from what the store holds


def _worker_start(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    quiet_libraries()  # as the CLI's own process is


class LocalExecutor:
    """In this process, in order; or, with workers > 1, in that many processes of `threads` torch threads each.

    Tiny models do not use several cores well (two threads on 128-wide matrices are slower than one), so on a CPU
    the grid's cells in parallel, one thread each, finish sooner. Results do not depend on the worker count: each
    job seeds itself, and the store's per-key locks keep two workers from building one artifact."""

    name = "local"

    def __init__(self, workers: int = 1, threads: int = 1):
        self.workers, self.threads = workers, threads

    def map(self, fn: Callable, jobs: Sequence[tuple], description: str, label: Callable[[tuple], str] = str,
            needs: Callable | None = None, gpus: int = 0) -> list:
        if self.workers > 1 and len(jobs) > 1:
            return self._map_in_processes(fn, jobs, description, label, needs)
        results = []
        with progress_bar(description, len(jobs)) as advance:
            for job in jobs:
                results.append(fn(*job))
                advance(done=label(job))
        return results

    def _map_in_processes(self, fn, jobs, description, label, needs) -> list:
        # spawn, not fork: a forked copy of a process whose OpenMP threads already ran can hang in its first matmul.
        pool = futures.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_worker_start, initargs=(self.threads,))
        results: dict[int, object] = {}
        waiting: dict[futures.Future, list[int]] = {}  # a training -> the jobs that land its module
        running: dict[futures.Future, int] = {}  # an evaluation -> its job
        try:
            trainings: dict[str, futures.Future] = {}
            for i, job in enumerate(jobs):
                if needs is None:
                    running[pool.submit(fn, *job)] = i
                    continue
                key, train, args = needs(job)
                if key not in trainings:
                    trainings[key] = pool.submit(train, *args)
                    waiting[trainings[key]] = []
                waiting[trainings[key]].append(i)
            with progress_bar(description, len(jobs)) as advance:
                while waiting or running:
                    done, _ = futures.wait([*waiting, *running], return_when=futures.FIRST_COMPLETED)
                    for future in done:
                        future.result()  # an error stops the grid now, not after every other cell
                        if future in waiting:
                            for i in waiting.pop(future):
                                running[pool.submit(fn, *jobs[i])] = i
                        else:
                            i = running.pop(future)
                            results[i] = future.result()
                            advance(done=label(jobs[i]))
        except BaseException:
            _stop_now(pool)
            raise
        pool.shutdown()
        return [results[i] for i in range(len(jobs))]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def _stop_now(pool: futures.ProcessPoolExecutor, grace_s: float = 5.0) -> None:
    """Cancel the jobs not started and end the running ones: without this, an interrupted grid (Ctrl-C, SIGTERM, an
    error) waits at exit for its in-flight trainings to finish. A build killed halfway leaves only a temporary
    directory, which the store sweeps when it builds that key again; what is stored stays."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # (shutdown forgets them)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(grace_s)
        if process.is_alive():
            process.kill()
            process.join(grace_s)


def _remote_call(env: dict, fn: Callable, args: tuple, *after):
    """What a Ray task runs: `fn(*args)` in the driver's environment; `after` are finished prerequisites."""
    os.environ.update(env)
    return fn(*args)


class RayExecutor:
    """Each job, and each distinct training the jobs need, as a Ray task (`--executor ray`)."""

    name = "ray"

    def __init__(self, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise BenchError(RAY_MISSING) from None
        self.ray = ray
        self.started = not ray.is_initialized()  # a test (or a notebook) may have started Ray already
        if self.started:
            import logging

            # address None starts a Ray on this machine; "auto" or host:port joins a cluster (`ray start`).
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        self.cluster_gpus = int(ray.cluster_resources().get("GPU", 0))
        # A GPU task gets a fresh worker (max_calls=1): its GPU memory is released and its CUDA device set anew.
        self.remote = {0: ray.remote(_remote_call), 1: ray.remote(max_calls=1)(_remote_call)}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.started:
            self.ray.shutdown()

    def map(self, fn: Callable, jobs: Sequence[tuple], description: str, label: Callable[[tuple], str] = str,
            needs: Callable | None = None, gpus: int = 0) -> list:
        ray = self.ray
        gpus = gpus if self.cluster_gpus else 0  # a CPU-only cluster runs everything on CPU, as local would
        task = self.remote[min(gpus, 1)].options(num_gpus=gpus, max_retries=RETRIES, retry_exceptions=False)
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)} | {"BENCH_PROGRESS": "0"}
        trainings: dict[str, object] = {}
        refs = []
        for job in jobs:
            after = []
            if needs is not None:
                key, train, args = needs(job)
                if key not in trainings:
                    trainings[key] = task.remote(env, train, args)
                after = [trainings[key]]
            refs.append(task.remote(env, fn, job, *after))
        pending, labels = list(refs), {ref: label(job) for ref, job in zip(refs, jobs)}
        try:
            with progress_bar(description, len(jobs)) as advance:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    self._get(done[0])  # an error stops the grid now, not after every other cell
                    advance(done=labels[done[0]])
        except BaseException:  # (Ctrl-C too) a cluster outlives this driver: take its tasks back
            for ref in pending + list(trainings.values()):
                ray.cancel(ref, force=True)
            raise
        return [self._get(ref) for ref in refs]

    def _get(self, ref):
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, BenchError):  # bad input found on a worker: the same one line as locally
                raise error.cause from None
            raise


def check_executor(name: str, address: str | None = None) -> None:
    """Bad --executor / --ray-address, before anything starts."""
    if name not in EXECUTORS:
        raise BenchError(f"--executor must be {' or '.join(EXECUTORS)}, not {name!r}")
    if address is not None and name != "ray":
        raise BenchError("--ray-address is for --executor ray")
    if name == "ray" and importlib.util.find_spec("ray") is None:
        raise BenchError(RAY_MISSING)


# Starting a worker costs ~10 s (it imports torch, transformers and lm-eval) and a tiny training step ~0.1 s on one
# thread: a grid with fewer training steps than this runs sooner in this process.
MIN_STEPS_FOR_WORKERS = 1000


def auto_workers(pair_runs_on_cpu: bool, cores: int | None = None, training_steps: int | None = None,
                 worker_bytes: int | None = None, ram_bytes: int | None = None) -> tuple[int, int]:
    """(workers, torch threads each) for `--workers auto`: on a CPU, one process per core (at most 8: each holds its
    own copy of the libraries, ~0.6 GB), one thread each, when the grid trains at least MIN_STEPS_FOR_WORKERS steps
    and, for a real model (`worker_bytes` each), as many as the free RAM holds; else one process."""
    cores = cores or os.cpu_count() or 1
    if not pair_runs_on_cpu or (training_steps is not None and training_steps < MIN_STEPS_FOR_WORKERS):
        return 1, 0
    workers = max(1, min(cores, 8))
    if worker_bytes:
        workers = min(workers, (ram_bytes if ram_bytes is not None else available_ram_bytes()) // worker_bytes)
    if workers <= 1:
        return 1, 0
    return workers, max(1, cores // workers)


def parse_workers(value: str) -> int | None:
    """--workers: a positive count, or auto (None)."""
    if value == "auto":
        return None
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise BenchError(f"--workers must be a positive number or auto, not {value!r}")
    return workers


def make_executor(name: str, address: str | None = None, workers: int = 1, threads: int = 1):
    check_executor(name, address)
    return RayExecutor(address) if name == "ray" else LocalExecutor(workers, threads)
