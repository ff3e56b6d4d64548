"""How long-running library functions report progress without knowing about terminals.

A function that loops over many items takes ``progress: ProgressFn | None`` and calls it with the
number of items just finished. The CLI passes a rich progress bar's ``advance``; tests pass a list's
``append`` or nothing.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[int], None]


def advance(progress: ProgressFn | None, n: int = 1) -> None:
    """Report ``n`` finished items if anyone listens."""
    if progress is not None:
        progress(n)
