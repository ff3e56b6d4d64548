"""A COCO set whose only labels are crowd boxes (helper D's review): refused like a DontCare-only set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lanner.core.detections import Detections
from lanner.core.errors import DataError
from lanner.data.dataset import DetectionDataset, Sample
from lanner.data.io import read_dataset, write_dataset
from lanner.train.distributed import resolve_runtime
from lanner.train.experiment import build_experiment
from lanner.train.spec import load_spec


def test_a_set_labelled_only_with_crowd_boxes_is_refused(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((64, 96, 3), np.uint8))
    crowd = Detections.from_arrays([[0, 0, 30, 30]], [0], data={"iscrowd": np.array([1])})
    dataset = DetectionDataset(tmp_path, ["person"], [Sample("a", tmp_path / "a.png", 96, 64, crowd)])
    root = write_dataset(dataset, tmp_path / "coco", "coco")
    assert read_dataset(root).samples[0].boxes.data["iscrowd"].tolist() == [1]  # the crowd flag survived the write
    spec = {
        "dataset": {"train": str(root), "classes": ["person"]},
        "model": {"name": "yolox_nano", "input_size": [64, 96]},
    }
    with pytest.raises(DataError, match="has no boxes"):
        build_experiment(load_spec(data=spec), resolve_runtime("cpu"))
