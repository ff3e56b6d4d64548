"""Line crossing: direction, per class, touching/jitter/extent cases, and agreement with the ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lanner.core.detections import Detections
from lanner.core.errors import ConfigError
from lanner.core.frame import Frame
from lanner.data.synth import CLASSES, VideoSynthConfig, count_crossings, generate_videos, read_gt, read_lines
from lanner.pipeline.analytics import Analytics, AnalyticsConfig, LineConfig

IMAGE = np.zeros((4, 4, 3), np.uint8)
# horizontal line y=100 from x=0 to x=200; p1->p2 points right, so "in" (left->right of it) = moving down
ROAD = LineConfig(name="road", p1=(0, 100), p2=(200, 100))


def _frames(anchors_y: list[float], x: float = 100.0, class_id: int = 0, tid: int = 1) -> list[Frame]:
    """One track whose anchor (bottom centre) is at (x, y) in each frame; a box 20 wide, 30 tall."""
    frames = []
    for i, y in enumerate(anchors_y):
        dets = Detections.from_arrays([[x - 10, y - 30, x + 10, y]], [class_id], [0.9], tracker_id=[tid])
        frames.append(Frame(0, i, i * 33_333_333, IMAGE, dets))
    return frames


def _run(frames: list[Frame], lines=(ROAD,), **kwargs) -> tuple[Analytics, list[dict]]:
    analytics = Analytics(AnalyticsConfig(lines=list(lines), **kwargs), ("car", "person"))
    events = []
    for frame in frames:
        analytics.process(frame)
        events += frame.events
    return analytics, events


@pytest.mark.parametrize(
    ("ys", "expected"),
    [
        ([90, 110], {"in": 1, "out": 0}),  # straight down across: one "in"
        ([110, 90], {"in": 0, "out": 1}),  # straight up: one "out"
        ([80, 90, 95, 99], {"in": 0, "out": 0}),  # approaches, never reaches
        ([90, 100, 90], {"in": 0, "out": 0}),  # touches the line (on-line = left side) and turns back
        ([90, 100, 110], {"in": 1, "out": 0}),  # through the line in two steps: counted once
        ([110, 100, 110], {"in": 1, "out": 1}),  # from below onto the line (= left side: "out") and back ("in")
        ([99, 101, 99, 101, 99], {"in": 2, "out": 2}),  # jitter across the line: every crossing counts
        ([99, 101, 99, 101], {"in": 2, "out": 1}),  # jitter ending below: net one "in"
        ([50, 150], {"in": 1, "out": 0}),  # one big step still crosses
    ],
)
def test_crossings_by_direction(ys: list[float], expected: dict[str, int]) -> None:
    analytics, _ = _run(_frames(ys))
    counts = analytics.counts()[0]["lines"]["road"]
    assert {"in": counts["in"], "out": counts["out"]} == expected


ONCE = LineConfig(name="road", p1=(0, 100), p2=(200, 100), once_per_track=True)


@pytest.mark.parametrize(
    ("ys", "tids", "expected"),
    [
        ([99, 101, 99, 101, 99], [1] * 5, {"in": 1, "out": 0}),  # a jittering box edge: its first crossing only
        ([110, 90, 110], [1] * 3, {"in": 0, "out": 1}),
        ([90, 110, 90, 110], [1, 1, 2, 2], {"in": 2, "out": 0}),  # two tracks each count once
    ],
)
def test_once_per_track_counts_a_tracks_first_crossing(ys, tids, expected) -> None:
    frames = [f for y, tid, i in zip(ys, tids, range(len(ys))) for f in _frames([y], tid=tid)]
    for i, frame in enumerate(frames):
        frame.frame_idx, frame.pts_ns = i, i * 33_333_333
    analytics, _ = _run(frames, lines=(ONCE,))
    counts = analytics.counts()[0]["lines"]["road"]
    assert {"in": counts["in"], "out": counts["out"]} == expected


@pytest.mark.parametrize(
    ("x", "crosses"),
    [(100.0, True), (0.0, True), (200.0, True), (-1.0, False), (201.0, False), (500.0, False)],
)
def test_only_steps_within_the_segment_count(x: float, crosses: bool) -> None:
    analytics, _ = _run(_frames([90, 110], x=x))
    assert analytics.counts()[0]["lines"]["road"]["in"] == int(crosses)


def test_events_carry_direction_class_track_and_time() -> None:
    _, events = _run(_frames([90, 110], class_id=1, tid=42))
    assert events == [
        {"type": "line_crossing", "line": "road", "direction": "in", "tracker_id": 42, "class_id": 1,
         "class_name": "person", "anchor_xy": [100.0, 110.0], "source_id": 0, "frame_idx": 1,
         "pts_ns": 33_333_333},
    ]  # fmt: skip


def test_counts_per_class_and_class_filter() -> None:
    frames = [*_frames([90, 110], class_id=0, tid=1)]
    frames2 = _frames([90, 110], class_id=1, tid=2)
    for a, b in zip(frames, frames2):  # both tracks in the same frames
        a.detections = Detections.merge([a.detections, b.detections])
    only_people = LineConfig(name="people", p1=(0, 100), p2=(200, 100), class_ids=[1])
    analytics, _ = _run(frames, lines=(ROAD, only_people))
    lines = analytics.counts()[0]["lines"]
    assert lines["road"]["per_class"]["car"] == {"in": 1, "out": 0}
    assert lines["road"]["per_class"]["person"] == {"in": 1, "out": 0}
    assert lines["people"]["in"] == 1 and lines["people"]["per_class"]["car"] == {"in": 0, "out": 0}


def test_sources_are_counted_apart_and_lines_can_be_limited_to_sources() -> None:
    only_src1 = LineConfig(name="gate", p1=(0, 100), p2=(200, 100), sources=[1])
    analytics = Analytics(AnalyticsConfig(lines=[ROAD, only_src1]), ("car",))
    for src in (0, 1):
        for f in _frames([90, 110]):  # the same track id on both sources must not mix
            analytics.process(Frame(src, f.frame_idx, f.pts_ns, IMAGE, f.detections))
    counts = analytics.counts()
    assert counts[0]["lines"]["road"]["in"] == 1 and counts[1]["lines"]["road"]["in"] == 1
    assert "gate" not in counts[0]["lines"] and counts[1]["lines"]["gate"]["in"] == 1
    assert analytics.line_totals() == {"road": {"in": 2, "out": 0}, "gate": {"in": 1, "out": 0}}


def test_a_track_lost_longer_than_the_timeout_starts_over() -> None:
    frames = _frames([90, 110])
    frames[1].frame_idx = 500  # seen again long after: no step is assumed across the gap
    analytics, _ = _run(frames, track_timeout_frames=100)
    assert analytics.counts()[0]["lines"]["road"]["in"] == 0


def test_untracked_boxes_count_nothing() -> None:
    analytics = Analytics(AnalyticsConfig(lines=[ROAD]), ("car",))
    for i, y in enumerate([90, 110]):
        analytics.process(Frame(0, i, 0, IMAGE, Detections.from_arrays([[90, y - 30, 110, y]], [0])))
    assert analytics.counts()[0]["lines"]["road"]["in"] == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"lines": [{"name": "a", "p1": [0, 0], "p2": [0, 0]}]}, "p1 == p2"),
        ({"lines": [{"name": "a", "p1": [0, 0], "p2": [1, 0]}, {"name": "a", "p1": [0, 0], "p2": [2, 0]}]}, "repeat"),
        ({"rois": [{"name": "r", "polygon": [[0, 0], [1, 1]]}]}, "at least 3 points"),
    ],
)
def test_bad_configs_fail_with_one_clear_line(config: dict, message: str) -> None:
    from lanner.core.config import load_config

    with pytest.raises(ConfigError, match=message):
        load_config(AnalyticsConfig, data=config)


def _random_tracks(rng: np.random.Generator, frames: int = 120, tracks: int = 25) -> list[Detections]:
    """Random walks with gaps: tracks appear, move in random directions, vanish, come back."""
    pos = rng.uniform(0, 300, (tracks, 2))
    vel = rng.normal(0, 6, (tracks, 2))
    out = []
    for _ in range(frames):
        pos += vel + rng.normal(0, 2, (tracks, 2))
        keep = rng.random(tracks) > 0.2
        xy = pos[keep]
        boxes = np.stack([xy[:, 0] - 8, xy[:, 1] - 20, xy[:, 0] + 8, xy[:, 1]], axis=1)
        out.append(Detections.from_arrays(boxes, np.arange(tracks)[keep] % 2, tracker_id=np.flatnonzero(keep)))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_the_ground_truth_counter_on_random_tracks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    tracks = _random_tracks(rng)
    configs = [LineConfig(name="diag", p1=(20, 40), p2=(260, 220)), LineConfig(name="v", p1=(150, 0), p2=(150, 300))]
    expected = count_crossings(tracks, [c.to_count_line() for c in configs], ("car", "person"))
    analytics, _ = _run([Frame(0, i, 0, IMAGE, d) for i, d in enumerate(tracks)], lines=configs)
    assert analytics.counts()[0]["lines"] == expected
    assert sum(c["in"] + c["out"] for c in expected.values()) > 0  # the case is not trivially empty


def test_agrees_with_the_synthetic_video_ground_truth(tmp_path) -> None:
    """On a rendered video's GT tracks (read_gt), analytics counts == the generator's counts.json."""
    config = VideoSynthConfig(cameras=1, seconds=4, width=320, height=192, seed=11, density=3.0)
    generate_videos(config, tmp_path, workers=1)
    seq = tmp_path / "cam0"
    lines = read_lines(seq / "lines.json")
    gt_frames = read_gt(seq / "gt" / "gt.txt", num_frames=config.frames)
    analytics = Analytics(
        AnalyticsConfig(lines=[LineConfig(name=ln.name, p1=ln.p1_xy, p2=ln.p2_xy) for ln in lines]), CLASSES
    )
    for i, dets in enumerate(gt_frames):
        analytics.process(Frame(0, i, i * 33_333_333, IMAGE, dets))
    truth = json.loads((seq / "counts.json").read_text())
    assert analytics.counts()[0]["lines"] == truth
    assert sum(c["in"] + c["out"] for c in truth.values()) >= 3  # enough crossings to mean something
