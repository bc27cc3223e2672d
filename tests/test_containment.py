"""Model-written code runs only inside evalplus' guarded subprocesses: planted hostile completions are
contained, scored as failures, and leave the host's files, processes and network alone."""

import socket
import uuid

import psutil
import pytest

from tasks.tiny import TinyCode, score_solutions

# Each completion is the body of the problem's function (`def add_3(x):` style, argument x).
PLANTED = {
    "infinite loop": "    while True:\n        pass\n",
    "infinite loop at import": "    return None\nwhile True:\n    pass\n",
    "fork loop": "    import os\n    for _ in range(3):\n        os.fork()\n    return None\n",
    "fork past the guard": ("    import posix\n    if posix.fork() == 0:\n"
                            "        posix.execv('/bin/sleep', ['/bin/sleep', '{marker}'])\n    return None\n"),
    "delete a host file": "    import os\n    os.remove({sentinel!r})\n    return None\n",
    "delete a host file via pathlib": "    import pathlib\n    pathlib.Path({sentinel!r}).unlink()\n    return None\n",
    "connect to a host port": ("    import socket\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                               "    return None\n"),
    "raw socket to a host port": ("    import socket\n    s = socket.socket()\n    s.settimeout(2)\n"
                                  "    s.connect(('127.0.0.1', {port}))\n    return None\n"),
    "http to a public address": ("    import urllib.request\n"
                                 "    urllib.request.urlopen('http://93.184.215.14/', timeout=2)\n    return None\n"),
    "huge allocation": "    block = bytearray(1 << 40)\n    return None\n",
    "huge list": "    block = [0] * (1 << 36)\n    return None\n",
}


@pytest.fixture
def listener():
    """A real host port the planted code aims at: if anything connects, containment failed."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def test_planted_hostile_completions_are_contained_and_fail(micro_pair, tmp_path, listener):
    held_out = TinyCode().problems(micro_pair.spec.world.world(), 0)
    # One problem per planted sample plus a control, reusing the micro world's few held-out entities.
    problems = [held_out[i % len(held_out)] | {"task_id": f"TinyCode/{i}"} for i in range(len(PLANTED) + 1)]
    sentinel = tmp_path / "host-file.txt"
    sentinel.write_text("precious")
    marker = f"{1000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"  # a unique `sleep` argument
    fields = {"sentinel": str(sentinel), "port": listener.getsockname()[1], "marker": marker}
    solutions, names = {}, {}
    for problem, (name, body) in zip(problems, PLANTED.items()):
        solutions[problem["task_id"]] = problem["prompt"] + body.format(**fields,
                                                                         canonical=problem["canonical_solution"])
        names[problem["task_id"]] = name
    control = problems[len(PLANTED)]  # the reference solution: the harness still passes correct code
    solutions[control["task_id"]] = control["prompt"] + control["canonical_solution"]

    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    score = score_solutions("tiny_code", problems, solutions)

    outcome = {names.get(s["id"], "control"): s["correct"] for s in score.samples}
    assert outcome == {**{name: 0.0 for name in PLANTED}, "control": 1.0}
    assert sentinel.read_text() == "precious"  # the host file is untouched
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing reached the host's port
    assert {p.pid for p in psutil.Process().children(recursive=True)} == children_before
    escaped = [p.pid for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]
    assert escaped == []  # the child forked past evalplus' guard was killed with its process group
