"""L1: datasets in the formats users have (KITTI, COCO, YOLO, ImageFolder) and the synthetic world."""

from lanner.data.dataset import DetectionDataset, Sample

__all__ = ["DetectionDataset", "Sample"]
