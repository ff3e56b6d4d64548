"""Sinks: JSONL lines, H.264 files, DeepStream payload field names, QueuedSink drops/close, broker reconnects,
and the Kafka producer (against a fake producer object: there is no Kafka broker in the test setup)."""

from __future__ import annotations

import doctest
import importlib
import json
import threading
import time

import av
import numpy as np
import pytest
from pydantic import TypeAdapter

from lanner.core.config import ConfigError, Section, load_config
from lanner.core.detections import Detections
from lanner.core.frame import Frame
from lanner.pipeline.sinks import (
    BrokerError,
    BrokerSink,
    JsonlSinkConfig,
    KafkaSinkConfig,
    QueuedSink,
    RedisSinkConfig,
    SensorInfo,
    SinkConfig,
    VideoSinkConfig,
    build_sink,
    queued,
)
from lanner.pipeline.sinks.kafka import KafkaTransport
from lanner.pipeline.sinks.schema import full_payloads, iso_timestamp, minimal_payload

CLASSES = ("car", "person", "sign")


def _frame(source: int = 0, idx: int = 0, n: int = 2, events=None, image=None) -> Frame:
    boxes = [[10.4, 20.6, 50, 80], [100, 110, 140.2, 190]][:n]
    dets = Detections.from_arrays(np.array(boxes).reshape(-1, 4), [0, 1][:n], [0.91, 0.5][:n], tracker_id=[5, 9][:n])
    img = np.zeros((48, 64, 3), np.uint8) if image is None else image
    return Frame(source, idx, idx * 40_000_000, img, dets, list(events or []))


# ---- config -----------------------------------------------------------------------------------------------


class _Pipeline(Section):
    sinks: list[SinkConfig] = []


def test_sink_config_is_a_union_on_type() -> None:
    cfg = load_config(_Pipeline, data={"sinks": [{"type": "video", "path": "a.mp4"}, {"type": "redis", "maxlen": 5}]})
    assert [type(s).__name__ for s in cfg.sinks] == ["VideoSinkConfig", "RedisSinkConfig"]
    with pytest.raises(ConfigError, match="'kafka', 'redis'"):
        load_config(_Pipeline, data={"sinks": [{"type": "kafak"}]})
    with pytest.raises(ConfigError, match="on_full"):
        load_config(_Pipeline, data={"sinks": [{"type": "jsonl", "on_full": "block"}]})


# ---- JSONL ------------------------------------------------------------------------------------------------


def test_jsonl_one_line_per_frame_with_objects_and_events(tmp_path) -> None:
    path = tmp_path / "out" / "events.jsonl"
    sink = build_sink(JsonlSinkConfig(path=str(path)), CLASSES)
    event = {"type": "line_crossing", "line": "road", "direction": "in", "tracker_id": 5}
    sink.write(_frame(idx=0, events=[event]))
    sink.write(_frame(source=1, idx=1, n=0))
    sink.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(r["source"], r["frame"], r["pts_ns"]) for r in lines] == [(0, 0, 0), (1, 1, 40_000_000)]
    assert lines[0]["objects"][0] == {"bbox": [10.4, 20.6, 50.0, 80.0], "class_id": 0, "class": "car",
                                      "confidence": 0.91, "track_id": 5}  # fmt: skip
    assert lines[0]["events"] == [event] and lines[1]["objects"] == []


def test_jsonl_skip_empty_and_bad_path(tmp_path) -> None:
    path = tmp_path / "e.jsonl"
    sink = build_sink(JsonlSinkConfig(path=str(path), skip_empty=True))
    sink.write(_frame(n=0))
    sink.write(_frame(idx=3))
    sink.close()
    assert [json.loads(x)["frame"] for x in path.read_text().splitlines()] == [3]
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot open the JSONL sink file"):
        build_sink(JsonlSinkConfig(path=str(tmp_path / "file" / "e.jsonl")))


# ---- video ------------------------------------------------------------------------------------------------


def _decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


