"""Execute generated code with evalplus, in an isolated subprocess.

evalplus reads HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH at import time and leaves a non-daemon
watchdog thread running, so each scoring run is a fresh interpreter (evalplus_runner.py), whose
ground-truth cache (a pickle) lives in its private work dir: no pickle from outside the run is loaded.

Isolation (Linux, unprivileged: user namespaces and mount_setattr, kernel 5.12+; nothing to install).
The runner moves itself into new user, mount, PID, network and IPC namespaces, then:
- network: an empty network namespace (a loopback that is down): no TCP/UDP anywhere, localhost included,
  and no abstract Unix sockets;
- files: every mount read-only, nosuid and nodev (only /dev/null, /dev/zero and /dev/urandom usable);
  fresh empty tmpfs over /tmp, /var/tmp, /run and /dev/shm (the work dir lives in /tmp); a /proc of
  its own PID namespace;
- each sample (evalplus forks one process per sample and test set) runs in a nested user, mount and
  PID namespace as its pid 1, which locks the mounts (root there cannot remount them writable or
  unmount them), hides the runner's work dir and gives it a /proc showing only its own processes;
  when that pid 1 ends or is killed, by evalplus' per-test time limits or with the whole run, the
  kernel kills every process the sample started, however detached;
- limits per sample: RLIMIT_NPROC 16 (its processes and threads; the runner gives itself an unprivileged
  real uid when started as root, which the kernel would exempt), RLIMIT_CPU 120 s per process, and
  evalplus' own: address space EVALPLUS_MAX_MEMORY_BYTES (default 4 GiB) per process, wall-clock
  limits per test; and here a wall-clock limit for the whole run, after which the runner's process
  group (and with it both PID namespaces) is killed.
What it is not: a VM or seccomp sandbox. Samples can read whatever the user can read (but not write
it, nor send it over a network); they can connect to Unix sockets outside /run and /tmp that the user
may write to; memory is limited per process, not in total (up to 16 processes x 4
GiB per sample, two samples at a time) and CPU time is not shared fairly (a fork bomb slows samples
running beside it until its time limit); samples of one run share /tmp and evalplus' worker pipes,
so they can interfere with each other's scores; and user namespaces expose more of the kernel.

isolation_problem() probes (once per process) by running the runner's own setup around a no-op.
Where it fails, evalplus_statuses refuses to run generated code (BenchError) unless allowed
explicitly (allow_unsafe=True, or BENCH_ALLOW_UNSAFE_CODE=1, which the CLI's --allow-unsafe-code sets; the CLI
asks refuse_unless_isolated before training when a selected task runs code); it then runs under evalplus'
guard alone (reliability_guard: not a sandbox), a best-effort network block and the same wall-clock kill.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.core.errors import BenchError

RUNNER = Path(__file__).with_name("evalplus_runner.py")
UNSAFE_ENV = "BENCH_ALLOW_UNSAFE_CODE"


@functools.cache
def isolation_problem() -> str | None:
    """Why generated code cannot be isolated here (None: it can). The runner does its whole setup once."""
    if not sys.platform.startswith("linux"):
        return "isolation needs Linux namespaces"
    try:
        probe = subprocess.run([sys.executable, str(RUNNER), "--probe"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if probe.returncode == 0:
        return None
    return (probe.stderr.strip().splitlines() or [f"probe exited {probe.returncode}"])[-1]


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone


def refuse_unless_isolated(allow_unsafe: bool = False) -> str | None:
    """Why generated code will run unisolated (None: it will be isolated); a BenchError where it cannot be isolated
    and the user has not allowed that (`bench ... --allow-unsafe-code` sets BENCH_ALLOW_UNSAFE_CODE=1)."""
    unavailable = isolation_problem()
    if unavailable and not (allow_unsafe or os.environ.get(UNSAFE_ENV) == "1"):
        raise BenchError(f"refusing to run generated code without isolation ({unavailable}); pass "
                         f"--allow-unsafe-code (or set {UNSAFE_ENV}=1) to run it unisolated anyway")
    return unavailable


def evalplus_statuses(problems: list[dict], solutions: dict[str, str], dataset: str = "humaneval",
                      timeout_s: float = 600, allow_unsafe: bool = False) -> dict[str, dict]:
    """Run evalplus on full solutions (prompt + completion) -> {task_id: {"base": status, "plus": status}}.

    Refuses (BenchError) where the code cannot be isolated, unless allow_unsafe or BENCH_ALLOW_UNSAFE_CODE=1.
    """
    unavailable = refuse_unless_isolated(allow_unsafe)
    with tempfile.TemporaryDirectory(prefix="bench-evalplus-") as tmp:
        tmp = Path(tmp)
        (tmp / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
        samples = [{"task_id": p["task_id"], "solution": solutions[p["task_id"]]} for p in problems]
        (tmp / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
        env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
        # Its own session, so that the whole process group (the runner and, unisolated, any child a sample
        # managed to fork past evalplus' guard) is killed when scoring ends or runs out of time; output goes
        # to a file, not a pipe, which such a child could hold open; no stdin, so no terminal to write into.
        log_path = tmp / "evalplus.log"
        command = [sys.executable, str(RUNNER), *([] if unavailable else ["--sandbox"]), dataset, str(tmp)]
        with open(log_path, "w") as log:
            proc = subprocess.Popen(command, env=env, cwd=tmp, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise BenchError(f"evalplus did not finish within {timeout_s:g} s (killed with all it started)") from None
        finally:
            kill_group(proc.pid)
            proc.wait()
        results_path = tmp / "results.json"
        results = results_path.read_text() if results_path.exists() else ""
        if proc.returncode != 0 or not results:
            last = (log_path.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise BenchError(f"evalplus failed (exit {proc.returncode}): {last}")
        results = json.loads(results)["eval"]
    return {tid: {"base": r[0]["base_status"], "plus": r[0]["plus_status"]} for tid, r in results.items()}
