"""Output folders made up front: a command checks where it will write before the long work starts.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> make_folder(root / "results" / "run1", what="results", option="-r/--results").is_dir()
    True
"""

from __future__ import annotations

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
