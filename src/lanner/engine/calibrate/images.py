"""Calibration images: a folder → fixed-order batches preprocessed the way the model expects.

The preprocessing comes from the model's ONNX ``metadata_props`` as ``lanner export`` writes them
(``input_size`` [h, w], ``mean``/``std`` in pixel units 0-255 and in ``color_order``, ``resize``
``stretch`` or ``letterbox`` with ``pad_value``, ``input_layout``). A model without that metadata
gets its static input size, RGB and ``pixel / 255``. Images of any size are resized to the input as
the model's own pipeline would (TensorRT users feed whatever their camera gives).

The order is fixed: files sorted by path relative to the folder (recursively), the first ``count``
taken (TensorRT's entropy thresholds depend on the data; a fixed order makes runs repeatable).

Example:
    >>> prep = Preprocess.from_graph(load_onnx("resnet18.onnx"))  # doctest: +SKIP
    >>> paths = list_images("calib/", count=500)  # doctest: +SKIP
    >>> next(iter_batches(paths, prep, batch=8)).shape  # doctest: +SKIP
    (8, 3, 224, 224)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lanner.core.errors import ConfigError, DataError, UsageError
from lanner.core.ultralytics import lanner_metadata
from lanner.engine.ir.graph import Graph

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_COUNT = 500
MAX_COUNT = 1000


@dataclass(frozen=True)
class Preprocess:
    """How one image becomes one network input (see the module docstring)."""

    height: int
    width: int
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (255.0, 255.0, 255.0)
    color_order: str = "RGB"
    resize: str = "stretch"
    pad_value: float = 114.0
    layout: str = "NCHW"

    @staticmethod
    def from_graph(graph: Graph) -> Preprocess:
        """Read the preprocessing from ``graph.metadata_props`` and the input's shape."""
        if len(graph.inputs) != 1:
            raise ConfigError(f"calibration needs a model with one image input, got {list(graph.inputs)}")
        shape = graph.values[graph.inputs[0]].shape or ()
        meta = lanner_metadata(graph.metadata_props, shape, where=graph.name)  # an Ultralytics export's preprocessing
        layout = meta.get("input_layout", "NCHW")
        if layout not in ("NCHW", "NHWC") or len(shape) != 4:
            raise ConfigError(
                f"input '{graph.inputs[0]}' is not an NCHW/NHWC image batch (shape {list(shape)}, layout {layout})",
                fix="calibrate image models with one 4-D input",
            )
        channels = shape[1] if layout == "NCHW" else shape[3]
        if channels != 3:
            raise ConfigError(f"input '{graph.inputs[0]}' has {channels} channels; calibration images are colour (3)")
        height, width = _input_size(meta, shape, layout)
        fields = {"mean": _triple(meta, "mean"), "std": _triple(meta, "std")}
        return Preprocess(
            height=height,
            width=width,
            **{k: v for k, v in fields.items() if v is not None},
            color_order=meta.get("color_order", "RGB"),
            resize=meta.get("resize", "stretch"),
            pad_value=float(json.loads(meta.get("pad_value", "114"))),
            layout=layout,
        )

    def __call__(self, image_bgr: np.ndarray) -> np.ndarray:
        """One HxWx3 uint8 BGR image (as OpenCV reads it) → one float32 input (CHW or HWC)."""
        import cv2

        image = image_bgr if self.color_order == "BGR" else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        image = self._resize(image).astype(np.float32)
        image = (image - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(image.transpose(2, 0, 1) if self.layout == "NCHW" else image)

    def _resize(self, image: np.ndarray) -> np.ndarray:
        import cv2

        h, w = image.shape[:2]
        if self.resize == "center_crop":
            # lanner.data.preprocess.center_crop (a sibling layer, not importable here; a test keeps them equal)
            new_h, new_w = self.height, self.width
            if new_h == new_w and h <= w:  # square: the shortest side to the size, the long side truncated
                new_w = max(new_w, int(new_h * w / h))
            elif new_h == new_w:
                new_h = max(new_h, int(new_w * h / w))
            flag = cv2.INTER_AREA if new_h < h or new_w < w else cv2.INTER_LINEAR
            resized = cv2.resize(image, (new_w, new_h), interpolation=flag)
            top, left = round((new_h - self.height) / 2), round((new_w - self.width) / 2)
            return resized[top : top + self.height, left : left + self.width]
        if self.resize != "letterbox":
            return cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        scale = min(self.height / h, self.width / w)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        canvas = np.full((self.height, self.width, 3), self.pad_value, dtype=np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        return canvas


def _input_size(meta: Mapping[str, str], shape: Sequence[int | str], layout: str) -> tuple[int, int]:
    if "input_size" in meta:
        height, width = (int(v) for v in json.loads(meta["input_size"]))
        return height, width
    dims = shape[2:4] if layout == "NCHW" else shape[1:3]
    if not all(isinstance(d, int) for d in dims):
        raise ConfigError(
            f"the model's input size is dynamic ({list(dims)}) and it has no 'input_size' metadata",
            fix="export with a fixed input size (lanner export --input-size H W)",
        )
    return int(dims[0]), int(dims[1])


def _triple(meta: Mapping[str, str], key: str) -> tuple[float, float, float] | None:
    if key not in meta:
        return None
    values = json.loads(meta[key])
    if len(values) != 3:
        raise ConfigError(f"metadata '{key}' must have 3 values, got {meta[key]}", fix="re-export the model")
    return (float(values[0]), float(values[1]), float(values[2]))


def list_images(folder: str | os.PathLike[str], count: int = DEFAULT_COUNT) -> list[Path]:
    """The first ``count`` image files under ``folder``, sorted by relative path (a fixed order)."""
    if not 1 <= count <= MAX_COUNT:
        raise UsageError(f"--count {count} is out of range", fix=f"use 1 to {MAX_COUNT} images (500 is typical)")
    root = Path(folder)
    if not root.is_dir():
        what = "is a file, not a folder of images" if root.exists() else "does not exist"
        raise DataError(f"the calibration image folder {what}", where=str(root), fix="pass a folder of images")
    paths = sorted(
        (p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not paths:
        raise DataError(
            "no images in the calibration folder",
            where=str(root),
            fix=f"add {DEFAULT_COUNT} or so representative images ({', '.join(IMAGE_SUFFIXES)})",
        )
    return paths[:count]


def read_image(path: Path) -> np.ndarray:
    """An image as HxWx3 uint8 BGR; an unreadable file is a ``DataError`` naming it."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(
            "cannot read this calibration image (corrupt or not an image)",
            where=str(path),
            fix="delete or replace the file",
        )
    return image


def iter_batches(paths: Sequence[Path], preprocess: Preprocess, batch: int) -> Iterator[np.ndarray]:
    """Batches of ``batch`` preprocessed images in the order of ``paths``; the last one may be smaller."""
    if batch < 1:
        raise UsageError(f"--batch must be at least 1, got {batch}")
    for start in range(0, len(paths), batch):
        yield np.stack([preprocess(read_image(p)) for p in paths[start : start + batch]])
