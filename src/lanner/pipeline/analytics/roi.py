"""ROI occupancy, overcrowding and dwell time for one source (nvdsanalytics' ROI filtering + overcrowding).

Each frame: the objects whose anchor (bottom centre of the box) lies inside a polygon are counted
(``occupancy``); when the count goes above ``max_objects`` an ``overcrowding`` event starts, and an
``overcrowding_end`` event follows when it drops back (nvdsanalytics reports ``ocStatus`` per frame; an
edge-triggered event keeps the message stream small). A track that was inside and is now outside, or
has not been seen for ``track_timeout_frames``, gets a ``dwell`` event with the time it spent inside.
A track still inside when its source ends (EOS, failure, removal, pipeline stop) gets its ``dwell``
event then, with the time inside so far and ``end_of_stream: true``: without it a car parked in a
lot until the end of a file would never be reported. Every dwell event carries the track's last box
inside (``bbox``, ``confidence``) so a sink can publish it as the object's "exit".

Example:
    >>> from lanner.core.detections import Detections
    >>> rois = RoiCounter([RoiConfig(name="box", polygon=[(0, 0), (100, 0), (100, 100), (0, 100)], max_objects=1)],
    ...                   ("car",))
    >>> dets = Detections.from_arrays([[10, 10, 20, 20], [30, 30, 40, 40]], [0, 0], tracker_id=[1, 2])
    >>> [e["type"] for e in rois.update(dets, 0, 0)], rois.state["box"]["occupancy"]
    (['overcrowding'], 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lanner.core.detections import Detections
from lanner.data.synth.lines import anchor_points
from lanner.pipeline.analytics.config import RoiConfig
from lanner.pipeline.analytics.lines import class_name


def _box(detections: Detections, i: int) -> tuple[float, float, float, float, float]:
    """Box ``i`` as plain floats: x1, y1, x2, y2, confidence."""
    x1, y1, x2, y2 = (float(v) for v in detections.xyxy[i])
    return x1, y1, x2, y2, float(detections.confidence[i])


def inside_polygon(points_xy: np.ndarray, polygon: Sequence[tuple[float, float]]) -> np.ndarray:
    """Even-odd rule (ray casting to +x) for each point (N,2) -> (N,) bool."""
    p = np.asarray(points_xy, np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, np.float64)
    x, y = p[:, 0:1], p[:, 1:2]
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    straddles = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    hits = straddles & (x < x_cross)
    return (hits.sum(axis=1) % 2) == 1


@dataclass
class _Stay:
    """A track currently inside an ROI: when it entered and when it was last seen inside."""

    class_id: int
    enter_frame: int
    enter_pts_ns: int
    last_frame: int
    last_pts_ns: int
    box: tuple[float, float, float, float, float]  # last x1, y1, x2, y2, confidence seen inside


class RoiCounter:
    """Occupancy, overcrowding and dwell for ``rois`` on one source; ``state`` holds the live numbers."""

    def __init__(self, rois: Sequence[RoiConfig], class_names: Sequence[str], dwell_min_s: float = 0.0) -> None:
        self.rois = list(rois)
        self.class_names = tuple(class_names)
        self.dwell_min_s = dwell_min_s
        zero = {"occupancy": 0, "max_occupancy": 0, "overcrowded": False, "overcrowding_events": 0}
        zero |= {"dwell_count": 0, "dwell_total_s": 0.0, "dwell_max_s": 0.0}
        self.state: dict[str, dict[str, Any]] = {r.name: dict(zero) for r in self.rois}
        self._stays: dict[str, dict[int, _Stay]] = {r.name: {} for r in self.rois}

    def update(self, detections: Detections, frame_idx: int, pts_ns: int) -> list[dict[str, Any]]:
        """Count this frame's objects per ROI; return overcrowding and dwell events."""
        anchors = anchor_points(detections.xyxy)
        ids = detections.tracker_id.tolist() if detections.tracker_id is not None else [None] * len(detections)
        events: list[dict[str, Any]] = []
        for roi in self.rois:
            keep = inside_polygon(anchors, roi.polygon) if len(detections) else np.zeros(0, bool)
            if roi.class_ids:
                keep &= np.isin(detections.class_id, roi.class_ids)
            events += self._occupancy(roi, int(keep.sum()))
            if roi.dwell:
                inside = {ids[i]: (int(detections.class_id[i]), _box(detections, i))
                          for i in np.flatnonzero(keep) if ids[i] is not None}  # fmt: skip
                events += self._dwell(roi.name, inside, set(ids), frame_idx, pts_ns)
        return events

    def _occupancy(self, roi: RoiConfig, count: int) -> list[dict[str, Any]]:
        st = self.state[roi.name]
        st["occupancy"], st["max_occupancy"] = count, max(st["max_occupancy"], count)
        over = roi.max_objects is not None and count > roi.max_objects
        if over == st["overcrowded"]:
            return []
        st["overcrowded"] = over
        st["overcrowding_events"] += int(over)
        kind = "overcrowding" if over else "overcrowding_end"
        return [{"type": kind, "roi": roi.name, "count": count, "threshold": roi.max_objects}]

    def _dwell(self, roi: str, inside: dict[int, tuple], seen: set, frame_idx: int, pts_ns: int) -> list[dict]:
        stays = self._stays[roi]
        for tid, (cls, box) in inside.items():
            stay = stays.get(tid)
            if stay is None:
                stays[tid] = _Stay(cls, frame_idx, pts_ns, frame_idx, pts_ns, box)
            else:
                stay.last_frame, stay.last_pts_ns, stay.class_id, stay.box = frame_idx, pts_ns, cls, box
        left = [tid for tid in stays if tid not in inside and tid in seen]  # seen outside: it walked out
        events = [self._finish(roi, tid) for tid in left if self._long_enough(stays[tid])]
        self._drop(roi, left)
        return events

    def expire(self, before_frame: int, end_of_stream: bool = False) -> list[dict[str, Any]]:
        """Finish the stays of tracks not seen since ``before_frame`` (lost, or left the picture).

        ``end_of_stream`` marks the events of a source that ended with the tracks still inside.
        """
        events: list[dict[str, Any]] = []
        for roi, stays in self._stays.items():
            gone = [tid for tid, s in stays.items() if s.last_frame < before_frame]
            events += [self._finish(roi, tid, end_of_stream) for tid in gone if self._long_enough(stays[tid])]
            self._drop(roi, gone)
        return events

    def _long_enough(self, stay: _Stay) -> bool:
        return (stay.last_pts_ns - stay.enter_pts_ns) / 1e9 >= self.dwell_min_s

    def _finish(self, roi: str, tid: int, end_of_stream: bool = False) -> dict[str, Any]:
        stay = self._stays[roi][tid]
        seconds = (stay.last_pts_ns - stay.enter_pts_ns) / 1e9
        st = self.state[roi]
        st["dwell_count"] += 1
        st["dwell_total_s"] = round(st["dwell_total_s"] + seconds, 6)
        st["dwell_max_s"] = max(st["dwell_max_s"], seconds)
        return {"type": "dwell", "roi": roi, "tracker_id": int(tid), "class_id": stay.class_id,
                "class_name": class_name(self.class_names, stay.class_id), "dwell_s": round(seconds, 6),
                "enter_frame": stay.enter_frame, "exit_frame": stay.last_frame, "end_of_stream": end_of_stream,
                "bbox": [round(v, 2) for v in stay.box[:4]], "confidence": round(stay.box[4], 4)}  # fmt: skip

    def _drop(self, roi: str, tids: list[int]) -> None:
        for tid in tids:
            del self._stays[roi][tid]

    def dwelling(self, roi: str) -> dict[int, float]:
        """Tracks inside ``roi`` now and their time inside so far (s), for live display."""
        return {tid: (s.last_pts_ns - s.enter_pts_ns) / 1e9 for tid, s in self._stays[roi].items()}
