"""ByteTrack (Zhang et al. 2022, "ByteTrack: Multi-Object Tracking by Associating Every Detection Box").

The idea: do not throw low-score boxes away. Occluded objects get low scores, so after matching tracks to
high-score boxes, the still-unmatched tracks get a second chance against the low-score boxes; those boxes
never start tracks, which keeps background noise out. The steps follow the reference implementation
(``ifzhang/ByteTrack``, ``yolox/tracker/byte_tracker.py``) and its defaults:

1. Predict every track (Kalman, ``kalman.py``); lost tracks keep their height fixed.
2. Match tracked + lost tracks to boxes with score > ``track_thresh`` on ``1 - IoU * score``
   (``fuse_score``), keeping pairs with cost <= ``match_thresh``. A matched lost track is re-found.
3. Match the remaining *tracked* tracks to boxes with ``track_low_thresh`` < score <= ``track_thresh`` on
   ``1 - IoU`` (cost <= 0.5). Tracked tracks still unmatched become lost.
4. Match unconfirmed tracks (seen once) to the remaining high boxes (cost <= 0.7); the unmatched die.
5. Remaining high boxes with score >= ``new_track_thresh`` start unconfirmed tracks (on the very first
   frame they are confirmed at once, as in the reference).
6. Lost tracks unmatched for more than ``track_buffer`` frames (scaled by ``frame_rate / 30``) are
   removed; a tracked and a lost track overlapping with IoU > 0.85 are duplicates and the younger goes.

Ids are given when a track is confirmed, so reported ids are 1, 2, 3, ... without gaps (the reference
numbers unconfirmed tracks too). The tracker reports the detector's boxes, not the Kalman estimates.

Example:
    >>> tracker = ByteTrack(ByteTrackConfig(track_thresh=0.5, match_thresh=0.8, track_buffer=30))
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from lanner.core.config import Section
from lanner.core.detections import Detections
from lanner.core.errors import ConfigError
from lanner.pipeline.track import kalman
from lanner.pipeline.track.base import (
    LOST,
    TENTATIVE,
    TRACKED,
    TableTracker,
    TrackTable,
    assign_ids,
    correct,
    register_tracker,
    tracked_output,
)
from lanner.pipeline.track.matching import box_iou, iou_cost, linear_assignment

_SECOND_MATCH_THRESH = 0.5  # reference: low-score association
_UNCONFIRMED_MATCH_THRESH = 0.7  # reference: unconfirmed tracks vs. leftover high boxes
_DUPLICATE_IOU_COST = 0.15  # reference: remove_duplicate_stracks


class ByteTrackConfig(Section):
    """ByteTrack's knobs with the reference defaults (MOT17 setting)."""

    track_thresh: float = Field(default=0.5, gt=0, lt=1, description="boxes above this score are 'high' (first stage)")
    track_low_thresh: float = Field(default=0.1, ge=0, lt=1, description="boxes at or below this are ignored")
    new_track_thresh: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="score to start a track; default track_thresh + 0.1 (reference det_thresh)",
    )
    match_thresh: float = Field(default=0.8, gt=0, le=1, description="max cost 1 - IoU*score in the first stage")
    track_buffer: int = Field(default=30, ge=0, description="frames a lost track is kept (at 30 fps)")
    frame_rate: float = Field(default=30.0, gt=0, description="source frame rate, scales track_buffer")
    fuse_score: bool = Field(default=True, description="multiply IoU by the detection score (reference: not for MOT20)")
    class_aware: bool = Field(default=False, description="only match boxes of the track's class")

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> ByteTrackConfig:
        if self.track_low_thresh >= self.track_thresh:
            raise ConfigError(
                f"track_low_thresh ({self.track_low_thresh}) must be below track_thresh ({self.track_thresh})",
                fix="lower track_low_thresh (default 0.1) or raise track_thresh (default 0.5)",
            )
        return self

    @property
    def start_thresh(self) -> float:
        return self.track_thresh + 0.1 if self.new_track_thresh is None else self.new_track_thresh

    @property
    def max_time_lost(self) -> int:
        return int(self.frame_rate / 30.0 * self.track_buffer)


