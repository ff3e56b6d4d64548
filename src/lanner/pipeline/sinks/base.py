"""The sink protocol: what every output (file, video, broker) implements.

A sink's ``write`` is called from the sink's own thread (``QueuedSink`` owns it), never from the
inference thread, so a sink may block on I/O; ``close`` flushes and releases it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lanner.core.detections import Detections
from lanner.core.frame import Frame


@runtime_checkable
class Sink(Protocol):
    """An output of the pipeline: ``name`` (for logs/telemetry), ``write(frame)``, ``close()``."""

    name: str

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


@dataclass
class EndOfStream(Frame):
    """The last message of a source: the events flushed when it ended, after its last real frame.

    The runner writes one to every sink when a source ends (EOS, failure, removal, stop) with events
    still pending (a track inside an ROI gets its ``dwell`` event, ``end_of_stream: true``). Its
    ``detections`` are those tracks' last boxes and ``image`` the source's last picture, so a sink
    written for ordinary frames still works; sinks that encode pictures (video) skip it.
    """


def end_of_stream_frame(source_id: int, events: list[dict[str, Any]], image: Any) -> EndOfStream:
    """An ``EndOfStream`` for ``events`` of ``source_id``; objects are the tracks the events name (once each).

    Example:
        >>> e = {"type": "dwell", "tracker_id": 4, "class_id": 0, "bbox": [1, 2, 3, 4], "confidence": 0.5,
        ...      "frame_idx": 9, "pts_ns": 900, "end_of_stream": True}
        >>> eos = end_of_stream_frame(0, [e], np.zeros((2, 2, 3), np.uint8))
        >>> eos.frame_idx, eos.detections.tracker_id.tolist(), frame_record(eos, ("car",))["end_of_stream"]
        (9, [4], True)
    """
    boxes: dict[int, dict[str, Any]] = {}
    for event in events:
        if "tracker_id" in event and "bbox" in event:
            boxes.setdefault(int(event["tracker_id"]), event)
    ids = sorted(boxes)
    detections = Detections.from_arrays(
        [boxes[t]["bbox"] for t in ids],
        np.array([boxes[t]["class_id"] for t in ids], np.int64),
        np.array([boxes[t].get("confidence", 1.0) for t in ids], np.float32),
        tracker_id=np.array(ids, np.int64),
    )
    frame_idx = max((e["frame_idx"] for e in events if e.get("frame_idx") is not None), default=-1)
    pts_ns = max((e["pts_ns"] for e in events if e.get("pts_ns") is not None), default=0)
    return EndOfStream(source_id, frame_idx, pts_ns, image, detections, list(events))


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
    record = {
        "source": frame.source_id,
        "frame": frame.frame_idx,
        "pts_ns": frame.pts_ns,
        "objects": objects,
        "events": list(frame.events),
    }
    if isinstance(frame, EndOfStream):
        record["end_of_stream"] = True
    return record
