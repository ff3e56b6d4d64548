"""``ControlServer``: DeepStream's REST control API for adding and removing streams while running.

Mirrors ``nvmultiurisrcbin``'s REST server (``deepstream-server`` sample): a client POSTs::

    /api/v1/stream/add     {"key": "sensor", "value": {"camera_id": "cam7", "camera_name": "gate",
                            "camera_url": "rtsp://10.0.0.7/s1", "change": "camera_add"}, "headers": {...}}
    /api/v1/stream/remove  {"key": "sensor", "value": {"camera_id": "cam7", "camera_url": "rtsp://10.0.0.7/s1",
                            "change": "camera_remove"}}

and ``GET /api/v1/stream/get-stream-info`` lists the streams added through the API. The server turns a
body into a ``SourceConfig`` and calls ``on_add`` (which returns the new source id) or ``on_remove``
(with that id). Replies are JSON ``{"status": "HTTP/1.1 200 OK", "reason": "STREAM_ADD_SUCCESS", ...}``
as DeepStream's are; a malformed body gets 400 and a one-line reason, an unknown camera 404, a
``camera_id`` added twice 409, an input the pipeline refuses (``LannerError``) 422, and a callback
that crashes 500 (logged with its traceback; the server keeps serving). A ``Content-Length`` that is not
a byte count gets 400, one over ``MAX_BODY_BYTES`` 413, and a body that stops short of it 408 after
``READ_TIMEOUT_S`` (the connection is then closed: its framing is lost).

It is the standard library's ``ThreadingHTTPServer`` in a daemon thread: no web framework to install.
It binds to 127.0.0.1 by default; pass ``host="0.0.0.0"`` to take requests from other machines.

Example:
    >>> server = ControlServer(0, on_add=lambda cfg: 5, on_remove=lambda sid: None).start()
    >>> server.port > 0
    True
    >>> server.stop()
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lanner.core.errors import LannerError
from lanner.pipeline.sources import SourceConfig

log = logging.getLogger("lanner.pipeline.control")

ADD_PATH, REMOVE_PATH, INFO_PATH = "/api/v1/stream/add", "/api/v1/stream/remove", "/api/v1/stream/get-stream-info"
MAX_BODY_BYTES = 1 << 20
READ_TIMEOUT_S = 10.0  # a client that announces more body than it sends is dropped after this, not waited on


class RequestError(Exception):
    """A request the server refuses: HTTP status and a one-line reason."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class ControlServer:
    """REST add/remove of streams (see the module docstring); ``port=0`` picks a free port."""

    def __init__(
        self,
        port: int,
        on_add: Callable[[SourceConfig], int],
        on_remove: Callable[[int], None],
        host: str = "127.0.0.1",
        source_defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self.on_add, self.on_remove = on_add, on_remove
        self.source_defaults = dict(source_defaults or {})
        self.streams: dict[str, dict[str, Any]] = {}  # camera_id -> {"source_id", "camera_name", "camera_url"}
        self._lock = threading.Lock()
        self._httpd = _HTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._httpd.server_address[0]}:{self.port}"

    def start(self) -> ControlServer:
        """Serve in a daemon thread; returns ``self``."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="lanner-control", daemon=True
        )
        self._thread.start()
        log.info("REST control API on %s%s", self.url, ADD_PATH)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests -------------------------------------------------------------------------------------
    def handle_post(self, path: str, body: bytes) -> dict[str, Any]:
        """Apply one POST; returns the reply fields or raises ``RequestError``."""
        if path not in (ADD_PATH, REMOVE_PATH):
            raise RequestError(HTTPStatus.NOT_FOUND, f"unknown endpoint {path}; use {ADD_PATH} or {REMOVE_PATH}")
        value = parse_sensor(body, "camera_add" if path == ADD_PATH else "camera_remove")
        return self._add(value) if path == ADD_PATH else self._remove(value)

    def handle_get(self, path: str) -> dict[str, Any]:
        if path != INFO_PATH:
            raise RequestError(HTTPStatus.NOT_FOUND, f"unknown endpoint {path}; use {INFO_PATH}")
        with self._lock:
            streams = [{"camera_id": cid, **info} for cid, info in self.streams.items()]
        return {
            "reason": "GET_LIVE_STREAM_INFO_SUCCESS",
            "stream-info": {"stream-count": len(streams), "stream-info": streams},
        }

    def _add(self, value: dict[str, Any]) -> dict[str, Any]:
        camera_id = str(value["camera_id"])
        name = str(value.get("camera_name") or camera_id)
        with self._lock:
            if camera_id in self.streams:
                raise RequestError(
                    HTTPStatus.CONFLICT, f"camera_id '{camera_id}' is already streaming; remove it first"
                )
            try:
                config = SourceConfig(**{**self.source_defaults, "uri": str(value["camera_url"]), "name": name})
                source_id = int(self.on_add(config))
            except LannerError as exc:
                raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc)) from None
            self.streams[camera_id] = {"source_id": source_id, "camera_name": name, "camera_url": value["camera_url"]}
        log.info("stream added over REST: %s -> source %d", camera_id, source_id)
        return {"reason": "STREAM_ADD_SUCCESS", "source_id": source_id}

    def _remove(self, value: dict[str, Any]) -> dict[str, Any]:
        camera_id = str(value["camera_id"])
        with self._lock:
            if camera_id not in self.streams:
                known = ", ".join(self.streams) or "none"
                raise RequestError(HTTPStatus.NOT_FOUND, f"no stream with camera_id '{camera_id}' (streaming: {known})")
            source_id = self.streams[camera_id]["source_id"]
            try:
                self.on_remove(source_id)
            except LannerError as exc:
                raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc)) from None
            del self.streams[camera_id]
        log.info("stream removed over REST: %s (source %d)", camera_id, source_id)
        return {"reason": "STREAM_REMOVE_SUCCESS", "source_id": source_id}


def parse_sensor(body: bytes, change: str) -> dict[str, Any]:
    """Check a DeepStream ``{"key": "sensor", "value": {...}}`` body; returns ``value`` or raises 400."""
    bad = HTTPStatus.BAD_REQUEST
    try:
        doc = json.loads(body.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(bad, f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("value"), dict):
        raise RequestError(bad, 'body must be {"key": "sensor", "value": {"camera_id": ..., "camera_url": ..., ...}}')
    if doc.get("key") != "sensor":
        raise RequestError(bad, f'"key" must be "sensor", got {doc.get("key")!r}')
    value = doc["value"]
    missing = [k for k in ("camera_id", "camera_url", "change") if value.get(k) in (None, "")]
    if missing:
        raise RequestError(bad, f"value is missing {', '.join(missing)}")
    if value["change"] != change:
        raise RequestError(bad, f'value.change must be "{change}" on this endpoint, got {value["change"]!r}')
    return value


class _HTTPServer(ThreadingHTTPServer):
    """The standard server, minus its traceback on stderr when a client hangs up mid-request."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("REST connection from %s failed", client_address[0], exc_info=True)


