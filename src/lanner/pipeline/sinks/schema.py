"""DeepStream's message schemas (nvmsgconv), built from a ``Frame``: "full" and "minimal" JSON payloads.

Full (``payload-type=0``): one message per object, as nvmsgconv's ``generate_event_message``::

    {"messageid": uuid, "mdsversion": "1.0", "@timestamp": "2026-11-30T22:00:00.000Z",
     "place": {"id", "name", "type", "location": {"lat", "lon", "alt"}},
     "sensor": {"id", "type", "description", "location": {...}, "coordinate": {"x", "y", "z"}},
     "analyticsModule": {"id", "description", "source", "version"},
     "object": {"id": "<tracking id>", "speed", "direction", "orientation",
                "vehicle" | "person" | "<label>": {...},
                "bbox": {"topleftx", "toplefty", "bottomrightx", "bottomrighty"},
                "location": {...}, "coordinate": {...}, "pose": {}},
     "event": {"id": uuid, "type": "entry" | "exit" | "moving"}, "videoPath": ""}

Minimal (``payload-type=1``): one message per frame, as ``generate_event_message_minimal``::

    {"version": "4.0", "id": "<frame id>", "@timestamp": ..., "sensorId": ...,
     "objects": ["<tracking id>|<left>|<top>|<right>|<bottom>|<label>|<confidence>", ...]}

Secondary-classifier labels (string columns of ``Detections.data``, e.g. ``color``) go after ``|#|``
in the minimal strings (DeepStream's attribute separator) and into the full schema's object section.
An object's event type is "entry"/"exit" in the frame where it crossed a count line "in"/"out" (see
``lanner.pipeline.analytics``), "exit" for a track still inside an ROI when its source ended (the
``EndOfStream`` message, whose ``dwell`` events say how long it stayed), otherwise "moving".
Untracked objects have id "-1".

Example:
    >>> import numpy as np
    >>> from lanner.core.detections import Detections
    >>> from lanner.core.frame import Frame
    >>> dets = Detections.from_arrays([[1, 2, 3, 4]], [0], [0.9], tracker_id=[7])
    >>> frame = Frame(0, 5, 0, np.zeros((8, 8, 3), np.uint8), dets)
    >>> minimal_payload(frame, ("car",), clock=lambda: 0.0)["objects"]
    ['7|1|2|3|4|car|0.9']
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from lanner.core.frame import Frame
from lanner.pipeline.sinks.config import AnalyticsModuleInfo, PlaceInfo, SensorInfo

VEHICLE_CLASSES = frozenset({"car", "truck", "bus", "van", "motorcycle", "motorbike", "vehicle"})
PERSON_CLASSES = frozenset({"person", "pedestrian", "people"})
Clock = Callable[[], float]


def iso_timestamp(seconds: float) -> str:
    """UTC ISO 8601 with milliseconds and a ``Z``, as DeepStream writes ``@timestamp``."""
    stamp = datetime.fromtimestamp(seconds, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def sensor_for(sensors: dict[int, SensorInfo], source_id: int) -> SensorInfo:
    """The configured sensor of a source, or one with id ``str(source_id)``."""
    return sensors.get(source_id) or SensorInfo(id=str(source_id))


def minimal_payload(
    frame: Frame,
    class_names: Sequence[str],
    sensors: dict[int, SensorInfo] | None = None,
    clock: Clock = time.time,
) -> dict[str, Any]:
    """The minimal schema of one frame (all its objects in one message)."""
    dets = frame.detections
    objects = []
    for i in range(len(dets)):
        left, top, right, bottom = _int_box(dets.xyxy[i])
        text = f"{_track_id(dets, i)}|{left}|{top}|{right}|{bottom}|{_label(class_names, int(dets.class_id[i]))}"
        attrs = _attributes(dets, i)
        if attrs:
            text += "|#|" + "|".join(attrs.values())
        objects.append(f"{text}|{float(dets.confidence[i]):.4g}")
    return {
        "version": "4.0",
        "id": str(frame.frame_idx),
        "@timestamp": iso_timestamp(clock()),
        "sensorId": sensor_for(sensors or {}, frame.source_id).id,
        "objects": objects,
    }


def full_payloads(
    frame: Frame,
    class_names: Sequence[str],
    sensors: dict[int, SensorInfo] | None = None,
    place: PlaceInfo | None = None,
    module: AnalyticsModuleInfo | None = None,
    clock: Clock = time.time,
) -> list[dict[str, Any]]:
    """The full schema: one message per object of the frame."""
    sensor = _sensor_section(sensor_for(sensors or {}, frame.source_id))
    place_section = _place_section(place or PlaceInfo())
    module_section = (module or AnalyticsModuleInfo()).model_dump()
    stamp = iso_timestamp(clock())
    crossings = _crossing_types(frame.events)
    dets = frame.detections
    messages = []
    for i in range(len(dets)):
        track = _track_id(dets, i)
        messages.append({
            "messageid": str(uuid.uuid4()),
            "mdsversion": "1.0",
            "@timestamp": stamp,
            "place": place_section,
            "sensor": sensor,
            "analyticsModule": module_section,
            "object": _object_section(dets, i, class_names),
            "event": {"id": str(uuid.uuid4()), "type": crossings.get(track, "moving")},
            "videoPath": "",
        })  # fmt: skip
    return messages


def _object_section(dets: Any, i: int, class_names: Sequence[str]) -> dict[str, Any]:
    label = _label(class_names, int(dets.class_id[i]))
    conf = round(float(dets.confidence[i]), 4)
    attrs = _attributes(dets, i)
    if label in VEHICLE_CLASSES:
        keys = ("make", "model", "color", "licenseState", "license")
        kind, detail = "vehicle", {"type": attrs.get("type", label), **{k: attrs.get(k, "") for k in keys}}
    elif label in PERSON_CLASSES:
        kind, detail = "person", {"age": 0, **{k: attrs.get(k, "") for k in ("gender", "hair", "cap", "apparel")}}
    else:
        kind, detail = label, dict(attrs)  # DeepStream's NVDS_OBJECT_TYPE_UNKNOWN: keyed by the object's label
    detail["confidence"] = conf
    left, top, right, bottom = _int_box(dets.xyxy[i])
    return {
        "id": _track_id(dets, i),
        "speed": 0.0,
        "direction": 0.0,
        "orientation": 0.0,
        kind: detail,
        "bbox": {"topleftx": left, "toplefty": top, "bottomrightx": right, "bottomrighty": bottom},
        "location": {"lat": 0.0, "lon": 0.0, "alt": 0.0},
        "coordinate": {"x": 0.0, "y": 0.0, "z": 0.0},
        "pose": {},
    }


def _sensor_section(sensor: SensorInfo) -> dict[str, Any]:
    return {
        "id": sensor.id,
        "type": sensor.type,
        "description": sensor.description,
        "location": dict(zip(("lat", "lon", "alt"), sensor.location)),
        "coordinate": dict(zip(("x", "y", "z"), sensor.coordinate)),
    }


def _place_section(place: PlaceInfo) -> dict[str, Any]:
    return {"id": place.id, "name": place.name, "type": place.type,
            "location": dict(zip(("lat", "lon", "alt"), place.location))}  # fmt: skip


def _crossing_types(events: list[dict[str, Any]]) -> dict[str, str]:
    """Tracking id -> "entry"/"exit" for the line crossings in this frame's events (and end-of-stream dwells)."""
    kinds = {"in": "entry", "out": "exit"}
    types = {str(e["tracker_id"]): "exit" for e in events if e.get("type") == "dwell" and e.get("end_of_stream")}
    return types | {str(e["tracker_id"]): kinds[e["direction"]] for e in events if e.get("type") == "line_crossing"}


def _int_box(xyxy: np.ndarray) -> tuple[int, int, int, int]:
    """Pixel-rounded left, top, right, bottom (DeepStream writes integer bbox members)."""
    x1, y1, x2, y2 = (round(float(v)) for v in xyxy)
    return x1, y1, x2, y2


def _track_id(dets: Any, i: int) -> str:
    return str(int(dets.tracker_id[i])) if dets.tracker_id is not None else "-1"


def _label(class_names: Sequence[str], class_id: int) -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else f"class{class_id}"


def _attributes(dets: Any, i: int) -> dict[str, str]:
    """String columns of ``Detections.data`` (secondary classifier labels) for box ``i``."""
    return {k: str(v[i]) for k, v in dets.data.items() if v.dtype.kind in "UO" and str(v[i])}


def encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (numpy scalars converted)."""
    return json.dumps(payload, separators=(",", ":"), default=_json_default).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
