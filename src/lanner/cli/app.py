"""Shared CLI plumbing: the run state (``--debug``, ``--quiet``), consoles and progress bars."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
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


def next_steps(*commands: str) -> None:
    """Tell a newcomer what usually comes after this command: ``next: CMD`` lines on stderr (not with ``-q``).

    The commands are plain text (paths may hold ``[x]``), so they are printed without rich markup.
    """
    if state().quiet:
        return
    for command in commands:
        err.print(f"next: {command}", markup=False)


# without a terminal (a log file, a pipe, CI) progress is a plain line at most this often
PLAIN_INTERVAL_S = 10.0


class PlainProgress:
    """Progress for a log: ``rendering: 300/1000 (30%, 12 s, eta 28 s)`` every ``PLAIN_INTERVAL_S`` seconds.

    A redrawn bar makes no sense in a file; silence until the end of a long job makes no sense either.
    Short jobs print nothing. ``clock`` is injectable so tests need no sleeping.
    """

    def __init__(
        self, description: str, total: int | None, done: int = 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.description, self.total, self.done, self.clock = description, total, done, clock
        self.first = done  # a resumed job: the ETA comes from the rate of this run only
        self.start = self.last = clock()

    def __call__(self, n: int) -> None:
        self.done += n
        now = self.clock()
        if now - self.last >= PLAIN_INTERVAL_S:
            self.last = now
            err.print(self.line(now - self.start), markup=False)

    def line(self, elapsed: float) -> str:
        """The progress line after ``elapsed`` seconds."""
        if not self.total:
            return f"{self.description}: {self.done} done ({elapsed:.0f} s)"
        ran = self.done - self.first
        eta = f"{elapsed * (self.total - self.done) / ran:.0f} s" if ran > 0 else "?"
        percent = 100 * self.done / self.total
        return f"{self.description}: {self.done}/{self.total} ({percent:.0f}%, {elapsed:.0f} s, eta {eta})"


@contextlib.contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[ProgressFn]:
    """A rich progress bar with ETA on a terminal, plain periodic lines otherwise (``PlainProgress``), nothing
    with ``--quiet``; yields the ``advance(n)`` callback library code calls."""
    if state().quiet:
        yield lambda n: None
        return
    if not err.is_terminal:
        yield PlainProgress(description, total)
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
