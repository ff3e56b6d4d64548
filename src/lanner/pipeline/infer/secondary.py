"""Secondary classifiers (DeepStream's SGIEs): classify the crops of tracked objects.

Each classifier runs on objects of chosen classes (``operate_on_class_ids``) at least ``min_width`` x
``min_height`` pixels, and re-classifies a tracked object only every ``reinfer_interval`` frames (the
result is cached per source and track id in between, as DeepStream's ``secondary-reinfer-interval``).
Results go into ``Detections.data`` as ``<name>_class_id`` (-1: not classified) and ``<name>_confidence``;
the label names are in ``SecondaryClassifier.class_names``.

Example:
    >>> sgie = SecondaryClassifier(SecondaryConfig(name="color", model="color.onnx"))  # doctest: +SKIP
    >>> sgie.process(frame)  # doctest: +SKIP
    >>> frame.detections.data["color_class_id"]  # doctest: +SKIP
    array([2, -1])
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from pydantic import Field

from lanner.core.assets import resolve_asset
from lanner.core.config import Section
from lanner.core.errors import ConfigError
from lanner.core.frame import Frame
from lanner.data.preprocess import InputSpec, to_network_input
from lanner.pipeline.infer.postprocess import CLASSIFIER_DECODERS
from lanner.pipeline.infer.runtime import Runtime, open_runtime

_FORGET_AFTER_FRAMES = 300  # drop cached results of tracks not seen for this long (bounded memory)


def _crop(frame: Frame, row: int) -> np.ndarray:
    """The pixels of box ``row`` (rounded outwards, clipped to the image, at least 1x1)."""
    h, w = frame.hw
    x1, y1, x2, y2 = frame.detections.xyxy[row]
    x1, y1 = int(np.clip(np.floor(x1), 0, w - 1)), int(np.clip(np.floor(y1), 0, h - 1))
    x2, y2 = int(np.clip(np.ceil(x2), x1 + 1, w)), int(np.clip(np.ceil(y2), y1 + 1, h))
    return np.ascontiguousarray(frame.image[y1:y2, x1:x2])


class SecondaryConfig(Section):
    """One entry of the ``secondary`` list."""

    model: str
    name: str | None = None  # prefix of the data columns; default: the model file's stem
    runtime: str = "auto"
    threads: int = Field(1, ge=1)
    operate_on_class_ids: list[int] | None = None  # None: every class
    min_width: int = Field(16, ge=0)
    min_height: int = Field(16, ge=0)
    reinfer_interval: int = Field(0, ge=0)  # frames between re-classifications of a track (0: every frame)
    conf_threshold: float = Field(0.0, ge=0.0, le=1.0)  # below this the object stays unclassified (-1)
    batch_size: int = Field(16, ge=1)
    labels: list[str] | None = None


class SecondaryClassifier:
    """A classifier on object crops with a per-track result cache."""

    def __init__(self, config: SecondaryConfig, runtime: Runtime | None = None) -> None:
        self.config = config
        self.runtime = runtime or open_runtime(config.model, config.runtime, config.threads)
        meta = self.runtime.metadata
        kind = meta.get("postprocess", "softmax")
        if kind not in CLASSIFIER_DECODERS:
            raise ConfigError(
                f"a secondary classifier needs a classifier (postprocess {' or '.join(map(repr, CLASSIFIER_DECODERS))}"
                f"), got {meta.get('postprocess')!r}",
                where=str(self.runtime.path),
                fix="use a classification model here and detectors as the primary",
            )
        self.decode = CLASSIFIER_DECODERS[kind]
        self.name = config.name or resolve_asset(config.model).stem
        self.input_spec = InputSpec.from_metadata(meta)
        self.class_names = list(config.labels or json.loads(meta.get("labels", "[]")))
        self._cache: dict[tuple[int, int], tuple[int, int, float]] = {}  # (source, track) -> (frame, class, prob)
        self.crops_classified = 0

    @property
    def keys(self) -> tuple[str, str]:
        """The ``Detections.data`` columns this classifier writes."""
        return f"{self.name}_class_id", f"{self.name}_confidence"

    def process(self, frame: Frame) -> None:
        """Classify the eligible objects of ``frame``; write the class/confidence columns for every row."""
        self.process_batch([frame])

    def process_batch(self, frames: Sequence[Frame]) -> None:
        """``process`` for several frames with one model call per ``batch_size`` crops (all frames together)."""
        columns, todo = [], []  # per frame (class_id, conf); (frame index, row) still to classify
        for i, frame in enumerate(frames):
            n = len(frame.detections)
            class_id, conf = np.full(n, -1, np.int64), np.zeros(n, np.float32)
            for row in np.flatnonzero(self._eligible(frame)):
                cached = self._cached(frame, int(row))
                if cached is None:
                    todo.append((i, int(row)))
                else:
                    class_id[row], conf[row] = cached
            columns.append((class_id, conf))
        if todo:
            got_class, got_conf = self._classify([_crop(frames[i], row) for i, row in todo])
            for (i, row), c, p in zip(todo, got_class, got_conf):
                self._store(frames[i], row, columns[i], int(c) if p >= self.config.conf_threshold else -1, float(p))
        id_key, conf_key = self.keys
        for frame, (class_id, conf) in zip(frames, columns):
            frame.detections.data[id_key], frame.detections.data[conf_key] = class_id, conf
            self._forget(frame)

    def _store(self, frame: Frame, row: int, columns: tuple[np.ndarray, np.ndarray], class_id: int, p: float) -> None:
        """Write one result into the frame's columns and the per-track cache."""
        prob = p if class_id >= 0 else 0.0
        columns[0][row], columns[1][row] = class_id, prob
        tracker_id = frame.detections.tracker_id
        if tracker_id is not None:
            self._cache[(frame.source_id, int(tracker_id[row]))] = (frame.frame_idx, class_id, prob)

    def _eligible(self, frame: Frame) -> np.ndarray:
        dets = frame.detections
        wh = dets.wh
        ok = (wh[:, 0] >= self.config.min_width) & (wh[:, 1] >= self.config.min_height)
        if self.config.operate_on_class_ids is not None:
            ok &= np.isin(dets.class_id, self.config.operate_on_class_ids)
        return ok

    def _cached(self, frame: Frame, row: int) -> tuple[int, float] | None:
        tracker_id = frame.detections.tracker_id
        if tracker_id is None:
            return None
        hit = self._cache.get((frame.source_id, int(tracker_id[row])))
        if hit is None or frame.frame_idx - hit[0] >= max(self.config.reinfer_interval, 1):
            return None
        return hit[1], hit[2]

    def _classify(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        classes, probs = [], []
        step = self.runtime.fixed_batch or self.config.batch_size
        for start in range(0, len(crops), step):
            tensor, _ = to_network_input(crops[start : start + step], self.input_spec)
            real = len(tensor)
            if self.runtime.fixed_batch and real < step:
                tensor = np.concatenate([tensor, np.zeros((step - real, *tensor.shape[1:]), tensor.dtype)])
            c, p = self.decode(self.runtime.run(tensor))
            classes.append(c[:real])
            probs.append(p[:real])
        self.crops_classified += len(crops)
        return np.concatenate(classes), np.concatenate(probs)

    def _forget(self, frame: Frame) -> None:
        if len(self._cache) < 1024:
            return
        horizon = frame.frame_idx - _FORGET_AFTER_FRAMES
        self._cache = {k: v for k, v in self._cache.items() if k[0] != frame.source_id or v[0] >= horizon}
