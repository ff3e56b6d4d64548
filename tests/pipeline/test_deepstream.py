"""The deepstream-app INI importer: mapped keys, unit conversions, paths, warnings, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lanner.core.detections import Detections
from lanner.core.errors import ConfigError
from lanner.core.frame import Frame
from lanner.pipeline.analytics import Analytics, AnalyticsConfig, LineConfig
from lanner.pipeline.config import load_pipeline_config
from lanner.pipeline.deepstream import import_deepstream, load_deepstream_config
from lanner.pipeline.demo import bundled_config

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "configs" / "deepstream_app.txt"


def test_example_app_config_maps_every_group() -> None:
    config, warnings = load_deepstream_config(APP)
    assert [s.name for s in config.sources] == ["source0", "source1", "source2", "source3"]  # source4: enable=0
    assert Path(config.sources[0].uri) == ROOT / "demo_data" / "cam0.mp4"  # relative to the INI file
    assert config.mux.batch_size == 4 and config.mux.batched_push_timeout_ms == 40.0  # 40000 µs
    assert Path(config.primary.model) == ROOT / "models" / "lanner_traffic_detector.onnx"  # onnx-file wins
    assert config.primary.labels == ["car", "bicycle", "person", "road_sign"]
    assert (config.primary.conf_threshold, config.primary.iou_threshold, config.primary.max_det) == (0.3, 0.45, 300)
    (sgie,) = config.secondary
    assert (sgie.operate_on_class_ids, sgie.min_width, sgie.reinfer_interval, sgie.conf_threshold) == ([0], 24, 10, 0.5)
    assert sgie.labels == ["black", "white", "red", "blue", "silver"]
    assert config.tracker.type == "bytetrack"
    assert (config.tiler.rows, config.tiler.columns, config.tiler.width, config.tiler.height) == (2, 2, 1280, 720)
    assert config.osd.border_width == 2 and config.osd.show_track_ids
    video, mqtt = config.sinks
    assert video.type == "video" and video.bitrate_kbps == 4000 and video.path.endswith("demo_out/tiled_ds.mp4")
    assert (mqtt.type, mqtt.host, mqtt.port, mqtt.topic, mqtt.payload, mqtt.frame_interval) == (
        "mqtt", "localhost", 1883, "lanner/demo", "minimal", 30)  # fmt: skip
    assert config.telemetry.interval_s == 5.0
    assert "[osd] clock-color: ignored (no lanner equivalent)" in warnings
    assert any(w.startswith("[tracker] ll-config-file") and "ByteTrack" in w for w in warnings)
    assert any(w.startswith("[streammux] width: not used") for w in warnings)
    # configs/config_nvdsanalytics.txt: the demo's counting lines, in the same orientation as `lanner demo`'s
    demo_lines = {line.name: line for line in load_pipeline_config(data=bundled_config()).analytics.lines}
    assert config.analytics.reference_size == (1280, 720)
    assert {line.name for line in config.analytics.lines} == set(demo_lines)
    for line in config.analytics.lines:
        want = demo_lines[line.name]
        assert line.sources == want.sources
        np.testing.assert_allclose([*line.p1, *line.p2], [*want.p1, *want.p2], atol=0.5)
    assert any("model-engine-file: not used" in w for w in warnings)
    used = ("batch-size=", "uri", "rows", "onnx-file", "topic", "labelfile-path", "interval", "border-width")
    assert not any(w.split(":")[0].endswith(" " + key) for w in warnings for key in used)


def write(tmp_path: Path, text: str, name: str = "app.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sources_sinks_and_brokers(tmp_path: Path) -> None:
    write(tmp_path, "[property]\nonnx-file=m.onnx\nnum-detected-classes=4\nfilter-out-class-ids=1;3\n", "pgie.txt")
    app = write(
        tmp_path,
        """
