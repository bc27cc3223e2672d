"""Subprocess entry: python evalplus_runner.py [--sandbox] DATASET JOB_DIR, or --probe.

JOB_DIR holds problems.jsonl and samples.jsonl; results.json is written there. With --sandbox the
runner first isolates itself (Linux namespaces, unprivileged) and wraps each of evalplus' per-sample
processes in a namespace of its own; tasks/evalplus_exec.py says what that does and does not contain.
--probe does the same setup around a no-op and exits 0 if it all worked.
"""

import ctypes
import os
import resource
import signal
import socket
import sys
import traceback
from pathlib import Path

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (
    0x00020000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 1, 2, 4
SYS_MOUNT_SETATTR, AT_FDCWD, AT_RECURSIVE = 442, -100, 0x8000  # mount_setattr (Linux 5.12+): same number on all arches
PR_SET_PDEATHSIG = 1
NOBODY = 65534
SAMPLE_NPROC = 16  # processes and threads per sample, all it forked included
SAMPLE_CPU_S = 120  # per process; evalplus' wall-clock limit per task is at most 60 s
WORK = "/tmp/bench"  # the runner's private work dir, inside the sandbox
RESULTS_FD = None  # the one descriptor that leads out of the sandbox; samples must not inherit it

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.syscall.restype = ctypes.c_long


def check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source, target: str, fstype=None, flags: int = 0, data=None) -> None:
    source, fstype, data = (s.encode() if s else None for s in (source, fstype, data))
    check(libc.mount(source, target.encode(), fstype, flags, data), f"mount {target}")


def set_mount_attrs(path: str, set_: int = 0, clear: int = 0, recursive: bool = False) -> None:
    attr = (ctypes.c_uint64 * 4)(set_, clear, 0, 0)  # struct mount_attr
    check(libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), AT_RECURSIVE if recursive else 0, attr, 32),
          f"mount_setattr {path}")


def unshare(flags: int) -> None:
    check(libc.unshare(flags), "unshare")


def die_with_parent() -> None:
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")


def python_dirs() -> list[str]:
    """The directories this interpreter imports from (prefixes, sys.path), outermost only."""
    found = sorted({os.path.realpath(p) for p in (sys.prefix, sys.exec_prefix, sys.base_prefix, *sys.path)
                    if p and os.path.isdir(p)})
    return [p for i, p in enumerate(found) if not any(p.startswith(q + "/") for q in found[:i])]


