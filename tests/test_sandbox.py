"""Generated code runs isolated (tasks/evalplus_exec.py): planted samples that get past evalplus' guard
(posix, _socket and ctypes instead of the os, socket and open it disables) still cannot reach the network,
the user's files or the host's processes, and where no isolation is available scoring refuses to run."""

import shutil
import socket
import tempfile
import uuid
from pathlib import Path

import psutil
import pytest

from bench.core.errors import BenchError
from tasks import evalplus_exec
from tasks.evalplus_exec import evalplus_statuses

PROMPT = 'def add_3(x):\n    """x plus three"""\n'
PROBLEM = {"prompt": PROMPT, "entry_point": "add_3", "canonical_solution": "    return x + 3\n",
           "base_input": [[1]], "plus_input": [[2]], "atol": 0, "contract": ""}
CORRECT = "    return x + 3\n"

# Bodies of add_3, each ending in a failure of its own (`return None` is appended), so what shows
# containment is that the host is unchanged afterwards and the correct samples run alongside still pass.
HOSTILE = {
    "connect to a port the test listens on": """
    import _socket
    s = _socket.socket()
    s.settimeout(2)
    s.connect(('127.0.0.1', {port}))
    s.send(b'hello')
""",
    "overwrite a file outside": """
    import posix
    posix.write(posix.open({precious!r}, posix.O_WRONLY | posix.O_TRUNC), b'owned')
""",
    "create a file outside": """
    import posix
    posix.write(posix.open({dropped!r}, posix.O_WRONLY | posix.O_CREAT, 0o644), b'owned')
""",
    "delete a file outside": """
    import posix
    posix.unlink({victim!r})
""",
    "make the files writable again, then write": """
    import ctypes, posix
    libc = ctypes.CDLL(None)
    libc.syscall(442, -100, b'/', 0x8000, (ctypes.c_uint64 * 4)(0, 1, 0, 0), 32)  # mount_setattr: clear read-only
    libc.umount2(b'/tmp', 2)
    libc.mount(None, b'/', None, 32 | 4096, None)  # remount read-write
    posix.write(posix.open({precious!r}, posix.O_WRONLY | posix.O_TRUNC), b'owned')
""",
    "fork bomb": """
    import posix
    while True:
        try:
            posix.fork()
        except OSError:
            pass
""",
    "allocate 10 GB": """
    block = bytearray(10 * 1000 ** 3)
""",
    "sleep forever, deaf to evalplus' alarm": """
    import signal, time
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    time.sleep(10 ** 6)
""",
    "sleep forever in a detached child": """
    import posix
    if posix.fork() == 0:
        posix.setsid()
        posix.execv('/bin/sleep', ['/bin/sleep', '{marker}'])
""",
}


def run(bodies: list[str], **kwargs) -> list[bool]:
    """Score add_3 completions; True where both base and plus tests passed."""
    problems = [PROBLEM | {"task_id": f"Sandbox/{i}"} for i in range(len(bodies))]
    solutions = {p["task_id"]: PROMPT + body for p, body in zip(problems, bodies)}
    statuses = evalplus_statuses(problems, solutions, **kwargs)
    return [statuses[p["task_id"]] == {"base": "pass", "plus": "pass"} for p in problems]


@pytest.fixture
def listener():
    """A real host port the planted code aims at: if anything connects, containment failed."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


@pytest.fixture
def outside():
    """A directory in the user's home, outside any temporary directory (the sandbox gives /tmp a fresh tmpfs)."""
    folder = Path(tempfile.mkdtemp(prefix=".bench-sandbox-test-", dir=Path.home()))
    yield folder
    shutil.rmtree(folder)


def test_hostile_samples_are_contained_and_correct_ones_still_pass(listener, outside, monkeypatch):
    monkeypatch.delenv("BENCH_ALLOW_UNSAFE_CODE", raising=False)  # never run these unisolated: refuse instead
    precious, victim = outside / "precious.txt", outside / "victim.txt"
    precious.write_text("precious")
    victim.write_text("victim")
    marker = f"{1000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"  # a unique `sleep` argument
    fields = {"port": listener.getsockname()[1], "precious": str(precious), "victim": str(victim),
              "dropped": str(outside / "dropped.txt"), "marker": marker}
    hostile = [body.lstrip("\n").format(**fields) + "    return None\n" for body in HOSTILE.values()]
    bodies = [CORRECT, *hostile, CORRECT]
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}

    passed = run(bodies, timeout_s=120)

    assert passed == [True] + [False] * len(HOSTILE) + [True]
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing reached the host's port
    assert precious.read_text() == "precious" and victim.read_text() == "victim"
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt", "victim.txt"]
    assert {p.pid for p in psutil.Process().children(recursive=True)} == children_before
    assert [p.pid for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])] == []


