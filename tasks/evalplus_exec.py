"""Execute generated code with evalplus, in a subprocess.

evalplus reads HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH at import time and leaves a
non-daemon watchdog thread running, so each scoring run is a fresh interpreter
(evalplus_runner.py). Its ground-truth cache is a pickle: we point XDG_CACHE_HOME at a
temporary directory so no pickle from outside this run is ever loaded.

Limits on generated code: evalplus' own (each sample in a forked child under reliability_guard,
per-test time limits, an address-space rlimit of EVALPLUS_MAX_MEMORY_BYTES, default 4 GiB), the
runner's network block (evalplus_runner.py), and here a wall-clock limit for the whole scoring run
after which its process group, with anything a sample forked, is killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.core.errors import BenchError

OVERRIDE_ENV = {"humaneval": "HUMANEVAL_OVERRIDE_PATH", "mbpp": "MBPP_OVERRIDE_PATH"}
RUNNER = Path(__file__).with_name("evalplus_runner.py")


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone


def evalplus_statuses(problems: list[dict], solutions: dict[str, str], dataset: str = "humaneval",
                      timeout_s: float = 600) -> dict[str, dict]:
    """Run evalplus on full solutions (prompt + completion) -> {task_id: {"base": status, "plus": status}}."""
    with tempfile.TemporaryDirectory(prefix="bench-evalplus-") as tmp:
        tmp = Path(tmp)
        problems_path, samples_path = tmp / "problems.jsonl", tmp / "samples.jsonl"
        problems_path.write_text("".join(json.dumps(p) + "\n" for p in problems))
        samples = [{"task_id": p["task_id"], "solution": solutions[p["task_id"]]} for p in problems]
        samples_path.write_text("".join(json.dumps(s) + "\n" for s in samples))
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"), TOKENIZERS_PARALLELISM="false")
        env[OVERRIDE_ENV[dataset]] = str(problems_path)
        # Its own session, so that the whole process group (with any child a sample managed to fork
        # past evalplus' guard) is killed when scoring ends or runs out of time; output goes to a file,
        # not a pipe, which such a child could hold open.
        log_path = tmp / "evalplus.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen([sys.executable, str(RUNNER), dataset, str(samples_path)], env=env, cwd=tmp,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise BenchError(f"evalplus did not finish within {timeout_s:g} s (killed with all it started)") from None
        finally:
            kill_group(proc.pid)
            proc.wait()
        results_path = tmp / "samples_eval_results.json"
        if proc.returncode != 0 or not results_path.exists():
            last = (log_path.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise BenchError(f"evalplus failed (exit {proc.returncode}): {last}")
        results = json.loads(results_path.read_text())["eval"]
    return {tid: {"base": r[0]["base_status"], "plus": r[0]["plus_status"]} for tid, r in results.items()}
