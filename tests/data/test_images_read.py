"""``lanner.data.images``: one image reader; unreadable files are errors, truncated JPEGs are named once."""

from __future__ import annotations

import doctest
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

import lanner.data.images
from lanner.core.errors import DataError
from lanner.data.images import jpeg_cut_short, read_image


def jpeg(path: Path, cut: int = 0) -> Path:
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    _, data = cv2.imencode(".jpg", pixels)
    path.write_bytes(data.tobytes()[: len(data) - cut] if cut else data.tobytes())
    return path


@pytest.mark.parametrize("content", [b"", b"not an image", None])
def test_unreadable_files_are_a_data_error_naming_them(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=r"x\.png: cannot read image \(missing, empty or not an image\)"):
        read_image(path)


def test_a_truncated_jpeg_decodes_and_is_named_once(tmp_path: Path, caplog) -> None:
    whole = jpeg(tmp_path / "whole.jpg")
    cut = jpeg(tmp_path / "cut.jpg", cut=whole.stat().st_size // 3)
    assert not jpeg_cut_short(whole) and jpeg_cut_short(cut)
    with caplog.at_level(logging.WARNING, logger="lanner.data.images"):
        for _ in range(3):
            assert read_image(cut).shape == (64, 64, 3)
        read_image(whole)
    assert [r.getMessage() for r in caplog.records] == [
        f"{cut}: the JPEG data ends early (truncated file?); its missing part is grey"
    ]


def test_module_example_runs() -> None:
    assert doctest.testmod(lanner.data.images).failed == 0
