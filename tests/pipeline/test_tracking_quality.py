"""Tracking quality on synthetic scenes: ByteTrack (defaults) must reach MOTA >= 0.8 and IDF1 >= 0.75.

The scenes (``tracksim.py``) have 40 objects over 200 frames (about 15 in view at once) with constant
velocity plus noise, entering and leaving, a quarter of them on crossing courses; the detector jitters
boxes by 4 % of their size, misses 8 % of them (mostly the ones hidden behind nearer objects), lowers
scores under occlusion and adds about two false positives a frame. The seeds below were not used while
developing the trackers or the detector model."""

from __future__ import annotations

import pytest
from tracksim import detect, simulate_scene, track_scene

from lanner.pipeline.metrics import evaluate_mot

HELD_OUT_SEEDS = [3031, 3032, 3033, 3034, 3035]
SCENE = {"n_objects": 40, "n_frames": 200}
DETECTOR = {"jitter": 0.04, "miss_rate": 0.08, "false_positives_per_frame": 2.0}


def bytetrack_metrics(seed: int) -> dict:
    scene = simulate_scene(seed, **SCENE)
    hyp = track_scene("bytetrack", detect(scene, seed + 1000, **DETECTOR))
    return evaluate_mot(scene.gt, hyp)


@pytest.mark.parametrize("seed", HELD_OUT_SEEDS)
def test_bytetrack_quality_on_held_out_scenes(seed: int) -> None:
    m = bytetrack_metrics(seed)
    summary = f"seed {seed}: MOTA {m['mota']:.3f} IDF1 {m['idf1']:.3f} IDSW {m['num_switches']}"
    print(summary)
    assert m["mota"] >= 0.8, summary
    assert m["idf1"] >= 0.75, summary
