"""End to end on a rendered synthetic video: GT tracks -> analytics -> OSD -> tiler -> queued video + JSONL sinks.

The JSONL's line-crossing events must add up to the generator's ``counts.json``, and the tiled MP4 must
hold every frame, with the mosaic layout visible in its pixels.
"""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from lanner.core.frame import Frame
from lanner.data.synth import CLASSES, VideoSynthConfig, generate_videos, read_gt, read_lines
from lanner.pipeline.analytics import Analytics, AnalyticsConfig, LineConfig
from lanner.pipeline.draw import Osd, OsdConfig, Tiler, TilerConfig
from lanner.pipeline.sinks import JsonlSinkConfig, VideoSinkConfig, queued


@pytest.mark.slow
def test_synthetic_video_through_analytics_draw_and_sinks(tmp_path) -> None:
    config = VideoSynthConfig(cameras=2, seconds=2, width=320, height=192, seed=5, density=4.0)
    generate_videos(config, tmp_path / "data", workers=1)
    lines = {cam: read_lines(tmp_path / "data" / f"cam{cam}" / "lines.json") for cam in (0, 1)}
    per_camera = [
        LineConfig(name=f"{ln.name}{cam}", p1=ln.p1_xy, p2=ln.p2_xy, sources=[cam])
        for cam in (0, 1)
        for ln in lines[cam]
    ]
    analytics = Analytics(AnalyticsConfig(lines=per_camera), CLASSES)
    osd, tiler = Osd(OsdConfig(), analytics, CLASSES), Tiler(TilerConfig(rows=1, columns=3, width=480, height=96))
    video = queued(VideoSinkConfig(path=str(tmp_path / "tiled.mp4"), fps=config.fps, preset="ultrafast"))
    jsonl = queued(JsonlSinkConfig(path=str(tmp_path / "events.jsonl")), CLASSES)
    gts = {cam: read_gt(tmp_path / "data" / f"cam{cam}" / "gt" / "gt.txt", num_frames=config.frames) for cam in (0, 1)}
    decoders = {cam: av.open(str(tmp_path / "data" / f"cam{cam}.mp4")).decode(video=0) for cam in (0, 1)}
    for i in range(config.frames):
        drawn = {}
        for cam in (0, 1):
            frame = Frame(cam, i, i * 1_000_000_000 // config.fps, next(decoders[cam]).to_ndarray(format="bgr24"),
                          gts[cam][i])  # fmt: skip
            analytics.process(frame)
            drawn[cam] = osd.draw(frame)
            jsonl.write(frame)
        video.write(Frame(-1, i, 0, tiler.compose(drawn)))
    video.close()
    jsonl.close()
    assert video.stats()["dropped"] == 0 and jsonl.stats()["dropped"] == 0

    records = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert len(records) == 2 * config.frames
    crossings = [e for r in records for e in r["events"] if e["type"] == "line_crossing"]
    assert len(crossings) >= 2  # the scene is busy enough for the comparison to mean something
    for cam in (0, 1):
        truth = json.loads((tmp_path / "data" / f"cam{cam}" / "counts.json").read_text())
        events = [e for r in records if r["source"] == cam for e in r["events"] if e["type"] == "line_crossing"]
        for name, c in truth.items():
            got = [e["direction"] for e in events if e["line"] == f"{name}{cam}"]
            assert (got.count("in"), got.count("out")) == (c["in"], c["out"]), (cam, name)

    with av.open(str(tmp_path / "tiled.mp4")) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == config.frames and frames[0].shape == (96, 480, 3)
    assert frames[-1][:, 340:].max() < 30  # the third tile has no source: black
    assert frames[-1][48, 10:150].mean() > 30 and frames[-1][48, 170:310].mean() > 30  # both cameras are there
    assert np.abs(frames[-1][:, :160].astype(int) - frames[-1][:, 160:320]).mean() > 5  # and they differ
