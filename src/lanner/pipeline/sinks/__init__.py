"""Sinks (DeepStream's sink groups + nvmsgconv/nvmsgbroker): video, JSONL, MQTT, Kafka, Redis streams.

``build_sink(config, class_names)`` makes a sink; ``QueuedSink`` (or ``queued(config)``) puts it behind
its own bounded queue and thread so a slow sink never stalls inference.
"""

from lanner.pipeline.sinks.base import EndOfStream, Sink, end_of_stream_frame, frame_record
from lanner.pipeline.sinks.broker import BrokerError, BrokerSink
from lanner.pipeline.sinks.build import build_sink, queued
from lanner.pipeline.sinks.config import (
    AnalyticsModuleInfo,
    JsonlSinkConfig,
    KafkaSinkConfig,
    MqttSinkConfig,
    PlaceInfo,
    RedisSinkConfig,
    SensorInfo,
    SinkConfig,
    VideoSinkConfig,
)
from lanner.pipeline.sinks.queued import QueuedSink

__all__ = [
    "AnalyticsModuleInfo",
    "BrokerError",
    "BrokerSink",
    "EndOfStream",
    "JsonlSinkConfig",
    "KafkaSinkConfig",
    "MqttSinkConfig",
    "PlaceInfo",
    "QueuedSink",
    "RedisSinkConfig",
    "SensorInfo",
    "Sink",
    "SinkConfig",
    "VideoSinkConfig",
    "build_sink",
    "end_of_stream_frame",
    "frame_record",
    "queued",
]
