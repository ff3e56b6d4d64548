"""``lanner.core.drawing``: one palette and one way to draw boxes and labels for every part of lanner."""

from __future__ import annotations

import doctest

import numpy as np

from lanner.core import drawing
from lanner.core.drawing import color_for, draw_boxes


def test_boxes_and_labels_are_drawn_on_a_copy_in_the_class_colour() -> None:
    image = np.zeros((60, 80, 3), np.uint8)
    out = draw_boxes(image, np.array([[10, 30, 40, 50], [50, 5, 70, 25]]), [0, 11], ["car", "bus"])
    assert image.sum() == 0  # the input is left alone
    assert tuple(int(v) for v in out[40, 10]) == color_for(0) and tuple(int(v) for v in out[15, 70]) == color_for(11)
    assert color_for(11) == color_for(1)  # the palette wraps
    assert out[20:30, 10:40].any()  # the car's label sits above its box
    assert not draw_boxes(image, np.zeros((0, 4)), []).any()


def test_the_module_example_runs() -> None:
    assert doctest.testmod(drawing).failed == 0
