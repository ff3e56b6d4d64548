"""L1: datasets in the formats users have (KITTI, COCO, YOLO, ImageFolder) and the synthetic world."""

from lanner.data.dataset import ClassificationDataset, ClassificationSample, DetectionDataset, Sample
from lanner.data.formats import read_imagefolder, write_imagefolder
from lanner.data.io import convert, detect_format, read_any, read_dataset, write_dataset
from lanner.data.split import split_classification, split_dataset, write_split
from lanner.data.stats import Stats, compute_stats, plot_stats
from lanner.data.validate import Problem, Report, validate

__all__ = [
    "ClassificationDataset",
    "ClassificationSample",
    "DetectionDataset",
    "Problem",
    "Report",
    "Sample",
    "Stats",
    "compute_stats",
    "convert",
    "detect_format",
    "plot_stats",
    "read_any",
    "read_dataset",
    "read_imagefolder",
    "split_classification",
    "split_dataset",
    "validate",
    "write_dataset",
    "write_imagefolder",
    "write_split",
]
