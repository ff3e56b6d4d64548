"""``RtspSource``: an RTSP camera read by PyAV over TCP, reconnected with exponential backoff.

Cameras reboot, Wi-Fi drops, NVRs restart: a stream that ends, errors, or sends nothing for
``timeout_s`` is closed and reopened after ``reconnect_interval_s``, then ``* reconnect_backoff`` per
consecutive failure up to ``reconnect_max_interval_s`` (deepstream-app's ``rtsp-reconnect-interval-sec``
with a backoff). The delay resets as soon as a frame arrives. ``reconnect_attempts`` consecutive failures
(-1: never give up) end the source as ``failed`` with one line; the other sources are not affected.
``frame_idx`` and ``pts_ns`` keep increasing across reconnects. ``rtsp_transport=tcp`` by default
(interleaved RTP: no UDP ports to open, no packet loss on busy links).

Example:
    >>> src = RtspSource(SourceConfig(uri="rtsp://10.0.0.5/stream1"), source_id=0)  # doctest: +SKIP
    >>> src.start()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from lanner.core.errors import SourceError
from lanner.pipeline.sources.base import Source
from lanner.pipeline.sources.file import decode_frames, hwaccel_of, open_av, stream_info, video_stream

log = logging.getLogger("lanner.pipeline.sources")

Opener = Callable[..., Any]
RTSP_FIX = "check the URL, that the camera is on and reachable, and its user/password"


def default_opener(uri: str, options: dict[str, str], timeout_s: float, hwaccel: tuple[str, int] | None = None) -> Any:
    """Open ``uri`` with PyAV; ``timeout_s`` bounds both the connect and every read."""
    return open_av(uri, where=uri, options=options, timeout_s=timeout_s, hwaccel=hwaccel)


class Backoff:
    """Delays between reconnect attempts: interval, interval*factor, ... capped; ``None`` once exhausted.

    Example:
        >>> b = Backoff(0.5, 2.0, 3.0, attempts=4)
        >>> [b.next_delay() for _ in range(5)]
        [0.5, 1.0, 2.0, 3.0, None]
    """

    def __init__(self, interval_s: float, factor: float, max_interval_s: float, attempts: int = -1) -> None:
        self.interval_s, self.factor, self.max_interval_s, self.attempts = interval_s, factor, max_interval_s, attempts
        self.failures = 0

    def next_delay(self) -> float | None:
        """The wait before the next attempt, counting one more consecutive failure."""
        if 0 <= self.attempts <= self.failures:
            return None
        delay = min(self.max_interval_s, self.interval_s * self.factor**self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        """A frame arrived: the next failure waits the first interval again."""
        self.failures = 0


class RtspSource(Source):
    """An RTSP stream in its own thread; live (drops the oldest frame when full); reconnects on its own.

    ``opener(uri, options, timeout_s[, hwaccel]) -> container`` is PyAV's ``av.open`` by default; tests
    inject one.
    """

    kind = "rtsp"

    def __init__(self, config: Any, source_id: int, opener: Opener | None = None) -> None:
        super().__init__(config, source_id)
        self.opener = opener or default_opener
        self.reconnects = 0  # times the stream was reopened after it had delivered frames

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "reconnects": self.reconnects}

    def _connect(self) -> Any:
        options = {"rtsp_transport": self.config.rtsp_transport} if self.config.uri.lower().startswith("rtsp") else {}
        accel = hwaccel_of(self.config)
        try:
            if accel is None:
                return self.opener(self.config.uri, options, self.config.timeout_s)
            return self.opener(self.config.uri, options, self.config.timeout_s, accel)
        except SourceError as exc:
            raise SourceError(exc.what, where=self.where, fix=RTSP_FIX) from None

    def _decode(self) -> Iterator[tuple[int, Any]]:
        cfg = self.config
        backoff = Backoff(
            cfg.reconnect_interval_s, cfg.reconnect_backoff, cfg.reconnect_max_interval_s, cfg.reconnect_attempts
        )
        offset_ns, last_ns = 0, None
        while not self._stop.is_set():
            try:
                container = self._connect()
            except SourceError as exc:
                self._wait_or_fail(backoff, exc.what)
                continue
            try:
                stream = video_stream(container, self.where, cfg.decode_threads)
                self.info = stream_info(stream)
                first = None
                for pts_ns, image in decode_frames(container, stream, self.where, self.info.fps or cfg.fps):
                    backoff.reset()
                    first = pts_ns if first is None else first
                    last_ns = offset_ns + pts_ns - first
                    yield last_ns, image
                reason = "the stream ended"
            except SourceError as exc:
                reason = exc.what
            finally:
                container.close()
            if last_ns is not None:
                offset_ns = last_ns + round(1e9 / (self.info.fps or cfg.fps))
            if not self._stop.is_set():
                self.reconnects += 1
                self._wait_or_fail(backoff, reason)

    def _wait_or_fail(self, backoff: Backoff, reason: str) -> None:
        """Sleep the next backoff delay (wakes early on stop), or raise once attempts are spent."""
        delay = backoff.next_delay()
        if delay is None:
            raise SourceError(
                f"{reason}; gave up after {backoff.failures} reconnect attempts",
                where=self.where,
                fix=f"{RTSP_FIX}; or raise reconnect_attempts (-1 retries forever)",
            )
        log.warning("%s: %s; reconnecting in %.1f s", self.where, reason, delay)
        self._stop.wait(delay)
