"""Counting lines (the crossing definition on hand-made tracks) and MOTChallenge ground truth files."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanner.core.detections import Detections
from lanner.core.errors import DataError
from lanner.data.synth.lines import (
    CountLine,
    LineCounter,
    anchor_points,
    auto_lines,
    count_crossings,
    read_lines,
    write_lines,
)
from lanner.data.synth.mot import SeqInfo, interpolate_gaps, quantize, read_gt, read_seqinfo, write_gt, write_seqinfo
from lanner.data.synth.world import CLASSES, random_scene

# A horizontal segment pointing right (p1 -> p2): its right side is below it on the screen (y down),
# so moving DOWN across it is "in".
LINE = CountLine("road", (0.0, 100.0), (200.0, 100.0))


def box_at(x: float, y: float, w: float = 20.0, h: float = 30.0) -> list[float]:
    """A box whose bottom-centre anchor is (x, y)."""
    return [x - w / 2, y - h, x + w / 2, y]


def track(points: list[tuple[float, float] | None], tid: int = 1, cls: int = 0) -> list[Detections]:
    """One track as per-frame Detections; None = not visible in that frame."""
    frames = []
    for p in points:
        if p is None:
            frames.append(Detections.from_arrays(np.zeros((0, 4)), np.zeros(0, np.int64), tracker_id=np.zeros(0)))
        else:
            frames.append(Detections.from_arrays([box_at(*p)], [cls], tracker_id=[tid]))
    return frames


CASES = [  # name, anchor path, expected (in, out)
    ("down across: in", [(100, 90), (100, 110)], (1, 0)),
    ("up across: out", [(100, 110), (100, 90)], (0, 1)),
    ("parallel above", [(20, 90), (100, 90), (180, 90)], (0, 0)),
    ("parallel below", [(20, 110), (180, 110)], (0, 0)),
    ("across outside the segment", [(300, 90), (300, 110)], (0, 0)),
    ("across left of p1", [(-5, 90), (-5, 110)], (0, 0)),
    ("diagonal past the end", [(190, 90), (230, 110)], (0, 0)),
    ("diagonal inside", [(150, 80), (190, 120)], (1, 0)),
    ("touch and turn back", [(100, 90), (100, 100), (100, 90)], (0, 0)),
    ("onto the line, then below", [(100, 90), (100, 100), (100, 110)], (1, 0)),
    ("down and back up", [(100, 90), (100, 110), (100, 95)], (1, 1)),
    ("across while unseen", [(100, 90), None, None, (100, 110)], (1, 0)),
    ("standing on the far side", [(100, 150)] * 4, (0, 0)),
]


@pytest.mark.parametrize(("name", "path", "expected"), CASES, ids=[c[0] for c in CASES])
def test_count_crossings_hand_made(name: str, path: list, expected: tuple[int, int]) -> None:
    counts = count_crossings(track(path), [LINE], CLASSES)["road"]
    assert (counts["in"], counts["out"]) == expected
    assert (counts["per_class"]["car"]["in"], counts["per_class"]["car"]["out"]) == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 200), st.floats(0, 200)), min_size=1, max_size=12))
def test_in_minus_out_is_the_change_of_side(path: list[tuple[float, float]]) -> None:
    """For a line longer than anything can move sideways, in - out only depends on where a track starts and ends."""
    line = CountLine("wide", (-1e4, 100.0), (1e4, 100.0))
    counts = count_crossings(track(path), [line], CLASSES)["wide"]
    below = [y > 100.0 for _, y in path]
    assert counts["in"] - counts["out"] == int(below[-1]) - int(below[0])
    assert counts["in"] + counts["out"] == sum(a != b for a, b in itertools.pairwise(below))


def test_side_convention_and_anchor() -> None:
    assert LINE.side(np.array([[50, 120]]))[0] > 0  # below = right of a rightward line
    assert LINE.side(np.array([[50, 80]]))[0] < 0
    assert anchor_points(np.array([[10, 20, 30, 60]])).tolist() == [[20.0, 60.0]]


def test_counts_per_class_and_independent_tracks() -> None:
    a = track([(50, 90), (50, 110)], tid=1, cls=CLASSES.index("bicycle"))
    b = track([(60, 110), (60, 90)], tid=2, cls=CLASSES.index("person"))
    frames = [Detections.merge([x, y]) for x, y in zip(a, b, strict=True)]
    counts = count_crossings(frames, [LINE, CountLine("other", (0, 0), (0, 10))], CLASSES)
    assert counts["road"]["per_class"]["bicycle"] == {"in": 1, "out": 0}
    assert counts["road"]["per_class"]["person"] == {"in": 0, "out": 1}
    assert counts["other"]["in"] + counts["other"]["out"] == 0


def test_line_counter_events_and_errors() -> None:
    counter = LineCounter([LINE], CLASSES)
    frames = track([(100, 90), (100, 110)], tid=7)
    assert counter.update(frames[0]) == []
    (event,) = counter.update(frames[1])
    assert (event.line, event.direction, event.tracker_id, event.class_name, event.frame_idx) == (
        "road",
        "in",
        7,
        "car",
        1,
    )
    with pytest.raises(DataError, match="tracker_id"):
        counter.update(Detections.from_arrays([box_at(1, 1)], [0]))
    with pytest.raises(DataError, match="repeat"):
        LineCounter([LINE, LINE], CLASSES)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_auto_lines_in_image_and_in_means_away(seed: int, tmp_path) -> None:
    scene = random_scene(np.random.default_rng(seed), 320, 192, paint=False)
    cam, layout = scene.camera, scene.layout
    lines = auto_lines(cam, layout)
    assert lines[0].name == "road"
    for line in lines:
        for x, y in (line.p1_xy, line.p2_xy):
            assert 0 <= x <= cam.width - 1 and 0 <= y <= cam.height - 1
    # A car driving away from the camera along the road's middle crosses the road line "in".
    xs = [lane.x_m for lane in layout.lanes]
    z = _line_z_of(lines[0], cam, layout)
    pixels, _ = cam.project(np.array([[np.mean(xs), 0.0, z - 2.0], [np.mean(xs), 0.0, z + 2.0]]))
    frames = track([tuple(p) for p in pixels])
    assert count_crossings(frames, lines[:1], CLASSES)["road"]["in"] == 1
    path = write_lines(tmp_path / "lines.json", lines, (cam.width, cam.height))
    assert read_lines(path) == lines


def _line_z_of(line: CountLine, cam, layout) -> float:
    """The ground z under the road line's midpoint (the line is drawn at one z)."""
    v = (line.p1_xy[1] + line.p2_xy[1]) / 2
    return min(cam.ground_z_at_row(v), layout.z_far_m)


