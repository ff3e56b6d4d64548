"""Small datasets for the format, validation, stats and split tests: 64x48 PNGs written with cv2."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lanner.core.detections import Detections
from lanner.data.dataset import DetectionDataset, Sample, kitti_defaults

WIDTH, HEIGHT = 64, 48
CLASSES = ["car", "person", "bicycle"]


def write_png(path: Path, width: int = WIDTH, height: int = HEIGHT, seed: int = 0) -> Path:
    """A small random PNG at ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    return path.resolve()


def boxes(xyxy: list[list[float]], class_id: list[int], kitti: bool = True) -> Detections:
    """Ground-truth boxes, with KITTI's extra columns (non-default values) when ``kitti``."""
    n = len(class_id)
    data = kitti_defaults(n) if kitti else {}
    if kitti and n:
        data["truncated"] = np.round(np.linspace(0.0, 0.5, n), 2).astype(np.float32)
        data["occluded"] = np.arange(n, dtype=np.int64) % 3
        data["alpha"] = np.full(n, -1.57, np.float32)
        data["dimensions"] = np.tile(np.array([1.5, 1.6, 3.9], np.float32), (n, 1))
        data["location"] = np.tile(np.array([-0.65, 1.71, 46.7], np.float32), (n, 1))
        data["rotation_y"] = np.full(n, 0.25, np.float32)
    return Detections.from_arrays(np.asarray(xyxy, np.float32).reshape(-1, 4), class_id, data=data)


def make_dataset(root: Path, n_images: int = 4, kitti: bool = True) -> DetectionDataset:
    """``n_images`` samples (ids 000000..), image i holding i % 3 + 1 boxes of cycling classes."""
    samples = []
    for i in range(n_images):
        image_id = f"{i:06d}"
        path = write_png(root / "source" / f"{image_id}.png", seed=i)
        k = i % 3 + 1
        xyxy = [[2.0 + 3 * j, 4.5 + 2 * j, 20.25 + 5 * j, 30.0 + j] for j in range(k)]
        samples.append(Sample(image_id, path, WIDTH, HEIGHT, boxes(xyxy, [(i + j) % 3 for j in range(k)], kitti)))
    return DetectionDataset(root=root / "source", classes=list(CLASSES), samples=samples)


def write_format(tmp: Path, fmt: str, n_images: int = 4, kitti: bool = True) -> Path:
    """A small dataset written in ``fmt`` under ``tmp/<fmt>`` (images copied)."""
    from lanner.data.io import write_dataset

    return write_dataset(make_dataset(tmp, n_images, kitti), tmp / fmt, fmt, images="copy")


def kitti_line(name: str, xyxy: tuple[float, float, float, float]) -> str:
    """A 15-column KITTI line with 2D-only defaults."""
    box = " ".join(f"{v:.2f}" for v in xyxy)
    return f"{name} 0.00 0 0.00 {box} 0.00 0.00 0.00 0.00 0.00 0.00 0.00"
