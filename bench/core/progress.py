"""Rich progress bars shared by pair building, training and evaluation.

Rich allows one live display at a time, so nested bars (a training run inside the grid's
cell bar) are tasks of one shared Progress that lives as long as the outermost bar.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)
_live: Progress | None = None


def _enabled() -> bool:
    return os.environ.get("BENCH_PROGRESS", "1") != "0"


@contextmanager
def progress_bar(description: str, total: int):
    """Yields advance(**fields): one call per finished unit of work, fields shown beside the bar."""
    global _live
    if not _enabled():
        yield lambda **fields: None
        return
    outermost = _live is None
    if outermost:
        _live = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                         TextColumn("{task.fields[info]}"), console=console)
        _live.start()
    progress = _live
    task = progress.add_task(description, total=total, info="")

    def advance(**fields):
        info = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
        progress.update(task, advance=1, info=info)

    try:
        yield advance
    finally:
        if outermost:
            progress.stop()
            _live = None
        else:
            progress.remove_task(task)  # finished inner bars make room for the next one


def quiet_libraries() -> None:
    """Keep the terminal for our progress bars and the leaderboard: library chatter goes."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # e.g. "pretrained model kwarg is not of type str"
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
