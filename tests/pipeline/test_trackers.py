"""Behaviour of every registered tracker, table-driven over the registry."""

from __future__ import annotations

import numpy as np
import pytest
from tracksim import detect, simulate_scene

from lanner.core import ConfigError, DataError, Detections, Section
from lanner.pipeline.track import (
    TRACKERS,
    ByteTrack,
    ByteTrackConfig,
    PerSourceTrackers,
    SortConfig,
    Tracker,
    create_tracker,
    tracker_names,
)

ALL = tracker_names()
WITH_MOTION = ["bytetrack", "sort"]  # Kalman trackers; the IOU tracker has no motion model


def box(cx: float, cy: float, w: float = 40, h: float = 100) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def dets(boxes: list, scores: list | None = None, classes: list | None = None) -> Detections:
    n = len(boxes)
    return Detections.from_arrays(
        np.array(boxes, np.float32).reshape(-1, 4),
        class_id=classes if classes is not None else [0] * n,
        confidence=scores if scores is not None else [0.9] * n,
    )


def run(tracker: Tracker, frames: list[Detections], start: int = 0) -> list[Detections]:
    return [tracker.update(d, start + i) for i, d in enumerate(frames)]


def ids_of(outputs: list[Detections]) -> list[list[int]]:
    return [o.tracker_id.tolist() for o in outputs]


def test_registry_lists_the_three_trackers() -> None:
    assert ALL == ["bytetrack", "iou", "sort"]


@pytest.mark.parametrize("name", ALL)
def test_every_tracker_has_a_config_and_follows_the_protocol(name: str) -> None:
    cls = TRACKERS.get(name)
    assert issubclass(cls.config_type, Section)
    tracker = create_tracker(name)
    assert isinstance(tracker, Tracker)
    assert isinstance(create_tracker(name, cls.config_type()), cls)


@pytest.mark.parametrize("name", ALL)
def test_single_object_moving_linearly_keeps_one_id(name: str) -> None:
    outputs = run(create_tracker(name), [dets([box(100 + 4 * t, 200 + t)]) for t in range(40)])
    assert outputs[-1].tracker_id.tolist() == [1]
    reported = [i for o in outputs for i in o.tracker_id.tolist()]
    assert set(reported) == {1} and len(reported) >= 37  # at most the confirmation frames are missing


def crossing(t: int, lane_offset: float, low_score: bool) -> Detections:
    """A walks right at 6 px/frame, B left at 4 px/frame; their boxes overlap most around t = 30."""
    a, b = box(100 + 6 * t, 200), box(403 - 4 * t, 200 + lane_offset)
    occluded = low_score and abs(t - 30) <= 2  # B is half hidden behind A: the detector is unsure
    return dets([a, b], scores=[0.9, 0.3 if occluded else 0.85])


CROSSINGS = [
    pytest.param(name, lane, low, id=f"{name}-{'same_lane' if lane == 0 else 'near_lanes'}-{low_id}")
    for name in ALL
    for lane in (0, 20)
    for low, low_id in ((False, "both_seen"), (True, "one_occluded"))
    if not (name == "iou" and lane == 0)  # no motion model: see test_iou_tracker_swaps_ids_in_a_same_lane_crossing
]


@pytest.mark.parametrize(("name", "lane_offset", "low_score"), CROSSINGS)
def test_two_crossing_objects_keep_their_ids(name: str, lane_offset: float, low_score: bool) -> None:
    outputs = run(create_tracker(name), [crossing(t, lane_offset, low_score) for t in range(60)])
    assert ids_of(outputs[5:]) == [[1, 2]] * 55  # row 0 is A, row 1 is B in every frame


def test_iou_tracker_with_hungarian_matching() -> None:
    tracker = create_tracker("iou", {"matching": "hungarian", "min_hits": 1})
    outputs = run(tracker, [crossing(t, 20, False) for t in range(60)])
    assert ids_of(outputs) == [[1, 2]] * 60


def test_iou_tracker_swaps_ids_in_a_same_lane_crossing() -> None:
    # The documented limit of the IOU tracker (iou.py): when boxes pass right over each other, each
    # object's new box overlaps the other's last box more than its own. SORT and ByteTrack predict.
    outputs = run(create_tracker("iou"), [crossing(t, 0, False) for t in range(60)])
    assert ids_of(outputs[-1:]) == [[2, 1]]


@pytest.mark.parametrize("name", ALL)
def test_missed_detections_for_a_few_frames_keep_the_id(name: str) -> None:
    frames = [dets([] if 15 <= t < 19 else [box(100 + 3 * t, 200)]) for t in range(35)]
    outputs = run(create_tracker(name), frames)
    assert [len(o) for o in outputs[15:19]] == [0, 0, 0, 0]
    assert ids_of(outputs[19:]) == [[1]] * 16


