"""Copy-paste on unusual boxes (helper D's review): past the image edge, larger than the target image."""

from __future__ import annotations

import numpy as np

from lanner.train.copy_paste import CopyPaste
from lanner.train.spec import CopyPasteSection


def _paste(source_boxes: np.ndarray, source_hw: tuple[int, int], target_hw: tuple[int, int]) -> np.ndarray:
    """Boxes of a 0-box target image after every draw of a bank of ``source_boxes`` (class 0), for 20 seeds."""
    section = CopyPasteSection(prob=1.0, max_objects=4, scale=(1.0, 1.0), min_size=4)
    bank = CopyPaste([(source_boxes, np.zeros(len(source_boxes), np.int64))], None, section)
    source = np.full((*source_hw, 3), 200, np.uint8)
    target = np.zeros((*target_hw, 3), np.uint8)
    pasted = []
    for seed in range(20):
        _, xyxy, _ = bank(
            target,
            np.zeros((0, 4)),
            np.zeros(0, np.int64),
            np.random.default_rng(seed),
            lambda i: (source, source_boxes, [0] * len(source_boxes)),
        )
        pasted.append(xyxy)
    return np.concatenate(pasted)


def test_a_box_mostly_past_the_image_edge_pastes_no_sliver() -> None:
    # 102 x 50 px as labelled, but only 2 px of it are inside the 60 x 80 source image
    pasted = _paste(np.array([[-100, 0, 2, 50]], np.float32), (60, 80), (60, 80))
    assert len(pasted) == 0


def test_a_box_larger_than_the_target_image_is_pasted_at_its_visible_size_or_not_at_all() -> None:
    pasted = _paste(np.array([[-50, -50, 500, 500], [10, 10, 30, 20]], np.float32), (60, 80), (40, 50))
    sizes = {tuple((box[2:] - box[:2]).tolist()) for box in pasted}
    assert sizes == {(20.0, 10.0)}  # the whole-image crop (80 x 60) never fits the 50 x 40 target