[source0]
type=4
uri=rtsp://cam/1
rtsp-reconnect-interval-sec=3
rtsp-reconnect-attempts=5
select-rtp-protocol=4
[source1]
type=3
uri=file:///data/v.mp4
num-sources=2
[source2]
type=1
camera-v4l2-dev-node=2
[source3]
type=5
[streammux]
batch-size=8
batched-push-timeout=33000
live-source=1
[primary-gie]
config-file=pgie.txt
interval=2
[sink0]
type=6
msg-broker-proto-lib=/opt/lib/libnvds_kafka_proto.so
msg-broker-conn-str=broker;9093;events
[message-broker]
proto-lib=libnvds_redis_proto.so
conn-str=redis.local;6380
topic=ds
[message-converter]
msg-conv-payload-type=1
[sink1]
type=4
rtsp-port=8554
[tests]
file-loop=1
""",
    )
    config, warnings = load_deepstream_config(app)
    rtsp, file_a, file_b, cam = config.sources
    assert (rtsp.kind, rtsp.reconnect_interval_s, rtsp.reconnect_attempts, rtsp.rtsp_transport) == ("rtsp", 3, 5, "tcp")
    assert rtsp.is_live and not rtsp.loop
    assert file_a.uri == file_b.uri == "/data/v.mp4" and file_a.loop and file_a.live  # live-source=1
    assert cam.uri == "/dev/video2" and cam.kind == "v4l2"
    assert "[source3] type=5: ignored (CSI/audio/IPC sources have no lanner equivalent)" in warnings
    assert config.mux.batched_push_timeout_ms == 33.0 and config.mux.batch_size == 8
    assert config.primary.interval == 2 and config.primary.classes == [0, 2]
    by_type = {s.type: s for s in config.sinks}
    kafka, redis = by_type["kafka"], by_type["redis"]
    assert (kafka.type, kafka.bootstrap_servers, kafka.topic, kafka.payload) == (
        "kafka",
        "broker:9093",
        "events",
        "minimal",
    )
    assert (redis.type, redis.host, redis.port, redis.topic) == ("redis", "redis.local", 6380, "ds")
    assert any(w.startswith("[sink1] type=4 (RTSP streaming): ignored") for w in warnings)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[source0]\ntype=2\n", r"\[source0\] has no uri"),
        ("[source0]\nuri=a.mp4\n[primary-gie]\nmodel-engine-file=m.engine\n", "has no ONNX model"),
        (
            "[source0]\nuri=a.mp4\n[sink0]\ntype=6\nmsg-broker-proto-lib=libnvds_amqp_proto.so\n",
            "kafka, mqtt and redis",
        ),
        ("[streammux]\nbatch-size=four\n", r"batch-size='four' is not a number"),
        ("no group header\n", "not a key-file"),
        ("[source0]\nuri=a.mp4\n[primary-gie]\nconfig-file=missing.txt\n", "not found"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_deepstream_config(write(tmp_path, text))


def test_overrides_apply_after_import(tmp_path: Path) -> None:
    app = write(tmp_path, "[source0]\nuri=a.mp4\n[streammux]\nbatch-size=2\n")
    config, _ = load_deepstream_config(app, overrides=["mux.batch_size=6", "tracker.type=sort"])
    assert config.mux.batch_size == 6 and config.tracker.type == "sort"
    assert import_deepstream(app).data["mux"] == {"batch_size": 2}


ANALYTICS = """
[property]
enable=1
config-width=1920
config-height=1080
osd-mode=2
display-font-size=12

[line-crossing-stream-0]
enable=1
line-crossing-Exit=789;672;1084;900;851;773;1203;732
class-id=0
extended=0
mode=loose

[line-crossing-stream-1]
enable=1
line-crossing-Exit=789;672;1084;900;851;773;1203;732
class-id=-1

[line-crossing-stream-2]
enable=1
line-crossing-Exit=100;100;100;0;0;50;200;50

[roi-filtering-stream-0]
enable=1
roi-RF=295;643;579;634;642;913;56;828
inverse-roi=1
class-id=-1

[overcrowding-stream-1]
enable=1
roi-OC=0;0;960;0;960;540;0;540
object-threshold=3
time-threshold=500
class-id=0;2

