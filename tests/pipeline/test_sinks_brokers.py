"""Broker sinks against a REAL Mosquitto and a REAL Redis, started here as subprocesses on free ports.

The binaries come from the OS (``.ci/services.sh`` installs them in CI: ``apt-get install mosquitto
redis-server``); without them these tests are skipped, saying so. Kafka has no broker here: its
producer is tested with a fake producer object in ``test_sinks.py``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lanner.core.detections import Detections
from lanner.core.frame import Frame
from lanner.pipeline.sinks import MqttSinkConfig, RedisSinkConfig, SensorInfo, queued

CLASSES = ("car", "person")
START_TIMEOUT_S = 10.0


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    for folder in ("/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"):
        if found is None and Path(folder, name).is_file():
            found = str(Path(folder, name))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-500:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on port {port} within {START_TIMEOUT_S} s")


class _Server:
    """One broker subprocess that can be stopped and started again on the same port."""

    def __init__(self, argv: list[str], port: int) -> None:
        self.argv, self.port = argv, port
        self.proc: subprocess.Popen | None = None

    def start(self) -> _Server:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_listening(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def _mosquitto(port: int) -> _Server:
    binary = _binary("mosquitto")
    if binary is None:
        pytest.skip("mosquitto not installed: run .ci/services.sh")
    return _Server([binary, "-p", str(port)], port)


def _redis(port: int) -> _Server:
    binary = _binary("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed: run .ci/services.sh")
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return _Server(argv, port)


@pytest.fixture
def mosquitto() -> Iterator[_Server]:
    server = _mosquitto(_free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def redis_server() -> Iterator[_Server]:
    server = _redis(_free_port()).start()
    yield server
    server.stop()


def _frame(idx: int, source: int = 0) -> Frame:
    dets = Detections.from_arrays([[10, 20, 30, 40], [50, 60, 70, 80]], [0, 1], [0.9, 0.8], tracker_id=[idx, idx + 100])
    return Frame(source, idx, idx * 33_333_333, np.zeros((8, 8, 3), np.uint8), dets)


class _Subscriber:
    """A paho client collecting the messages of one topic."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[dict] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rc, p: self.ready.set()
        self.client.on_message = lambda c, u, msg: self.messages.append(json.loads(msg.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(START_TIMEOUT_S), "subscription not acknowledged"

    def wait_for(self, n: int, timeout_s: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.parametrize(("payload", "qos"), [("minimal", 1), ("full", 0)])
def test_mqtt_publishes_deepstream_payloads(mosquitto: _Server, payload: str, qos: int) -> None:
    sub = _Subscriber(mosquitto.port, "lanner/test")
    config = MqttSinkConfig(host="127.0.0.1", port=mosquitto.port, topic="lanner/test", qos=qos, payload=payload,
                            sensors={0: SensorInfo(id="cam-a")})  # fmt: skip
    sink = queued(config, CLASSES)
    for i in range(3):
        sink.write(_frame(i))
    sink.close()
    expected = 3 if payload == "minimal" else 6
    messages = sub.wait_for(expected)
    sub.close()
    assert len(messages) == expected and sink.stats()["failed"] == 0
    if payload == "minimal":
        assert [m["id"] for m in messages] == ["0", "1", "2"] and messages[0]["sensorId"] == "cam-a"
        assert messages[1]["objects"] == ["1|10|20|30|40|car|0.9", "101|50|60|70|80|person|0.8"]
    else:
        assert {m["object"]["id"] for m in messages} == {"0", "1", "2", "100", "101", "102"}
        assert all(m["sensor"]["id"] == "cam-a" and m["mdsversion"] == "1.0" for m in messages)


def test_mqtt_broker_down_then_up(caplog) -> None:
    port = _free_port()
    server = _mosquitto(port)  # not started yet: nothing listens on the port
    config = MqttSinkConfig(host="127.0.0.1", port=port, topic="t", qos=1, reconnect_s=0.2, payload="minimal")
    sink = queued(config, CLASSES)
    for i in range(5):
        sink.write(_frame(i))
    deadline = time.monotonic() + 5
    while sink.stats()["failed"] < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = sink.stats()
    assert stats["failed"] == 5 and "cannot connect to the MQTT broker" in stats["error"]
    assert f"mqtt://127.0.0.1:{port}" in stats["error"] and "start the broker" in stats["error"]
    server.start()
    try:
        sub = _Subscriber(port, "t")
        time.sleep(0.3)  # past reconnect_s: the next frame reconnects
        for i in range(5, 8):
            sink.write(_frame(i))
        sink.close()
        received = sub.wait_for(3)
        sub.close()
    finally:
        server.stop()
    assert [m["id"] for m in received] == ["5", "6", "7"]
    assert sink.stats()["written"] == 3
    assert sum("cannot connect" in r.message for r in caplog.records) == 1  # one clear error, not one per frame


def test_redis_xadd_with_maxlen(redis_server: _Server) -> None:
    import redis

    config = RedisSinkConfig(host="127.0.0.1", port=redis_server.port, topic="ds-stream", payload="minimal", maxlen=4,
                             approximate=False)  # fmt: skip
    sink = queued(config, CLASSES)
    for i in range(10):
        sink.write(_frame(i))
    sink.close()
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    entries = client.xrange("ds-stream")
    assert len(entries) == 4  # trimmed to maxlen
    payloads = [json.loads(fields[b"metadata"]) for _, fields in entries]
    assert [p["id"] for p in payloads] == ["6", "7", "8", "9"]
    assert entries[0][1][b"sensorId"] == b"0"
    stream = client.xread({"ds-stream": "0-0"}, count=1)
    assert stream[0][0] == b"ds-stream"
    client.close()


def test_redis_restart_reconnects(redis_server: _Server) -> None:
    import redis

    config = RedisSinkConfig(host="127.0.0.1", port=redis_server.port, topic="s", payload="minimal", reconnect_s=0.2,
                             connect_timeout_s=1)  # fmt: skip
    sink = queued(config, CLASSES)
    sink.write(_frame(0))
    redis_server.stop()
    time.sleep(0.2)
    for i in range(1, 4):
        sink.write(_frame(i))
    deadline = time.monotonic() + 10
    while sink.stats()["failed"] < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sink.stats()["failed"] == 3 and "redis" in sink.stats()["error"].lower()
    redis_server.start()
    time.sleep(0.3)
    sink.write(_frame(4))
    sink.close()
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    ids = [json.loads(f[b"metadata"])["id"] for _, f in client.xrange("s")]
    client.close()
    assert ids == ["4"]  # the restarted server is empty; frame 4 arrived after the reconnect