@register_tracker("bytetrack")
class ByteTrack(TableTracker):
    """Two-stage association of high- then low-score boxes (Zhang et al. 2022)."""

    config_type = ByteTrackConfig
    config: ByteTrackConfig

    def update(self, detections: Detections, frame_idx: int) -> Detections:
        cfg = self.config
        gap = self._clock.tick(frame_idx)
        tracks = self._tracks
        tracks.mean, tracks.cov = kalman.predict(tracks.mean, tracks.cov, gap, freeze_height=tracks.state == LOST)
        tracks.xyxy = kalman.xyah_to_xyxy(tracks.mean)

        score = detections.confidence
        high = np.flatnonzero(score > cfg.track_thresh)
        low = np.flatnonzero((score > cfg.track_low_thresh) & (score <= cfg.track_thresh))
        det_row = np.full(len(detections), -1, np.int64)  # track row each detection went to

        pool = np.concatenate([np.flatnonzero(tracks.state == TRACKED), np.flatnonzero(tracks.state == LOST)])
        lone_pool, lone_high = self._match(tracks, pool, detections, high, cfg.match_thresh, cfg.fuse_score, det_row)
        second = lone_pool[tracks.state[lone_pool] == TRACKED]
        lone_second, _ = self._match(tracks, second, detections, low, _SECOND_MATCH_THRESH, False, det_row)
        unconfirmed = np.flatnonzero(tracks.state == TENTATIVE)
        lone_unconf, lone_high = self._match(
            tracks, unconfirmed, detections, lone_high, _UNCONFIRMED_MATCH_THRESH, cfg.fuse_score, det_row
        )

        matched = np.flatnonzero(det_row >= 0)
        correct(tracks, det_row[matched], detections, matched, frame_idx)
        tracks.state[lone_second] = LOST
        tracks.state[det_row[matched]] = TRACKED
        alive = np.ones(len(tracks), bool)
        alive[lone_unconf] = False

        fresh = lone_high[score[lone_high] >= cfg.start_thresh]
        tracks, det_row, alive = _start(tracks, detections, fresh, frame_idx, self._clock.calls == 1, det_row, alive)
        alive &= ~((tracks.state == LOST) & (frame_idx - tracks.last_frame > cfg.max_time_lost))
        alive &= ~_duplicates(tracks, alive, cfg.class_aware)
        self._next_id = assign_ids(tracks, np.flatnonzero(alive & (tracks.state == TRACKED)), self._next_id)

        reported = np.flatnonzero(det_row >= 0)
        row = det_row[reported]
        keep = alive[row] & (tracks.state[row] == TRACKED)
        output = tracked_output(detections, reported[keep], tracks.track_id[row[keep]])
        self._tracks = tracks.take(alive)
        return output

    def _match(
        self,
        tracks: TrackTable,
        rows: np.ndarray,
        detections: Detections,
        cols: np.ndarray,
        max_cost: float,
        fuse_score: bool,
        det_row: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Match track rows to detection indices; record pairs in ``det_row``; return the unmatched rows and indices."""
        if len(rows) == 0 or len(cols) == 0:
            return rows, cols
        det_class = detections.class_id[cols]
        classes = (tracks.class_id[rows], det_class) if self.config.class_aware else (None, None)
        score = detections.confidence[cols] if fuse_score else None
        cost = iou_cost(tracks.xyxy[rows], detections.xyxy[cols], score, track_class=classes[0], det_class=classes[1])
        matches, lone_rows, lone_cols = linear_assignment(cost, max_cost)
        det_row[cols[matches[:, 1]]] = rows[matches[:, 0]]
        return rows[lone_rows], cols[lone_cols]


def _start(
    tracks: TrackTable,
    detections: Detections,
    fresh: np.ndarray,
    frame_idx: int,
    first_frame: bool,
    det_row: np.ndarray,
    alive: np.ndarray,
) -> tuple[TrackTable, np.ndarray, np.ndarray]:
    """Append new tracks for the detections ``fresh`` (confirmed at once only on the first frame)."""
    born = TrackTable.start(detections, fresh, frame_idx, TRACKED if first_frame else TENTATIVE)
    born.mean, born.cov = kalman.initiate(kalman.xyxy_to_xyah(born.xyxy))
    det_row = det_row.copy()
    det_row[fresh] = np.arange(len(fresh)) + len(tracks)
    return tracks.concat(born), det_row, np.concatenate([alive, np.ones(len(born), bool)])


def _duplicates(tracks: TrackTable, alive: np.ndarray, class_aware: bool) -> np.ndarray:
    """Rows to drop where a tracked and a lost track cover the same object (reference
    ``remove_duplicate_stracks``: the one followed for fewer frames goes). Class-aware: same class only."""
    active = np.flatnonzero(alive & (tracks.state != LOST))
    lost = np.flatnonzero(alive & (tracks.state == LOST))
    drop = np.zeros(len(tracks), bool)
    if len(active) == 0 or len(lost) == 0:
        return drop
    same = 1.0 - box_iou(tracks.xyxy[active], tracks.xyxy[lost]) < _DUPLICATE_IOU_COST
    if class_aware:
        same &= tracks.class_id[active][:, None] == tracks.class_id[lost][None, :]
    pairs = np.argwhere(same)
    for p, q in pairs.tolist():
        age_p = tracks.last_frame[active[p]] - tracks.start_frame[active[p]]
        age_q = tracks.last_frame[lost[q]] - tracks.start_frame[lost[q]]
        drop[lost[q] if age_p > age_q else active[p]] = True
    return drop
