"""``make_folder``: the output folder a command checks before its long work."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import lanner.core.folders
from lanner.core.errors import DataError, UsageError
from lanner.core.folders import make_folder


def test_makes_the_folder_and_its_parents(tmp_path: Path) -> None:
    assert make_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    assert make_folder(tmp_path / "a" / "b").is_dir()  # again: fine


@pytest.mark.parametrize(
    ("layout", "target", "error", "message"),
    [
        ("file", "file", UsageError, r"the results path is a file; pass a folder to -r/--results"),
        ("file", "file/sub", DataError, r"cannot create the results folder: a parent of it is a file"),
    ],
)
def test_a_file_in_the_way_is_one_line(tmp_path: Path, layout: str, target: str, error: type, message: str) -> None:
    (tmp_path / layout).write_text("x")
    with pytest.raises(error, match=message):
        make_folder(tmp_path / target, what="results", option="-r/--results")
    assert (tmp_path / layout).read_text() == "x"


def test_module_example_runs() -> None:
    assert doctest.testmod(lanner.core.folders).failed == 0
