"""Counting lines and the ground-truth definition of a line crossing, shared with the pipeline's analytics.

A ``CountLine`` is a segment in image pixels (x right, y down). Its direction is that of a walker on
the screen going from ``p1_xy`` to ``p2_xy``: crossing from the walker's LEFT side to their RIGHT side
is "in", right to left is "out". (With y down, a point is on the right when the 2D cross product
``(p2 - p1) x (point - p1)`` is positive.)

A tracked object crosses when its anchor point moves from one side to the other between two
consecutive observations of its track (consecutive frames in which it has a box) and the step meets
the line inside the segment's extent. The anchor is the bottom centre of the box, the convention of
DeepStream's nvdsanalytics line crossing: it is where the object touches the ground, so the count does
not depend on how tall the object is. A point exactly on the line counts as the left side, so touching
the line and turning back counts nothing and no crossing is counted twice.

Example:
    >>> line = CountLine("road", (0.0, 100.0), (200.0, 100.0))  # points right: "in" = moving down
    >>> boxes = [Detections.from_arrays([[90, 60, 110, 90]], [0], tracker_id=[7]),
    ...          Detections.from_arrays([[90, 80, 110, 110]], [0], tracker_id=[7])]
    >>> count_crossings(boxes, [line], ("car",))["road"]["in"]
    1
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError
from lanner.data.synth.world import Camera, Layout

LINE_Z_FRACTION = 0.45  # the road line sits this far up the picture's ground rows (0 bottom .. 1 horizon)


@dataclass(frozen=True)
class CountLine:
    """A named counting segment in image pixels; "in" = from the left of p1->p2 to its right (see module)."""

    name: str
    p1_xy: tuple[float, float]
    p2_xy: tuple[float, float]

    def side(self, points_xy: np.ndarray) -> np.ndarray:
        """The cross product ``(p2 - p1) x (point - p1)`` per point (N,): > 0 right, <= 0 left."""
        (x1, y1), (x2, y2) = self.p1_xy, self.p2_xy
        p = np.asarray(points_xy, np.float64).reshape(-1, 2)
        return (x2 - x1) * (p[:, 1] - y1) - (y2 - y1) * (p[:, 0] - x1)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "p1_xy": list(self.p1_xy), "p2_xy": list(self.p2_xy)}

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> CountLine:
        return cls(str(item["name"]), _xy(item["p1_xy"]), _xy(item["p2_xy"]))


@dataclass(frozen=True)
class Crossing:
    """One counted event: track ``tracker_id`` crossed ``line`` in ``direction`` ("in"/"out") at ``frame_idx``."""

    line: str
    direction: str
    tracker_id: int
    class_name: str
    frame_idx: int


class LineCounter:
    """Streaming crossing counter: feed one frame of tracked boxes at a time, read ``counts`` at any point.

    Keeps the last anchor of every track, so a track that skips frames (occluded, or missed by a
    tracker) is compared with where it was last seen.
    """

    def __init__(self, lines: Sequence[CountLine], classes: Sequence[str]) -> None:
        names = [line.name for line in lines]
        if len(set(names)) != len(names):
            raise DataError(f"count line names repeat: {names}", fix="give every line its own name")
        self.lines, self.classes = list(lines), tuple(classes)
        self.counts = empty_counts(names, self.classes)
        self._last: dict[int, np.ndarray] = {}  # tracker_id -> anchor (2,)
        self._frame_idx = 0

    def update(self, detections: Detections, frame_idx: int | None = None) -> list[Crossing]:
        """Count the crossings between each track's last anchor and its anchor in this frame."""
        if detections.tracker_id is None:
            raise DataError("count_crossings needs tracked boxes (Detections.tracker_id is None)", fix="run a tracker")
        frame_idx = self._frame_idx if frame_idx is None else frame_idx
        self._frame_idx = frame_idx + 1
        anchors = anchor_points(detections.xyxy)
        ids = detections.tracker_id.tolist()
        known = [i for i, tid in enumerate(ids) if tid in self._last]
        events: list[Crossing] = []
        if known:
            prev = np.stack([self._last[ids[i]] for i in known])
            for line in self.lines:
                for row, direction in _crossed(line, prev, anchors[known]):
                    i = known[row]
                    name = self.classes[int(detections.class_id[i])]
                    events.append(Crossing(line.name, direction, ids[i], name, frame_idx))
                    self._record(line.name, direction, name)
        for i, tid in enumerate(ids):
            self._last[tid] = anchors[i]
        return events

    def _record(self, line: str, direction: str, class_name: str) -> None:
        entry = self.counts[line]
        entry[direction] += 1
        entry["per_class"][class_name][direction] += 1


def count_crossings(
    frames: Iterable[Detections], lines: Sequence[CountLine], classes: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Ground-truth counts over a clip: ``{line: {"in": n, "out": n, "per_class": {cls: {"in", "out"}}}}``.

    ``frames`` is one ``Detections`` per frame, in order, with ``tracker_id`` set; ``class_id``
    indexes ``classes``.
    """
    counter = LineCounter(lines, classes)
    for idx, dets in enumerate(frames):
        counter.update(dets, idx)
    return counter.counts


def empty_counts(line_names: Iterable[str], classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Zero counts for every line and class (every key present, so files diff cleanly)."""
    return {name: {"in": 0, "out": 0, "per_class": {c: {"in": 0, "out": 0} for c in classes}} for name in line_names}


def anchor_points(xyxy: np.ndarray) -> np.ndarray:
    """Bottom-centre of each box (N,2): where the object stands on the ground (nvdsanalytics' anchor)."""
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) * 0.5, b[:, 3]], axis=1)


