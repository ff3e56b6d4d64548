"""The worst-images sheet of ``lanner evaluate``: per-image matching, ranking, drawing, and ``errors.jpg``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lanner.core.detections import Detections
from lanner.core.drawing import color_for
from lanner.train.error_sheet import MISSED_BGR, draw_errors, error_sheet, worst_images
from lanner.train.metrics.detection import match_image

GT = Detections.from_arrays([[0, 0, 20, 20], [30, 0, 50, 20], [60, 0, 80, 20]], [0, 1, 0])


def test_a_match_tells_false_positives_misses_and_wrong_classes_apart() -> None:
    pred = Detections.from_arrays(
        [[0, 0, 20, 20], [30, 0, 50, 20], [0, 40, 20, 60], [60, 0, 80, 20]],
        [0, 0, 1, 0],
        confidence=[0.9, 0.8, 0.7, 0.1],
    )
    m = match_image(pred, GT, num_classes=2)  # the 0.1 detection is below the 0.25 score: not scored
    assert m.false_positives.tolist() == [2]  # nothing at [0, 40, 20, 60]
    assert m.missed.tolist() == [2]  # the car at x 60-80 (its detection scored 0.1)
    assert [(int(m.pred_used[k]), int(m.gt_used[k])) for k in m.wrong_class] == [(1, 1)]  # a bicycle seen as car
    assert m.errors == 3


def test_images_rank_by_errors_and_clean_images_are_left_out() -> None:
    perfect = Detections.from_arrays(GT.xyxy, GT.class_id, confidence=[0.9] * 3)
    one_miss = perfect[[0, 1]]
    nothing = Detections.empty()
    ranked = worst_images([perfect, one_miss, nothing, one_miss], [GT] * 4, num_classes=2)
    assert [i for i, _ in ranked] == [2, 1, 3]  # 3 misses, then the two 1-miss images in order
    assert worst_images([perfect], [GT], num_classes=2) == []


def test_mistakes_are_drawn_thick_and_labelled() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    pred = Detections.from_arrays([[0, 40, 20, 60]], [1], confidence=[0.9])
    out = draw_errors(image, match_image(pred, GT, 2), ["car", "bicycle"])
    assert tuple(int(v) for v in out[10, 0]) == MISSED_BGR  # the left edge of a missed car
    assert tuple(int(v) for v in out[50, 0]) == color_for(1)  # the false positive, in its class colour


def test_evaluate_writes_errors_jpg_only_when_there_are_errors(tmp_path: Path) -> None:
    from test_evaluate import BOX, IMAGE_BOX, FixedBoxDetector, write_kitti

    from lanner.train.evaluate import evaluate_model

    good = write_kitti(tmp_path / "good", [([IMAGE_BOX], [0])])
    assert "errors" not in evaluate_model(FixedBoxDetector(), good, tmp_path / "out_good").files
    assert not (tmp_path / "out_good" / "errors.jpg").exists()
    bad = write_kitti(tmp_path / "bad", [([IMAGE_BOX], [0]), ([BOX], [0])])
    files = evaluate_model(FixedBoxDetector(), bad, tmp_path / "out_bad").files
    sheet = cv2.imread(str(files["errors"]))
    assert files["errors"] == tmp_path / "out_bad" / "errors.jpg" and sheet is not None and sheet.shape[1] == 480


def test_no_sheet_without_errors() -> None:
    assert error_sheet([], [], [], ["car"]) is None
    with pytest.raises(ValueError):  # predictions and ground truth must pair up
        worst_images([Detections.empty()], [], 1)


def test_an_image_gone_since_it_was_scored_is_left_out_of_the_sheet(tmp_path: Path, caplog) -> None:
    from lanner.data.dataset import Sample

    cv2.imwrite(str(tmp_path / "kept.png"), np.zeros((40, 100, 3), np.uint8))
    samples = [Sample("gone", tmp_path / "gone.png", 100, 40), Sample("kept", tmp_path / "kept.png", 100, 40)]
    nothing = Detections.empty()
    sheet = error_sheet(samples, [nothing, nothing], [GT, GT[[0]]], ["car", "bicycle"], tile_width=100)
    assert sheet is not None and sheet.shape == (40 + 22, 100, 3)  # one tile: the image still on disk
    assert "errors.jpg leaves out" in caplog.text and "gone.png" in caplog.text
    assert error_sheet(samples[:1], [nothing], [GT], ["car", "bicycle"]) is None  # nothing left to draw


def test_a_classifiers_most_confident_mistakes_come_first(tmp_path: Path) -> None:
    from lanner.data.dataset import ClassificationSample
    from lanner.train.error_sheet import classification_error_sheet

    samples = []
    for i, value in enumerate((10, 100, 200)):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((20, 30, 3), value, np.uint8))
        samples.append(ClassificationSample(tmp_path / f"{i}.png", 0))
    logits = np.array([[0.0, 1.0], [0.0, 5.0], [3.0, 0.0]])  # images 0 and 1 wrong, 1 more confidently
    sheet = classification_error_sheet(samples, logits, np.array([0, 0, 0]), ["cat", "dog"], tile_width=30)
    assert sheet is not None and sheet.shape[1] == 2 * 30  # two mistakes, side by side
    assert int(sheet[5, 5, 0]) == 100 and int(sheet[5, 35, 0]) == 10  # the surer mistake first
    assert classification_error_sheet(samples[2:], logits[2:], np.array([0]), ["cat", "dog"]) is None