@pytest.mark.parametrize("name", WITH_MOTION)
def test_fed_every_fifth_frame_the_prediction_covers_the_gap(name: str) -> None:
    # Learn the motion on 10 consecutive frames, then see the object only every 5th frame (a detector
    # ``interval``): it jumps 40 px, a whole box width, so only a prediction over the full gap matches.
    tracker = create_tracker(name)
    frames = [*range(10), *range(14, 100, 5)]
    outputs = [tracker.update(dets([box(100 + 8 * f, 200)]), f) for f in frames]
    assert ids_of(outputs[3:]) == [[1]] * (len(frames) - 3)


def test_bytetrack_second_stage_keeps_a_track_through_low_scores() -> None:
    scores = [0.9] * 10 + [0.3] * 10 + [0.9] * 5  # e.g. a partial occlusion
    outputs = run(create_tracker("bytetrack"), [dets([box(100 + 4 * t, 200)], [s]) for t, s in enumerate(scores)])
    assert ids_of(outputs[1:]) == [[1]] * 24


def test_bytetrack_low_score_boxes_never_start_tracks() -> None:
    frames = [dets([box(100 + 4 * t, 200), box(600, 300)], scores=[0.3, 0.55]) for t in range(20)]
    outputs = run(create_tracker("bytetrack"), frames)  # 0.55 > track_thresh but < new_track_thresh 0.6
    assert all(len(o) == 0 for o in outputs)
    frames = [dets([box(600, 300)], scores=[0.65]) for _ in range(3)]
    assert ids_of(run(create_tracker("bytetrack"), frames)) == [[1], [1], [1]]  # first frame: confirmed at once


def test_bytetrack_boxes_below_track_low_thresh_are_ignored() -> None:
    scores = [0.9] * 5 + [0.05] * 3
    outputs = run(create_tracker("bytetrack"), [dets([box(100 + 4 * t, 200)], [s]) for t, s in enumerate(scores)])
    assert [len(o) for o in outputs[5:]] == [0, 0, 0]


def test_bytetrack_new_tracks_need_a_second_frame_after_the_first() -> None:
    tracker = create_tracker("bytetrack")
    assert tracker.update(dets([]), 0).tracker_id.tolist() == []
    assert ids_of(run(tracker, [dets([box(100 + 4 * t, 200)]) for t in range(3)], start=1)) == [[], [1], [1]]


def test_bytetrack_lost_track_is_dropped_after_the_buffer() -> None:
    config = {"track_buffer": 5}
    frames = [dets([box(300, 200)]) for _ in range(5)] + [dets([])] * 7 + [dets([box(300, 200)]) for _ in range(3)]
    outputs = run(create_tracker("bytetrack", config), frames)
    assert ids_of(outputs[12:]) == [[], [2], [2]]  # gone after 6 frames > 5: a new, unconfirmed track first
    outputs = run(create_tracker("bytetrack", {"track_buffer": 10}), frames)
    assert ids_of(outputs[12:]) == [[1], [1], [1]]  # within the buffer: re-found with its id


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("class_aware", [True, False])
def test_class_aware_matching(name: str, class_aware: bool) -> None:
    tracker = create_tracker(name, {"class_aware": class_aware})
    run(tracker, [dets([box(100 + 2 * t, 200)], classes=[0]) for t in range(10)])  # a "car", id 1
    person = [tracker.update(dets([box(120 + 2 * t, 200)], classes=[1]), 10 + t) for t in range(5)]
    reported = {i for o in person for i in o.tracker_id.tolist()}
    assert reported == ({2} if class_aware else {1})


@pytest.mark.parametrize("name", ALL)
def test_empty_detections(name: str) -> None:
    tracker = create_tracker(name)
    empty = Detections.empty(data_keys=["crop_score"])
    out = tracker.update(empty, 0)
    assert len(out) == 0 and out.tracker_id is not None and list(out.data) == ["crop_score"]
    run(tracker, [dets([box(100 + 3 * t, 200)]) for t in range(5)], start=1)
    out = tracker.update(empty, 6)
    assert len(out) == 0 and out.tracker_id.dtype == np.int64
    none, one = tracker.update(dets([]), 7), tracker.update(dets([box(124, 200)]), 8)
    assert Detections.merge([none, one]).tracker_id.tolist() == [1]  # empty outputs merge with full ones


@pytest.mark.parametrize("name", ALL)
def test_output_keeps_input_order_boxes_and_data(name: str) -> None:
    tracker = create_tracker(name)
    for t in range(6):
        d = dets([box(500 - 5 * t, 200), box(100 + 5 * t, 400)], scores=[0.8, 0.9], classes=[2, 1])
        d.data["plate"] = np.array([f"A{t}", f"B{t}"])
        out = tracker.update(d, t)
    assert out.tracker_id.tolist() == [1, 2]
    np.testing.assert_array_equal(out.xyxy, d.xyxy)
    assert out.class_id.tolist() == [2, 1] and out.data["plate"].tolist() == ["A5", "B5"]


