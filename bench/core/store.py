"""The artifact cache: content-addressed directories written atomically, built once under a lock.

Layout under cache_dir(): pairs/<key>/, modules/<key>/, evals/<key>/, data/<key>/. A key is a hash
of everything that determines the artifact (base revision, data, recipe, seed, CODE_VERSION), so a
changed recipe never reuses stale work and a rerun after a crash redoes only what is missing.

Safety, in the order things can go wrong:
  a crash mid-build   the artifact is built in a temporary directory renamed into place only when
                      complete (os.replace is atomic), so a half-written artifact is never visible;
  two runs at once    building a key holds an exclusive fcntl lock on <kind>/.<key>.lock: the second
                      run waits, then finds the finished artifact instead of training it again;
  a killed build      leaves .<key>-* temporaries behind; whoever next holds the key's lock removes them
                      (a live builder would still hold the lock, so they are certainly dead);
  a damaged entry     every entry carries manifest.json (each file's size and sha256, written before the
                      rename), checked whenever the entry is reused: a truncated, flipped, missing or extra
                      file is one warning line on stderr, and the entry is moved aside under the key's lock
                      and rebuilt, never used. Entries up to VERIFY_HASH_LIMIT bytes (modules, evaluations,
                      task data, tiny bases) are hashed, once per process; larger ones (multi-GB bases) have
                      their file list and sizes checked, which catches truncation and lost shards, unless
                      $PEFT_TRANSFER_BENCH_VERIFY=full ("sizes" checks sizes only, for slow disks). An entry
                      from before manifests existed is trusted as its build left it (it only ever became
                      visible by the same atomic rename) and given a manifest; the content checks of its
                      readers (safetensors headers, JSON, base ids) still apply to it;
  a full disk         a failed write or rename removes the temporary; nothing partial becomes visible.

Each stored build appends one JSON line (kind, key, pid, start, seconds) to cache_dir()/builds.log.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from bench.core.errors import BenchError

CACHE_ENV = "PEFT_TRANSFER_BENCH_CACHE"
CODE_VERSION = "4"  # bump when a change invalidates cached artifacts (3: task data hash in module keys; 4: Trans-PEFT
# draws its FFN dropping by (seed, step))
MANIFEST = "manifest.json"
VERIFY_ENV = "PEFT_TRANSFER_BENCH_VERIFY"  # auto (default) | full | sizes
VERIFY_HASH_LIMIT = 1 << 30  # auto: entries up to 1 GiB are hashed on reuse (about a second); larger ones sized


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "peft-transfer-bench")


def config_hash(config, code_version: str = CODE_VERSION) -> str:
    blob = json.dumps({"config": config, "code": code_version}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def data_hash(data) -> str:
    """A short hash of JSON-able data (training examples, test docs), for artifact keys."""
    blob = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if missing) across processes; released on exit or death."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def cached_dir(kind: str, key: str, build: Callable[[Path], None]) -> Path:
    """Return cache_dir()/kind/key, calling build(tmp_dir) first if it does not exist yet (or is damaged).

    build writes into a fresh temporary directory that gets its manifest and is renamed into place
    only when build returns, so a crash never leaves a half-written artifact behind; the key's lock
    makes a concurrent run wait for this build instead of repeating it.
    """
    final = cache_dir() / kind / key
    problem = verify_entry(final) if final.is_dir() else "absent"
    if problem is None or (problem is LEGACY and final.is_dir() and not os.access(final, os.W_OK)):
        return final  # (a read-only cache's entries from before manifests: used as before)
    with file_lock(final.parent / f".{key}.lock"):
        if final.is_dir():  # another run may have built or repaired it while we waited
            problem = verify_entry(final)
            if problem is None:
                return final
            if problem is LEGACY:  # trusted: see "a damaged entry" above
                try:
                    _write_manifest(final, kind, key, built=None)
                except OSError:  # (a full disk: adopted on a later run instead)
                    pass
                return final
            print(f"warning: store entry {final} is damaged ({problem}); moving it aside and rebuilding it",
                  file=sys.stderr, flush=True)
            try:  # a rename is atomic: readers see the old entry or none; the stale sweep below deletes it
                os.replace(final, final.parent / f".{key}-damaged-{os.getpid()}-{time.monotonic_ns()}")
            except OSError as error:
                raise BenchError(f"cannot move damaged store entry {final} aside: {one_line(error)}") from None
        for stale in final.parent.glob(f".{key}-*"):  # left by a killed build (it no longer holds the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
        try:
            started = time.time()
            build(tmp)
            if (tmp / MANIFEST).exists():
                raise BenchError(f"building {kind}/{key} wrote a {MANIFEST}, a name the store keeps for itself")
            try:
                _write_manifest(tmp, kind, key, built={"pid": os.getpid(), "started": _utc(started),
                                                       "seconds": round(time.time() - started, 3)})
                os.replace(tmp, final)
            except OSError as error:
                raise BenchError(f"cannot store {final}: {one_line(error)}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _log_build(kind, key, started)
    return final


# --- integrity: manifests -------------------------------------------------------------------------------

LEGACY = "no manifest"  # verify_entry's answer for an entry stored before manifests existed
_verified: dict[str, tuple] = {}  # entry -> the (name, size, mtime, inode)s it had when its hashes last matched


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def _entry_files(entry: Path) -> dict[str, Path]:
    """Every file of an entry by its relative name, the manifest (and an adoption's temporary) left out."""
    files = {}
    for path in sorted(entry.rglob("*")):
        name = path.relative_to(entry).as_posix()
        if name != MANIFEST and not name.startswith(f".{MANIFEST}-") and path.is_file():
            files[name] = path
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_manifest(entry: Path, kind: str, key: str, built: dict | None) -> None:
    """manifest.json: every file's size and sha256 (built=None: an older entry adopted as it stands)."""
    files = {name: {"size": path.stat().st_size, "sha256": _sha256(path)} for name, path in _entry_files(entry).items()}
    manifest = {"format": 1, "kind": kind, "key": key, "code_version": CODE_VERSION, "files": files,
                **({"built": built} if built else {"adopted": _utc(time.time())})}
    fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST}-", dir=entry)
    try:
        with open(fd, "w") as handle:
            handle.write(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a store may be shared like its other files
        os.replace(tmp, entry / MANIFEST)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def verify_mode() -> str:
    mode = os.environ.get(VERIFY_ENV, "").strip().lower() or "auto"
    if mode not in ("auto", "full", "sizes"):
        raise BenchError(f"${VERIFY_ENV} must be auto, full or sizes, not {mode!r}")
    return mode


def verify_entry(entry: Path) -> str | None:
    """None if the entry matches its manifest; LEGACY if it has none; otherwise what is wrong, in a few words.

    File names and sizes are always checked; contents by sha256 unless the entry is larger than
    VERIFY_HASH_LIMIT ($PEFT_TRANSFER_BENCH_VERIFY: auto | full | sizes), and only once per process
    while no file's size, mtime or inode changes.
    """
    mode = verify_mode()
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        expected = {name: (int(spec["size"]), str(spec["sha256"])) for name, spec in manifest["files"].items()}
    except FileNotFoundError:
        return LEGACY if entry.is_dir() else "it vanished"  # (another run moving it aside)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        return f"its {MANIFEST} is unreadable"
    try:
        present = {name: path.stat() for name, path in _entry_files(entry).items()}
        if missing := sorted(expected.keys() - present.keys()):
            return f"{missing[0]} is missing"
        if extra := sorted(present.keys() - expected.keys()):
            return f"{extra[0]} is not in its {MANIFEST}"
        for name, (size, _) in expected.items():
            if present[name].st_size != size:
                return f"{name} has {present[name].st_size} bytes, not {size}"
        present[MANIFEST] = (entry / MANIFEST).stat()
        signature = tuple((name, s.st_size, s.st_mtime_ns, s.st_ino) for name, s in present.items())
        hashing = mode == "full" or (mode == "auto" and sum(size for size, _ in expected.values()) <= VERIFY_HASH_LIMIT)
        if not hashing or _verified.get(str(entry)) == signature:
            return None
        for name, (_, sha256) in expected.items():
            if _sha256(entry / name) != sha256:
                return f"{name} does not match its sha256"
    except OSError as error:  # vanished under us (another run repairing it) or unreadable
        return f"cannot read it: {one_line(error)}"
    _verified[str(entry)] = signature
    return None


def _log_build(kind: str, key: str, started: float) -> None:
    """One line per stored build in cache_dir()/builds.log (best effort: the entry is already stored)."""
    line = json.dumps({"kind": kind, "key": key, "pid": os.getpid(), "started": _utc(started),
                       "seconds": round(time.time() - started, 3)}, sort_keys=True)
    try:
        with open(cache_dir() / "builds.log", "a") as log:
            log.write(line + "\n")
    except OSError:
        pass


class Store:
    """The content-addressed store as one object: what the engine builds into, methods read other methods'
    modules from, and tests inspect (which keys exist) instead of patching the code that builds them."""

    @property
    def root(self) -> Path:
        return cache_dir()

    def get(self, kind: str, key: str, build: Callable[[Path], None]) -> Path:
        return cached_dir(kind, key, build)

    def keys(self, kind: str) -> list[str]:
        """The finished entries of one kind (temporaries and locks are hidden dot-files)."""
        folder = cache_dir() / kind
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []

    def damage(self, kind: str, key: str) -> str | None:
        """What is wrong with a finished entry (verify_entry's words), or None if it is intact or from before
        manifests (trusted, as reuse trusts it): a damaged entry is rebuilt, not reused."""
        problem = verify_entry(cache_dir() / kind / key)
        return None if problem is LEGACY else problem


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def read_artifact_json(path: Path):
    """Read a JSON file inside a cached artifact; a damaged one is a one-line error saying how to rebuild it."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise BenchError(f"cached artifact file {path} is unreadable ({one_line(error)}); "
                         f"delete {Path(path).parent} and rerun to rebuild it") from None


def write_json_atomic(path: Path, data) -> None:
    """Write JSON to a temporary file beside `path`, then rename it over `path` (readers never see half)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are for sharing like any written file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def one_line(error: BaseException) -> str:
    """An exception as one line (library messages often span several)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
