"""ROI occupancy, overcrowding events, dwell time, and the analytics/draw/sinks docstring examples."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from lanner.core.detections import Detections
from lanner.core.frame import Frame
from lanner.pipeline.analytics import Analytics, AnalyticsConfig, RoiConfig, inside_polygon

IMAGE = np.zeros((4, 4, 3), np.uint8)
SQUARE = [(0, 0), (100, 0), (100, 100), (0, 100)]
NS = 1_000_000_000


def _frame(idx: int, anchors: dict[int, tuple[float, float]], class_id: int = 0, pts_ns: int | None = None) -> Frame:
    """A frame whose tracks ``{track id: anchor (bottom centre)}`` have 10x10 boxes."""
    ids = sorted(anchors)
    boxes = [[anchors[t][0] - 5, anchors[t][1] - 10, anchors[t][0] + 5, anchors[t][1]] for t in ids]
    dets = Detections.from_arrays(np.array(boxes).reshape(-1, 4), [class_id] * len(ids), tracker_id=ids)
    return Frame(0, idx, idx * NS if pts_ns is None else pts_ns, IMAGE, dets)


def _run(frames: list[Frame], **roi) -> tuple[Analytics, list[dict]]:
    analytics = Analytics(AnalyticsConfig(rois=[RoiConfig(name="lot", polygon=SQUARE, **roi)]), ("car", "person"))
    events = []
    for f in frames:
        analytics.process(f)
        events += f.events
    return analytics, events


@pytest.mark.parametrize(
    ("point", "inside"),
    [((50, 50), True), ((150, 50), False), ((-1, 50), False), ((99.9, 99.9), True), ((50, 101), False)],
)
def test_inside_polygon(point: tuple[float, float], inside: bool) -> None:
    assert bool(inside_polygon(np.array([point]), SQUARE)[0]) is inside


def test_inside_polygon_concave() -> None:
    u_shape = [(0, 0), (30, 0), (30, 80), (70, 80), (70, 0), (100, 0), (100, 100), (0, 100)]
    assert inside_polygon(np.array([[50, 40], [50, 90], [15, 40]]), u_shape).tolist() == [False, True, True]


def test_occupancy_counts_anchors_inside_per_frame() -> None:
    analytics, _ = _run([_frame(0, {1: (50, 50), 2: (150, 50), 3: (20, 90)})])
    state = analytics.counts()[0]["rois"]["lot"]
    assert state["occupancy"] == 2 and state["max_occupancy"] == 2


def test_overcrowding_starts_once_and_ends() -> None:
    frames = [
        _frame(0, {1: (10, 10), 2: (20, 20)}),  # 2 = threshold: not over
        _frame(1, {1: (10, 10), 2: (20, 20), 3: (30, 30)}),  # 3 > 2: starts
        _frame(2, {1: (10, 10), 2: (20, 20), 3: (30, 30), 4: (40, 40)}),  # still over: no new event
        _frame(3, {1: (10, 10)}),  # back under: ends
    ]
    analytics, events = _run(frames, max_objects=2, dwell=False)
    kinds = [(e["type"], e["frame_idx"], e["count"]) for e in events]
    assert kinds == [("overcrowding", 1, 3), ("overcrowding_end", 3, 1)]
    assert analytics.counts()[0]["rois"]["lot"]["overcrowding_events"] == 1


def test_dwell_when_a_track_walks_out() -> None:
    frames = [_frame(0, {7: (150, 50)}), _frame(1, {7: (50, 50)}), _frame(2, {7: (60, 50)}),
              _frame(3, {7: (70, 50)}), _frame(4, {7: (150, 50)})]  # fmt: skip
    analytics, events = _run(frames)
    dwell = [e for e in events if e["type"] == "dwell"]
    assert len(dwell) == 1
    assert dwell[0]["tracker_id"] == 7 and dwell[0]["dwell_s"] == pytest.approx(2.0)
    assert (dwell[0]["enter_frame"], dwell[0]["exit_frame"], dwell[0]["frame_idx"]) == (1, 3, 4)
    assert analytics.counts()[0]["rois"]["lot"]["dwell_max_s"] == pytest.approx(2.0)


def test_dwell_of_a_lost_track_ends_after_the_timeout_and_at_end_of_source() -> None:
    frames = [_frame(0, {1: (50, 50), 2: (60, 60)}), _frame(1, {1: (50, 50), 2: (60, 60)})]
    frames += [_frame(i, {2: (60, 60)}) for i in range(2, 8)]  # track 1 vanishes inside the ROI
    analytics = Analytics(AnalyticsConfig(rois=[RoiConfig(name="lot", polygon=SQUARE)], track_timeout_frames=3))
    events = []
    for f in frames:
        analytics.process(f)
        events += f.events
    assert [(e["tracker_id"], e["dwell_s"]) for e in events if e["type"] == "dwell"] == [(1, 1.0)]
    end = analytics.end_source(0)
    assert [(e["tracker_id"], e["dwell_s"], e["source_id"]) for e in end] == [(2, 7.0, 0)]
    assert analytics.dwelling(0, "lot") == {}


def test_dwell_min_s_drops_flicker() -> None:
    frames = [_frame(0, {1: (50, 50)}), _frame(1, {1: (150, 50)})]  # 0 s inside
    analytics = Analytics(AnalyticsConfig(rois=[RoiConfig(name="lot", polygon=SQUARE)], dwell_min_s=0.5))
    for f in frames:
        analytics.process(f)
    assert not any(e["type"] == "dwell" for f in frames for e in f.events)


def test_roi_class_filter() -> None:
    analytics, _ = _run([_frame(0, {1: (50, 50)}, class_id=0)], class_ids=[1])
    assert analytics.counts()[0]["rois"]["lot"]["occupancy"] == 0


def test_live_dwell_for_display() -> None:
    analytics, _ = _run([_frame(0, {1: (50, 50)}), _frame(1, {1: (50, 50)}), _frame(2, {1: (50, 50)})])
    assert analytics.dwelling(0, "lot") == {1: pytest.approx(2.0)}


def test_disabled_analytics_leaves_frames_alone() -> None:
    analytics = Analytics(AnalyticsConfig())
    frame = _frame(0, {1: (50, 50)})
    analytics.process(frame)
    assert frame.events == [] and analytics.counts() == {}


MODULES = [
    "lanner.pipeline.analytics.config",
    "lanner.pipeline.analytics.lines",
    "lanner.pipeline.analytics.roi",
    "lanner.pipeline.analytics.stage",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_end_of_source_dwell_is_flagged_with_the_last_box_and_frame() -> None:
    analytics, events = _run([_frame(3, {1: (50, 50)}), _frame(4, {1: (55, 50), 2: (150, 50)})])
    assert not [e for e in events if e["type"] == "dwell"]
    end = analytics.end_source(0)
    assert [(e["tracker_id"], e["end_of_stream"], e["frame_idx"], e["pts_ns"]) for e in end] == [(1, True, 4, 4 * NS)]
    assert end[0]["bbox"] == [50.0, 40.0, 60.0, 50.0] and end[0]["dwell_s"] == pytest.approx(1.0)
    assert analytics.end_source(0) == []  # flushed once


def test_a_dwell_that_walks_out_is_not_end_of_stream() -> None:
    _, events = _run([_frame(0, {7: (50, 50)}), _frame(1, {7: (150, 50)})])
    assert [e["end_of_stream"] for e in events if e["type"] == "dwell"] == [False]
