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
                      (a live builder would still hold the lock, so they are certainly dead).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.core.errors import BenchError

CACHE_ENV = "PEFT_TRANSFER_BENCH_CACHE"
CODE_VERSION = "3"  # bump when a change invalidates cached artifacts (3: task data hash in module keys)


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
    """Return cache_dir()/kind/key, calling build(tmp_dir) first if it does not exist yet.

    build writes into a fresh temporary directory that is renamed into place only when it
    returns, so a crash never leaves a half-written artifact behind; the key's lock makes a
    concurrent run wait for this build instead of repeating it.
    """
    final = cache_dir() / kind / key
    if final.is_dir():
        return final
    with file_lock(final.parent / f".{key}.lock"):
        if final.is_dir():  # another run built it while we waited
            return final
        for stale in final.parent.glob(f".{key}-*"):  # left by a killed build (it no longer holds the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
        try:
            build(tmp)
            try:
                os.replace(tmp, final)
            except OSError as error:
                raise BenchError(f"cannot store {final}: {one_line(error)}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


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
