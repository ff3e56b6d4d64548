"""evaluate_model: datasets on disk -> metrics, JSON and plots; class mapping by name; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from lanner.core import Detections
from lanner.core.errors import DataError, UsageError
from lanner.data import DetectionDataset, Sample, write_dataset
from lanner.data.dataset import ClassificationDataset, ClassificationSample
from lanner.models import ModelInfo, create_model, export_onnx, save_checkpoint
from lanner.train.evaluate import class_mapping, evaluate_model
from lanner.train.metrics import evaluate_detections
from lanner.train.predict import predict_detections

BOX = [8.0, 8.0, 40.0, 40.0]  # in the 64x64 network input
IMAGE_BOX = [16.0, 16.0, 80.0, 80.0]  # the same box in the 128x128 dataset images (letterbox scale 0.5)


@pytest.fixture(autouse=True)
def _one_thread_seeded():
    torch.set_num_threads(1)
    torch.manual_seed(0)


class FixedBoxDetector(nn.Module):
    """Finds one box at BOX (network pixels) of class ``car`` in every image: an oracle for the test sets."""

    def __init__(self, classes=("person", "car")):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.info = ModelInfo(
            name="fixed", task="detection", num_classes=len(classes), head=(), class_names=classes, input_size=(64, 64)
        )
        self.info = self.info.replace(resize="letterbox")

    def predict(self, x, conf, iou, max_det):
        box = np.array([BOX], np.float32)
        car = self.info.class_names.index("car")
        return [Detections.from_arrays(box, [car], confidence=[0.8]) for _ in range(x.shape[0])]


def write_kitti(root: Path, boxes_per_image, classes=("car",), size=(128, 128)) -> Path:
    samples = []
    for i, (boxes, ids) in enumerate(boxes_per_image):
        path = root / "src" / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.full((*size, 3), 30 * i, np.uint8))
        samples.append(Sample(f"{i:03d}", path, size[1], size[0], Detections.from_arrays(boxes, ids)))
    return write_dataset(DetectionDataset(root, list(classes), samples), root / "ds", "kitti")


def test_oracle_scores_one_and_writes_report(tmp_path):
    ds = write_kitti(tmp_path, [([IMAGE_BOX], [0]), ([IMAGE_BOX], [0]), (np.zeros((0, 4)), [])])
    report = evaluate_model(FixedBoxDetector(), ds, tmp_path / "out")
    m = report.metrics
    assert m.map == pytest.approx(1.0) and m.map50 == pytest.approx(1.0)
    assert np.isnan(m.per_class_ap["person"])  # in the model, not in the dataset
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert doc["task"] == "detection" and doc["num_images"] == 3
    assert doc["metrics"]["mAP50"] == pytest.approx(1.0) and doc["metrics"]["per_class"]["person"]["AP"] is None
    # the empty image gets a false positive at conf 0.8: background row, car column
    assert doc["metrics"]["confusion_matrix"] == [[0, 0, 0], [0, 2, 0], [0, 1, 0]]
    for name in ("pr_curves.png", "confusion_matrix.png"):
        image = cv2.imread(str(tmp_path / "out" / name))
        assert image is not None and image.shape[0] > 100


def test_a_miss_lowers_the_score(tmp_path):
    ds = write_kitti(tmp_path, [([IMAGE_BOX], [0]), ([BOX], [0])])  # BOX in image pixels: IoU .25, a miss
    m = evaluate_model(FixedBoxDetector(), ds).metrics
    assert m.map50 == pytest.approx(0.5, abs=0.01) and m.recall["car"] == pytest.approx(0.5)


def test_dataset_class_unknown_to_the_model_is_named(tmp_path):
    ds = write_kitti(tmp_path, [([BOX, BOX], [0, 1])], classes=("car", "tesla"))
    with pytest.raises(DataError, match="classes the model does not know: tesla") as info:
        evaluate_model(FixedBoxDetector(), ds)
    assert "\n" not in str(info.value)


def test_class_mapping_ignores_unused_unknown_classes():
    assert class_mapping(["DontCare", "car"], ["car"], [1]).tolist() == [-1, 0]


def test_empty_dataset(tmp_path):
    empty = DetectionDataset(tmp_path, ["car"], [])
    with pytest.raises(DataError, match="the dataset has no images"):
        evaluate_model(FixedBoxDetector(), empty)


def test_dataset_without_boxes(tmp_path):
    ds = write_kitti(tmp_path, [(np.zeros((0, 4)), [])])
    with pytest.raises(DataError, match="no labelled boxes"):
        evaluate_model(FixedBoxDetector(), ds)


def test_detector_on_a_classification_set_is_a_usage_error(tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    ds = ClassificationDataset(tmp_path, ["car"], [ClassificationSample(image, 0)])
    with pytest.raises(UsageError, match="a detection model cannot be evaluated on a classification dataset"):
        evaluate_model(FixedBoxDetector(), ds)


@pytest.mark.slow
def test_checkpoint_and_onnx_on_the_synthetic_world(tmp_path):
    """A real (random-weight) YOLOX-nano: the report equals predict + metrics by hand, .onnx equals .safetensors."""
    from lanner.data.synth import CLASSES, SynthConfig, generate_images

    ds = generate_images(SynthConfig(images=4, width=96, height=64, seed=1, actors_min=2, actors_max=5), tmp_path / "s")
    model = create_model("yolox_nano", class_names=list(CLASSES))
    model.info = model.info.replace(input_size=(64, 96), mean=(120.0,) * 3, std=(60.0,) * 3, color_order="RGB")
    for module in model.modules():  # fresh BatchNorm statistics from one batch: scores spread out, no ties
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        model.train()(torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1)))
        for layer in [*model.head.obj_preds, *model.head.cls_preds, *model.head.reg_preds]:
            layer.weight.mul_(0.0005)
            layer.bias.zero_()
    model.eval()
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model)
    export_onnx(model, tmp_path / "m.onnx", batch="dynamic")
    from_ckpt = evaluate_model(ckpt, tmp_path / "s", tmp_path / "out", conf=0.3, batch_size=3)
    from_onnx = evaluate_model(tmp_path / "m.onnx", tmp_path / "s", conf=0.3, batch_size=3)
    images = [cv2.imread(str(s.image_path)) for s in ds.samples]
    by_hand = evaluate_detections(
        predict_detections(model, images, conf=0.3), [s.boxes for s in ds.samples], list(CLASSES)
    )
    assert from_ckpt.metrics.map == pytest.approx(by_hand.map, abs=1e-9)
    assert from_onnx.metrics.map == pytest.approx(by_hand.map, abs=1e-3)
    assert from_onnx.metrics.map50 == pytest.approx(by_hand.map50, abs=1e-3)
    # random weights find ~nothing at IoU .5, so also compare the confusion matrix (it counts every box >= .25)
    assert from_ckpt.metrics.confusion.sum() > 10
    np.testing.assert_array_equal(from_ckpt.metrics.confusion, by_hand.confusion)
    np.testing.assert_array_equal(from_onnx.metrics.confusion, by_hand.confusion)
    assert (tmp_path / "out" / "metrics.json").is_file()


def test_classifier_on_an_imagefolder_set(tmp_path):
    from lanner.data.formats.imagefolder import read_imagefolder

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / "set" / name).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(tmp_path / "set" / name / f"{i}.png"), rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))
    model = create_model("resnet10", class_names=["dog", "bird", "cat"]).eval()
    model.info = model.info.replace(input_size=(32, 32))
    report = evaluate_model(model, read_imagefolder(tmp_path / "set"), tmp_path / "out", batch_size=4)
    m = report.metrics
    assert report.task == "classification" and m.confusion.shape == (3, 3)
    assert m.confusion.sum() == 6 and m.confusion[1].sum() == 0  # no bird images; cats and dogs mapped by name
    assert m.confusion[0].sum() == 3 and m.confusion[2].sum() == 3
    assert m.top5 == 1.0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["metrics"]["top1"] == pytest.approx(m.top1)
    assert cv2.imread(str(tmp_path / "out" / "confusion_matrix.png")) is not None


def test_doctests():
    import doctest

    from lanner.train import evaluate, report_plots

    assert doctest.testmod(evaluate).failed == 0
    assert doctest.testmod(report_plots).failed == 0


def test_plot_confusion_matrix_checks_labels(tmp_path):
    from lanner.train.report_plots import plot_confusion_matrix

    with pytest.raises(ValueError, match="does not match 3 labels"):
        plot_confusion_matrix(np.zeros((2, 2)), ["a", "b", "c"], tmp_path / "cm.png")


def test_coco_crowd_regions_are_ignored(tmp_path):
    samples = []
    for i, crowd in enumerate([0, 1]):
        path = tmp_path / "src" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), np.zeros((128, 128, 3), np.uint8))
        boxes = Detections.from_arrays([IMAGE_BOX], [0], data={"iscrowd": np.array([crowd])})
        samples.append(Sample(str(i), path, 128, 128, boxes))
    ds = write_dataset(DetectionDataset(tmp_path, ["car"], samples), tmp_path / "coco", "coco")
    m = evaluate_model(FixedBoxDetector(), ds).metrics
    assert m.num_gt["car"] == 1 and m.map == pytest.approx(1.0)
    assert m.confusion[-1].sum() == 0  # the detection on the crowd region is not a false positive


def test_detections_inside_kitti_dontcare_regions_count_as_neither_hit_nor_miss():
    from lanner.train.evaluate import ground_truth_for

    car = Detections.from_arrays([[10, 10, 50, 50]], [1])
    sample = Sample("0", Path("0.png"), 200, 100, car, ignore_regions=np.array([[100, 0, 200, 100]], np.float32))
    ds = DetectionDataset(Path("."), ["person", "car"], [sample])
    # the right car, and a more confident car inside the DontCare area
    pred = Detections.from_arrays([[10, 10, 50, 50], [120, 20, 160, 60]], [1, 1], confidence=[0.6, 0.9])
    truth = ground_truth_for(ds, np.array([0, 1]))
    assert len(truth[0]) == 2 and truth[0].data["ignore"].tolist() == [False, True]  # one region per labelled class
    assert evaluate_detections([pred], truth, ["person", "car"]).per_class_ap50["car"] == pytest.approx(1.0)
    without = ground_truth_for(
        DetectionDataset(Path("."), ["person", "car"], [Sample("0", Path("0.png"), 200, 100, car)]), np.array([0, 1])
    )
    assert evaluate_detections([pred], without, ["person", "car"]).per_class_ap50["car"] < 0.9  # it was an FP


def test_class_map_on_a_classification_set_renames_but_cannot_leave_classes_out(tmp_path):
    from lanner.train.evaluate import with_class_map

    ds = ClassificationDataset(tmp_path, ["Sedan", "Bus"], [ClassificationSample(tmp_path / "a.png", 0)])
    assert with_class_map(ds, {"Sedan": "car"}).classes == ["car", "Bus"]
    with pytest.raises(UsageError, match=r"--class-map NAME= \(not scored\) works on detection sets only"):
        with_class_map(ds, {"Bus": ""})