def test_video_sink_writes_h264_frames_that_decode_back(tmp_path) -> None:
    path = tmp_path / "tiled.mp4"
    sink = build_sink(VideoSinkConfig(path=str(path), fps=15, preset="ultrafast", crf=18))
    for i in range(6):
        image = np.zeros((64, 96, 3), np.uint8)
        image[:, : 16 * (i + 1)] = (0, 0, 255)  # a red bar growing frame by frame
        sink.write(_frame(idx=i, image=image))
    sink.close()
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height, stream.average_rate) == ("h264", 96, 64, 15)
    frames = _decode(path)
    assert len(frames) == 6
    assert np.abs(frames[2][32, 40].astype(int) - (0, 0, 255)).max() < 40  # inside the bar at frame 2
    assert frames[2][32, 60].max() < 40  # beyond it


def test_video_sink_per_source_files_and_bitrate(tmp_path) -> None:
    cfg = VideoSinkConfig(path=str(tmp_path / "cam.mp4"), per_source=True, bitrate_kbps=300, preset="ultrafast")
    sink = build_sink(cfg)
    for i in range(3):
        for src in (0, 2):
            sink.write(_frame(source=src, idx=i, image=np.full((32, 48, 3), 60 * src, np.uint8)))
    sink.write(_frame(source=2, idx=3, image=np.full((40, 40, 3), 120, np.uint8)))  # other size: resized
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam_src0.mp4", "cam_src2.mp4"]
    assert len(_decode(tmp_path / "cam_src0.mp4")) == 3
    last = _decode(tmp_path / "cam_src2.mp4")
    assert len(last) == 4 and last[-1].shape == (32, 48, 3)
    assert sink.path_for(None).name == "cam.mp4"


# ---- DeepStream schema ------------------------------------------------------------------------------------


def test_minimal_payload_matches_deepstream_fields() -> None:
    frame = _frame(idx=17)
    frame.detections.data["color"] = np.array(["red", ""], dtype=object)
    payload = minimal_payload(frame, CLASSES, {0: SensorInfo(id="cam-north")}, clock=lambda: 1_700_000_000.25)
    assert list(payload) == ["version", "id", "@timestamp", "sensorId", "objects"]
    assert payload["version"] == "4.0" and payload["id"] == "17" and payload["sensorId"] == "cam-north"
    assert payload["@timestamp"] == "2023-11-14T22:13:20.250Z"
    assert payload["objects"] == ["5|10|21|50|80|car|#|red|0.91", "9|100|110|140|190|person|0.5"]


def test_full_payload_one_message_per_object_with_nested_sections() -> None:
    crossing = {"type": "line_crossing", "line": "road", "direction": "out", "tracker_id": 9}
    messages = full_payloads(_frame(events=[crossing]), CLASSES, clock=lambda: 0.0)
    assert len(messages) == 2
    msg = messages[0]
    assert list(msg) == ["messageid", "mdsversion", "@timestamp", "place", "sensor", "analyticsModule", "object",
                         "event", "videoPath"]  # fmt: skip
    assert msg["mdsversion"] == "1.0" and msg["@timestamp"] == "1970-01-01T00:00:00.000Z"
    assert set(msg["sensor"]) == {"id", "type", "description", "location", "coordinate"}
    assert set(msg["sensor"]["location"]) == {"lat", "lon", "alt"} and set(msg["sensor"]["coordinate"]) == {
        "x",
        "y",
        "z",
    }
    assert set(msg["place"]) >= {"id", "name", "type", "location"}
    assert set(msg["analyticsModule"]) == {"id", "description", "source", "version"}
    obj = msg["object"]
    assert obj["id"] == "5" and obj["bbox"] == {"topleftx": 10, "toplefty": 21, "bottomrightx": 50, "bottomrighty": 80}
    assert set(obj["vehicle"]) == {"type", "make", "model", "color", "licenseState", "license", "confidence"}
    assert obj["vehicle"]["type"] == "car" and obj["vehicle"]["confidence"] == 0.91
    assert set(messages[1]["object"]["person"]) == {"age", "gender", "hair", "cap", "apparel", "confidence"}
    assert [m["event"]["type"] for m in messages] == ["moving", "exit"]  # track 9 crossed "out" in this frame
    assert msg["messageid"] != messages[1]["messageid"] and msg["event"]["id"] != msg["messageid"]
    unknown = full_payloads(_frame(n=1), ("sign",), clock=lambda: 0.0)[0]["object"]
    assert unknown["sign"] == {"confidence": 0.91}