def _handler_for(server: ControlServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = READ_TIMEOUT_S  # StreamRequestHandler puts it on the socket: reads cannot block forever

        def do_POST(self) -> None:
            body = self._read_body()
            if body is not None:
                self._answer(lambda: server.handle_post(self.path, body))

        def _read_body(self) -> bytes | None:
            """The request body, or ``None`` after replying 400/408/413 to a body that cannot be read."""
            raw = (self.headers.get("Content-Length") or "0").strip()
            length = int(raw) if raw.isdigit() else -1
            if length < 0:
                return self._refuse(HTTPStatus.BAD_REQUEST, f"Content-Length {raw!r} is not a byte count")
            if length > MAX_BODY_BYTES:
                return self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes")
            try:
                body = self.rfile.read(length)
            except TimeoutError:
                body = b""
            if len(body) < length:
                reason = f"body shorter than its Content-Length ({length} bytes)"
                return self._refuse(HTTPStatus.REQUEST_TIMEOUT, reason)
            return body

        def _refuse(self, status: HTTPStatus, reason: str) -> None:
            log.warning("REST %s %s: %d %s", self.command, self.path, status, reason)
            self.close_connection = True  # the rest of the stream cannot be framed
            self._reply(status, {"reason": reason})

        def do_GET(self) -> None:
            self._answer(lambda: server.handle_get(self.path))

        def _answer(self, call: Callable[[], dict[str, Any]]) -> None:
            try:
                self._reply(HTTPStatus.OK, call())
            except RequestError as exc:
                log.warning("REST %s %s: %d %s", self.command, self.path, exc.status, exc.reason)
                self._reply(exc.status, {"reason": exc.reason})
            except Exception as exc:  # a bug in a callback: answer, log it, keep serving
                log.exception("REST %s %s failed", self.command, self.path)
                reason = f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]
                self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"reason": reason})

        def _reply(self, status: HTTPStatus, fields: dict[str, Any]) -> None:
            data = json.dumps({"status": f"HTTP/1.1 {status.value} {status.phrase}", **fields}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("REST %s", format % args)

    return Handler
