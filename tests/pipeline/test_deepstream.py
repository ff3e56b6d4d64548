"""The deepstream-app INI importer: mapped keys, unit conversions, paths, warnings, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanner.core.errors import ConfigError
from lanner.pipeline.deepstream import import_deepstream, load_deepstream_config

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
    assert any(w.startswith("[nvds-analytics]: ignored") for w in warnings)
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