def test_iso_timestamp_has_milliseconds_and_z() -> None:
    assert iso_timestamp(1.0015) == "1970-01-01T00:00:01.001Z"


# ---- QueuedSink -------------------------------------------------------------------------------------------


class _Gate:
    """A sink that blocks in ``write`` until released (a slow or hung sink)."""

    name = "gate"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.got: list = []
        self.closed = False

    def write(self, frame) -> None:
        self.entered.set()
        self.release.wait()
        self.got.append(frame)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(("policy", "kept"), [("drop_oldest", [0, 8, 9]), ("drop_newest", [0, 1, 2])])
def test_queue_never_blocks_and_counts_drops(policy: str, kept: list[int]) -> None:
    gate = _Gate()
    q = QueuedSink(gate, queue_size=2, on_full=policy)
    q.write(0)
    assert gate.entered.wait(5)  # frame 0 is inside the (blocked) sink
    for i in range(1, 10):
        q.write(i)  # returns at once although the sink is stuck
    assert q.stats()["dropped"] == 7 and q.depth == 2
    gate.release.set()
    q.close(timeout_s=5)
    assert gate.got == kept and gate.closed and q.stats()["written"] == 3


def test_close_gives_up_after_the_timeout_and_counts_the_rest() -> None:
    gate = _Gate()
    q = QueuedSink(gate, queue_size=10)
    for i in range(4):
        q.write(i)
    assert gate.entered.wait(5)
    q.close(timeout_s=0.2)  # the sink never finishes frame 0
    assert q.stats()["dropped"] == 3 and gate.closed
    q.write(99)  # after close: dropped, not queued
    assert q.stats()["dropped"] == 4
    gate.release.set()


class _Failing:
    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    def write(self, frame) -> None:
        self.calls += 1
        if frame % 2:
            raise OSError("disk full")

    def close(self) -> None:
        pass


def test_a_failing_sink_is_reported_once_and_keeps_running(caplog) -> None:
    sink = _Failing()
    q = QueuedSink(sink, queue_size=100)
    for i in range(6):
        q.write(i)
    q.close()
    stats = q.stats()
    assert (sink.calls, stats["written"], stats["failed"]) == (6, 3, 3)
    assert stats["error"] == "sink failing: write failed: disk full"
    assert sum("disk full" in r.message for r in caplog.records) == 1


def test_queued_builds_from_config(tmp_path) -> None:
    q = queued(JsonlSinkConfig(path=str(tmp_path / "q.jsonl"), queue_size=3, on_full="drop_newest"))
    assert (q.queue_size, q.on_full, q.name) == (3, "drop_newest", f"jsonl:{tmp_path / 'q.jsonl'}")
    q.write(_frame())
    q.close()
    assert len((tmp_path / "q.jsonl").read_text().splitlines()) == 1


# ---- broker sink (with an in-memory transport) -------------------------------------------------------------


class _Flaky:
    """A transport whose broker is down until ``up`` is set; records what it publishes."""

    def __init__(self) -> None:
        self.up = False
        self.connects = 0
        self.sent: list[tuple[str, dict]] = []

    def connect(self) -> None:
        self.connects += 1
        if not self.up:
            raise BrokerError("cannot connect to the broker: refused", where="mem://x")

    def publish(self, key: str, payload: bytes) -> None:
        if not self.up:
            raise BrokerError("lost connection", where="mem://x")
        self.sent.append((key, json.loads(payload)))

    def close(self) -> None:
        pass


