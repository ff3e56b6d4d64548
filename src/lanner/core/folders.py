"""Output folders made up front, and output files written with one clear error when they cannot be.

``make_folder`` creates a command's output folder before its long work starts; ``writing`` wraps the
writing of one file (its folder created first) so a path that cannot be written is one ``DataError`` line.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> make_folder(root / "results" / "run1", what="results", option="-r/--results").is_dir()
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from lanner.core.errors import DataError, UsageError


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
