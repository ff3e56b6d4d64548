"""Evaluate a checkpoint or an exported ONNX model on a dataset; write metrics JSON and plots.

Detection datasets (KITTI/COCO/YOLO) give COCO metrics (``lanner.train.metrics.detection``); an
ImageFolder set gives top-1/top-5 and a confusion matrix. Dataset classes are matched to the model's
classes by name, so a dataset may hold a subset of the model's classes in any order; a labelled class
the model does not know is an error that names it. COCO ``iscrowd`` boxes are ignore regions. With
``out_dir``, ``errors.jpg`` shows the images the detector gets most wrong, or the classifier's most
confident mistakes (``error_sheet.py``).

Example:
    >>> report = evaluate_model("results/best.safetensors", "data/val", out_dir="results/eval")  # doctest: +SKIP
    >>> report.metrics.map50  # doctest: +SKIP
    0.91
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError, UsageError
from lanner.core.progress import ProgressFn, advance
from lanner.data.dataset import ClassificationDataset, DetectionDataset
from lanner.data.images import read_image
from lanner.train.error_sheet import classification_error_sheet, error_sheet
from lanner.train.metrics import (
    ClassificationMetrics,
    DetectionMetrics,
    evaluate_classification,
    evaluate_detections,
)
from lanner.train.predict import (
    Model,
    load_model,
    model_class_names,
    model_task,
    predict_classes,
    predict_detections,
)
from lanner.train.report_plots import plot_confusion_matrix, plot_pr_curves


@dataclass
class EvaluationReport:
    """What ``evaluate_model`` measured and where it wrote files (``files``: name -> path)."""

    task: str
    metrics: DetectionMetrics | ClassificationMetrics
    class_names: list[str]
    num_images: int
    settings: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``metrics.json`` document."""
        return {
            "task": self.task,
            "num_images": self.num_images,
            "classes": self.class_names,
            "settings": self.settings,
            "metrics": self.metrics.to_dict(),
        }


def class_mapping(dataset_classes: Sequence[str], model_classes: Sequence[str], used: Sequence[int]) -> np.ndarray:
    """Dataset class id -> model class id, by name. Labelled classes the model lacks raise ``DataError``.

    Example:
        >>> class_mapping(["car", "person"], ["person", "bike", "car"], [0, 1]).tolist()
        [2, 0]
    """
    index = {name: i for i, name in enumerate(model_classes)}
    unknown = sorted({dataset_classes[i] for i in used if dataset_classes[i] not in index})
    if unknown:
        raise DataError(
            f"the dataset has classes the model does not know: {', '.join(unknown)} "
            f"(the model knows {', '.join(model_classes)})",
            fix="evaluate a model trained on these classes, or relabel/drop those boxes",
        )
    return np.asarray([index.get(name, -1) for name in dataset_classes], np.int64)


