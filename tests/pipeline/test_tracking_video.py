"""ByteTrack on the synthetic-world videos' MOTChallenge ground truth (``lanner.data.synth.video``).

Five short clips (320x192, 4 s at 30 fps) are generated with a seed not used while developing the
trackers. The renderer's ground truth (boxes marked "consider") is perturbed into detections with
``tracksim.detect`` (jitter, misses weighted by the renderer's visibility, occlusion-lowered scores,
false positives): frames are not decoded, so this measures the tracker, not a detector.
"""

from __future__ import annotations

import numpy as np
import pytest
from tracksim import Scene, detect, track_scene

from lanner.pipeline.metrics import evaluate_mot, read_mot_txt

video = pytest.importorskip("lanner.data.synth.video")
synth_mot = pytest.importorskip("lanner.data.synth.mot")

CAMERAS = 5
HELD_OUT_SEED = 7070


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    config = video.VideoSynthConfig(cameras=CAMERAS, seconds=4, width=320, height=192, seed=HELD_OUT_SEED)
    out = tmp_path_factory.mktemp("tracking_video")
    video.generate_videos(config, out, workers=1)
    return out, config


def ground_truth(gt_path: object, num_frames: int) -> tuple[dict, dict, dict]:
    """Frames of considered boxes, their visibility, and each id's class, read with data's own reader."""
    frames = synth_mot.read_gt(gt_path, num_frames=num_frames)
    considered = [d[d.confidence >= 1] for d in frames]
    gt = {f: (d.tracker_id, d.xyxy.astype(np.float64)) for f, d in enumerate(considered)}
    visibility = {f: d.data["visibility"].astype(np.float64) for f, d in enumerate(considered)}
    classes = {int(i): int(c) for d in frames for i, c in zip(d.tracker_id, d.class_id)}
    return gt, visibility, classes


@pytest.mark.slow
@pytest.mark.parametrize("camera", range(CAMERAS))
def test_bytetrack_on_synthetic_video_ground_truth(clips: tuple, camera: int) -> None:
    out, config = clips
    gt_path = out / f"cam{camera}" / "gt" / "gt.txt"
    gt, visibility, classes = ground_truth(gt_path, config.frames)
    ours = read_mot_txt(gt_path, min_conf=1)  # our MOTChallenge reader agrees with the writer's own
    for f, (ids, xyxy) in gt.items():
        got_ids, got_xyxy = ours.get(f, (np.zeros(0, np.int64), np.zeros((0, 4))))
        np.testing.assert_array_equal(got_ids, ids)
        np.testing.assert_allclose(got_xyxy, xyxy, atol=1e-4)

    scene = Scene(gt, classes, config.width, config.height, config.frames, visibility=visibility)
    detections = detect(scene, seed=camera, jitter=0.04, miss_rate=0.08, false_positives_per_frame=2.0)
    m = evaluate_mot(gt, track_scene("bytetrack", detections))
    print(f"cam{camera}: {m['num_objects']} boxes, MOTA {m['mota']:.3f} IDF1 {m['idf1']:.3f} IDSW {m['num_switches']}")
    assert m["num_objects"] > 500
    assert m["mota"] >= 0.8 and m["idf1"] >= 0.75
