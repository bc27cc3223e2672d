"""Rich progress bars shared by pair building, training and evaluation."""

from __future__ import annotations

import os
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


def _enabled() -> bool:
    return os.environ.get("BENCH_PROGRESS", "1") != "0"


@contextmanager
def progress_bar(description: str, total: int):
    """Yields advance(**fields): one call per finished unit of work."""
    if not _enabled():
        yield lambda **fields: None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[info]}")]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total, info="")

        def advance(**fields):
            info = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
            progress.update(task, advance=1, info=info)

        yield advance
