"""The IOU tracker (Bochinski et al. 2017, "High-Speed Tracking-by-Detection Without Using Image
Information"): a track takes the detection that overlaps its last box most; no motion model.

It is the cheapest tracker and works when objects move little between frames. Without a motion model
it cannot tell two objects apart while they cross (their boxes overlap each other as much as their own
previous boxes), so ids may swap at crossings: use SORT or ByteTrack there.

Example:
    >>> tracker = IouTracker(IouTrackerConfig(min_hits=1))
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from lanner.core.config import Section
from lanner.core.detections import Detections
from lanner.pipeline.track.base import (
    TENTATIVE,
    TRACKED,
    TableTracker,
    TrackTable,
    assign_ids,
    register_tracker,
    tracked_output,
)
from lanner.pipeline.track.matching import greedy_assignment, iou_cost, linear_assignment


class IouTrackerConfig(Section):
    """``iou_threshold`` is the paper's sigma_IOU, ``min_score`` its sigma_l, ``min_hits`` its t_min."""

    iou_threshold: float = Field(
        default=0.3, gt=0, le=1, description="minimum IoU between a track's last box and a detection"
    )
    min_score: float = Field(default=0.0, ge=0, le=1, description="detections below this score are ignored")
    min_hits: int = Field(default=2, ge=1, description="matched frames before a track gets an id and is reported")
    max_age: int = Field(default=5, ge=0, description="frames a track survives without a match")
    matching: Literal["greedy", "hungarian"] = "greedy"
    class_aware: bool = Field(default=False, description="only match boxes of the track's class")


@register_tracker("iou")
class IouTracker(TableTracker):
    """Greedy (or Hungarian) association on IoU with the last matched box."""

    config_type = IouTrackerConfig
    config: IouTrackerConfig

    def update(self, detections: Detections, frame_idx: int) -> Detections:
        cfg = self.config
        self._clock.tick(frame_idx)
        tracks = self._tracks
        candidates = np.flatnonzero(detections.confidence >= cfg.min_score)
        dets = detections[candidates]
        classes = (tracks.class_id, dets.class_id) if cfg.class_aware else (None, None)
        cost = iou_cost(tracks.xyxy, dets.xyxy, track_class=classes[0], det_class=classes[1])
        assign = greedy_assignment if cfg.matching == "greedy" else linear_assignment
        matches, _, lone_dets = assign(cost, 1.0 - cfg.iou_threshold)

        rows, cols = matches[:, 0], matches[:, 1]
        tracks.xyxy[rows] = dets.xyxy[cols]
        tracks.score[rows] = dets.confidence[cols]
        tracks.class_id[rows] = dets.class_id[cols]
        tracks.hits[rows] += 1
        tracks.last_frame[rows] = frame_idx

        born = TrackTable.start(dets, lone_dets, frame_idx, TENTATIVE)
        tracks = tracks.concat(born)
        det_row = np.concatenate([rows, np.arange(len(born)) + len(self._tracks)])
        det_col = np.concatenate([cols, lone_dets])
        confirmed = det_row[tracks.hits[det_row] >= cfg.min_hits]
        tracks.state[confirmed] = TRACKED
        self._next_id = assign_ids(tracks, confirmed, self._next_id)

        out_rows = tracks.track_id[det_row] > 0
        output = tracked_output(detections, candidates[det_col[out_rows]], tracks.track_id[det_row[out_rows]])
        self._tracks = tracks.take(frame_idx - tracks.last_frame <= cfg.max_age)
        return output