@pytest.mark.parametrize("name", ALL)
def test_ids_are_deterministic_start_at_1_and_increase(name: str) -> None:
    scene = simulate_scene(11, n_objects=20, n_frames=80)
    frames = [d for _, d in sorted(detect(scene, 12).items())]
    tracker = create_tracker(name)
    first = run(tracker, frames)
    tracker.reset()
    again = run(tracker, frames)
    fresh = run(create_tracker(name), frames)
    assert ids_of(first) == ids_of(again) == ids_of(fresh)
    in_order = list(dict.fromkeys(i for o in first for i in sorted(o.tracker_id.tolist())))
    assert in_order == list(range(1, len(in_order) + 1)) and len(in_order) >= 15


@pytest.mark.parametrize("name", ALL)
def test_frame_index_must_increase(name: str) -> None:
    tracker = create_tracker(name)
    tracker.update(dets([box(100, 200)]), 5)
    with pytest.raises(DataError, match="frame indices must increase"):
        tracker.update(dets([box(100, 200)]), 5)
    tracker.reset()
    tracker.update(dets([box(100, 200)]), 0)  # a reset source starts again


def test_create_tracker_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown tracker 'bytetrak'; did you mean 'bytetrack'"):
        create_tracker("bytetrak")
    with pytest.raises(ConfigError, match="track_tresh: unknown key; did you mean 'track_thresh'"):
        create_tracker("bytetrack", {"track_tresh": 0.4})
    with pytest.raises(ConfigError, match="track_low_thresh"):
        create_tracker("bytetrack", {"track_thresh": 0.3, "track_low_thresh": 0.4})
    with pytest.raises(ConfigError, match="takes a ByteTrackConfig, got SortConfig"):
        create_tracker("bytetrack", SortConfig())
    with pytest.raises(ConfigError, match="max_age"):
        create_tracker("sort", {"max_age": -1})


def test_bytetrack_config_defaults_follow_the_reference() -> None:
    cfg = ByteTrackConfig()
    assert (cfg.track_thresh, cfg.match_thresh, cfg.track_buffer, cfg.track_low_thresh) == (0.5, 0.8, 30, 0.1)
    assert cfg.start_thresh == pytest.approx(0.6) and cfg.max_time_lost == 30
    assert ByteTrackConfig(frame_rate=15).max_time_lost == 15
    assert isinstance(ByteTrack(), ByteTrack)


@pytest.mark.parametrize("name", ALL)
def test_invariants_on_a_noisy_crowded_scene(name: str) -> None:
    scene = simulate_scene(21, n_objects=40, n_frames=100, width=640, height=360)
    tracker = create_tracker(name)
    newest = 0
    for f, frame in sorted(detect(scene, 22, jitter=0.1, miss_rate=0.2, false_positives_per_frame=5).items()):
        out = tracker.update(frame, f)
        ids = out.tracker_id.tolist()
        assert len(set(ids)) == len(ids) and all(i > 0 for i in ids)  # one box per id per frame
        rows = [np.flatnonzero((frame.xyxy == b).all(axis=1))[0] for b in out.xyxy]
        assert rows == sorted(rows)  # reported rows are input rows, in input order
        fresh = sorted(i for i in ids if i > newest)
        assert fresh == list(range(newest + 1, newest + 1 + len(fresh)))  # new ids continue the count
        newest = max([newest, *ids])


def test_mot_frames_needs_tracker_ids() -> None:
    from lanner.pipeline.metrics import mot_frames

    with pytest.raises(DataError, match="no tracker_id"):
        mot_frames({0: dets([box(1, 1)])})


def test_per_source_trackers_keep_ids_apart() -> None:
    trackers = PerSourceTrackers("bytetrack")
    outputs = {0: [], 1: []}
    for t in range(10):  # interleaved frames of two cameras with the same frame indices
        for cam, x in ((0, 100), (1, 400)):
            outputs[cam].append(trackers.update(cam, dets([box(x + 3 * t, 200), box(x, 400)]), t))
    assert ids_of(outputs[0]) == ids_of(outputs[1]) == [[1, 2]] * 10
    assert trackers.sources() == [0, 1]
    trackers.remove(0)
    assert trackers.update(0, dets([box(100, 200)]), 0).tracker_id.tolist() == [1]  # a restarted source
    with pytest.raises(ConfigError, match="unknown key"):
        PerSourceTrackers("sort", {"max_ages": 3})
