"""The primary detector stage (DeepStream's PGIE): a batch of frames in, per-frame ``Detections`` out.

Preprocessing and decoding come from the model's metadata (``lanner.models.export_onnx`` writes it), so
one config line (``model: detector.onnx``) is enough. The muxer already letterboxes frames into
``Batch.tensor_nchw`` with the model's ``InputSpec``; the detector runs it (in chunks when the model has a
fixed batch), decodes, runs numpy NMS, and maps boxes back to each frame's own pixels.

``input_size`` (DeepStream's ``infer-dims``) runs the model at another network input than it was
exported at (``lanner.pipeline.infer.input_size`` rewrites the ONNX's anchor grids; the muxer letterboxes
to that size because it takes ``input_spec`` from the opened model). ``extra_input_sizes`` also runs
every due frame at those sizes and merges all boxes by NMS: an image pyramid for a detector that knows a
narrower range of object sizes than the camera shows. The earlier starter detector, trained at 288x512 on
640x360 images, found small and far objects in 720p frames better at 448x800 and the nearest, largest
vehicles better at 192x320 (docs/benchmarks.md has the measurements).

``interval`` keeps DeepStream's meaning: the number of frames *skipped* between inferences, per source
(0: every frame, 2: frames 0, 3, 6, ...). Frames that are skipped are left for the tracker to fill.

``workers`` batches are inferred at the same time, each on its own thread with its own runtime of
``threads`` intra-op threads (the runner makes one ``Detector`` per worker). The default, 2 workers
x 1 thread, beats 1 worker x 2 threads on a small CPU: batches need no barrier between cores, and a decode thread that
preempts one worker does not stall the other. ``schedule`` (which frames are due) stays in stream
order in one thread; ``infer`` is what the workers run.

Example:
    >>> detector = Detector(DetectorConfig(model="detector.onnx", conf_threshold=0.4))  # doctest: +SKIP
    >>> inferred = detector.process(batch)  # sets frame.detections on inferred frames  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated

import numpy as np
from pydantic import Field

from lanner.core.config import Section
from lanner.core.detections import Detections
from lanner.core.errors import ConfigError, DataError
from lanner.core.frame import Batch, Picture
from lanner.core.nms import NmsParams
from lanner.data.preprocess import InputSpec, image_hw, to_network_input
from lanner.pipeline.infer.input_size import check_input_size
from lanner.pipeline.infer.postprocess import (
    DETECTION_DECODERS,
    FOREIGN_DECODERS,
    detection_decoder,
    merge_scales,
    to_image_pixels,
)
from lanner.pipeline.infer.runtime import Runtime, open_runtime

InputSize = tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]  # [height, width] of a network input


class DetectorConfig(Section):
    """The ``primary`` section: which model, how to run it, and how to filter its boxes."""

    model: str
    runtime: str = "auto"  # auto | onnxruntime | lanner (by suffix: .onnx / .plan; lanner + .onnx: plan built once)
    plan_batch: int | None = Field(None, ge=1)  # batch a plan built from the ONNX is tuned at (None: the mux's)
    threads: int = Field(1, ge=1)  # intra-op threads per worker
    workers: int = Field(2, ge=1)  # batches inferred in parallel (one thread and one runtime each)
    spin: bool = False  # ONNX Runtime threads busy-wait between operators (see infer.runtime)
    conf_threshold: float = Field(0.3, ge=0.0, le=1.0)
    iou_threshold: float = Field(0.45, ge=0.0, le=1.0)
    max_det: int = Field(300, ge=1)
    class_agnostic_nms: bool = False
    classes: list[int] | None = None  # keep only these class ids (None: all)
    interval: int = Field(0, ge=0)  # frames skipped between inferences, per source (DeepStream `interval`)
    min_box_size: float = Field(2.0, ge=0.0)  # boxes thinner than this (image pixels) are dropped
    labels: list[str] | None = None  # override the model's class names (e.g. from a DeepStream labelfile)
    # network input [height, width] (DeepStream's infer-dims); None: the size the model was exported at.
    # Height and width must be multiples of the model's largest stride (checked when the model is opened).
    input_size: InputSize | None = None
    # more network inputs to run every frame at; their boxes join the input_size ones through NMS (an image
    # pyramid, for a detector trained on a narrower range of object sizes than the camera shows)
    extra_input_sizes: list[InputSize] = []


def _open(config: DetectorConfig, input_size: InputSize | None) -> Runtime:
    """``config``'s model in its runtime at ``input_size`` (None: the size it was exported at)."""
    return open_runtime(
        config.model, config.runtime, config.threads, config.spin, input_size=input_size, plan_batch=config.plan_batch
    )


