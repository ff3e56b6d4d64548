"""Registries: plain dicts filled by one decorator per kind. Registering a name twice raises.

Example:
    >>> trackers = Registry("tracker")
    >>> @trackers.register("iou")
    ... class IouTracker: ...
    >>> trackers.get("iou").__name__
    'IouTracker'
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from lanner.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named mapping from strings to objects of one kind (models, ops, trackers, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name not in self._items:
            close = difflib.get_close_matches(name, list(self._items), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"choose one of {sorted(self._items)}"
            raise ConfigError(f"unknown {self.kind} {name!r}", fix=hint)
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
