"""Bring images to a network's input and boxes back: letterbox/stretch, colour order, mean/std.

One implementation shared by training, evaluation, calibration, the engine tools and the pipeline, so
a model sees the same pixels everywhere. ``InputSpec`` holds what a model's metadata says about its
input (``ModelInfo`` fields, or the ONNX ``metadata_props`` that ``export_onnx`` writes).

``letterbox`` follows YOLOX: scale to fit keeping the aspect ratio, image at the top-left, pad right and
bottom with ``pad_value``. Boxes map back with a single division, no offset.

Example:
    >>> import numpy as np
    >>> spec = InputSpec(size_hw=(384, 640), resize="letterbox")
    >>> nchw, scales = to_network_input([np.zeros((720, 1280, 3), np.uint8)], spec)
    >>> nchw.shape, scales[0]
    ((1, 3, 384, 640), (0.5, 0.5))
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from lanner.core.errors import ConfigError, DataError
from lanner.core.frame import Picture

RESIZE_MODES = ("letterbox", "stretch", "center_crop")  # center_crop: shortest side to size, centre crop


@dataclass(frozen=True)
class InputSpec:
    """A network input: size (height, width), resize mode, colour order, mean/std in 0-255 pixel units."""

    size_hw: tuple[int, int]
    resize: str = "letterbox"
    color_order: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pad_value: float = 114.0

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"unknown resize mode '{self.resize}'", fix=f"use one of {', '.join(RESIZE_MODES)}")
        if self.color_order not in ("RGB", "BGR"):
            raise ConfigError(f"unknown color_order '{self.color_order}'", fix="use RGB or BGR")
        if len(self.size_hw) != 2 or min(self.size_hw) < 1:
            raise ConfigError(f"input size must be (height, width) > 0, got {self.size_hw}")

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> InputSpec:
        """Read the spec from ONNX ``metadata_props`` as written by ``lanner.models.export_onnx``."""
        if "input_size" not in meta:
            raise DataError(
                "the model has no 'input_size' in its metadata_props",
                fix="export it with `lanner export` or pass the input size and normalisation explicitly",
            )

        def floats(key: str, default: tuple[float, ...]) -> tuple[float, float, float]:
            return tuple(float(v) for v in json.loads(meta[key])) if key in meta else default  # type: ignore[return-value]

        return cls(
            size_hw=tuple(int(v) for v in json.loads(meta["input_size"])),  # type: ignore[arg-type]
            resize=meta.get("resize", "stretch"),
            color_order=meta.get("color_order", "RGB"),
            mean=floats("mean", (0.0, 0.0, 0.0)),
            std=floats("std", (1.0, 1.0, 1.0)),
            pad_value=float(json.loads(meta["pad_value"])) if "pad_value" in meta else 114.0,
        )


def letterbox(image: np.ndarray, size_hw: tuple[int, int], pad_value: float = 114.0) -> tuple[np.ndarray, float]:
    """Scale ``image`` (HxWxC) to fit ``size_hw`` keeping its aspect; pad right/bottom. Returns (image, scale)."""
    h, w = image.shape[:2]
    new_h, new_w, scale = letterbox_size((h, w), size_hw)
    out = np.full((*size_hw, image.shape[2]), pad_value, dtype=image.dtype)
    if scale == 1:
        out[:new_h, :new_w] = image
    else:
        view = out[:new_h, :new_w]
        resized = shrink_to(image, new_w, new_h, dst=view)  # straight into the canvas when OpenCV can
        if not np.shares_memory(resized, out):
            view[:] = resized
    return out, scale


def letterbox_size(image_hw: tuple[int, int], size_hw: tuple[int, int]) -> tuple[int, int, float]:
    """``(new_h, new_w, scale)``: the size an ``image_hw`` image takes inside a ``size_hw`` letterbox."""
    h, w = image_hw
    scale = min(size_hw[0] / h, size_hw[1] / w)
    return max(1, round(h * scale)), max(1, round(w * scale)), scale


def letterbox_picture(picture: Picture, size_hw: tuple[int, int], pad_value: float = 114.0) -> tuple[np.ndarray, float]:
    """``letterbox`` for a decoder's ``Picture``: resized from its own planes, never converted at full size."""
    new_h, new_w, scale = letterbox_size((picture.height, picture.width), size_hw)
    out = np.full((*size_hw, 3), pad_value, dtype=np.uint8)
    out[:new_h, :new_w] = picture.resized_bgr(new_w, new_h)
    return out, scale


