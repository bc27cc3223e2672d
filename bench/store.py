"""The artifact cache: content-addressed directories written atomically.

Layout under cache_dir(): pairs/<key>/, modules/<key>/, evals/<key>.json. A key is a hash
of everything that determines the artifact, so a changed recipe never reuses stale work.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

CACHE_ENV = "PEFT_TRANSFER_BENCH_CACHE"
CODE_VERSION = "2"  # bump when a change invalidates cached artifacts


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "peft-transfer-bench")


def config_hash(config, code_version: str = CODE_VERSION) -> str:
    blob = json.dumps({"config": config, "code": code_version}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_dir(kind: str, key: str, build: Callable[[Path], None]) -> Path:
    """Return cache_dir()/kind/key, calling build(tmp_dir) first if it does not exist yet.

    build writes into a fresh temporary directory that is renamed into place only when
    it returns, so a crash never leaves a half-written artifact behind.
    """
    final = cache_dir() / kind / key
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
    try:
        build(tmp)
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():  # someone else finished first: keep theirs
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def write_json_atomic(path: Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)
