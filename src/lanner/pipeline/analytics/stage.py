"""``Analytics``: the pipeline stage that runs line crossing and ROI analytics on every frame of every source.

State is kept per source (sources come and go while the pipeline runs); events are dicts appended to
``frame.events`` with the source, frame and time filled in, so sinks can publish them as they are.

Example:
    >>> import numpy as np
    >>> from lanner.core.detections import Detections
    >>> from lanner.core.frame import Frame
    >>> from lanner.pipeline.analytics import LineConfig
    >>> a = Analytics(AnalyticsConfig(lines=[LineConfig(name="road", p1=(0, 100), p2=(200, 100))]), ("car",))
    >>> image = np.zeros((200, 200, 3), np.uint8)
    >>> for i, y2 in enumerate([90, 110]):  # the box's bottom edge (its anchor) goes from y=90 to y=110
    ...     a.process(Frame(0, i, 0, image, Detections.from_arrays([[90, 60, 110, y2]], [0], tracker_id=[7])))
    >>> a.counts()[0]["lines"]["road"]["in"]
    1
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from lanner.core.frame import Frame
from lanner.pipeline.analytics.config import AnalyticsConfig
from lanner.pipeline.analytics.lines import LineCrossing
from lanner.pipeline.analytics.roi import RoiCounter


class _SourceState:
    """The line and ROI counters of one source (only the lines/ROIs that apply to it)."""

    def __init__(self, config: AnalyticsConfig, source_id: int, class_names: Sequence[str], hw: tuple) -> None:
        config = config.scaled(hw[1], hw[0])  # coordinates in this source's pixels
        lines = [cfg for cfg in config.lines if not cfg.sources or source_id in cfg.sources]
        rois = [cfg for cfg in config.rois if not cfg.sources or source_id in cfg.sources]
        self.lines = LineCrossing(lines, class_names)
        self.rois = RoiCounter(rois, class_names, config.dwell_min_s)
        self.frames = 0
        self.last: tuple[int | None, int | None] = (None, None)  # frame_idx, pts_ns of the last frame seen


class Analytics:
    """Line crossing (in/out per line and class), ROI occupancy/overcrowding and dwell, per source.

    ``class_names`` names the ``class_id`` values in events and counts (``"class<k>"`` when missing).
    ``process`` is called from one thread; ``counts`` may be read from any thread (telemetry, OSD).
    """

    def __init__(self, config: AnalyticsConfig, class_names: Sequence[str] = ()) -> None:
        self.config = config
        self.class_names = tuple(class_names)
        self._sources: dict[int, _SourceState] = {}
        self._lock = threading.Lock()

    def process(self, frame: Frame) -> None:
        """Update the counters of ``frame.source_id`` and append this frame's events to ``frame.events``."""
        if not self.config.enabled:
            return
        with self._lock:
            state = self._sources.get(frame.source_id)
            if state is None:
                state = _SourceState(self.config, frame.source_id, self.class_names, frame.hw)
                self._sources[frame.source_id] = state
            state.frames += 1
            state.last = (frame.frame_idx, frame.pts_ns)
            horizon = frame.frame_idx - self.config.track_timeout_frames  # tracks unseen since then have left
            events = state.rois.expire(horizon)
            state.lines.forget_older_than(horizon)
            events += state.lines.update(frame.detections, frame.frame_idx)
            events += state.rois.update(frame.detections, frame.frame_idx, frame.pts_ns)
        frame.events.extend(_stamp(e, frame.source_id, frame.frame_idx, frame.pts_ns) for e in events)

    def end_source(self, source_id: int) -> list[dict[str, Any]]:
        """Finish a source at EOS or removal: its open dwell stays become events; its counts are kept.

        The events (``end_of_stream: true``, stamped with the source's last frame) are returned, not
        attached to a frame: the runner hands them to the sinks after that source's last frame.
        Calling it again (or for an unknown source) returns ``[]``.
        """
        with self._lock:
            state = self._sources.get(source_id)
            if state is None:
                return []
            events = state.rois.expire(before_frame=1 << 62, end_of_stream=True)
            state.lines.forget_older_than(1 << 62)
        return [_stamp(e, source_id, *state.last) for e in events]

    def counts(self) -> dict[int, dict[str, Any]]:
        """Per source: ``{"frames", "lines": {line: {"in", "out", "per_class"}}, "rois": {roi: {...}}}`` (a copy)."""
        with self._lock:
            return {
                sid: {"frames": st.frames, "lines": _copy(st.lines.counts), "rois": _copy(st.rois.state)}
                for sid, st in sorted(self._sources.items())
            }

    def line_totals(self) -> dict[str, dict[str, int]]:
        """``{line: {"in": n, "out": n}}`` summed over every source."""
        totals = {cfg.name: {"in": 0, "out": 0} for cfg in self.config.lines}
        for per_source in self.counts().values():
            for name, c in per_source["lines"].items():
                totals[name]["in"] += c["in"]
                totals[name]["out"] += c["out"]
        return totals

    def dwelling(self, source_id: int, roi: str) -> dict[int, float]:
        """Tracks inside ``roi`` of ``source_id`` now and their time inside so far (s)."""
        with self._lock:
            state = self._sources.get(source_id)
            if state is None or roi not in state.rois.state:
                return {}
            return state.rois.dwelling(roi)


def _stamp(event: dict[str, Any], source_id: int, frame_idx: int | None, pts_ns: int | None) -> dict[str, Any]:
    return {**event, "source_id": source_id, "frame_idx": frame_idx, "pts_ns": pts_ns}


def _copy(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in tree.items()}
