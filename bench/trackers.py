"""Per-frame ``update`` time of every registered tracker at 10, 50 and 200 boxes a frame.

Objects move with constant velocity on a 4K canvas; the detector misses 5 % of them, jitters boxes by
3 % and adds a few low-score false positives. Times are per ``update`` call (association, Kalman,
bookkeeping, building the output ``Detections``), after a warm-up; median and 90th percentile.

    python bench/trackers.py [--frames 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lanner.core import Detections
from lanner.pipeline.track import create_tracker, tracker_names


def make_frames(n_boxes: int, n_frames: int, seed: int) -> list[Detections]:
    rng = np.random.default_rng(seed)
    width, height = 3840.0, 2160.0
    start = rng.uniform([0, 0], [width, height], (n_boxes, 2))
    velocity = rng.uniform(-4, 4, (n_boxes, 2))
    wh = rng.uniform([20, 40], [60, 120], (n_boxes, 2))
    frames = []
    for t in range(n_frames):
        centre = (start + velocity * t) % [width, height]
        centre = centre + rng.normal(0, 0.03, (n_boxes, 2)) * wh
        seen = rng.random(n_boxes) > 0.05
        n_fp = rng.poisson(max(1.0, n_boxes / 50))
        fp = rng.uniform([0, 0], [width, height], (n_fp, 2))
        xyxy = np.concatenate([np.c_[centre - wh / 2, centre + wh / 2][seen], np.c_[fp, fp + 50]])
        score = np.concatenate([rng.uniform(0.3, 0.95, seen.sum()), rng.uniform(0.05, 0.4, n_fp)])
        frames.append(Detections(xyxy=xyxy, confidence=score, class_id=np.zeros(len(xyxy), np.int64)))
    return frames


def time_tracker(name: str, frames: list[Detections], warmup: int = 20) -> np.ndarray:
    tracker = create_tracker(name)
    times = []
    for i, dets in enumerate(frames):
        t0 = time.perf_counter()
        tracker.update(dets, i)
        times.append(time.perf_counter() - t0)
    return np.array(times[warmup:]) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{'tracker':<10} {'boxes':>5} {'median ms':>10} {'p90 ms':>8} {'fps (median)':>13}")
    for n_boxes in (10, 50, 200):
        frames = make_frames(n_boxes, args.frames, args.seed)
        for name in tracker_names():
            ms = time_tracker(name, frames)
            median, p90 = np.median(ms), np.percentile(ms, 90)
            print(f"{name:<10} {n_boxes:>5} {median:>10.3f} {p90:>8.3f} {1e3 / median:>13.0f}")


if __name__ == "__main__":
    main()