[direction-detection-stream-0]
enable=1
direction-South=284;840;360;662;
"""


def test_nvdsanalytics_lines_rois_and_overcrowding_are_imported(tmp_path: Path) -> None:
    write(tmp_path, ANALYTICS, "analytics.txt")
    sources = "".join(f"[source{i}]\nuri=c{i}.mp4\n" for i in range(3))  # streams 0-2 of the analytics file
    app = write(tmp_path, sources + "[nvds-analytics]\nenable=1\nconfig-file=analytics.txt\n")
    config, warnings = load_deepstream_config(app)
    a = config.analytics
    assert a.reference_size == (1920, 1080)
    exit0, exit1, exit2 = a.lines
    # moving along the direction vector (down-right) crosses this left-to-right line from its left: "in"
    assert (exit0.name, exit0.p1, exit0.p2, exit0.sources, exit0.class_ids) == (
        "Exit", (851, 773), (1203, 732), [0], [0])  # fmt: skip
    assert (exit1.name, exit1.sources, exit1.class_ids) == ("Exit_stream1", [1], [])  # class-id=-1: every class
    assert (exit2.p1, exit2.p2, exit2.sources) == ((200, 50), (0, 50), [2])  # direction up: "in" = upwards
    rf, oc = a.rois
    assert (rf.name, rf.sources, rf.max_objects, len(rf.polygon)) == ("RF", [0], None, 4)
    assert (oc.name, oc.sources, oc.max_objects, oc.class_ids) == ("OC", [1], 3, [0, 2])
    for key in ("mode", "time-threshold", "osd-mode", "display-font-size"):
        assert any(f"] {key}: ignored" in w for w in warnings), key
    assert any("inverse-roi=1: ignored" in w for w in warnings)
    assert any("[direction-detection-stream-0]: ignored" in w for w in warnings)
    assert not any(" class-id:" in w or "line-crossing-Exit:" in w or "config-width:" in w for w in warnings)
    # a car walking along stream 2's direction vector (upwards) through its line counts "in"
    analytics = Analytics(a.scaled(1920, 1080), ("car",))
    for i, bottom in enumerate([80, 20]):
        dets = Detections.from_arrays([[90, bottom - 10, 110, bottom]], [0], tracker_id=[1])
        analytics.process(Frame(2, i, i, np.zeros((4, 4, 3), np.uint8), dets))
    assert analytics.counts()[2]["lines"]["Exit_stream2"] == {
        "in": 1,
        "out": 0,
        "per_class": {"car": {"in": 1, "out": 0}},
    }


def test_nvdsanalytics_coordinates_scale_to_each_source_frame() -> None:
    # a horizontal line at y=540 of a 1920x1080 config space is at y=48 of a 160x96 source
    cfg = AnalyticsConfig(lines=[LineConfig(name="mid", p1=(0, 540), p2=(1920, 540))], reference_size=(1920, 1080))
    analytics = Analytics(cfg, ("car",))
    image = np.zeros((96, 160, 3), np.uint8)
    for i, bottom in enumerate([44, 52]):  # the anchor crosses y=48 (it would not cross y=540)
        analytics.process(Frame(0, i, i, image, Detections.from_arrays([[70, 30, 90, bottom]], [0], tracker_id=[1])))
    assert analytics.counts()[0]["lines"]["mid"]["in"] == 1


def test_nvdsanalytics_disabled_missing_and_bad_points(tmp_path: Path) -> None:
    write(tmp_path, "[property]\nenable=0\nconfig-width=10\nconfig-height=10\n", "off.txt")
    app = write(tmp_path, "[source0]\nuri=a.mp4\n[nvds-analytics]\nconfig-file=off.txt\n")
    result = import_deepstream(app)
    assert "analytics" not in result.data and any("enable=0: analytics skipped" in w for w in result.warnings)
    write(tmp_path, "[property]\nconfig-width=10\nconfig-height=10\n[roi-filtering-stream-0]\nroi-A=1;2;3;4\n", "b.txt")
    app = write(tmp_path, "[source0]\nuri=a.mp4\n[nvds-analytics]\nconfig-file=b.txt\n")
    with pytest.raises(ConfigError, match=r"roi-A='1;2;3;4' is not at least 3 x;y points"):
        import_deepstream(app)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (  # same reason: one line, keys listed by group in first-seen order
            ["[osd] font: ignored (x)", "[sink0] sync: ignored (x)", "[osd] show-clock: ignored (x)"],
            ["ignored (x): [osd] font, show-clock; [sink0] sync"],
        ),
        (  # reasons that need no action go last; file-prefixed groups stay apart from the app's
            ["[streammux] width: not used (m)", "a.txt [property] gpu-id: ignored (g)", "[tracker] x: ignored (g)"],
            ["ignored (g): a.txt [property] gpu-id; [tracker] x", "not used (m): [streammux] width"],
        ),
        (  # a group-level line has no key; a line of another shape passes through first
            ["[sink2]: skipped (enable=0)", "something else", "[source4]: skipped (enable=0)"],
            ["something else", "skipped (enable=0): [sink2]; [source4]"],
        ),
        (  # colons after the key stay in the reason (URIs, paths); a key cannot hold one (INI splits there)
            ["[source0] uri: rtsp://cam:554/a: cannot open", "[source1] uri: rtsp://cam:554/a: cannot open"],
            ["rtsp://cam:554/a: cannot open: [source0] uri; [source1] uri"],
        ),
    ],
)
def test_import_warnings_are_grouped_by_reason_and_none_is_lost(lines, expected) -> None:
    from lanner.pipeline.deepstream_ini import group_warnings

    assert group_warnings(lines) == expected
