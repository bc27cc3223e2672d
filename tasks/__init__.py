"""Task adapters: each task trains from its own data and scores through lm-eval or evalplus."""

from tasks import papers, synthetic, tiny  # noqa: F401  (registers the tasks)
from tasks.base import TASKS, Task, TaskScore

__all__ = ["TASKS", "Task", "TaskScore"]