def evaluate_model(
    model: str | Path | Model,
    dataset: str | Path | DetectionDataset | ClassificationDataset,
    out_dir: str | Path | None = None,
    *,
    conf: float = 0.001,
    iou: float = 0.65,
    batch_size: int = 8,
    device: str = "cpu",
    max_dets: int = 100,
    progress: ProgressFn | None = None,
    class_map: Mapping[str, str] | None = None,
) -> EvaluationReport:
    """Run ``model`` over ``dataset`` and score it; with ``out_dir``, write metrics.json and the PNG plots.

    ``class_map`` renames dataset classes to the model's (``{"Pedestrian": "person"}``: a COCO model on KITTI);
    a class mapped to ``""`` is not scored: its boxes become ignore regions, as KITTI's DontCare (detection sets).

    ``model`` is a path (``.safetensors``/``.onnx``) or a loaded model; ``dataset`` a path (format
    detected) or a dataset object. ``conf``/``iou`` are the detector's score and NMS thresholds (keep
    ``conf`` low for mAP). ``progress`` is called with the number of images done.

    Example:
        >>> evaluate_model("model.onnx", "data/val", "out", conf=0.001).metrics.map  # doctest: +SKIP
    """
    if isinstance(model, (str, Path)):
        model = load_model(model, device)
    ds = with_class_map(_read_dataset(dataset), class_map or {})
    if len(ds) == 0:
        raise DataError("the dataset has no images", where=str(ds.root), fix="point --dataset at a folder with images")
    task = model_task(model)
    expected = "detection" if isinstance(ds, DetectionDataset) else "classification"
    if task != expected:
        raise UsageError(
            f"a {task} model cannot be evaluated on a {expected} dataset",
            where=str(ds.root),
            fix="use a detection set (KITTI/COCO/YOLO) for detectors, an ImageFolder set for classifiers",
        )
    settings: dict[str, Any] = {"conf": conf, "iou": iou, "max_dets": max_dets, "dataset": str(ds.root)}
    if class_map:
        settings["class_map"] = dict(class_map)
    if isinstance(ds, DetectionDataset):
        metrics, predictions, truth = _evaluate_detection(model, ds, conf, iou, batch_size, device, max_dets, progress)
    else:
        settings = {"dataset": str(ds.root)}
        metrics, logits, labels = _evaluate_classification(model, ds, batch_size, device, progress)
    report = EvaluationReport(task, metrics, list(model_class_names(model)), len(ds), settings)
    if out_dir is not None:
        report.files = write_report(report, out_dir)
        if isinstance(ds, DetectionDataset):
            sheet = error_sheet(ds.samples, predictions, truth, report.class_names)
        else:
            sheet = classification_error_sheet(ds.samples, logits, labels, report.class_names)
        if sheet is not None:  # a perfect score has no errors to show
            report.files["errors"] = Path(out_dir) / "errors.jpg"
            cv2.imwrite(str(report.files["errors"]), sheet)
    return report


def with_class_map(
    ds: DetectionDataset | ClassificationDataset, class_map: Mapping[str, str]
) -> DetectionDataset | ClassificationDataset:
    """``ds`` with its classes renamed by ``class_map``; on a detection set, boxes of a class mapped to ``""``
    become ignore regions. Names that are not dataset classes are an error (a typo would silently do nothing).

    Example:
        >>> ds = DetectionDataset(Path("."), ["Car", "Van"], [])
        >>> with_class_map(ds, {"Car": "car", "Van": ""}).classes
        ['car', '']
    """
    if not class_map:
        return ds
    unknown = sorted(set(class_map) - set(ds.classes))
    if unknown:
        raise UsageError(
            f"--class-map names classes the dataset does not have: {', '.join(unknown)}",
            where=str(ds.root),
            fix=f"the dataset's classes are {', '.join(ds.classes)}",
        )
    classes = [class_map.get(c, c) for c in ds.classes]
    if isinstance(ds, ClassificationDataset):
        if "" in classes:
            raise UsageError("--class-map NAME= (not scored) works on detection sets only", where=str(ds.root))
        return dataclasses.replace(ds, classes=classes)
    dropped = np.asarray([c == "" for c in classes] or [False])
    samples = []
    for s in ds.samples:
        drop = dropped[s.boxes.class_id] if len(s.boxes) else np.zeros(0, bool)
        regions = np.concatenate([np.asarray(s.ignore_regions, np.float32).reshape(-1, 4), s.boxes.xyxy[drop]])
        samples.append(dataclasses.replace(s, boxes=s.boxes[~drop], ignore_regions=regions))
    return dataclasses.replace(ds, classes=classes, samples=samples)


def _read_dataset(dataset: Any) -> DetectionDataset | ClassificationDataset:
    if isinstance(dataset, (DetectionDataset, ClassificationDataset)):
        return dataset
    from lanner.data.io import read_any

    return read_any(dataset)


