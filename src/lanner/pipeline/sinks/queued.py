"""``QueuedSink``: a sink behind its own bounded queue and thread, so a slow sink never stalls inference.

``write`` puts the frame in the queue and returns at once. When the queue is full, one frame is
dropped (the oldest queued one with ``on_full="drop_oldest"``, the new one with "drop_newest") and
counted in ``dropped``. A sink whose ``write`` raises is reported once (``error``) and keeps being
called for later frames (a broker may come back); its failures are counted in ``failed``. ``close``
waits up to ``timeout_s`` for the queue to drain, then closes the sink; what is left is counted as dropped.

Example:
    >>> class Print:
    ...     name = "print"
    ...     def write(self, frame): print(frame)
    ...     def close(self): print("closed")
    >>> q = QueuedSink(Print(), queue_size=4)
    >>> q.write("frame 0")
    >>> q.close()
    frame 0
    closed
    >>> q.stats()["written"], q.stats()["dropped"]
    (1, 0)
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Literal

from lanner.core.errors import ConfigError
from lanner.pipeline.sinks.base import Sink

log = logging.getLogger(__name__)


class QueuedSink:
    """Runs ``sink.write`` on its own thread from a bounded queue; ``write`` never blocks."""

    def __init__(
        self,
        sink: Sink,
        queue_size: int = 256,
        on_full: Literal["drop_oldest", "drop_newest"] = "drop_oldest",
        timeout_s: float = 10.0,
    ) -> None:
        if queue_size < 1:
            raise ConfigError(f"queue_size={queue_size} must be >= 1", where=f"sink {sink.name}", fix="use 1 or more")
        self.sink, self.name = sink, sink.name
        self.queue_size, self.on_full, self.timeout_s = queue_size, on_full, timeout_s
        self.dropped = self.written = self.failed = 0
        self.error: str | None = None
        self._items: collections.deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=f"sink-{self.name}", daemon=True)
        self._thread.start()

    def write(self, frame: Any) -> None:
        """Queue ``frame`` for the sink; drop (and count) one frame if the queue is full."""
        with self._cond:
            if self._closing:
                self.dropped += 1
                return
            if len(self._items) >= self.queue_size:
                self.dropped += 1
                if self.on_full == "drop_newest":
                    return
                self._items.popleft()
            self._items.append(frame)
            self._cond.notify()

    @property
    def depth(self) -> int:
        """Frames waiting in the queue now."""
        return len(self._items)

    def stats(self) -> dict[str, Any]:
        """Counters for telemetry: queued, written, dropped, failed, and the first error."""
        with self._cond:
            return {"name": self.name, "queued": len(self._items), "written": self.written,
                    "dropped": self.dropped, "failed": self.failed, "error": self.error}  # fmt: skip

    def close(self, timeout_s: float | None = None) -> None:
        """Drain the queue for up to ``timeout_s`` (default: the constructor's), then close the sink."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            while (self._items or self._busy) and time.monotonic() < deadline:
                self._cond.wait(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
            self.dropped += len(self._items)
            self._items.clear()
            self._cond.notify_all()
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()) + 0.5)
        try:
            self.sink.close()
        except Exception as exc:  # a failing close must not hide the other sinks' results
            self._report(exc, "close")

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closing:
                    self._cond.wait()
                if not self._items:
                    return
                frame = self._items.popleft()
                self._busy = True
            try:
                self.sink.write(frame)
                ok = True
            except Exception as exc:  # isolate a failing sink: report once, count, keep going
                self._report(exc, "write")
                ok = False
            with self._cond:
                self._busy = False
                self.written += ok
                self.failed += not ok
                self._cond.notify_all()

    def _report(self, exc: Exception, what: str) -> None:
        if self.error is None:
            self.error = f"sink {self.name}: {what} failed: {exc}"
            log.error("%s (further failures are counted, not logged)", self.error)