class Detector:
    """A detector model with its preprocessing and decoding, plus the per-source ``interval`` schedule."""

    def __init__(self, config: DetectorConfig, runtime: Runtime | None = None) -> None:
        self.config = config
        self.runtime = runtime or _open(config, config.input_size)
        meta = self.runtime.metadata
        where = str(self.runtime.path)
        decode = detection_decoder(meta)
        if decode is None:
            kinds = sorted([*DETECTION_DECODERS, *FOREIGN_DECODERS])
            raise ConfigError(
                f"the model's postprocess is {meta.get('postprocess')!r}; the detector supports {kinds}",
                where=where,
                fix="export a detector with lanner.models.export_onnx (it writes metadata_props), or use an "
                "Ultralytics YOLO ONNX export",
            )
        self.decode = decode
        self.input_spec = InputSpec.from_metadata(meta)
        if config.input_size is not None and tuple(self.input_spec.size_hw) != tuple(config.input_size):
            raise ConfigError(
                f"the runtime's model takes {list(self.input_spec.size_hw)}, primary.input_size is "
                f"{list(config.input_size)}",
                where=where,
                fix="open the runtime with open_runtime(..., input_size=...) or drop input_size",
            )
        self.class_names = list(config.labels or json.loads(meta.get("labels", "[]")))
        self.params = NmsParams(
            conf_threshold=config.conf_threshold,
            iou_threshold=config.iou_threshold,
            max_det=config.max_det,
            class_agnostic=config.class_agnostic_nms,
            classes=tuple(config.classes) if config.classes is not None else None,
        )
        self.extra = self._open_extra_sizes(config)  # (input spec, runtime) per extra input size
        self._seen: dict[int, int] = {}  # frames seen per source since its start

    def _open_extra_sizes(self, config: DetectorConfig) -> list[tuple[InputSpec, Runtime]]:
        """One runtime per ``extra_input_sizes`` entry (the same model resized); sizes must not repeat."""
        sizes = [tuple(self.input_spec.size_hw), *(tuple(s) for s in config.extra_input_sizes)]
        if len(set(sizes)) != len(sizes):
            raise ConfigError(
                f"network input sizes repeat: {[list(s) for s in sizes]} (input_size first)",
                where="primary.extra_input_sizes",
                fix="list each extra size once, and not the input_size itself",
            )
        strides = json.loads(self.runtime.metadata.get("strides", "[32]"))
        extra = []
        for size in config.extra_input_sizes:
            check_input_size(size, strides, where=f"primary.extra_input_sizes ({self.runtime.path.name})")
            runtime = _open(config, size)
            extra.append((InputSpec.from_metadata(runtime.metadata), runtime))
        return extra

    def should_infer(self, source_id: int) -> bool:
        """Advance ``source_id``'s schedule by one frame; True when this frame gets inference."""
        count = self._seen.get(source_id, 0)
        self._seen[source_id] = count + 1
        return count % (self.config.interval + 1) == 0

    def reset_source(self, source_id: int) -> None:
        """Forget a source's schedule (end of stream or removed): its next frame is inferred."""
        self._seen.pop(source_id, None)

    def process(self, batch: Batch) -> list[bool]:
        """Run on the frames of ``batch`` that are due; set their ``detections``. Returns which ran."""
        due = self.schedule(batch)
        self.infer(batch, due)
        return due

    def schedule(self, batch: Batch) -> list[bool]:
        """Which frames of ``batch`` are due by ``interval`` (advances each source's schedule: call in order)."""
        return [self.should_infer(f.source_id) for f in batch.frames]

    def infer(self, batch: Batch, due: Sequence[bool]) -> None:
        """Run the model on the ``due`` frames of ``batch`` and set their ``detections`` (no schedule state:
        several workers may call it at once, each on its own ``Detector``)."""
        index = [i for i, d in enumerate(due) if d]
        if not index:
            return
        tensor, scales = self._network_input(batch, index)
        images = [batch.frames[i].decoded for i in index]  # a decoder's Picture stays unconverted
        for i, dets in zip(index, self._in_image_pixels(self.run_tensor(tensor), scales, images)):
            batch.frames[i].detections = dets

    def detect(self, images_bgr: Sequence[np.ndarray | Picture]) -> list[Detections]:
        """Preprocess, run and decode BGR images or decoders' ``Picture``s (no schedule): one ``Detections``
        per image."""
        images = list(images_bgr)
        tensor, scales = to_network_input(images, self.input_spec)
        return self._in_image_pixels(self.run_tensor(tensor), scales, images)

    def _in_image_pixels(
        self, found: list[Detections], scales: Sequence[tuple[float, float]], images: Sequence[np.ndarray | Picture]
    ) -> list[Detections]:
        """Map network-pixel boxes to each image (array or ``Picture``); with ``extra_input_sizes``, run those
        and merge by NMS."""
        hws = [image_hw(image) for image in images]
        per_size = [[to_image_pixels(d, s, hw, self.config.min_box_size) for d, s, hw in zip(found, scales, hws)]]
        for spec, runtime in self.extra:
            tensor, extra_scales = to_network_input(list(images), spec)
            raw = self.run_tensor(tensor, runtime)
            per_size.append([to_image_pixels(d, s, hw, self.config.min_box_size)
                             for d, s, hw in zip(raw, extra_scales, hws)])  # fmt: skip
        if len(per_size) == 1:
            return per_size[0]
        return [merge_scales(parts, self.params) for parts in zip(*per_size)]

    def run_tensor(self, nchw: np.ndarray, runtime: Runtime | None = None) -> list[Detections]:
        """Run a preprocessed batch (chunked to the model's fixed batch) -> detections in network pixels."""
        runtime = runtime or self.runtime
        step = runtime.fixed_batch or len(nchw)
        results: list[Detections] = []
        for start in range(0, len(nchw), step):
            chunk = nchw[start : start + step]
            if runtime.fixed_batch and len(chunk) < step:  # pad the last chunk of a fixed-batch model
                pad = np.zeros((step - len(chunk), *chunk.shape[1:]), chunk.dtype)
                results.extend(self.decode(runtime.run(np.concatenate([chunk, pad])), self.params)[: len(chunk)])
            else:
                results.extend(self.decode(runtime.run(chunk), self.params))
        return results

    def _network_input(self, batch: Batch, index: list[int]) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """The rows of the mux's tensor for ``index``, or a fresh preprocess when the batch has none."""
        tensor = batch.tensor_nchw
        scales = batch.meta.get("scales")
        if tensor is not None and scales is not None:
            tensor = np.asarray(tensor)
            if tuple(tensor.shape[2:]) != tuple(self.input_spec.size_hw) or len(tensor) != len(batch.frames):
                raise DataError(
                    f"batch tensor has shape {tensor.shape}; the model wants {len(batch.frames)}x3x"
                    f"{self.input_spec.size_hw[0]}x{self.input_spec.size_hw[1]}",
                    fix="build the muxer with the detector's input_spec",
                )
            rows = tensor if len(index) == len(tensor) else tensor[index]  # no copy when every frame is due
            return rows, [tuple(scales[i]) for i in index]
        return to_network_input([batch.frames[i].decoded for i in index], self.input_spec)