def test_without_isolation_scoring_refuses_unless_allowed(monkeypatch):
    monkeypatch.setattr(evalplus_exec, "isolation_problem", lambda: "no user namespaces (simulated)")
    monkeypatch.delenv("BENCH_ALLOW_UNSAFE_CODE", raising=False)
    with pytest.raises(BenchError) as refused:
        run([CORRECT])
    message = str(refused.value)
    assert "\n" not in message and "no user namespaces" in message and "BENCH_ALLOW_UNSAFE_CODE=1" in message

    assert run([CORRECT, "    return None\n"], allow_unsafe=True) == [True, False]
    monkeypatch.setenv("BENCH_ALLOW_UNSAFE_CODE", "1")
    assert run([CORRECT]) == [True]


# --- the CLI: --allow-unsafe-code on every command that scores generated code ---------------------------------

CODE_COMMANDS = {
    "run": ["run", "--pair", "micro", "--methods", "finetune_old"],
    "sweep-update": ["sweep-update", "--pair", "micro", "--methods", "finetune_old", "--severity", "1"],
    "sweep": ["sweep", "--pair", "micro", "--method", "trans_peft", "--grid", "p_c=0.1", "--references", ""],
    "chain": ["chain", "--pair", "micro-chain", "--methods", "direct_transfer"],
}


@pytest.fixture
def no_isolation(monkeypatch):
    monkeypatch.setattr(evalplus_exec, "isolation_problem", lambda: "no user namespaces (simulated)")
    monkeypatch.delenv("BENCH_ALLOW_UNSAFE_CODE", raising=False)


@pytest.mark.parametrize("command", sorted(CODE_COMMANDS))
def test_without_isolation_code_tasks_are_refused_before_anything_runs(command, no_isolation, tmp_path,
                                                                       trained_count):
    from typer.testing import CliRunner

    from bench.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, [*CODE_COMMANDS[command], "--tasks", "tiny_code", "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to run generated code without isolation")
    assert "pass --allow-unsafe-code" in lines[0] and "no user namespaces (simulated)" in lines[0]
    assert trained_count() == 0 and not out.exists()


@pytest.mark.parametrize("command", sorted(CODE_COMMANDS))
def test_allow_unsafe_code_reaches_the_scorer_for_that_command_only(command, no_isolation, tmp_path, monkeypatch):
    import os

    from typer.testing import CliRunner

    import bench.cli as cli

    seen = []

    def record(*args, **kwargs):  # stands in for the command's work: what would the scorer see?
        seen.append(os.environ.get("BENCH_ALLOW_UNSAFE_CODE"))
        raise BenchError("stopped here")

    for name in ("run_grid", "run_sweep", "sweep_grid", "chain_transfer"):
        monkeypatch.setattr(cli, name, record)
    out = ["--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli.app, [*CODE_COMMANDS[command], "--tasks", "tiny_code", *out, "--allow-unsafe-code"])
    assert seen == ["1"] and result.stderr == "error: stopped here\n"
    assert "BENCH_ALLOW_UNSAFE_CODE" not in os.environ  # restored: the next command in this process is not allowed
    # Tasks that run no code need no isolation and no flag.
    result = CliRunner().invoke(cli.app, [*CODE_COMMANDS[command], "--tasks", "tiny_knowledge", *out])
    assert seen == ["1", None] and result.stderr == "error: stopped here\n"


def test_allow_unsafe_code_scores_a_real_run_unisolated(no_isolation, micro_pair, tmp_path):
    import json

    from typer.testing import CliRunner

    from bench.cli import app

    out = tmp_path / "code.json"
    args = ["run", "--pair", "micro", "--methods", "finetune_old", "--tasks", "tiny_code", "--set", "steps=1",
            "--set", "batch_size=4", "--limit", "2", "--out", str(out)]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "--allow-unsafe-code" in refused.stderr
    result = CliRunner().invoke(app, [*args, "--allow-unsafe-code"])
    assert result.exit_code == 0, result.output
    (cell,) = json.loads(out.read_text())["cells"]
    assert cell["task"] == "tiny_code" and len(cell["samples"]) == 2
