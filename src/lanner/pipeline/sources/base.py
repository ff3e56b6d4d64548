"""``Source``: a decode thread per input that fills a small bounded queue the muxer drains.

Why a thread per source: decoders (FFmpeg through PyAV) release the GIL, so several streams decode in
parallel while the main thread runs inference; and a slow or dead source stalls only itself.

Drop policy (per source, Roboflow's WAIT / DROP_OLDEST):

- files block their decoder while the queue is full (back-pressure): every frame is delivered;
- live sources (RTSP, V4L2) drop their oldest queued frame and count it in ``dropped``, so what reaches
  the detector is always recent and latency cannot grow.

``max_fps`` keeps frames by presentation time, not wall clock, so a file gives the same frames however
fast it decodes. ``frame_idx`` is the frame's position in the stream (skipped frames keep their number).
A source that cannot be opened or read ends in state ``failed`` with one ``SourceError`` line naming the
source, what went wrong and the fix; the other sources carry on.

Subclasses implement ``_decode()``, a generator of ``(pts_ns, image)``: a BGR array, or a decoder's
``Picture`` that stages convert only if they read ``frame.image``; see ``file.py``.

Example:
    >>> src = open_source(SourceConfig(uri="clips/cam0.mp4"), source_id=0)  # doctest: +SKIP
    >>> src.start(); item = src.get(timeout_s=1.0)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lanner.core.errors import LannerError, SourceError
from lanner.core.frame import Frame
from lanner.pipeline.sources.config import SourceConfig

log = logging.getLogger("lanner.pipeline.sources")

IDLE, RUNNING, EOS, FAILED, STOPPED = "idle", "running", "eos", "failed", "stopped"
ENDED_STATES = (EOS, FAILED, STOPPED)
PTS_TOLERANCE = 0.01  # of a max_fps period: pts rounding must not drop a frame that is due


@dataclass(frozen=True)
class SourceInfo:
    """What a source delivers: frame size, nominal frame rate and codec name (``None`` when unknown)."""

    width: int
    height: int
    fps: float | None
    codec: str | None


@dataclass
class SourceItem:
    """A decoded frame, what the source's ``transform`` made of it (e.g. the letterboxed input), and when
    it was queued (the muxer's push timeout counts from the oldest frame of a batch)."""

    frame: Frame
    prepared: Any = None
    queued_at: float = field(default_factory=time.monotonic)  # when it entered the queue (push timeout)


class FpsLimiter:
    """Keep at most ``max_fps`` frames per second of presentation time.

    Example:
        >>> lim = FpsLimiter(10.0)
        >>> [lim.keep(int(i * 1e9 / 30)) for i in range(7)]
        [True, False, False, True, False, False, True]
    """

    def __init__(self, max_fps: float | None) -> None:
        self.period_ns = 1e9 / max_fps if max_fps else 0.0
        self.next_ns: float | None = None

    def keep(self, pts_ns: int) -> bool:
        """Whether the frame at ``pts_ns`` is due; advances the schedule when it is."""
        if not self.period_ns:
            return True
        if self.next_ns is not None and pts_ns < self.next_ns - PTS_TOLERANCE * self.period_ns:
            return False
        on_schedule = self.next_ns is not None and pts_ns < self.next_ns + self.period_ns
        self.next_ns = (self.next_ns if on_schedule else pts_ns) + self.period_ns  # type: ignore[operator]
        return True


class Source:
    """One input decoded in its own thread into a bounded queue (see the module docstring)."""

    kind = "base"

    def __init__(self, config: SourceConfig, source_id: int) -> None:
        self.config = config
        self.source_id = source_id
        self.name = config.name or f"source{source_id}"
        self.live = config.is_live
        self.info: SourceInfo | None = None
        self.state = IDLE
        self.error: SourceError | None = None
        self.decoded = 0  # frames that came out of the decoder
        self.skipped = 0  # frames left out by max_fps
        self.dropped = 0  # frames a live source dropped because the queue was full
        self.transform: Callable[[Any], Any] | None = None  # image or Picture -> prepared
        self._queue: deque[SourceItem] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- wiring -----------------------------------------------------------------------------------
    def attach(self, cond: threading.Condition) -> None:
        """Share the muxer's condition so a new frame wakes it (call before ``start``)."""
        if self._thread is not None:
            raise SourceError("attach() after start()", where=self.where, fix="attach the source before starting it")
        self._cond = cond

    @property
    def where(self) -> str:
        return f"source {self.source_id} '{self.name}' ({self.config.uri})"

    def start(self) -> None:
        """Start the decode thread (once)."""
        if self._thread is not None:
            return
        self.state = RUNNING
        self._thread = threading.Thread(target=self._run, name=f"lanner-src-{self.source_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the decode thread to end and wait for it; queued frames are discarded."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        with self._cond:
            self._queue.clear()
            if self.state in (IDLE, RUNNING):
                self.state = STOPPED

    # -- consumer side (call with or without the shared condition held: it is re-entrant-safe) ---------
    def get_nowait(self) -> SourceItem | None:
        """The oldest queued frame, or ``None``."""
        with self._cond:
            if not self._queue:
                return None
            item = self._queue.popleft()
            self._cond.notify_all()  # a blocked file decoder may go on
            return item

    def get(self, timeout_s: float) -> SourceItem | None:
        """The oldest queued frame, waiting up to ``timeout_s``; ``None`` on timeout or at the end."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._queue and self.state not in ENDED_STATES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self.get_nowait()

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def ended(self) -> bool:
        """True once the source reached EOS, failed or was stopped (frames may still be queued)."""
        return self.state in ENDED_STATES

    @property
    def exhausted(self) -> bool:
        """True once the source ended and every queued frame was taken."""
        return self.ended and not self._queue

    def stats(self) -> dict[str, Any]:
        """Counters for telemetry: state, decoded, skipped (max_fps), dropped (live), queue depth, error."""
        return {
            "name": self.name,
            "state": self.state,
            "decoded": self.decoded,
            "skipped": self.skipped,
            "dropped": self.dropped,
            "queued": len(self._queue),
            "error": str(self.error) if self.error else None,
        }

    # -- producer side ------------------------------------------------------------------------------
    def _decode(self) -> Iterator[tuple[int, Any]]:
        """Yield ``(pts_ns, image)`` (BGR array or ``Picture``) until the end; raise ``SourceError`` on failure."""
        raise NotImplementedError

    def _run(self) -> None:
        try:
            self._pump()
        except LannerError as exc:
            self._fail(exc if isinstance(exc, SourceError) else SourceError(str(exc), where=self.where))
        except Exception as exc:  # a decoder library error: one clear line, the other sources go on
            self._fail(
                SourceError(
                    f"{type(exc).__name__}: {exc}",
                    where=self.where,
                    fix="check that the input plays (ffprobe URI) and is a supported format",
                )
            )
        else:
            with self._cond:
                self.state = STOPPED if self._stop.is_set() else EOS
                self._cond.notify_all()

    def _pump(self) -> None:
        limiter = FpsLimiter(self.config.max_fps)
        wall0 = pts0 = None
        for pts_ns, image in self._decode():
            idx = self.decoded
            self.decoded += 1
            if self._stop.is_set():
                return
            if not limiter.keep(pts_ns):
                self.skipped += 1
                continue
            if self.config.realtime:  # play a file at its own pace, like a camera
                wall0, pts0 = (time.monotonic(), pts_ns) if wall0 is None else (wall0, pts0)
                delay = wall0 + (pts_ns - pts0) / 1e9 - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
            frame = Frame(self.source_id, idx, pts_ns, image)
            prepared = self.transform(image) if self.transform is not None else None
            if not self._put(SourceItem(frame, prepared)):
                return

    def _put(self, item: SourceItem) -> bool:
        """Queue a frame by the source's policy; ``False`` when the source was stopped meanwhile."""
        with self._cond:
            if self.live:
                while len(self._queue) >= self.config.queue_size:
                    self._queue.popleft()
                    self.dropped += 1
            else:
                while len(self._queue) >= self.config.queue_size and not self._stop.is_set():
                    self._cond.wait(0.1)
            if self._stop.is_set():
                return False
            self._queue.append(item)
            self._cond.notify_all()
            return True

    def _fail(self, error: SourceError) -> None:
        log.error("%s", error)
        with self._cond:
            self.error = error
            self.state = FAILED
            self._cond.notify_all()