def test_broker_down_fails_fast_then_reconnects() -> None:
    transport = _Flaky()
    sink = BrokerSink(RedisSinkConfig(payload="minimal", reconnect_s=0.2), transport, CLASSES)
    with pytest.raises(BrokerError, match="refused"):
        sink.write(_frame(idx=0))
    with pytest.raises(BrokerError, match="not connected; next attempt"):
        sink.write(_frame(idx=1))  # within reconnect_s: no new connection attempt (none to wait for)
    assert transport.connects == 1
    transport.up = True
    time.sleep(0.25)
    sink.write(_frame(idx=2))
    assert transport.connects == 2 and [p["id"] for _, p in transport.sent] == ["2"]
    transport.up = False
    with pytest.raises(BrokerError, match="lost connection"):
        sink.write(_frame(idx=3))
    transport.up = True
    with pytest.raises(BrokerError, match="not connected"):
        sink.write(_frame(idx=4))


def test_broker_frame_interval_and_skip_empty() -> None:
    transport = _Flaky()
    transport.up = True
    sink = BrokerSink(RedisSinkConfig(payload="full", frame_interval=3), transport, CLASSES)
    for i in range(7):
        sink.write(_frame(idx=i))
    sink.write(_frame(source=1, idx=0, n=0))  # first frame of source 1, but empty
    assert sorted({p["object"]["id"] for _, p in transport.sent}) == ["5", "9"]
    assert len(transport.sent) == 2 * 3  # frames 0, 3, 6 of source 0; two objects each
    assert sink.published == 6


def test_broker_behind_a_queue_counts_failures_without_stalling() -> None:
    transport = _Flaky()
    q = QueuedSink(BrokerSink(RedisSinkConfig(reconnect_s=60), transport, CLASSES), queue_size=1000)
    for i in range(200):
        q.write(_frame(idx=i))
    q.close(timeout_s=30)
    assert q.stats()["dropped"] == 0  # every frame was handled (failed fast), none left over at close
    assert q.stats()["failed"] == 200 and transport.connects == 1 and "refused" in q.stats()["error"]


# ---- Kafka (fake producer: no broker in tests) --------------------------------------------------------------


class _FakeProducer:
    def __init__(self, settings: dict) -> None:
        self.settings = settings
        self.produced: list[tuple[str, bytes, bytes | None]] = []
        self.polls = 0
        self.flushed = None

    def produce(self, topic, value=None, key=None) -> None:
        self.produced.append((topic, value, key))

    def poll(self, timeout) -> int:
        self.polls += 1
        return 0

    def flush(self, timeout) -> int:
        self.flushed = timeout
        return 0


class _KafkaError:
    def __init__(self, code: str) -> None:
        self.code = code

    def name(self) -> str:
        return self.code

    def __str__(self) -> str:
        return f"KafkaError{{code={self.code}}}"


def test_kafka_producer_config_and_payloads() -> None:
    producers: list[_FakeProducer] = []
    config = KafkaSinkConfig(bootstrap_servers="k1:9092,k2:9092", topic="ds", payload="minimal",
                             producer={"linger.ms": 5}, sensors={0: SensorInfo(id="north")})  # fmt: skip
    transport = KafkaTransport(config, producer_factory=lambda s: producers.append(_FakeProducer(s)) or producers[-1])
    sink = BrokerSink(config, transport, CLASSES)
    sink.write(_frame(idx=4))
    sink.close()
    (producer,) = producers
    assert producer.settings["bootstrap.servers"] == "k1:9092,k2:9092" and producer.settings["linger.ms"] == 5
    assert callable(producer.settings["error_cb"])
    topic, value, key = producer.produced[0]
    assert (topic, key) == ("ds", b"north") and json.loads(value)["objects"][0].startswith("5|10|21|50|80|car")
    assert producer.polls == 1 and producer.flushed == config.close_timeout_s


