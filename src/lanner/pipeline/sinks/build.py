"""``build_sink``: a sink config -> the sink object (brokers get their transport here).

Example:
    >>> import tempfile
    >>> from lanner.pipeline.sinks.config import JsonlSinkConfig
    >>> sink = build_sink(JsonlSinkConfig(path=tempfile.mkdtemp() + "/e.jsonl"), ("car",))
    >>> sink.name.startswith("jsonl:")
    True
    >>> sink.close()
"""

from __future__ import annotations

from collections.abc import Sequence

from lanner.pipeline.sinks.base import Sink
from lanner.pipeline.sinks.broker import BrokerSink
from lanner.pipeline.sinks.config import (
    JsonlSinkConfig,
    KafkaSinkConfig,
    MqttSinkConfig,
    RedisSinkConfig,
    SinkConfig,
    VideoSinkConfig,
)
from lanner.pipeline.sinks.queued import QueuedSink


def build_sink(config: SinkConfig, class_names: Sequence[str] = ()) -> Sink:
    """The sink for ``config`` (not queued: wrap it with ``queued(...)`` or ``QueuedSink``)."""
    if isinstance(config, VideoSinkConfig):
        from lanner.pipeline.sinks.video import VideoSink

        return VideoSink(config, class_names)
    if isinstance(config, JsonlSinkConfig):
        from lanner.pipeline.sinks.jsonl import JsonlSink

        return JsonlSink(config, class_names)
    if isinstance(config, MqttSinkConfig):
        from lanner.pipeline.sinks.mqtt import MqttTransport

        return BrokerSink(config, MqttTransport(config), class_names)
    if isinstance(config, KafkaSinkConfig):
        from lanner.pipeline.sinks.kafka import KafkaTransport

        return BrokerSink(config, KafkaTransport(config), class_names)
    if isinstance(config, RedisSinkConfig):
        from lanner.pipeline.sinks.redis_stream import RedisTransport

        return BrokerSink(config, RedisTransport(config), class_names)
    raise TypeError(f"not a sink config: {type(config).__name__}")


def queued(config: SinkConfig, class_names: Sequence[str] = ()) -> QueuedSink:
    """``build_sink`` behind its own bounded queue and thread, with the config's size and drop policy."""
    return QueuedSink(build_sink(config, class_names), config.queue_size, config.on_full, config.close_timeout_s)
