"""Training and test data from the hub or a local mirror, through `datasets`.

Lookup order for a dataset reference: an existing local file or directory; the mirror
(--data-dir or $PEFT_TRANSFER_BENCH_DATA, as <dir>/<org>/<name>/ holding jsonl, json or
parquet files, the split's name in the file name when there are several splits); the hub.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.core.errors import BenchError

DATA_ENV = "PEFT_TRANSFER_BENCH_DATA"
FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
# Fields that hold text, in reading order (OpenOrca, Platypus, Alpaca, MetaMathQA, CodeFeedback, plain text).
TEXT_FIELDS = ("text", "system_prompt", "instruction", "input", "question", "query", "output", "response")


def mirror_dir() -> Path | None:
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else None


def local_files(ref: str, split: str) -> list[Path] | None:
    path = Path(ref).expanduser()
    if not path.exists() and mirror_dir() is not None:
        path = mirror_dir() / ref
    if path.is_file():
        return [path]
    if not path.is_dir():
        return None
    files = sorted(p for p in path.rglob("*") if p.suffix in FORMATS)
    of_split = [p for p in files if split in p.name]
    return of_split or files


def load_records(ref: str, split: str = "train", config: str | None = None, limit: int | None = None) -> list[dict]:
    """Rows of dataset `ref` (hub id or local path), the first `limit` of them (papers: MetaMathQA's first 100K)."""
    import datasets

    files = local_files(ref, split)
    try:
        if files is not None:
            if not files:
                raise BenchError(f"no jsonl/json/parquet files for dataset {ref} in {Path(ref)}")
            kind = FORMATS[files[0].suffix]
            data = datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train")
        else:
            data = datasets.load_dataset(ref, config, split=split)
    except BenchError:
        raise
    except Exception as error:
        raise missing_dataset(ref, split, error) from None
    if limit is not None:
        data = data.select(range(min(limit, len(data))))
    return list(data)


def missing_dataset(ref: str, split: str, error: Exception) -> BenchError:
    where = mirror_dir() or "DIR"
    return BenchError(f"dataset {ref} ({split}) is not available ({type(error).__name__}); copy it as jsonl or "
                      f"parquet to {where}/{ref}/ and pass --data-dir {where} (or set ${DATA_ENV})")


def record_text(record: dict) -> str:
    parts = [str(record[f]) for f in TEXT_FIELDS if isinstance(record.get(f), str) and record[f].strip()]
    if not parts:
        raise BenchError(f"a corpus record has none of the text fields {', '.join(TEXT_FIELDS)}: {sorted(record)}")
    return "\n\n".join(parts)


PYTHON_STDLIB = "python:stdlib"  # a code corpus every machine has: this Python's standard library sources


def corpus_texts(ref: str, limit: int | None = None) -> list[str]:
    if ref == PYTHON_STDLIB:
        return stdlib_sources(limit)
    return [record_text(r) for r in load_records(ref, "train", limit=limit)]


def stdlib_sources(limit: int | None = None) -> list[str]:
    """Mid-sized modules of the running Python's standard library, in path order (tests and bundled
    packages left out): offline continued pre-training on code, as DeepSeek-LLM -> DeepSeek-Coder on a tiny scale.
    The text depends on the Python version, so the simulated update is reproducible per Python version."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "site-packages", "dist-packages", "lib2to3", "ensurepip", "turtledemo"}
    files = [p for p in sorted(root.rglob("*.py")) if not skip & set(p.relative_to(root).parts)
             and 2_000 <= p.stat().st_size <= 20_000]
    return [p.read_text(encoding="utf-8", errors="replace") for p in files[:limit]]