def test_kafka_all_brokers_down_raises_until_reconnected() -> None:
    producer = _FakeProducer({})
    transport = KafkaTransport(KafkaSinkConfig(), producer_factory=lambda s: producer)
    transport.connect()
    producer.settings = {}
    transport._on_error(_KafkaError("_ALL_BROKERS_DOWN"))
    with pytest.raises(BrokerError, match="Kafka unreachable"):
        transport.publish("0", b"{}")
    transport._on_error(_KafkaError("_MSG_TIMED_OUT"))  # not a connection problem: ignored here
    transport.connect()
    transport.publish("0", b"{}")
    assert len(producer.produced) == 1


def test_kafka_producer_is_real_confluent_kafka_when_no_factory() -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    transport = KafkaTransport(KafkaSinkConfig(bootstrap_servers="127.0.0.1:1", connect_timeout_s=1))
    transport.connect()  # creating a producer does not contact the broker
    assert isinstance(transport._producer, confluent_kafka.Producer)
    transport._producer.flush(0)
    transport._producer = None


def test_type_adapter_round_trip() -> None:
    adapter = TypeAdapter(SinkConfig)
    cfg = adapter.validate_python({"type": "kafka", "topic": "t"})
    assert adapter.validate_python(cfg.model_dump()) == cfg


MODULES = ["lanner.pipeline.sinks." + m for m in ("config", "schema", "base", "jsonl", "video", "queued", "broker",
                                                   "build")]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def _eos_dwell(tracker_id: int, class_id: int, bbox: list[float]) -> dict:
    return {"type": "dwell", "roi": "lot", "tracker_id": tracker_id, "class_id": class_id, "dwell_s": 3.0,
            "bbox": bbox, "confidence": 0.8, "end_of_stream": True, "source_id": 0, "frame_idx": 7,
            "pts_ns": 700}  # fmt: skip


def test_end_of_stream_is_an_exit_message_on_brokers_and_not_encoded_to_video(tmp_path) -> None:
    from lanner.pipeline.sinks import end_of_stream_frame

    events = [_eos_dwell(5, 0, [1, 2, 30, 40]), {**_eos_dwell(5, 0, [1, 2, 30, 40]), "roi": "b"}]
    eos = end_of_stream_frame(0, events, np.zeros((48, 64, 3), np.uint8))
    transport = _Flaky()
    transport.up = True
    sink = BrokerSink(RedisSinkConfig(payload="full", frame_interval=3), transport, CLASSES)
    sink.write(_frame(idx=0))  # due; the next frame (idx 1) would not be by frame_interval, the EOS still is
    sink.write(eos)
    last = transport.sent[-1][1]
    assert len(transport.sent) == 3 and last["object"]["id"] == "5" and last["event"]["type"] == "exit"
    assert last["object"]["bbox"] == {"topleftx": 1, "toplefty": 2, "bottomrightx": 30, "bottomrighty": 40}
    video = build_sink(VideoSinkConfig(path=str(tmp_path / "v.mp4"), fps=15, preset="ultrafast"))
    for i in range(2):
        video.write(_frame(idx=i))
    video.write(eos)
    video.close()
    assert len(_decode(tmp_path / "v.mp4")) == 2


def test_an_encoder_that_cannot_open_is_one_config_line_and_leaves_no_file(tmp_path) -> None:
    # This machine has no NVIDIA driver, so h264_nvenc cannot open; FFmpeg's own reason is in the message.
    if "h264_nvenc" not in av.codecs_available:
        pytest.skip("this PyAV build has no h264_nvenc encoder to fail")
    path = tmp_path / "out.mp4"
    sink = build_sink(VideoSinkConfig(path=str(path), fps=15, codec="h264_nvenc"))
    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU machine may open NVENC (tests/pipeline/test_gpu_media.py covers that)")
    except ImportError:
        pass
    with pytest.raises(ConfigError, match=r"h264_nvenc cannot open on this machine: \S") as err:
        sink.write(_frame(image=np.zeros((64, 96, 3), np.uint8)))
    assert "codec: libx264" in err.value.fix and "\n" not in str(err.value)
    assert not path.exists()
    sink.close()  # nothing to flush
