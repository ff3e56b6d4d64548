"""The REST control server against broken HTTP framing: an answer and a closed connection, never a hang."""

from __future__ import annotations

import json
import socket

import pytest

from lanner.pipeline import control
from lanner.pipeline.control import ADD_PATH, ControlServer


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(control, "READ_TIMEOUT_S", 0.2)  # read by the handler class when the server is made
    with ControlServer(0, on_add=lambda cfg: 1, on_remove=lambda sid: None) as served:
        yield served


def post_raw(server: ControlServer, content_length: str, body: bytes) -> tuple[int, dict]:
    """Send a POST with this Content-Length header and body; the reply's status and JSON (the server closes)."""
    head = f"POST {ADD_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {content_length}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(head.encode() + body)
        data = b""
        while chunk := conn.recv(4096):  # the connection is closed after the reply: framing is lost
            data += chunk
    header, _, payload = data.partition(b"\r\n\r\n")
    return int(header.split()[1]), json.loads(payload)


@pytest.mark.parametrize("length", ["abc", "-5", "1e3"])
def test_a_content_length_that_is_not_a_byte_count_is_400(server, length: str) -> None:
    """It used to raise inside the handler: a traceback on stderr and no reply at all."""
    status, reply = post_raw(server, length, b"{}")
    assert status == 400 and reply["reason"] == f"Content-Length {length!r} is not a byte count"


def test_a_body_shorter_than_announced_is_408_not_a_hang(server) -> None:
    """It used to block the handler thread forever, waiting for bytes that never come."""
    status, reply = post_raw(server, "100", b"{}")
    assert status == 408 and reply["reason"] == "body shorter than its Content-Length (100 bytes)"


def test_a_huge_declared_body_is_413_without_reading_it(server) -> None:
    status, reply = post_raw(server, str(1 << 40), b"{}")
    assert status == 413 and reply["reason"] == f"body over {control.MAX_BODY_BYTES} bytes"


def test_the_server_keeps_serving_after_bad_requests(server) -> None:
    post_raw(server, "abc", b"")
    body = json.dumps({"key": "sensor", "value": {"camera_id": "c", "camera_url": "a.mp4", "change": "camera_add"}})
    status, reply = post_raw(server, str(len(body)), body.encode())
    assert status == 200 and reply["reason"] == "STREAM_ADD_SUCCESS"
