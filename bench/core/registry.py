"""Named registries for methods, pairs and tasks, with lm-eval's "did you mean" on a miss."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from importlib.metadata import entry_points

from bench.core.errors import BenchError


class Registry:
    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, object] = {}
        self._plugins_loaded = False

    def register(self, name: str, item=None) -> Callable | object:
        """Register item under name; without item, works as a decorator."""
        if item is None:
            return lambda obj: self.register(name, obj)
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def _load_plugins(self) -> None:
        # Other packages add methods/tasks/pairs through entry points; loading one registers it.
        if self._plugins_loaded or not self.entry_point_group:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._items:
                ep.load()

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def get(self, name: str):
        self._load_plugins()
        if name in self._items:
            return self._items[name]
        close = difflib.get_close_matches(name, self._items, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise BenchError(f"unknown {self.kind} {name!r}{hint} (choose from: {', '.join(sorted(self._items))})")

    def parse_list(self, text: str) -> list[str]:
        """'a,b' -> ['a', 'b'], each checked against the registry."""
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise BenchError(f"no {self.kind} given")
        for name in names:
            self.get(name)
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice:  # the grid would hold its cells twice, which reports and comparisons refuse
            raise BenchError(f"{self.kind} {twice!r} is given twice")
        return names