def ground_truth_for(ds: DetectionDataset, mapping: np.ndarray) -> list[Detections]:
    """The dataset's boxes with model class ids and an ``ignore`` flag (COCO ``iscrowd``).

    KITTI's class-less ``DontCare`` regions (``Sample.ignore_regions``) become ignore boxes of every class the
    dataset labels, so a detection inside one counts as neither hit nor false positive, as in KITTI's own
    benchmark (matched like a crowd box: intersection over the detection's area).
    """
    labelled = np.unique(np.concatenate([mapping[s.boxes.class_id] for s in ds.samples] or [np.zeros(0, np.int64)]))
    result = []
    for sample in ds.samples:
        boxes = sample.boxes
        crowd = np.asarray(boxes.data.get("iscrowd", np.zeros(len(boxes)))).astype(bool).reshape(len(boxes))
        result.append(ground_truth(boxes.xyxy, mapping[boxes.class_id], crowd, sample.ignore_regions, labelled))
    return result


def ground_truth(
    xyxy: np.ndarray, class_id: np.ndarray, ignore: np.ndarray, regions: np.ndarray, labelled: np.ndarray
) -> Detections:
    """One image's ground truth for ``evaluate_detections``: its boxes (``ignore`` marks crowd ones), then each
    class-less ignore region once per class of ``labelled`` as an ignore box."""
    regions = np.asarray(regions, np.float32).reshape(-1, 4)
    xyxy, class_id, ignore = np.asarray(xyxy, np.float32).reshape(-1, 4), np.asarray(class_id), np.asarray(ignore)
    if len(regions) and len(labelled):
        xyxy = np.concatenate([xyxy, np.tile(regions, (len(labelled), 1))])
        class_id = np.concatenate([class_id, np.repeat(labelled, len(regions))])
        ignore = np.concatenate([ignore, np.ones(len(regions) * len(labelled), bool)])
    return Detections.from_arrays(xyxy, class_id, data={"ignore": ignore.astype(bool)})


def _evaluate_detection(
    model, ds, conf, iou, batch_size, device, max_dets, progress
) -> tuple[DetectionMetrics, list[Detections], list[Detections]]:
    names = list(model_class_names(model))
    used = np.unique(np.concatenate([s.boxes.class_id for s in ds.samples])).tolist()
    if not used:
        raise DataError("the dataset has no labelled boxes to evaluate against", where=str(ds.root))
    ground_truth = ground_truth_for(ds, class_mapping(ds.classes, names, used))
    predictions: list[Detections] = []
    for start in range(0, len(ds), batch_size):
        chunk = ds.samples[start : start + batch_size]
        images = [read_image(s.image_path) for s in chunk]
        predictions.extend(predict_detections(model, images, conf, iou, batch_size, device))
        advance(progress, len(chunk))
    return evaluate_detections(predictions, ground_truth, names, max_dets=max_dets), predictions, ground_truth


def _evaluate_classification(
    model, ds, batch_size, device, progress
) -> tuple[ClassificationMetrics, np.ndarray, np.ndarray]:
    names = list(model_class_names(model))
    used = sorted({s.class_id for s in ds.samples})
    mapping = class_mapping(ds.classes, names, used)
    logits = []
    for start in range(0, len(ds), batch_size):
        chunk = ds.samples[start : start + batch_size]
        logits.append(predict_classes(model, [read_image(s.image_path) for s in chunk], batch_size, device))
        advance(progress, len(chunk))
    labels = mapping[np.asarray([s.class_id for s in ds.samples], np.int64)]
    scores = np.concatenate(logits)
    return evaluate_classification(scores, labels, names), scores, labels


def write_report(report: EvaluationReport, out_dir: str | Path) -> dict[str, Path]:
    """Write ``metrics.json``, ``confusion_matrix.png`` and (detection) ``pr_curves.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"metrics": out_dir / "metrics.json"}
    files["metrics"].write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    metrics = report.metrics
    if isinstance(metrics, DetectionMetrics):
        ap50 = {k: v for k, v in metrics.per_class_ap50.items() if math.isfinite(v)}
        files["pr_curves"] = plot_pr_curves(metrics.pr_curves, out_dir / "pr_curves.png", ap50)
        labels = [*report.class_names, "background"]
        files["confusion_matrix"] = plot_confusion_matrix(metrics.confusion, labels, out_dir / "confusion_matrix.png")
    else:
        files["confusion_matrix"] = plot_confusion_matrix(
            metrics.confusion, report.class_names, out_dir / "confusion_matrix.png"
        )
    return files
