"""Subprocess entry: python evalplus_runner.py DATASET SAMPLES.jsonl (override path set by the caller).

evalplus runs each sample in a forked child under its reliability_guard (no os.fork/kill/remove,
no subprocess, no open, a memory rlimit, per-test time limits). It leaves the network open, so
before evaluating we take it away from this process and everything it forks: a fresh, empty
network namespace where the kernel allows one (Linux, with the privilege for it), and in any case
socket connects and sends that raise. Like evalplus' guard this is containment, not a sandbox.
"""

import ctypes
import os
import socket
import sys

CLONE_NEWNET = 0x40000000


def refuse_network(*args, **kwargs):
    raise PermissionError("network access is disabled while executing generated code")


def block_network() -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)  # -1 (EPERM) without the privilege: fine
        except (OSError, AttributeError):
            pass
    for name in ("connect", "connect_ex", "sendto", "sendmsg"):
        setattr(socket.socket, name, refuse_network)
    socket.create_connection = refuse_network


if __name__ == "__main__":
    dataset, samples = sys.argv[1], sys.argv[2]
    from evalplus.evaluate import evaluate

    block_network()
    evaluate(dataset, samples=samples, i_just_wanna_run=True, parallel=2)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # evalplus' 20 s watchdog thread is non-daemon: do not wait for it
