"""Shared CLI plumbing: the run state (``--debug``, ``--quiet``), consoles and progress bars."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from lanner.core.progress import ProgressFn

# emoji=False: user text such as a batch profile "a:b:c" must not turn into emoji (":b:" is one)
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


@dataclass
class CliState:
    debug: bool = False
    quiet: bool = False


def state() -> CliState:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, CliState):
            return ctx.obj
        ctx = ctx.parent
    return CliState()


def info(message: str) -> None:
    """A status line on stderr, hidden by ``--quiet``."""
    if not state().quiet:
        err.print(message)


@contextlib.contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[ProgressFn]:
    """A rich progress bar with ETA; yields the ``advance(n)`` callback library code calls."""
    if state().quiet or not err.is_terminal:
        yield lambda n: None
        return
    columns = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