def isolate() -> str:
    """Move this process into fresh user, mount, PID, network and IPC namespaces; return a private work dir.

    Only our first child is in the new PID namespace, so this process forks: the parent just waits and
    passes on the exit status, the child returns and does the work as the namespace's pid 1.
    """
    euid, egid = os.geteuid(), os.getegid()
    if euid == 0:
        # The kernel never applies RLIMIT_NPROC to a real uid of host root; an unprivileged real uid
        # (the effective uid, which decides file access, stays root) makes the per-sample limit hold.
        os.setresuid(NOBODY, 0, 0)
    unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC)
    Path("/proc/self/uid_map").write_text(f"0 {euid} 1")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/gid_map").write_text(f"0 {egid} 1")
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) % 256)
    die_with_parent()
    mount(None, "/", flags=MS_REC | MS_PRIVATE)  # nothing mounted below propagates back to the host
    # Every file the user has becomes read-only, device nodes unusable, set-uid bits inert.
    set_mount_attrs("/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, recursive=True)
    # The host's /proc would show host processes and, through /proc/PID/root, the host's writable tree.
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # Fresh, empty, writable: the work dir, and no Unix sockets of host daemons (/run, /tmp) to connect to.
    # The Python that runs evalplus may live below one of them (a venv in /tmp): it is bound back, read-only.
    for path in ("/tmp", "/var/tmp", "/run", "/dev/shm"):
        if os.path.isdir(path) and not os.path.islink(path):
            kept = {p: os.open(p, os.O_PATH) for p in python_dirs() if p.startswith(path + "/")}
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=1g,mode=1777")
            for inside, fd in kept.items():
                os.makedirs(inside, exist_ok=True)
                mount(f"/proc/self/fd/{fd}", inside, flags=MS_BIND | MS_REC)
                set_mount_attrs(inside, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, recursive=True)
                os.close(fd)
    for path in ("/dev/null", "/dev/zero", "/dev/urandom"):  # the only devices left usable
        mount(path, path, flags=MS_BIND)
        set_mount_attrs(path, clear=MOUNT_ATTR_NODEV)
    os.environ["TMPDIR"] = "/tmp"
    os.mkdir(WORK)
    os.chdir(WORK)
    return WORK


def contained(target):
    """Run evalplus' per-sample function in a nested user, mount and PID namespace, as that namespace's pid 1.

    The nested user namespace (with no uid mapped in it, so no uid to switch to) locks the mounts above (the
    sample, root in it, cannot make them writable or unmount them) and gives RLIMIT_NPROC a count of this
    sample's processes alone. When its pid 1 exits, or is killed with the sample process that evalplus kills
    on timeout, the kernel kills everything it forked. Returns pid 1's exit status.
    """
    def run(*args):
        unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID)
        mount("tmpfs", WORK, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,mode=0")  # hides the runner's files
        os.chdir("/tmp")
        resource.setrlimit(resource.RLIMIT_NPROC, (SAMPLE_NPROC, SAMPLE_NPROC))
        resource.setrlimit(resource.RLIMIT_CPU, (SAMPLE_CPU_S, SAMPLE_CPU_S))
        pid = os.fork()
        if pid == 0:
            die_with_parent()
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # this sample's processes only
            os.close(RESULTS_FD)
            devnull = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):  # output a sample writes must not fill the host's disk through the log
                os.dup2(devnull, fd)
            target(*args)
            os._exit(0)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return run


def refuse_network(*args, **kwargs):
    raise PermissionError("network access is disabled while executing generated code")


def block_network() -> None:
    """Without --sandbox: a best effort (an empty network namespace where allowed, guarded socket calls)."""
    try:
        libc.unshare(CLONE_NEWNET)  # -1 (EPERM) without the privilege: fine
    except AttributeError:
        pass
    for name in ("connect", "connect_ex", "sendto", "sendmsg"):
        setattr(socket.socket, name, refuse_network)
    socket.create_connection = refuse_network


def main(dataset: str, job: Path, sandbox: bool) -> None:
    global RESULTS_FD
    inputs = {name: (job / name).read_bytes() for name in ("problems.jsonl", "samples.jsonl")}
    RESULTS_FD = os.open(job / "results.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    if sandbox:
        work = Path(isolate())
    else:
        work = job / "work"
        work.mkdir()
        block_network()
    for name, data in inputs.items():
        (work / name).write_bytes(data)
    # evalplus reads the override path at import; its ground-truth cache (a pickle) stays in the work dir.
    os.environ["HUMANEVAL_OVERRIDE_PATH" if dataset == "humaneval" else "MBPP_OVERRIDE_PATH"] = str(
        work / "problems.jsonl")
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    import multiprocessing

    import evalplus.eval
    from evalplus.evaluate import evaluate

    multiprocessing.set_start_method("fork", force=True)  # workers and samples must inherit the wrapper below
    if sandbox:
        evalplus.eval.unsafe_execute = contained(evalplus.eval.unsafe_execute)
    evaluate(dataset, samples=str(work / "samples.jsonl"), i_just_wanna_run=True, parallel=2)
    with os.fdopen(RESULTS_FD, "wb") as results:
        results.write((work / "samples_eval_results.json").read_bytes())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # evalplus' 20 s watchdog thread is non-daemon: do not wait for it


def probe() -> None:
    global RESULTS_FD
    RESULTS_FD = os.open("/dev/null", os.O_WRONLY)
    try:
        isolate()
        sys.exit(contained(lambda: None)())
    except OSError as error:  # one line for the refusal message: the step that failed, and why
        sys.exit(f"{traceback.extract_tb(error.__traceback__)[-1].line}: {error}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--probe"]:
        probe()
    else:
        sandbox = sys.argv[1] == "--sandbox"
        main(sys.argv[-2], Path(sys.argv[-1]), sandbox)
