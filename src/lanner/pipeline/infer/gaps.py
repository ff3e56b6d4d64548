"""Fill the frames the detector skips (``interval > 0``) with the tracks' extrapolated boxes.

After each inferred frame the tracked boxes of a source are remembered with a per-track velocity (box
change per frame, from the previous inferred frame); on a skipped frame each track's box is moved by
``velocity * frames since``. Without track ids the last boxes are held. This is the constant-velocity
model the Kalman trackers use, without touching the trackers' state (their next update sees the real gap).

Example:
    >>> import numpy as np
    >>> from lanner.core import Detections
    >>> gaps = GapFiller()
    >>> for idx, x in ((0, 0.0), (2, 4.0)):
    ...     gaps.observe(0, idx, Detections.from_arrays([[x, 0, x + 10, 10]], class_id=[0], tracker_id=[1]))
    >>> gaps.fill(0, 3, (100, 100)).xyxy.tolist()
    [[6.0, 0.0, 16.0, 10.0]]
"""

from __future__ import annotations

import numpy as np

from lanner.core.detections import Detections


class GapFiller:
    """Per-source memory of the last tracked boxes and their velocities."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[int, Detections, np.ndarray]] = {}  # source -> (frame, dets, velocity (N, 4))

    def observe(self, source_id: int, frame_idx: int, tracked: Detections) -> None:
        """Remember the boxes of an inferred (and tracked) frame."""
        velocity = np.zeros((len(tracked), 4), np.float32)
        prev = self._last.get(source_id)
        if prev is not None and tracked.tracker_id is not None and prev[1].tracker_id is not None:
            prev_frame, prev_dets, _ = prev
            gap = max(frame_idx - prev_frame, 1)
            where = {int(t): i for i, t in enumerate(prev_dets.tracker_id)}
            for row, track in enumerate(tracked.tracker_id):
                i = where.get(int(track))
                if i is not None:
                    velocity[row] = (tracked.xyxy[row] - prev_dets.xyxy[i]) / gap
        self._last[source_id] = (frame_idx, tracked, velocity)

    def fill(self, source_id: int, frame_idx: int, image_hw: tuple[int, int]) -> Detections:
        """The predicted boxes for a skipped frame (empty before the source's first inferred frame)."""
        prev = self._last.get(source_id)
        if prev is None:
            return Detections.empty()
        last_frame, dets, velocity = prev
        moved = dets.xyxy + velocity * float(frame_idx - last_frame)
        h, w = image_hw
        moved[:, [0, 2]] = moved[:, [0, 2]].clip(0, w)
        moved[:, [1, 3]] = moved[:, [1, 3]].clip(0, h)
        out = Detections(
            xyxy=moved, confidence=dets.confidence, class_id=dets.class_id, tracker_id=dets.tracker_id, data=dets.data
        )
        return out

    def remove(self, source_id: int) -> None:
        """Forget a source (end of stream or removed)."""
        self._last.pop(source_id, None)
