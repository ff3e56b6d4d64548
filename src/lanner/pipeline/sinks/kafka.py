"""Kafka transport (confluent-kafka ``Producer``): produce payloads to ``topic``, keyed by sensor id.

librdkafka buffers and retries on its own, so ``produce`` does not fail while a broker is away; its
``error_cb`` reports "all brokers down" and the next ``publish`` raises ``BrokerError`` so the queue
counts the frames. ``producer`` settings pass to librdkafka verbatim (e.g. ``linger.ms``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lanner.pipeline.sinks.broker import BrokerError
from lanner.pipeline.sinks.config import KafkaSinkConfig

FATAL_CODES = ("_ALL_BROKERS_DOWN", "_TRANSPORT", "_RESOLVE", "_AUTHENTICATION")


def producer_settings(config: KafkaSinkConfig, error_cb: Callable[[Any], None]) -> dict[str, Any]:
    """The librdkafka configuration of the producer (``bootstrap.servers`` first, then ``producer``)."""
    settings: dict[str, Any] = {
        "bootstrap.servers": config.bootstrap_servers,
        "client.id": config.name or "lanner",
        "socket.connection.setup.timeout.ms": int(config.connect_timeout_s * 1000),
        "reconnect.backoff.ms": int(config.reconnect_s * 1000),
        "error_cb": error_cb,
    }
    settings.update(config.producer)
    return settings


class KafkaTransport:
    """Wraps a ``confluent_kafka.Producer`` (``producer_factory`` replaces it in tests)."""

    def __init__(self, config: KafkaSinkConfig, producer_factory: Callable[[dict], Any] | None = None) -> None:
        self.config = config
        self.where = f"kafka://{config.bootstrap_servers}/{config.topic}"
        self._factory = producer_factory
        self._producer: Any = None
        self.error: str | None = None

    def connect(self) -> None:
        factory = self._factory
        if factory is None:
            from confluent_kafka import Producer  # optional dependency, only for this sink

            factory = Producer
        if self._producer is None:
            try:
                self._producer = factory(producer_settings(self.config, self._on_error))
            except Exception as exc:  # librdkafka's KafkaException for bad settings
                raise BrokerError(f"cannot create the Kafka producer: {exc}", where=self.where,
                                  fix="check sinks[].bootstrap_servers and sinks[].producer") from None  # fmt: skip
        self.error = None

    def _on_error(self, err: Any) -> None:
        if any(code in str(getattr(err, "name", lambda: err)()) for code in FATAL_CODES):
            self.error = str(err)

    def publish(self, key: str, payload: bytes) -> None:
        if self.error is not None:
            raise BrokerError(f"Kafka unreachable: {self.error}", where=self.where, fix="check the brokers are up")
        key_bytes = key.encode() if self.config.partition_key == "sensor.id" else None
        try:
            self._producer.produce(self.config.topic, value=payload, key=key_bytes)
        except BufferError:
            fix = "the brokers are slow or down; raise queue.buffering.max.messages"
            raise BrokerError("Kafka producer queue is full", where=self.where, fix=fix) from None
        self._producer.poll(0)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.config.close_timeout_s)
            self._producer = None