def shrink_to(image: np.ndarray, new_w: int, new_h: int, dst: np.ndarray | None = None) -> np.ndarray:
    """Resize to ``new_w x new_h``: bilinear from half size up, box filter first below it (into ``dst`` if given).

    OpenCV's INTER_AREA at a fractional factor takes its general path: 8.9 ms for 1280x720 -> 796x448 on one
    core, against 1.3 ms bilinear. At a factor in [0.5, 1) bilinear already taps every source pixel (its
    step is under 2 px), so it is used there: the starter detector scores mAP@.5 0.7201 vs 0.7202 on 720p
    frames at 448x800 (docs/benchmarks.md). Below half size the image is first box-filtered by the largest
    integer factor k, INTER_AREA's fast path (~0.5 ms), then brought to size bilinearly; the earlier
    288x512 starter detector scored the same that way (mAP@.5 0.436 vs 0.435). ``dst`` is a hint: check
    ``np.shares_memory`` on the result, OpenCV allocates its own when it cannot use it.
    """
    h, w = image.shape[:2]
    scale = min(new_w / w, new_h / h)
    if scale >= 0.5:
        return cv2.resize(image, (new_w, new_h), dst=dst, interpolation=cv2.INTER_LINEAR)
    k = int(1.0 / scale)
    shrunk = cv2.resize(image, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    return cv2.resize(shrunk, (new_w, new_h), dst=dst, interpolation=cv2.INTER_LINEAR)


def resize_image(image: np.ndarray | Picture, spec: InputSpec) -> tuple[np.ndarray, tuple[float, float]]:
    """Bring one HxWx3 image (or a decoder's ``Picture``) to the spec's size; returns it and the (x, y) scale
    applied to coordinates."""
    if not isinstance(image, np.ndarray):  # a Picture (an ndarray check first: the Protocol check costs 17 us)
        if spec.resize == "center_crop":
            return center_crop(image.to_bgr(), spec.size_hw)
        if spec.resize == "letterbox":
            out, scale = letterbox_picture(image, spec.size_hw, spec.pad_value)
            return out, (scale, scale)
        out_h, out_w = spec.size_hw
        return image.resized_bgr(out_w, out_h), (out_w / image.width, out_h / image.height)
    if spec.resize == "letterbox":
        out, scale = letterbox(image, spec.size_hw, spec.pad_value)
        return out, (scale, scale)
    if spec.resize == "center_crop":
        return center_crop(image, spec.size_hw)
    h, w = image.shape[:2]
    out_h, out_w = spec.size_hw
    out = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_AREA if out_h < h else cv2.INTER_LINEAR)
    return out, (out_w / w, out_h / h)


def center_crop(image: np.ndarray, size_hw: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float]]:
    """A classifier's preprocessing as torchvision's ``Resize(size)`` + ``CenterCrop(size)`` (what Ultralytics
    classifiers use): for a square size, the shortest side goes to it (the long side truncated, as torchvision
    does) and the centre is cut out; a non-square size is a plain resize, as Ultralytics does there. Shrinking
    averages (INTER_AREA, like PIL's antialiased resize). Returns the image and the (x, y) scale.

    Example:
        >>> center_crop(np.zeros((50, 100, 3), np.uint8), (20, 20))[0].shape
        (20, 20, 3)
    """
    h, w = image.shape[:2]
    out_h, out_w = size_hw
    if out_h != out_w:
        new_h, new_w = out_h, out_w
    elif h <= w:
        new_h, new_w = out_h, max(out_w, int(out_h * w / h))
    else:
        new_h, new_w = max(out_h, int(out_w * h / w)), out_w
    shrink = new_h < h or new_w < w
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    top, left = round((new_h - out_h) / 2), round((new_w - out_w) / 2)
    crop = np.ascontiguousarray(resized[top : top + out_h, left : left + out_w])
    return crop, (new_w / w, new_h / h)


