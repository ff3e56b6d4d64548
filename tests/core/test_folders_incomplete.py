"""``filling`` marks a folder incomplete while a command writes it; readers refuse a marked folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanner.core.errors import DataError, Interrupted
from lanner.core.folders import INCOMPLETE_MARKER, check_complete, filling


def test_a_finished_block_leaves_no_marker(tmp_path: Path) -> None:
    with filling(tmp_path / "out", "lanner dataset synth") as folder:
        assert (folder / INCOMPLETE_MARKER).is_file()
        (folder / "a.txt").write_text("x")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt"]
    check_complete(tmp_path / "out")


def test_an_error_after_writing_keeps_the_marker_and_the_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="disk on fire"), filling(tmp_path / "out", "lanner dataset convert") as folder:
        (folder / "a.txt").write_text("x")
        raise ValueError("disk on fire")
    assert (tmp_path / "out" / INCOMPLETE_MARKER).is_file()
    with pytest.raises(DataError, match=r"out: incomplete: lanner dataset convert did not finish writing it; run"):
        check_complete(tmp_path / "out")


def test_ctrl_c_after_writing_is_one_interrupted_line(tmp_path: Path) -> None:
    with pytest.raises(Interrupted) as info, filling(tmp_path / "out", "lanner dataset split") as folder:
        (folder / "train").mkdir()
        raise KeyboardInterrupt
    assert info.value.exit_code == 130 and "\n" not in str(info.value)
    assert "interrupted: lanner dataset split did not finish; the folder is marked incomplete" in str(info.value)
    with pytest.raises(DataError, match="incomplete"):  # d_split/train: the marker one level up counts too
        check_complete(tmp_path / "out" / "train")


@pytest.mark.parametrize("existed", [False, True])
def test_ctrl_c_before_anything_was_written_leaves_no_trace(tmp_path: Path, existed: bool) -> None:
    if existed:
        (tmp_path / "out").mkdir()
    with pytest.raises(Interrupted, match="nothing was written"), filling(tmp_path / "out", "lanner dataset synth"):
        raise KeyboardInterrupt
    assert (tmp_path / "out").is_dir() == existed
    if existed:
        assert list((tmp_path / "out").iterdir()) == []


def test_a_coco_file_in_a_marked_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "annotations.json").write_text("{}")
    (tmp_path / INCOMPLETE_MARKER).write_text("lanner dataset augment\n(it did not finish)\n")
    with pytest.raises(DataError, match="lanner dataset augment did not finish"):
        check_complete(tmp_path / "annotations.json")
