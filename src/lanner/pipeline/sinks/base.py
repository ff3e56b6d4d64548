"""The sink protocol: what every output (file, video, broker) implements.

A sink's ``write`` is called from the sink's own thread (``QueuedSink`` owns it), never from the
inference thread, so a sink may block on I/O; ``close`` flushes and releases it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from lanner.core.frame import Frame


@runtime_checkable
class Sink(Protocol):
    """An output of the pipeline: ``name`` (for logs/telemetry), ``write(frame)``, ``close()``."""

    name: str

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


def frame_record(frame: Frame, class_names: Sequence[str]) -> dict[str, Any]:
    """A frame as one JSON-ready dict: source, frame, pts, objects (bbox/class/confidence/track id), events.

    Example:
        >>> import numpy as np
        >>> from lanner.core.detections import Detections
        >>> d = Detections.from_arrays([[1.5, 2, 30, 40]], [1], [0.875], tracker_id=[3])
        >>> frame_record(Frame(2, 9, 300, np.zeros((4, 4, 3), np.uint8), d), ("person", "car"))["objects"]
        [{'bbox': [1.5, 2.0, 30.0, 40.0], 'class_id': 1, 'class': 'car', 'confidence': 0.875, 'track_id': 3}]
    """
    dets = frame.detections
    objects = []
    for i in range(len(dets)):
        k = int(dets.class_id[i])
        obj = {
            "bbox": [round(float(v), 2) for v in dets.xyxy[i]],
            "class_id": k,
            "class": class_names[k] if 0 <= k < len(class_names) else f"class{k}",
            "confidence": round(float(dets.confidence[i]), 4),
            "track_id": int(dets.tracker_id[i]) if dets.tracker_id is not None else None,
        }
        for key, column in dets.data.items():
            value = column[i]
            obj[key] = value.item() if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 else value
        objects.append(obj)
    return {
        "source": frame.source_id,
        "frame": frame.frame_idx,
        "pts_ns": frame.pts_ns,
        "objects": objects,
        "events": list(frame.events),
    }
