"""Tracking metrics: CLEAR-MOT (MOTA, MOTP, FP, FN, ID switches) and identity metrics (IDF1, IDP, IDR).

Computed in numpy/scipy the way ``motmetrics`` (py-motmetrics 1.4) computes them, and tested against it:

- a ground-truth box and a hypothesis box may pair when ``IoU >= 0.5`` (distance ``1 - IoU <= 0.5``);
- CLEAR-MOT (Bernardin & Stiefelhagen 2008): per frame, pairs kept from the previous frame stay matched
  while they still overlap; the rest are paired by a minimum-cost assignment that first maximises the
  number of pairs; a pair that contradicts an object's previous hypothesis is an ID switch;
  ``MOTA = 1 - (FN + FP + IDSW) / num_objects``; ``MOTP`` is the mean distance ``1 - IoU`` of the
  matched pairs (motmetrics' convention: lower is better);
- identity metrics (Ristani et al. 2016): one global one-to-one assignment of ground-truth ids to
  hypothesis ids maximising the frames where both overlap (IDTP); ``IDF1 = 2 IDTP / (num_objects +
  num_predictions)``.

``MOTP`` and ``mostly_tracked`` / ``partially_tracked`` / ``mostly_lost`` use the matched pairs only;
motmetrics 1.4 also counts its TRANSFER/ASCEND/MIGRATE bookkeeping events in them (the tests compare with
motmetrics' MATCH + SWITCH events).

Frames are ``{frame_idx: (ids (N,), xyxy (N, 4))}``; ``read_mot_txt`` reads MOTChallenge files into it.

Example:
    >>> import numpy as np
    >>> gt = {0: (np.array([1]), np.array([[0, 0, 10, 10]])), 1: (np.array([1]), np.array([[1, 0, 11, 10]]))}
    >>> hyp = {0: (np.array([7]), np.array([[0, 0, 10, 10]])), 1: (np.array([8]), np.array([[1, 0, 11, 10]]))}
    >>> m = evaluate_mot(gt, hyp)
    >>> m["num_switches"], m["mota"], m["idf1"]
    (1, 0.5, 0.5)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError
from lanner.pipeline.track.matching import box_iou, hungarian

MotFrames = Mapping[int, tuple[np.ndarray, np.ndarray]]
_NOTHING = (np.zeros(0, np.int64), np.zeros((0, 4)))


class _ClearMot:
    """Per-frame CLEAR-MOT bookkeeping (the state motmetrics' ``MOTAccumulator`` keeps)."""

    def __init__(self) -> None:
        self.last_hyp: dict[int, int] = {}  # object id -> hypothesis id it was last matched to
        self.counts = Counter[str]()
        self.distance_sum = 0.0
        self.object_frames = Counter[int]()  # frames each object appears in
        self.tracked_frames = Counter[int]()  # frames each object is matched in
        self.hyp_frames = Counter[int]()
        self.overlaps = Counter[tuple[int, int]]()  # (object, hypothesis) -> frames with IoU >= threshold

    def add(self, oids: np.ndarray, hids: np.ndarray, dist: np.ndarray) -> None:
        """One frame; ``dist`` is (objects, hypotheses) with ``nan`` where pairing is not allowed."""
        self.counts["frames"] += 1
        self.object_frames.update(oids.tolist())
        self.hyp_frames.update(hids.tolist())
        valid_i, valid_j = np.nonzero(np.isfinite(dist))
        self.overlaps.update(zip(oids[valid_i].tolist(), hids[valid_j].tolist()))
        o_done = np.zeros(len(oids), bool)
        h_done = np.zeros(len(hids), bool)
        if len(oids) and len(hids):
            self._keep_previous(oids, hids, dist, o_done, h_done)
            self._assign_rest(oids, hids, dist, o_done, h_done)
        self.counts["misses"] += int((~o_done).sum())
        self.counts["false_positives"] += int((~h_done).sum())

    def _keep_previous(
        self, oids: np.ndarray, hids: np.ndarray, dist: np.ndarray, o_done: np.ndarray, h_done: np.ndarray
    ) -> None:
        """Step 1: an object still overlapping its previous hypothesis stays matched (no switch)."""
        for i, oid in enumerate(oids.tolist()):
            if oid not in self.last_hyp:
                continue
            (js,) = np.nonzero(~h_done & (hids == self.last_hyp[oid]))
            if len(js) and np.isfinite(dist[i, js[0]]):
                self._match(oid, int(hids[js[0]]), float(dist[i, js[0]]), "matches")
                o_done[i] = h_done[js[0]] = True

    def _assign_rest(
        self, oids: np.ndarray, hids: np.ndarray, dist: np.ndarray, o_done: np.ndarray, h_done: np.ndarray
    ) -> None:
        """Step 2: min-cost assignment of the rest, most pairs first (motmetrics' ``add_expensive_edges``)."""
        cost = dist.copy()
        cost[o_done, :] = np.nan
        cost[:, h_done] = np.nan
        valid = np.isfinite(cost)
        if not valid.any():
            return
        large = 2 * min(cost.shape) * (np.abs(cost[valid]).max() + 1) + 1
        rows, cols = hungarian(np.where(valid, cost, large))
        for i, j in zip(rows.tolist(), cols.tolist()):
            if not valid[i, j]:
                continue
            oid, hid = int(oids[i]), int(hids[j])
            switch = oid in self.last_hyp and self.last_hyp[oid] != hid
            self._match(oid, hid, float(cost[i, j]), "switches" if switch else "matches")
            o_done[i] = h_done[j] = True

    def _match(self, oid: int, hid: int, distance: float, kind: str) -> None:
        self.counts[kind] += 1
        self.distance_sum += distance
        self.tracked_frames[oid] += 1
        self.last_hyp[oid] = hid

    def identity_true_positives(self) -> int:
        """IDTP: the best one-to-one id assignment by overlapping frames (maximum-weight matching)."""
        if not self.overlaps:
            return 0
        oids = sorted({o for o, _ in self.overlaps})
        hids = sorted({h for _, h in self.overlaps})
        o_index = {o: i for i, o in enumerate(oids)}
        h_index = {h: j for j, h in enumerate(hids)}
        weight = np.zeros((len(oids), len(hids)))
        for (o, h), frames in self.overlaps.items():
            weight[o_index[o], h_index[h]] = frames
        rows, cols = hungarian(weight, maximize=True)
        return int(weight[rows, cols].sum())


def evaluate_mot(gt_frames: MotFrames, hyp_frames: MotFrames, iou_threshold: float = 0.5) -> dict[str, float]:
    """CLEAR-MOT and identity metrics of hypotheses against ground truth, with motmetrics' key names.

    Frames missing from one side count as empty there. Ids must be unique within a frame.
    """
    acc = _ClearMot()
    for frame in sorted(set(gt_frames) | set(hyp_frames)):
        oids, o_xyxy = _frame(gt_frames, frame, "ground truth")
        hids, h_xyxy = _frame(hyp_frames, frame, "hypotheses")
        dist = 1.0 - box_iou(o_xyxy, h_xyxy)
        acc.add(oids, hids, np.where(dist > 1.0 - iou_threshold, np.nan, dist))
    return _summary(acc)


def _summary(acc: _ClearMot) -> dict[str, float]:
    c = acc.counts
    num_objects = sum(acc.object_frames.values())
    num_predictions = sum(acc.hyp_frames.values())
    detected = c["matches"] + c["switches"]
    idtp = acc.identity_true_positives()
    ratios = np.array([acc.tracked_frames[o] / n for o, n in acc.object_frames.items()])
    return {
        "num_frames": c["frames"],
        "num_objects": num_objects,
        "num_predictions": num_predictions,
        "num_unique_objects": len(acc.object_frames),
        "num_matches": c["matches"],
        "num_switches": c["switches"],
        "num_false_positives": c["false_positives"],
        "num_misses": c["misses"],
        "num_detections": detected,
        "mota": _ratio(num_objects - c["misses"] - c["switches"] - c["false_positives"], num_objects),
        "motp": _ratio(acc.distance_sum, detected),
        "precision": _ratio(detected, detected + c["false_positives"]),
        "recall": _ratio(detected, num_objects),
        "idtp": idtp,
        "idfn": num_objects - idtp,
        "idfp": num_predictions - idtp,
        "idf1": _ratio(2 * idtp, num_objects + num_predictions),
        "idp": _ratio(idtp, num_predictions),
        "idr": _ratio(idtp, num_objects),
        "mostly_tracked": int((ratios >= 0.8).sum()),
        "partially_tracked": int(((ratios >= 0.2) & (ratios < 0.8)).sum()),
        "mostly_lost": int((ratios < 0.2).sum()),
    }


def _ratio(a: float, b: float) -> float:
    """``a / b`` as motmetrics' ``quiet_divide``: ``nan`` for 0/0, ``+-inf`` for x/0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.divide(np.float64(a), np.float64(b)))


def _frame(frames: MotFrames, frame: int, side: str) -> tuple[np.ndarray, np.ndarray]:
    ids, xyxy = frames.get(frame, _NOTHING)
    ids = np.asarray(ids, np.int64).reshape(-1)
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    if len(ids) != len(xyxy) or len(np.unique(ids)) != len(ids):
        raise DataError(
            f"frame {frame} of the {side}: {len(ids)} ids for {len(xyxy)} boxes, or an id repeated",
            fix="give one unique id per box in every frame",
        )
    return ids, xyxy


def mot_frames(outputs: Mapping[int, Detections]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Tracker outputs ``{frame_idx: Detections with tracker_id}`` as frames for ``evaluate_mot``."""
    frames = {}
    for frame, dets in outputs.items():
        if dets.tracker_id is None:
            raise DataError(f"frame {frame}: Detections carry no tracker_id", fix="pass a tracker's output")
        frames[int(frame)] = (dets.tracker_id, dets.xyxy)
    return frames


def read_mot_txt(path: str | Path, min_conf: float | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Read a MOTChallenge file (``frame,id,bb_left,bb_top,bb_width,bb_height[,conf,...]``) into frames.

    MOTChallenge frames and pixels are 1-based (its devkit is MATLAB); the result is 0-based like the
    rest of lanner (frame 1 -> ``frame_idx`` 0, ``bb_left`` 1 -> ``x1`` 0), as ``lanner.data.synth.mot``
    reads them. ``min_conf`` drops rows whose ``conf`` is below it (in MOT16/17 ground truth ``conf`` is the
    0/1 "consider" flag: pass ``min_conf=1``); a missing ``conf`` column counts as 1.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"MOT file not found: {path}", fix="check the path")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        return {}
    try:
        rows = np.loadtxt(lines, delimiter=",", ndmin=2)
    except ValueError as exc:
        rows, problem = np.zeros((0, 0)), str(exc)
    else:
        problem = f"{rows.shape[1]} columns, need at least 6"
    if rows.shape[1] < 6:
        raise DataError(f"not a MOTChallenge file: {problem}", where=str(path), fix="use 'frame,id,x,y,w,h,conf,...'")
    if min_conf is not None and rows.shape[1] > 6:
        rows = rows[rows[:, 6] >= min_conf]
    xyxy = np.concatenate([rows[:, 2:4] - 1, rows[:, 2:4] - 1 + rows[:, 4:6]], axis=1)
    frame_col = rows[:, 0].astype(np.int64) - 1
    return {int(f): (rows[frame_col == f, 1].astype(np.int64), xyxy[frame_col == f]) for f in np.unique(frame_col)}


def write_mot_txt(path: str | Path, frames: MotFrames) -> Path:
    """Write frames as MOTChallenge results (``frame,id,bb_left,bb_top,bb_width,bb_height,1,-1,-1,-1``),
    1-based as MOTChallenge expects (the inverse of ``read_mot_txt``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for frame in sorted(frames):
        ids, xyxy = _frame(frames, frame, "hypotheses")
        for tid, (x1, y1, x2, y2) in zip(ids.tolist(), xyxy.tolist()):
            lines.append(f"{frame + 1},{tid},{x1 + 1:.2f},{y1 + 1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,-1,-1,-1\n")
    path.write_text("".join(lines))
    return path
