"""``Frame`` with a decoder's ``Picture``: converted to BGR on the first read of ``image`` only."""

import dataclasses

import numpy as np
import pytest

from lanner.core import DataError, Frame
from lanner.core.frame import Picture


class CountingPicture:
    height, width = 4, 6

    def __init__(self) -> None:
        self.conversions = 0

    def to_bgr(self) -> np.ndarray:
        self.conversions += 1
        return np.full((4, 6, 3), 7, np.uint8)

    def resized_bgr(self, width: int, height: int) -> np.ndarray:
        return np.full((height, width, 3), 7, np.uint8)


def test_a_picture_converts_once_on_first_read_and_never_for_its_size():
    picture = CountingPicture()
    assert isinstance(picture, Picture) and not isinstance(np.zeros((4, 6, 3), np.uint8), Picture)
    frame = Frame(0, 3, 0, picture)
    assert frame.hw == (4, 6) and frame.decoded is picture and picture.conversions == 0
    first = frame.image
    assert first.shape == (4, 6, 3) and frame.image is first and picture.conversions == 1
    assert frame.decoded is first and frame.hw == (4, 6)  # the array replaced the picture


def test_replacing_the_image_validates_it_and_drops_the_picture():
    picture = CountingPicture()
    frame = Frame(1, 0, 0, picture)
    drawn = dataclasses.replace(frame, image=np.zeros((2, 3, 3), np.uint8))
    assert drawn.hw == (2, 3) and picture.conversions == 0
    with pytest.raises(DataError, match="source 1 frame 0"):
        frame.image = np.zeros((2, 3), np.uint8)
    frame.image = np.ones((5, 5, 3), np.uint8)
    assert frame.hw == (5, 5) and frame.decoded is frame.image and picture.conversions == 0
