"""The models shipped in ``lanner/assets`` (``builtin:<name>``): present, small, and doing their job.

They are small starters (see assets/MODEL_CARD.md), so these checks are about wiring and a
floor of competence on held-out synthetic data, not about accuracy targets.
"""

import cv2
import numpy as np
import pytest

from lanner.core.assets import ASSETS_DIR, builtin_models, resolve_asset
from lanner.data.synth.crops import generate_crops
from lanner.data.synth.images import SynthConfig, render_sample
from lanner.pipeline.infer import Detector, DetectorConfig, SecondaryClassifier, SecondaryConfig
from lanner.pipeline.track.matching import box_iou

MAX_BYTES = 10 * 1024 * 1024


def test_shipped_models_exist_and_are_at_most_10_mb():
    assert {"traffic_detector", "vehicle_type"} <= set(builtin_models())
    for name in ("traffic_detector", "vehicle_type"):
        assert resolve_asset(f"builtin:{name}").stat().st_size <= MAX_BYTES
    assert (ASSETS_DIR / "MODEL_CARD.md").is_file()


def test_starter_detector_finds_most_large_cars_in_held_out_street_scenes():
    detector = Detector(DetectorConfig(model="builtin:traffic_detector", conf_threshold=0.3))
    config = SynthConfig(images=8, width=1280, height=720, seed=999, time_of_day={"day": 1.0})
    found = total = 0
    for index in range(8):
        image, boxes, _, _ = render_sample(config, index)
        cars = np.array([b.xyxy for b in boxes if b.cls == "car" and b.occluded == 0 and b.xyxy[3] - b.xyxy[1] > 60])
        if not len(cars):
            continue
        dets = detector.detect([image])[0]
        pred = dets.xyxy[dets.class_id == 0]
        total += len(cars)
        found += int((box_iou(cars, pred).max(axis=1) >= 0.5).sum()) if len(pred) else 0
    assert total >= 5
    assert found / total >= 0.5, f"found {found} of {total} large unoccluded cars"


@pytest.mark.parametrize("per_class", [12])
def test_vehicle_type_classifier_beats_chance_by_far_on_held_out_crops(tmp_path, per_class):
    generate_crops(SynthConfig(images=1, seed=4242), tmp_path, by="body_type", per_class=per_class)
    classifier = SecondaryClassifier(SecondaryConfig(model="builtin:vehicle_type"))
    correct = total = 0
    for label_dir in sorted(p for p in tmp_path.iterdir() if p.is_dir()):
        crops = [cv2.imread(str(p)) for p in sorted(label_dir.glob("*.jpg"))]
        ids, _ = classifier._classify(crops)  # the batch path process() uses, without frames
        correct += int(sum(classifier.class_names[i] == label_dir.name for i in ids))
        total += len(crops)
    assert correct / total >= 0.7, f"{correct}/{total}"