def to_network_input(
    images_bgr: Sequence[np.ndarray | Picture], spec: InputSpec, dtype: type = np.float32
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Stack BGR uint8 images (or ``Picture``s) into the normalised NCHW batch the model expects; also return
    per-image scales."""
    pixels, scales = to_network_pixels(images_bgr, spec)
    if all(m == 0.0 for m in spec.mean) and all(s == 1.0 for s in spec.std):  # YOLOX: raw 0-255 pixels
        return pixels.astype(dtype), scales  # (x - 0) * 1 is x: one conversion pass, the same bits
    mean = np.asarray(spec.mean, np.float32).reshape(3, 1, 1)
    inv_std = (1.0 / np.asarray(spec.std, np.float32)).reshape(3, 1, 1)
    batch = np.subtract(pixels, mean, dtype=np.float32)  # float32 subtract, then multiply: the same bits
    np.multiply(batch, inv_std, out=batch)  # as ``normalise_pixels`` on a device
    return (batch if dtype == np.float32 else batch.astype(dtype)), scales


def to_network_pixels(
    images_bgr: Sequence[np.ndarray | Picture], spec: InputSpec
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Resized uint8 NCHW in the model's colour order, before mean/std; also the per-image scales.

    Training loaders hand these to the device, a quarter of the float32 bytes, and normalise there
    (``lanner.train.data.normalise_pixels``); ``to_network_input`` normalises them here.
    """
    if not images_bgr:
        raise DataError("no images to preprocess")
    batch = np.empty((len(images_bgr), 3, *spec.size_hw), dtype=np.uint8)
    scales = []
    for i, image in enumerate(images_bgr):
        if not isinstance(image, np.ndarray):  # a Picture
            resized, scale = resize_image(image, spec)
        elif image.ndim != 3 or image.shape[2] != 3:
            raise DataError(f"image {i} must be HxWx3, got shape {image.shape}")
        elif image.shape[:2] == tuple(spec.size_hw) and image.dtype == np.uint8:  # already sized (the muxer's case)
            resized, scale = image, (1.0, 1.0)
        else:
            resized, scale = resize_image(image, spec)
        planes = cv2.split(resized)  # contiguous B, G, R planes: no strided HWC -> CHW copy (~10x less CPU)
        for c, plane in enumerate(reversed(planes) if spec.color_order == "RGB" else planes):
            batch[i, c] = plane
        scales.append(scale)
    return batch, scales


def image_hw(image: np.ndarray | Picture) -> tuple[int, int]:
    """Height and width of an HxWxC array or a decoder's ``Picture``."""
    if isinstance(image, np.ndarray):
        return int(image.shape[0]), int(image.shape[1])
    return int(image.height), int(image.width)


def opencv_single_threaded() -> Callable[[], None]:
    """Turn OpenCV's own thread pool off; returns the call that restores the process's setting.

    For code that already resizes in parallel threads (a pipeline's stages): the pool's hand-offs then cost
    CPU and add no speed, 1.5 ms per 720p frame in the decode threads' resizes (docs/benchmarks.md, Pipeline).
    """
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    return lambda: cv2.setNumThreads(previous)


def boxes_to_image(xyxy: np.ndarray, scale_xy: tuple[float, float], image_hw: tuple[int, int]) -> np.ndarray:
    """Map boxes from network-input pixels back to the original image, clipped to it."""
    out = np.asarray(xyxy, np.float32).reshape(-1, 4) / np.asarray([*scale_xy, *scale_xy], np.float32)
    h, w = image_hw
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out
