"""Greedy NMS in numpy: one IoU matrix vs one IoU row per kept box, on detector-like candidate sets.

``lanner.core.nms.nms`` takes the matrix path up to ``MATRIX_NMS_MAX`` candidates. This measures both paths
on the same candidates (clusters of jittered boxes around objects, as a detector's multi-label output above
its threshold looks), checks they keep the same boxes, and prints microseconds per call and the ratio.

    python bench/nms.py [--sizes 25,100,300,512,1000] [--repeats 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lanner.core import nms as core_nms


def candidates(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1000, (max(1, n // 5), 2))
    xy = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 3, (n, 2))
    size = rng.uniform(10, 120, (n, 2))
    boxes = np.concatenate([xy - size / 2, xy + size / 2], axis=1).astype(np.float32)
    return boxes, rng.uniform(0.3, 1.0, n).astype(np.float32)


def per_call_us(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(3):  # best of 3 timed loops, interleaved by the caller
        start = time.thread_time()
        for _ in range(repeats):
            fn()
        best = min(best, (time.thread_time() - start) / repeats * 1e6)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="25,100,300,512,1000")
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args()
    print(f"{'candidates':>10} {'kept':>5} {'rows us':>9} {'matrix us':>10} {'rows/matrix':>12}")
    for n in (int(x) for x in args.sizes.split(",")):
        boxes, scores = candidates(n)
        order = np.argsort(-scores, kind="stable")
        rows = core_nms._nms_rows(boxes, order, 0.45)
        matrix = core_nms._nms_matrix(boxes[order], 0.45, order)
        assert rows.tolist() == matrix.tolist(), "the two paths disagree"
        t_rows = per_call_us(lambda b=boxes, o=order: core_nms._nms_rows(b, o, 0.45), args.repeats)
        t_matrix = per_call_us(lambda b=boxes, o=order: core_nms._nms_matrix(b[o], 0.45, o), args.repeats)
        print(f"{n:>10} {len(rows):>5} {t_rows:>9.1f} {t_matrix:>10.1f} {t_rows / t_matrix:>12.2f}")


if __name__ == "__main__":
    main()
