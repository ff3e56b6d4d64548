"""Line crossing with direction, per class, for one source: the streaming form of nvdsanalytics' line crossing.

The rule is the ground truth's (``lanner.data.synth.lines``): a track crosses when its anchor (bottom
centre of its box) changes side of the line between two consecutive observations of that track and
the step meets the segment within its extent; left -> right of ``p1 -> p2`` is "in". A point exactly
on the line counts as the left side, so touching the line and turning back counts nothing. The side
test and the anchor are imported from there (``CountLine.side``, ``anchor_points``); the step-meets-
segment test below mirrors its private ``_crossed`` (this version adds per-line class filters, event
dicts and forgetting lost tracks). ``tests/pipeline/test_analytics_lines.py`` checks both give the same
counts on random tracks and on a rendered synthetic video's ground truth.

Example:
    >>> from lanner.core.detections import Detections
    >>> lc = LineCrossing([LineConfig(name="road", p1=(0, 100), p2=(200, 100))], ("car",))
    >>> _ = lc.update(Detections.from_arrays([[90, 60, 110, 90]], [0], tracker_id=[7]), 0)
    >>> [e["direction"] for e in lc.update(Detections.from_arrays([[90, 80, 110, 110]], [0], tracker_id=[7]), 1)]
    ['in']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lanner.core.detections import Detections
from lanner.data.synth.lines import CountLine, anchor_points
from lanner.pipeline.analytics.config import LineConfig


def crossed(line: CountLine, before: np.ndarray, after: np.ndarray) -> list[tuple[int, str]]:
    """Rows whose step ``before -> after`` (N,2 anchors) crosses the segment, with "in"/"out".

    A change of side of the infinite line (``side > 0`` right, ``<= 0`` left) that meets it between
    ``p1`` and ``p2`` (inclusive).
    """
    s0, s1 = line.side(before), line.side(after)
    changed = np.flatnonzero((s0 > 0) != (s1 > 0))
    if changed.size == 0:
        return []
    t = s0[changed] / (s0[changed] - s1[changed])
    hit = before[changed] + t[:, None] * (after[changed] - before[changed])
    p1, p2 = np.asarray(line.p1_xy, np.float64), np.asarray(line.p2_xy, np.float64)
    d = p2 - p1
    u = (hit - p1) @ d / max(float(d @ d), 1e-12)
    inside = (u >= 0.0) & (u <= 1.0)
    return [(int(r), "in" if s1[r] > 0 else "out") for r, ok in zip(changed, inside) if ok]


class LineCrossing:
    """Counts crossings of ``lines`` for one source, frame by frame; remembers each track's last anchor.

    ``counts`` is ``{line: {"in": n, "out": n, "per_class": {class_name: {"in": n, "out": n}}}}``,
    the layout of the ground truth's ``counts.json``.
    """

    def __init__(self, lines: Sequence[LineConfig], class_names: Sequence[str]) -> None:
        self.configs = list(lines)
        self.lines = [cfg.to_count_line() for cfg in self.configs]
        self.class_names = tuple(class_names)
        self.counts: dict[str, dict[str, Any]] = {
            line.name: {"in": 0, "out": 0, "per_class": {c: {"in": 0, "out": 0} for c in self.class_names}}
            for line in self.lines
        }
        self._last: dict[int, tuple[np.ndarray, int]] = {}  # tracker_id -> (anchor, frame_idx last seen)
        self._counted: set[tuple[str, int]] = set()  # (line, tracker_id) for once_per_track lines

    def update(self, detections: Detections, frame_idx: int) -> list[dict[str, Any]]:
        """Crossings between each track's last anchor and this frame's; returns one event dict per crossing."""
        if detections.tracker_id is None or len(detections) == 0:
            return []
        anchors = anchor_points(detections.xyxy)
        ids = detections.tracker_id.tolist()
        known = [i for i, tid in enumerate(ids) if tid in self._last]
        events: list[dict[str, Any]] = []
        if known:
            prev = np.stack([self._last[ids[i]][0] for i in known])
            for cfg, line in zip(self.configs, self.lines):
                for row, direction in crossed(line, prev, anchors[known]):
                    i = known[row]
                    class_id = int(detections.class_id[i])
                    if cfg.class_ids and class_id not in cfg.class_ids:
                        continue
                    if cfg.once_per_track:
                        if (line.name, ids[i]) in self._counted:
                            continue
                        self._counted.add((line.name, ids[i]))
                    events.append(self._record(line.name, direction, ids[i], class_id, anchors[i]))
        for i, tid in enumerate(ids):
            self._last[tid] = (anchors[i], frame_idx)
        return events

    def forget_older_than(self, frame_idx: int) -> None:
        """Drop tracks last seen before ``frame_idx`` (keeps memory flat on long runs)."""
        self._last = {tid: v for tid, v in self._last.items() if v[1] >= frame_idx}
        self._counted = {key for key in self._counted if key[1] in self._last}

    def _record(self, line: str, direction: str, tracker_id: int, class_id: int, anchor: np.ndarray) -> dict:
        name = class_name(self.class_names, class_id)
        entry = self.counts[line]
        entry[direction] += 1
        per_class = entry["per_class"].setdefault(name, {"in": 0, "out": 0})
        per_class[direction] += 1
        return {
            "type": "line_crossing",
            "line": line,
            "direction": direction,
            "tracker_id": int(tracker_id),
            "class_id": class_id,
            "class_name": name,
            "anchor_xy": [round(float(anchor[0]), 2), round(float(anchor[1]), 2)],
        }


def class_name(class_names: Sequence[str], class_id: int) -> str:
    """``class_names[class_id]``, or ``"class<k>"`` when the id has no name."""
    return class_names[class_id] if 0 <= class_id < len(class_names) else f"class{class_id}"
