"""Where the grid's jobs run. The protocol hands an executor a module-level function and a list of picklable
jobs; the local executor runs them in order in this process, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.core.progress import progress_bar


class LocalExecutor:
    name = "local"

    def map(self, fn: Callable, jobs: Sequence[tuple], description: str, label: Callable[[tuple], str] = str) -> list:
        results = []
        with progress_bar(description, len(jobs)) as advance:
            for job in jobs:
                results.append(fn(*job))
                advance(done=label(job))
        return results
