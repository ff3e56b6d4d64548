"""Message-broker sinks (nvmsgbroker analog): DeepStream schema payloads published through a ``Transport``.

``BrokerSink`` turns each frame into payloads (``schema``: "full" = one message per object, "minimal"
= one per frame, every ``frame_interval`` frames of a source) and hands them to a transport (MQTT,
Kafka, Redis streams; ``mqtt.py``, ``kafka.py``, ``redis_stream.py``). A transport that cannot
connect raises ``BrokerError``; the sink then fails fast (no network wait) until ``reconnect_s`` has
passed and tries again, so a dead broker costs the pipeline nothing: the ``QueuedSink`` in front
counts the failed frames and logs the error once.

Example:
    >>> import numpy as np
    >>> from lanner.core.detections import Detections
    >>> from lanner.core.frame import Frame
    >>> from lanner.pipeline.sinks.config import RedisSinkConfig
    >>> class Memory:
    ...     def __init__(self): self.sent = []
    ...     def connect(self): pass
    ...     def publish(self, key, payload): self.sent.append((key, payload))
    ...     def close(self): pass
    >>> sink = BrokerSink(RedisSinkConfig(payload="minimal"), Memory(), ("car",), name="mem")
    >>> sink.write(Frame(0, 0, 0, np.zeros((4, 4, 3), np.uint8), Detections.from_arrays([[0, 0, 2, 2]], [0])))
    >>> sink.transport.sent[0][0], b'"objects":["-1|0|0|2|2|car|1"]' in sink.transport.sent[0][1]
    ('0', True)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from lanner.core.errors import LannerError
from lanner.core.frame import Frame
from lanner.pipeline.sinks.base import EndOfStream
from lanner.pipeline.sinks.config import BrokerSinkConfig
from lanner.pipeline.sinks.schema import Clock, encode, full_payloads, minimal_payload, sensor_for


class BrokerError(LannerError):
    """A message broker cannot be reached or refuses a message."""


class Transport(Protocol):
    """One broker connection: ``connect()`` (raises ``BrokerError``), ``publish(key, payload)``, ``close()``."""

    def connect(self) -> None: ...

    def publish(self, key: str, payload: bytes) -> None: ...

    def close(self) -> None: ...


class BrokerSink:
    """Builds DeepStream payloads for each frame and publishes them; reconnects after failures."""

    def __init__(
        self,
        config: BrokerSinkConfig,
        transport: Transport,
        class_names: Sequence[str] = (),
        name: str | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.config, self.transport = config, transport
        self.class_names = tuple(class_names)
        self.name = name or config.name or f"{config.type}:{config.topic}"
        self.clock = clock
        self.published = 0
        self._connected = False
        self._retry_at = 0.0
        self._seen: dict[int, int] = {}  # frames per source, for frame_interval

    def write(self, frame: Frame) -> None:
        """Publish the frame's payloads (if it is due by ``frame_interval`` and not empty).

        An ``EndOfStream`` is always due: its objects' "exit" messages are the last of the source.
        """
        if not isinstance(frame, EndOfStream):
            count = self._seen.get(frame.source_id, 0)
            self._seen[frame.source_id] = count + 1
            if count % self.config.frame_interval:
                return
        if self.config.skip_empty and len(frame.detections) == 0:
            return
        payloads = self.payloads(frame)
        self._ensure_connected()
        key = sensor_for(self.config.sensors, frame.source_id).id
        try:
            for payload in payloads:
                self.transport.publish(key, encode(payload))
                self.published += 1
        except BrokerError:
            self._connected, self._retry_at = False, time.monotonic() + self.config.reconnect_s
            raise

    def payloads(self, frame: Frame) -> list[dict[str, Any]]:
        """The messages of one frame in the configured schema."""
        cfg = self.config
        if cfg.payload == "minimal":
            return [minimal_payload(frame, self.class_names, cfg.sensors, self.clock)]
        return full_payloads(frame, self.class_names, cfg.sensors, cfg.place, cfg.analytics_module, self.clock)

    def _ensure_connected(self) -> None:
        if self._connected:
            return
        now = time.monotonic()
        if now < self._retry_at:
            raise BrokerError(f"{self.name}: not connected; next attempt in {self._retry_at - now:.1f} s")
        try:
            self.transport.connect()
        except BrokerError:
            self._retry_at = now + self.config.reconnect_s
            raise
        self._connected = True

    def close(self) -> None:
        """Flush and disconnect."""
        self.transport.close()
        self._connected = False
