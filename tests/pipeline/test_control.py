"""REST control API: DeepStream bodies add/remove streams; malformed bodies get 400 and one line."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_sources_media import frame_number, write_video

from lanner.core.errors import SourceError
from lanner.pipeline.control import ADD_PATH, INFO_PATH, REMOVE_PATH, ControlServer
from lanner.pipeline.mux import MuxConfig, Muxer
from lanner.pipeline.sources import SourceConfig, open_source


def sensor(camera_id: str, url: str, change: str = "camera_add", **extra) -> dict:
    """A body as DeepStream's REST clients send it."""
    value = {"camera_id": camera_id, "camera_name": f"name-{camera_id}", "camera_url": url, "change": change, **extra}
    return {"key": "sensor", "value": value, "headers": {"source": "vst", "created_at": "2026-11-30T10:00:00.000Z"}}


def call(server: ControlServer, path: str, body=None) -> tuple[int, dict]:
    """POST (or GET without a body) and return (status, JSON reply)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(server.url + path, data=data, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Recorder:
    """on_add/on_remove callbacks that record what they got."""

    def __init__(self) -> None:
        self.added: list[SourceConfig] = []
        self.removed: list[int] = []

    def add(self, cfg: SourceConfig) -> int:
        if cfg.uri.endswith("boom.mp4"):
            raise RuntimeError("callback bug\nsecond line")
        if cfg.uri.endswith("refuse.mp4"):
            raise SourceError("file not found", where="source 9 'x'", fix="check the path")
        self.added.append(cfg)
        return 100 + len(self.added)

    def remove(self, source_id: int) -> None:
        self.removed.append(source_id)


@pytest.fixture
def served():
    rec = Recorder()
    with ControlServer(0, rec.add, rec.remove, source_defaults={"max_fps": 5}) as server:
        yield server, rec


def test_add_then_remove(served) -> None:
    server, rec = served
    status, reply = call(server, ADD_PATH, sensor("cam7", "rtsp://10.0.0.7/s1"))
    assert status == 200 and reply == {"status": "HTTP/1.1 200 OK", "reason": "STREAM_ADD_SUCCESS", "source_id": 101}
    cfg = rec.added[0]
    assert (cfg.uri, cfg.name, cfg.kind, cfg.max_fps) == ("rtsp://10.0.0.7/s1", "name-cam7", "rtsp", 5)
    status, info = call(server, INFO_PATH)
    assert status == 200 and info["stream-info"]["stream-count"] == 1
    assert info["stream-info"]["stream-info"][0]["camera_id"] == "cam7"
    status, reply = call(server, REMOVE_PATH, sensor("cam7", "rtsp://10.0.0.7/s1", change="camera_remove"))
    assert status == 200 and reply["reason"] == "STREAM_REMOVE_SUCCESS" and rec.removed == [101]
    assert call(server, INFO_PATH)[1]["stream-info"]["stream-count"] == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b"", "body must be"),
        ([1, 2], "body must be"),
        ({"key": "sensor", "value": "cam"}, "body must be"),
        ({**sensor("c", "x.mp4"), "key": "camera"}, '"key" must be "sensor"'),
        (sensor("c", ""), "missing camera_url"),
        ({"key": "sensor", "value": {"camera_url": "x.mp4"}}, "missing camera_id, change"),
        (sensor("c", "x.mp4", change="camera_remove"), 'value.change must be "camera_add"'),
        (b"\xff\xfe", "body is not JSON"),
    ],
)
def test_malformed_add_is_400_with_one_line(served, body, reason: str) -> None:
    server, rec = served
    status, reply = call(server, ADD_PATH, body)
    assert status == 400 and reply["status"] == "HTTP/1.1 400 Bad Request"
    assert reason in reply["reason"] and "\n" not in reply["reason"] and not rec.added


def test_conflicts_unknowns_and_refusals(served) -> None:
    server, rec = served
    assert call(server, ADD_PATH, sensor("a", "a.mp4"))[0] == 200
    status, reply = call(server, ADD_PATH, sensor("a", "b.mp4"))
    assert status == 409 and "already streaming" in reply["reason"]
    status, reply = call(server, REMOVE_PATH, sensor("zzz", "a.mp4", change="camera_remove"))
    assert status == 404 and "no stream with camera_id 'zzz' (streaming: a)" in reply["reason"]
    status, reply = call(server, ADD_PATH, sensor("b", "/x/refuse.mp4"))
    assert status == 422 and reply["reason"] == "source 9 'x': file not found; check the path"
    status, reply = call(server, ADD_PATH, sensor("d", "/x/boom.mp4"))
    assert status == 500 and reply["reason"] == "internal error: RuntimeError: callback bug"
    assert call(server, "/api/v1/nothing", sensor("c", "c.mp4"))[0] == 404
    assert call(server, "/api/v1/nothing")[0] == 404
    assert call(server, ADD_PATH, sensor("c", "c.mp4", change="camera_remove"))[0] == 400
    assert len(rec.added) == 1 and rec.removed == []


def test_rest_adds_and_removes_sources_of_a_running_muxer(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=20)
    mux = Muxer(MuxConfig(batch_size=2, batched_push_timeout_ms=5))
    mux.start()
    ids = iter(range(100))

    def add(cfg: SourceConfig) -> int:
        source = open_source(cfg, next(ids))
        mux.add_source(source)
        return source.source_id

    with ControlServer(0, add, mux.remove_source) as server:
        assert call(server, ADD_PATH, sensor("one", f"file://{clip}"))[1]["source_id"] == 0
        assert call(server, ADD_PATH, sensor("two", str(clip)))[1]["source_id"] == 1
        frames = {0: [], 1: []}
        eos: list[int] = []
        while len(frames[1]) < 5:
            batch = mux.next_batch(timeout_s=10)
            for f in batch.frames:
                frames[f.source_id].append(frame_number(f.image))
        assert call(server, REMOVE_PATH, sensor("two", str(clip), change="camera_remove"))[0] == 200
        while not mux.done:
            batch = mux.next_batch(timeout_s=10)
            eos += batch.meta["eos"]
            for f in batch.frames:
                frames[f.source_id].append(frame_number(f.image))
    assert frames[0] == list(range(20)) and frames[1] == list(range(len(frames[1]))) and len(frames[1]) < 20
    assert sorted(eos) == [0, 1] and mux.sources[0].state == "eos" and list(mux.sources) == [0]
