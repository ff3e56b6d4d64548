"""Synthetic tracking scenes for tests: ground-truth trajectories and a noisy 'detector' on top of them.

``simulate_scene`` moves objects with constant velocity plus a little random acceleration; they enter and
leave at different frames, some pairs are set on crossing courses. ``detect`` turns the ground truth
into detections the way a real detector errs: box jitter, missed boxes (more when occluded), lower
scores when occluded, and low-score false positives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lanner.core import Detections
from lanner.pipeline.metrics import evaluate_mot, mot_frames
from lanner.pipeline.track import create_tracker

Frames = dict[int, tuple[np.ndarray, np.ndarray]]


@dataclass
class Scene:
    gt: Frames  # frame -> (object ids, xyxy)
    classes: dict[int, int]  # object id -> class id
    width: int
    height: int
    n_frames: int
    visibility: dict[int, np.ndarray] | None = None  # frame -> visible fraction per box (else from geometry)


def simulate_scene(seed: int, n_objects: int = 20, n_frames: int = 150, width: int = 1280, height: int = 720) -> Scene:
    """Objects with constant velocity plus noise; entering and leaving; about a quarter on crossing courses."""
    rng = np.random.default_rng(seed)
    tracks: dict[int, np.ndarray] = {}
    classes: dict[int, int] = {}
    for oid in range(1, n_objects + 1):
        h = rng.uniform(50, 140)
        wh = np.array([h * rng.uniform(0.35, 0.6), h])
        start = int(rng.integers(0, n_frames * 2 // 3))
        length = int(rng.integers(30, n_frames))
        v = rng.uniform(1.0, 5.0) * rng.choice([-1, 1]) * np.array([1.0, rng.uniform(-0.3, 0.3)])
        if oid % 4 == 0 and oid - 1 in tracks:  # cross the previous object's path half-way through
            meet_t = min(length, n_frames - start) // 2
            other = tracks[oid - 1]
            meet = other[min(start + meet_t, len(other) - 1)] if len(other) else rng.uniform([0, 0], [width, height])
            v[0] = -np.sign(v[0] or 1) * abs(v[0])
            p0 = meet[:2] - v * meet_t + np.array([0.0, rng.uniform(-0.3, 0.3) * h])
        else:
            p0 = rng.uniform([0, 0], [width, height])
        t = np.arange(length)[:, None]
        wobble = np.cumsum(np.cumsum(rng.normal(0, 0.05, (length, 2)), axis=0), axis=0)
        centre = p0 + v * t + wobble
        xyxy = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
        tracks[oid] = np.full((n_frames, 4), np.nan)
        end = min(start + length, n_frames)
        tracks[oid][start:end] = xyxy[: end - start]
        classes[oid] = int(rng.integers(0, 2))
    return Scene(_to_frames(tracks, width, height, n_frames), classes, width, height, n_frames)


def _to_frames(tracks: dict[int, np.ndarray], width: int, height: int, n_frames: int) -> Frames:
    frames: Frames = {}
    for f in range(n_frames):
        ids, boxes = [], []
        for oid, xyxy in tracks.items():
            box = xyxy[f]
            if np.isnan(box).any():
                continue
            clipped = np.clip(box, [0, 0, 0, 0], [width, height, width, height])
            area = np.prod(box[2:] - box[:2])
            if np.prod(np.clip(clipped[2:] - clipped[:2], 0, None)) >= 0.5 * area:  # mostly in view
                ids.append(oid)
                boxes.append(clipped)
        frames[f] = (np.array(ids, np.int64), np.array(boxes, np.float64).reshape(-1, 4))
    return frames


def hidden_fraction(xyxy: np.ndarray) -> np.ndarray:
    """How much of each box is covered by a box in front of it (lower bottom edge = nearer the camera)."""
    top_left = np.maximum(xyxy[:, None, :2], xyxy[None, :, :2])
    bottom_right = np.minimum(xyxy[:, None, 2:], xyxy[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    covered = inter / np.prod(xyxy[:, 2:] - xyxy[:, :2], axis=1)[:, None]
    in_front = xyxy[None, :, 3] > xyxy[:, None, 3]
    return np.where(in_front, covered, 0.0).max(axis=1, initial=0.0)


def detect(
    scene: Scene,
    seed: int,
    jitter: float = 0.03,
    miss_rate: float = 0.07,
    false_positives_per_frame: float = 1.0,
) -> dict[int, Detections]:
    """A noisy detector: jitter (fraction of box size); misses (``miss_rate`` of the boxes of each frame,
    the more hidden behind a nearer box the likelier); scores drawn from Beta(8, 2) and lowered by up to
    70 % by occlusion; false positives (Poisson per frame; 80 % score below 0.45, the rest up to 0.75)."""
    rng = np.random.default_rng(seed)
    out = {}
    for f, (ids, xyxy) in scene.gt.items():
        hidden = hidden_fraction(xyxy) if scene.visibility is None else 1.0 - scene.visibility[f]
        weight = 0.25 + hidden  # misses fall mostly, not only, on hidden boxes; on average miss_rate of all
        seen = rng.random(len(ids)) > np.minimum(miss_rate * weight / (weight.mean() if len(weight) else 1.0), 0.9)
        wh = xyxy[:, 2:] - xyxy[:, :2]
        centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2 + rng.normal(0, jitter, (len(ids), 2)) * wh
        wh = wh * (1 + rng.normal(0, jitter, (len(ids), 2)))
        boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
        score = np.clip(rng.beta(8, 2, len(ids)), 0.3, 0.99) * (1 - 0.7 * hidden)
        classes = np.array([scene.classes[i] for i in ids.tolist()], np.int64)
        n_fp = rng.poisson(false_positives_per_frame)
        fp_wh = rng.uniform([20, 40], [60, 120], (n_fp, 2))
        fp_xy = rng.uniform([0, 0], [scene.width, scene.height], (n_fp, 2))
        fp_low, fp_high = rng.uniform(0.05, 0.45, n_fp), rng.uniform(0.45, 0.75, n_fp)  # most are unsure
        out[f] = Detections(
            xyxy=np.concatenate([boxes[seen], np.concatenate([fp_xy, fp_xy + fp_wh], axis=1)]),
            confidence=np.concatenate([score[seen], np.where(rng.random(n_fp) < 0.8, fp_low, fp_high)]),
            class_id=np.concatenate([classes[seen], rng.integers(0, 2, n_fp)]),
        )
    return out


def track_scene(tracker_name: str, detections: dict[int, Detections], config: dict | None = None) -> Frames:
    """Run a fresh tracker over every frame; return its output as MOT frames."""
    tracker = create_tracker(tracker_name, config)
    return mot_frames({f: tracker.update(d, f) for f, d in sorted(detections.items())})


def scene_metrics(seed: int, tracker_name: str = "bytetrack", config: dict | None = None, **scene_kw) -> dict:
    """Simulate, detect (detector seed = seed + 1000), track and score one scene."""
    scene = simulate_scene(seed, **scene_kw)
    hyp = track_scene(tracker_name, detect(scene, seed + 1000), config)
    return evaluate_mot(scene.gt, hyp)
