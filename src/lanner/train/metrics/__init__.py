"""Evaluation metrics in numpy: COCO-style detection metrics and classification accuracy/confusion.

Example:
    >>> from lanner.train.metrics import evaluate_detections, evaluate_classification
"""

from lanner.train.metrics.classification import ClassificationMetrics, evaluate_classification
from lanner.train.metrics.detection import (
    IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    DetectionMetrics,
    box_iou_coco,
    detection_confusion_matrix,
    evaluate_detections,
)

__all__ = [
    "IOU_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "ClassificationMetrics",
    "DetectionMetrics",
    "box_iou_coco",
    "detection_confusion_matrix",
    "evaluate_classification",
    "evaluate_detections",
]
