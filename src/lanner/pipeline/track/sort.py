"""SORT (Bewley et al. 2016, "Simple Online and Realtime Tracking"): Kalman prediction of every track,
then Hungarian matching of predictions to detections on IoU.

Behaviour follows the reference implementation (``abewley/sort``): a match needs IoU >= ``iou_threshold``
(0.3); a track is reported once it has ``min_hits`` consecutive matches, or from the start during the
first ``min_hits`` updates; it is deleted after ``max_age`` frames without a match. Two deliberate
differences: a track, once reported, keeps being reported on every matched frame (the reference hides it
again until its hit streak rebuilds), and an unconfirmed track is deleted on its first miss, as in
DeepSORT, so detector noise does not linger. ``max_age`` defaults to 30 frames (the reference uses 1,
which drops a track on any two-frame gap); the Kalman model is the one in ``kalman.py``.

Example:
    >>> tracker = SortTracker(SortConfig(min_hits=3, max_age=30))
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from lanner.core.config import Section
from lanner.core.detections import Detections
from lanner.pipeline.track import kalman
from lanner.pipeline.track.base import (
    TENTATIVE,
    TRACKED,
    TableTracker,
    TrackTable,
    assign_ids,
    correct,
    register_tracker,
    tracked_output,
)
from lanner.pipeline.track.matching import iou_cost, linear_assignment


class SortConfig(Section):
    """SORT's knobs; names follow the reference implementation."""

    iou_threshold: float = Field(default=0.3, gt=0, le=1, description="minimum IoU between prediction and detection")
    min_hits: int = Field(default=3, ge=1, description="consecutive matches before a track gets an id")
    max_age: int = Field(default=30, ge=0, description="frames a confirmed track coasts on its prediction")
    min_score: float = Field(default=0.0, ge=0, le=1, description="detections below this score are ignored")
    class_aware: bool = Field(default=False, description="only match boxes of the track's class")


@register_tracker("sort")
class SortTracker(TableTracker):
    """Kalman predict + Hungarian on IoU."""

    config_type = SortConfig
    config: SortConfig

    def update(self, detections: Detections, frame_idx: int) -> Detections:
        cfg = self.config
        gap = self._clock.tick(frame_idx)
        tracks = self._tracks
        coasting = tracks.last_frame < frame_idx - gap  # missed the previous update
        tracks.mean, tracks.cov = kalman.predict(tracks.mean, tracks.cov, gap, freeze_height=coasting)
        tracks.xyxy = kalman.xyah_to_xyxy(tracks.mean)

        candidates = np.flatnonzero(detections.confidence >= cfg.min_score)
        dets = detections[candidates]
        classes = (tracks.class_id, dets.class_id) if cfg.class_aware else (None, None)
        cost = iou_cost(tracks.xyxy, dets.xyxy, track_class=classes[0], det_class=classes[1])
        matches, lone_tracks, lone_dets = linear_assignment(cost, 1.0 - cfg.iou_threshold)
        rows, cols = matches[:, 0], matches[:, 1]
        correct(tracks, rows, dets, cols, frame_idx)
        tracks.hit_streak[lone_tracks] = 0

        born = TrackTable.start(dets, lone_dets, frame_idx, TENTATIVE)
        born.mean, born.cov = kalman.initiate(kalman.xyxy_to_xyah(born.xyxy))
        n_old = len(tracks)
        tracks = tracks.concat(born)
        det_row = np.concatenate([rows, np.arange(len(born)) + n_old])
        det_col = np.concatenate([cols, lone_dets])
        warm_up = self._clock.calls <= cfg.min_hits  # the reference reports everything at the start
        ready = det_row[(tracks.hit_streak[det_row] >= cfg.min_hits) | warm_up]
        tracks.state[ready] = TRACKED
        self._next_id = assign_ids(tracks, ready, self._next_id)

        out = tracks.track_id[det_row] > 0
        output = tracked_output(detections, candidates[det_col[out]], tracks.track_id[det_row[out]])
        alive = np.ones(len(tracks), bool)
        alive[lone_tracks] = (tracks.state[lone_tracks] == TRACKED) & (
            frame_idx - tracks.last_frame[lone_tracks] <= cfg.max_age
        )
        self._tracks = tracks.take(alive)
        return output
