"""OSD and tiler: pixels at known positions (box edges, tiles, letterbox bars, ROI tint, line colour)."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from lanner.core.detections import Detections
from lanner.core.frame import Frame
from lanner.pipeline.analytics import Analytics, AnalyticsConfig, LineConfig, RoiConfig
from lanner.pipeline.draw import Osd, OsdConfig, Tiler, TilerConfig, color_for, letterbox_into
from lanner.pipeline.draw.osd import ALERT_COLOR, LINE_COLOR, ROI_COLOR

H, W = 360, 640
QUIET = {"show_labels": False, "show_confidence": False, "show_track_ids": False, "show_fps": False}


def _frame(boxes, classes, tracks=None, idx=0, source=0, value=0) -> Frame:
    dets = Detections.from_arrays(np.array(boxes, np.float32).reshape(-1, 4), classes, tracker_id=tracks)
    return Frame(source, idx, idx * 33_333_333, np.full((H, W, 3), value, np.uint8), dets)


def _px(image: np.ndarray, x: int, y: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in image[y, x])


@pytest.mark.parametrize(
    ("color_by", "expected"),
    [("class", [color_for(2), color_for(2)]), ("track", [color_for(11), color_for(12)])],
)
def test_box_edges_take_the_class_or_track_colour(color_by: str, expected: list) -> None:
    osd = Osd(OsdConfig(color_by=color_by, trail_length=0, **QUIET))
    image = osd.draw(_frame([[100, 100, 200, 200], [300, 100, 400, 200]], [2, 2], tracks=[11, 12]))
    assert [_px(image, 100, 150), _px(image, 300, 150)] == expected  # left edges
    assert _px(image, 150, 150) == (0, 0, 0)  # inside the box: untouched
    assert _px(image, 50, 50) == (0, 0, 0)


def test_draw_leaves_the_frame_image_untouched() -> None:
    frame = _frame([[100, 100, 200, 200]], [0])
    Osd(OsdConfig()).draw(frame)
    assert frame.image.max() == 0


def test_label_sits_on_a_filled_box_above_the_object() -> None:
    osd = Osd(OsdConfig(trail_length=0, show_fps=False), None, ("car",))
    image = osd.draw(_frame([[100, 100, 300, 200]], [0], tracks=[5]))
    plate = image[86:99, 100:140]  # just above the box's top-left corner
    assert (plate == color_for(0)).all(axis=2).mean() > 0.5  # mostly label background
    assert (plate != color_for(0)).any(axis=2).any()  # with text in it
    assert image[60:85, 100:300].max() == 0  # and no taller than the text
    assert _px(image, 250, 150) == (0, 0, 0)


def test_trails_follow_the_anchor_and_are_dropped_for_stale_tracks() -> None:
    osd = Osd(OsdConfig(trail_length=5, **QUIET))
    for i, x in enumerate([100, 150, 200]):
        image = osd.draw(_frame([[x - 20, 150, x + 20, 200]], [1], tracks=[3], idx=i))
    on_trail = np.array(_px(image, 125, 200))  # between the first two anchors (y = box bottom); anti-aliased
    assert np.abs(on_trail - color_for(1)).max() < 40
    assert _px(image, 125, 180) == (0, 0, 0)
    osd.draw(_frame(np.zeros((0, 4)), [], tracks=[], idx=100))
    osd.draw(_frame([[380, 150, 420, 200]], [1], tracks=[4], idx=101))
    assert 3 not in osd._trails[0]


def test_lines_and_rois_with_live_counts() -> None:
    config = AnalyticsConfig(
        lines=[LineConfig(name="gate", p1=(20, 300), p2=(620, 300))],
        rois=[RoiConfig(name="lot", polygon=[(400, 20), (600, 20), (600, 150), (400, 150)], max_objects=0)],
    )
    analytics = Analytics(config, ("car",))
    osd = Osd(OsdConfig(trail_length=0, **QUIET), analytics, ("car",))
    empty = _frame(np.zeros((0, 4)), [], tracks=[], value=100)
    analytics.process(empty)
    image = osd.draw(empty)
    assert _px(image, 320, 300) == LINE_COLOR
    tint = _px(image, 500, 130)
    assert tint != (100, 100, 100) and np.allclose(tint, 0.82 * 100 + 0.18 * np.array(ROI_COLOR), atol=2)
    crowded = _frame([[480, 100, 520, 140]], [0], tracks=[1], value=100)  # anchor (500, 140) inside the ROI
    analytics.process(crowded)
    image = osd.draw(crowded)
    assert np.allclose(_px(image, 590, 130), 0.82 * 100 + 0.18 * np.array(ALERT_COLOR), atol=2)  # turns red


def test_counts_can_be_hidden_and_sources_forgotten() -> None:
    config = AnalyticsConfig(lines=[LineConfig(name="g", p1=(20, 300), p2=(620, 300))])
    analytics = Analytics(config)
    frame = _frame([[100, 100, 140, 140]], [0], tracks=[1])
    analytics.process(frame)
    with_counts = Osd(OsdConfig(trail_length=3, **QUIET), analytics).draw(frame)
    without = Osd(OsdConfig(trail_length=3, **{**QUIET, "show_counts": False}), analytics).draw(frame)
    plate = (slice(260, 300), slice(0, 200))  # the line's label, above its left end
    assert (with_counts[plate] == LINE_COLOR).all(axis=2).sum() > (without[plate] == LINE_COLOR).all(axis=2).sum()
    osd = Osd(OsdConfig(trail_length=3, **QUIET))
    osd.draw(frame)
    osd.remove_source(0)
    assert osd._trails == {} and osd._fps == {}


def test_dwell_seconds_extend_the_label_of_a_track_inside_an_roi() -> None:
    def label_width(show_dwell: bool) -> int:
        roi = RoiConfig(name="lot", polygon=[(0, 0), (640, 0), (640, 360), (0, 360)])
        analytics = Analytics(AnalyticsConfig(rois=[roi]))
        osd = Osd(OsdConfig(trail_length=0, show_fps=False, show_rois=False, show_dwell=show_dwell), analytics)
        for i in range(3):
            frame = _frame([[100, 100, 140, 140]], [0], tracks=[1], idx=i)
            frame.pts_ns = i * 5_000_000_000  # 5 s apart: 10 s inside by the third frame
            analytics.process(frame)
            image = osd.draw(frame)
        plate = (image[80:99, 100:] == color_for(0)).all(axis=2)
        return int(np.flatnonzero(plate.any(axis=0)).max())

    assert label_width(True) > label_width(False) + 10


def test_fps_overlay_is_drawn_top_right() -> None:
    image = Osd(OsdConfig(trail_length=0)).draw(_frame(np.zeros((0, 4)), []), fps=25.0)
    assert image[0:20, W - 20 : W].max() > 0 and image[0:20, 0:20].max() == 0


def test_letterbox_keeps_aspect_with_black_bars() -> None:
    tall = np.full((200, 100, 3), 255, np.uint8)
    out = letterbox_into(tall, 200, 100)
    assert out.shape == (100, 200, 3)
    assert out[:, :75].max() == 0 and out[:, 125:].max() == 0 and out[:, 76:124].min() == 255


def test_tiles_go_to_their_source_slot_and_missing_ones_are_black() -> None:
    tiler = Tiler(TilerConfig(rows=2, columns=2, width=400, height=200, show_names=False))
    colours = {0: 50, 1: 100, 3: 200}
    mosaic = tiler.compose({s: np.full((100, 200, 3), v, np.uint8) for s, v in colours.items()})
    assert mosaic.shape == (200, 400, 3)
    centres = {0: (100, 50), 1: (300, 50), 2: (100, 150), 3: (300, 150)}
    assert {s: int(mosaic[y, x, 0]) for s, (x, y) in centres.items()} == {0: 50, 1: 100, 2: 0, 3: 200}


def test_auto_grid_and_sticky_slots() -> None:
    tiler = Tiler(TilerConfig(width=300, height=300, show_names=False))
    assert [tiler.grid(n) for n in (1, 2, 3, 4, 5, 9, 10)] == [(1, 1), (1, 2), (2, 2), (2, 2), (2, 3), (3, 3), (3, 4)]
    fixed = Tiler(TilerConfig(rows=1, columns=2, width=200, height=100, show_names=False))
    assert fixed.slot(7, 2) == 0 and fixed.slot(1, 2) == 1 and fixed.slot(9, 2) is None
    fixed.remove(7)
    assert fixed.slot(9, 2) == 0


def test_tile_names_are_drawn() -> None:
    tiler = Tiler(TilerConfig(rows=1, columns=1, width=320, height=180), names={0: "north"})
    mosaic = tiler.compose({0: np.full((180, 320, 3), 255, np.uint8)})
    assert mosaic[0:15, 0:30].min() < 100  # dark name plate at the top-left
    assert mosaic[170:, 300:].min() == 255


MODULES = ["lanner.pipeline.draw.osd", "lanner.pipeline.draw.tiler", "lanner.pipeline.draw.config"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_secondary_classifier_results_join_the_label() -> None:
    dets = Detections.from_arrays([[10, 40, 60, 80], [100, 40, 150, 80]], [0, 0], [0.9, 0.8], tracker_id=[1, 2])
    dets.data["vehicle_type_class_id"] = np.array([2, -1])  # second object not classified yet
    osd = Osd(OsdConfig(), None, ("car",), {"vehicle_type": ("bus", "sedan", "suv")})
    assert osd._label_text(0, 0.9, 1, osd._attribute_text(dets, 0)) == "car suv 0.90 #1"
    assert osd._label_text(0, 0.8, 2, osd._attribute_text(dets, 1)) == "car 0.80 #2"
    assert Osd(OsdConfig(), None, ("car",))._attribute_text(dets, 0) == ""