def _crossed(line: CountLine, before: np.ndarray, after: np.ndarray) -> list[tuple[int, str]]:
    """Rows whose step before->after changes side and meets the line within p1..p2, with their direction."""
    s0, s1 = line.side(before), line.side(after)
    changed = np.flatnonzero((s0 > 0) != (s1 > 0))
    if changed.size == 0:
        return []
    t = s0[changed] / (s0[changed] - s1[changed])  # where the step meets the infinite line
    hit = before[changed] + t[:, None] * (after[changed] - before[changed])
    p1, p2 = np.asarray(line.p1_xy, np.float64), np.asarray(line.p2_xy, np.float64)
    d = p2 - p1
    u = (hit - p1) @ d / max(float(d @ d), 1e-12)  # position along the segment, 0 at p1 .. 1 at p2
    inside = (u >= 0.0) & (u <= 1.0)
    return [(int(r), "in" if s1[r] > 0 else "out") for r, ok in zip(changed, inside) if ok]


def auto_lines(camera: Camera, layout: Layout, avoid_z_m: tuple[float, float] | None = None) -> list[CountLine]:
    """The default lines of a synthetic camera: one across the road at mid distance, one across a sidewalk.

    The road line runs from the right road edge to the left one, so "in" means moving away from the
    camera (the direction of +1 lanes) and "out" coming toward it. The sidewalk line is drawn the same
    way across the sidewalk that the road line's row shows best (the wider one on screen).
    ``avoid_z_m`` is a band of z to keep the lines out of: the crosswalk, where people walk along the
    line and queued cars would sit on it.
    """
    z = line_z(camera, layout, avoid_z_m)
    lo, hi = layout.road_x_m
    lines = [_ground_line(camera, "road", hi, lo, z)]
    candidates = [_ground_line(camera, f"sidewalk{i}", b, a, z) for i, (a, b) in enumerate(layout.sidewalks)]
    candidates = [c for c in (_clip_to_image(c, camera) for c in candidates) if c is not None]
    if candidates:
        best = max(candidates, key=lambda c: abs(c.p2_xy[0] - c.p1_xy[0]))
        lines.append(CountLine("sidewalk", best.p1_xy, best.p2_xy))
    road = _clip_to_image(lines[0], camera)
    return [road or lines[0], *lines[1:]]


def line_z(camera: Camera, layout: Layout, avoid_z_m: tuple[float, float] | None = None) -> float:
    """Forward distance (m) of the count lines: ``LINE_Z_FRACTION`` of the way up the ground in the picture,
    moved 3 m beyond ``avoid_z_m`` (or before it, if there is no room) when it falls inside that band."""
    bottom = camera.height - 1.0
    top = max(camera.horizon_v + 0.1 * camera.height, 0.0)
    v = bottom + LINE_Z_FRACTION * (top - bottom)
    lo, hi = layout.z_near_m + 2.0, layout.z_far_m * 0.5
    z = float(np.clip(camera.ground_z_at_row(v), lo, hi))
    if avoid_z_m is not None:
        before, beyond = avoid_z_m[0] - 3.0, avoid_z_m[1] + 3.0
        if before < z < beyond:
            z = beyond if before < lo or beyond - z <= z - before else before
    return z


def _ground_line(camera: Camera, name: str, x_from: float, x_to: float, z: float) -> CountLine:
    pixels, _ = camera.project(np.array([[x_from, 0.0, z], [x_to, 0.0, z]]))
    return CountLine(name, _round_xy(pixels[0]), _round_xy(pixels[1]))


def _clip_to_image(line: CountLine, camera: Camera) -> CountLine | None:
    """The part of the segment inside the image (Liang-Barsky), or None if it lies outside."""
    p1, p2 = np.asarray(line.p1_xy, np.float64), np.asarray(line.p2_xy, np.float64)
    d = p2 - p1
    t0, t1 = 0.0, 1.0
    bounds = ((-d[0], p1[0]), (d[0], camera.width - 1 - p1[0]), (-d[1], p1[1]), (d[1], camera.height - 1 - p1[1]))
    for p, q in bounds:
        if abs(p) < 1e-12:
            if q < 0:
                return None
            continue
        r = q / p
        t0, t1 = (max(t0, r), t1) if p < 0 else (t0, min(t1, r))
    if t1 - t0 < 1e-6:
        return None
    return CountLine(line.name, _round_xy(p1 + t0 * d), _round_xy(p1 + t1 * d))


def write_lines(path: str | Path, lines: Sequence[CountLine], image_size: tuple[int, int]) -> Path:
    """Write ``lines.json``: the image size and each line's name and end points."""
    path = Path(path)
    doc = {
        "image_width": image_size[0],
        "image_height": image_size[1],
        "direction": "in = crossing from the left of p1->p2 to its right, as seen on the screen",
        "anchor": "bottom-center of the box",
        "lines": [line.to_json() for line in lines],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def read_lines(path: str | Path) -> list[CountLine]:
    """Read the lines of a ``lines.json`` written by ``write_lines``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        return [CountLine.from_json(item) for item in doc["lines"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read count lines: {exc}", where=str(path), fix="regenerate it") from None


def _xy(value: Any) -> tuple[float, float]:
    x, y = value
    return float(x), float(y)


def _round_xy(p: np.ndarray) -> tuple[float, float]:
    return round(float(p[0]), 2), round(float(p[1]), 2)
