"""Output folders made up front, and output files written with one clear error when they cannot be.

``make_folder`` creates a command's output folder before its long work starts; ``writing`` wraps the
writing of one file (its folder created first) so a path that cannot be written is one ``DataError`` line.
``replacing`` writes a file beside its target and moves it into place in one step, so an interrupted
or failed write keeps the old file whole. ``filling`` marks a dataset folder incomplete while a command
writes it (``INCOMPLETE_MARKER``), so a folder left half-written by Ctrl-C or a crash is refused by the
readers (``check_complete``) instead of being trained on as if it were whole.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> make_folder(root / "results" / "run1", what="results", option="-r/--results").is_dir()
    True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from lanner.core.errors import DataError, Interrupted, UsageError

INCOMPLETE_MARKER = ".lanner-incomplete"  # in a folder a command is writing (its first line names the command)


def make_folder(path: str | Path, what: str = "output", option: str = "-o/--output") -> Path:
    """Create folder ``path`` (and its parents); a file there, or a folder that cannot be made, is one
    clear error naming the ``what`` folder and the command ``option`` to change."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"the {what} path is a file", where=str(path), fix=f"pass a folder to {option}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = "a parent of it is a file" if isinstance(error, FileExistsError | NotADirectoryError) else None
        raise DataError(
            f"cannot create the {what} folder: {reason or error.strerror or type(error).__name__}",
            where=str(path),
            fix=f"pass a {option} folder you can write to",
        ) from None
    return path


@contextlib.contextmanager
def writing(path: Path, what: str, fix: str = "pass a file path in a folder you can write to") -> Iterator[None]:
    """Create ``path``'s folder, then run the block that writes ``path``; an ``OSError`` in either becomes
    ``DataError("cannot write the <what>: <reason>")`` naming the path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield
    except OSError as error:
        reason = f"{path.parent} is a file, not a folder" if isinstance(error, FileExistsError) else error.strerror
        what_failed = f"cannot write the {what}: {reason or type(error).__name__}"
        raise DataError(what_failed, where=str(path), fix=fix) from None


@contextlib.contextmanager
def filling(folder: Path, command: str) -> Iterator[Path]:
    """Mark ``folder`` incomplete while the block writes it (``command`` names the writer in messages).

    The marker goes in first and comes out only when the block ends normally, so Ctrl-C, an error or a
    killed process leaves it behind. Ctrl-C becomes one ``Interrupted`` line saying so.
    """
    existed = Path(folder).is_dir()
    marker = make_folder(folder) / INCOMPLETE_MARKER
    marker.write_text(f"{command}\n(it was writing this folder and did not finish: run it again or delete it)\n")
    try:
        yield folder
    except BaseException as exc:
        untouched = Path(folder).is_dir() and [p.name for p in Path(folder).iterdir()] == [INCOMPLETE_MARKER]
        if untouched:  # it stopped before writing anything: leave no trace
            marker.unlink(missing_ok=True)
            if not existed:
                Path(folder).rmdir()
        if not isinstance(exc, KeyboardInterrupt):
            raise
        left = "nothing was written" if untouched else "the folder is marked incomplete and readers refuse it"
        fix = f"run {command} again (with --force where it asks), or delete the folder"
        raise Interrupted(f"interrupted: {command} did not finish; {left}", where=str(folder), fix=fix) from None
    marker.unlink(missing_ok=True)


def check_complete(path: str | Path) -> None:
    """Raise one ``DataError`` line when ``path`` (or the folder holding it) is marked incomplete."""
    path = Path(path)
    for folder in (path, path.parent) if path.is_dir() else (path.parent,):
        marker = folder / INCOMPLETE_MARKER
        if marker.is_file():
            writer = (marker.read_text(errors="replace").splitlines() or [""])[0].strip() or "a lanner command"
            raise DataError(
                f"incomplete: {writer} did not finish writing it",
                where=str(folder),
                fix=f"run {writer} again (with --force where it asks), or delete the folder",
            )


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally it replaces ``path`` at once.

    ``os.replace`` is atomic on one filesystem: readers see the old file or the new one, never half of it,
    and Ctrl-C, an error or a failed check in the block leave the old file as it was (the partial is removed).
    """
    path = Path(path)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)  # gone already after a success