def test_auto_lines_avoid_crosswalk() -> None:
    scene = random_scene(np.random.default_rng(0), 320, 192, paint=False)
    from lanner.data.synth.lines import line_z

    z = line_z(scene.camera, scene.layout)
    moved = line_z(scene.camera, scene.layout, avoid_z_m=(z - 1.0, z + 1.0))
    assert abs(moved - z) >= 3.9


# -- MOTChallenge ---------------------------------------------------------------------------------------


def gt_frames() -> list[Detections]:
    f0 = Detections.from_arrays(
        [[10.25, 20.5, 50.75, 80.0], [0, 0, 5, 5]],
        [0, 2],
        confidence=[1, 0],
        tracker_id=[3, 1],
        data={"visibility": np.array([1.0, 0.1], np.float32)},
    )
    empty = Detections.from_arrays(np.zeros((0, 4)), np.zeros(0), tracker_id=np.zeros(0), data={"visibility": []})
    f2 = Detections.from_arrays(
        [[12.0, 20.0, 52.0, 81.0]], [3], tracker_id=[3], data={"visibility": np.array([0.5], np.float32)}
    )
    return [f0, empty, f2]


def test_mot_file_layout(tmp_path) -> None:
    path = write_gt(tmp_path / "gt" / "gt.txt", gt_frames())
    rows = path.read_text().splitlines()
    # frame,id,bb_left,bb_top,bb_width,bb_height,conf,class,visibility -- 1-based frame, pixels and class
    assert rows[0] == "1,1,1.00,1.00,5.00,5.00,0,3,0.1000"
    assert rows[1] == "1,3,11.25,21.50,40.50,59.50,1,1,1.0000"
    assert rows[2].startswith("3,3,13.00,21.00,40.00,61.00,1,4,")
    assert len(rows) == 3


def test_mot_round_trip(tmp_path) -> None:
    frames = quantize(gt_frames())
    path = write_gt(tmp_path / "gt.txt", frames)
    back = read_gt(path, num_frames=5)
    assert len(back) == 5 and len(back[1]) == 0 and len(back[4]) == 0
    for a, b in zip(frames, back[:3], strict=True):
        order = np.argsort(a.tracker_id)
        assert np.array_equal(a.xyxy[order], b.xyxy)
        assert np.array_equal(a.class_id[order], b.class_id)
        assert np.array_equal(a.tracker_id[order], b.tracker_id)
        assert np.array_equal(a.confidence[order], b.confidence)
        assert np.allclose(a.data["visibility"][order], b.data["visibility"], atol=1e-4)


def test_seqinfo_round_trip(tmp_path) -> None:
    info = SeqInfo("cam0", 30, 90, 320, 192, classes=CLASSES)
    path = write_seqinfo(tmp_path / "seqinfo.ini", info)
    text = path.read_text()
    assert text.startswith("[Sequence]\nname=cam0\n")
    for key in ("frameRate=30", "seqLength=90", "imWidth=320", "imHeight=192", "imExt=.jpg"):
        assert key in text
    assert read_seqinfo(path) == info


@pytest.mark.parametrize(
    ("text", "match"),
    [("1,2,3\n", "at least 6"), ("1,2,x,4,5,6,1,1,1\n", "not a number")],
)
def test_read_gt_errors_name_the_line(tmp_path, text: str, match: str) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("1,1,1,1,2,2,1,1,1\n" + text)
    with pytest.raises(DataError, match=match) as info:
        read_gt(path)
    assert f"{path}:2" in str(info.value)
    with pytest.raises(DataError, match="not found"):
        read_gt(tmp_path / "missing.txt")


def test_interpolate_gaps() -> None:
    frames = track([(0, 100), None, None, (30, 130), None, None, None, None, (40, 140)])
    filled = interpolate_gaps(frames, max_gap=3)
    assert [len(f) for f in filled] == [1, 1, 1, 1, 0, 0, 0, 0, 1]
    assert math.isclose(anchor_points(filled[1].xyxy)[0, 0], 10.0, abs_tol=1e-4)
    assert filled[2].confidence[0] == 0 and filled[2].data["visibility"][0] == 0
    assert filled[3].confidence[0] == 1
    # Interpolated steps lie on the observed step: counts do not change.
    line = CountLine("l", (0, 115), (100, 115))
    assert count_crossings(filled, [line], CLASSES) == count_crossings(frames, [line], CLASSES)
