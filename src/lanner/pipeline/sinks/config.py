"""Sink configs: one section per sink ``type`` ("video" | "jsonl" | "mqtt" | "kafka" | "redis"), a tagged union.

Every sink runs behind its own bounded queue (``queue_size``); when the queue is full ``on_full``
says which frame is dropped ("drop_oldest" keeps the newest frames, right for live dashboards;
"drop_newest" keeps what is queued). The caller never waits either way; drops are counted.

The broker sinks publish DeepStream's message schemas (``payload``: "full" = nvmsgconv
``payload-type=0``, one message per object; "minimal" = ``payload-type=1``, one per frame) every
``frame_interval`` frames (nvmsgconv's ``frame-interval``). ``sensors``, ``place`` and
``analytics_module`` fill the sections nvmsgconv reads from its ``[sensorN]``/``[placeN]``/``[analyticsN]``
groups.

Example:
    >>> from pydantic import TypeAdapter
    >>> cfg = TypeAdapter(SinkConfig).validate_python({"type": "mqtt", "topic": "lanner/frames", "port": 1884})
    >>> type(cfg).__name__, cfg.payload, cfg.queue_size
    ('MqttSinkConfig', 'full', 256)
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from lanner.core.config import Section

OnFull = Literal["drop_oldest", "drop_newest"]
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


class _Queued(Section):
    """What every sink has: its queue and drop policy, and an optional name for logs and telemetry."""

    name: str | None = None
    queue_size: int = Field(256, ge=1)
    on_full: OnFull = "drop_oldest"
    close_timeout_s: float = Field(10.0, gt=0)


class VideoSinkConfig(_Queued):
    """H.264 MP4 through PyAV/libx264: one file of the tiled mosaic, or one per source.

    ``path`` may hold ``{source_id}``; with ``per_source`` and no placeholder, ``_src<id>`` is added
    before the suffix. ``bitrate_kbps`` = None uses constant quality ``crf`` instead.
    """

    type: Literal["video"] = "video"
    path: str = "out.mp4"
    per_source: bool = False
    fps: float = Field(30.0, gt=0, le=240)
    codec: Literal["libx264", "h264_nvenc"] = "libx264"
    preset: Literal[X264_PRESETS] = "veryfast"  # type: ignore[valid-type]
    bitrate_kbps: int | None = Field(None, gt=0)
    crf: int = Field(23, ge=0, le=51)
    gop: int = Field(60, ge=1)
    threads: int = Field(0, ge=0)
    queue_size: int = Field(64, ge=1)


class JsonlSinkConfig(_Queued):
    """One JSON line per frame: source, frame, pts, objects (bbox/class/confidence/track id), events."""

    type: Literal["jsonl"] = "jsonl"
    path: str = "events.jsonl"
    skip_empty: bool = False
    flush_every: int = Field(1, ge=1)


class SensorInfo(Section):
    """nvmsgconv ``[sensorN]``: one camera (``sensor``)."""

    id: str
    type: str = "Camera"
    description: str = ""
    location: tuple[float, float, float] = (0.0, 0.0, 0.0)
    coordinate: tuple[float, float, float] = (0.0, 0.0, 0.0)


class PlaceInfo(Section):
    """nvmsgconv ``[placeN]`` (``place``)."""

    id: str = "0"
    name: str = ""
    type: str = ""
    location: tuple[float, float, float] = (0.0, 0.0, 0.0)


class AnalyticsModuleInfo(Section):
    """nvmsgconv ``[analyticsN]`` (``analyticsModule``)."""

    id: str = "lanner"
    description: str = "lanner pipeline"
    source: str = "lanner"
    version: str = "1.0"


class _Broker(_Queued):
    """What the broker sinks share: topic, payload schema, interval and the nvmsgconv metadata."""

    topic: str = "lanner"
    payload: Literal["full", "minimal"] = "full"
    frame_interval: int = Field(1, ge=1)
    skip_empty: bool = True
    sensors: dict[int, SensorInfo] = {}
    place: PlaceInfo = PlaceInfo()
    analytics_module: AnalyticsModuleInfo = AnalyticsModuleInfo()
    reconnect_s: float = Field(2.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)


class MqttSinkConfig(_Broker):
    """MQTT (paho-mqtt 2): ``host:port``, QoS 0/1/2; DeepStream's MQTT adaptor takes ``host;port``."""

    type: Literal["mqtt"] = "mqtt"
    host: str = "localhost"
    port: int = Field(1883, ge=1, le=65535)
    qos: Literal[0, 1, 2] = 0
    client_id: str = ""
    keepalive_s: int = Field(60, ge=1)
    username: str | None = None
    password: str | None = None


class KafkaSinkConfig(_Broker):
    """Kafka (confluent-kafka ``Producer``); ``producer`` passes extra librdkafka settings verbatim.

    ``partition_key`` "sensor.id" keys messages by camera (DeepStream's ``partition-key``).
    """

    type: Literal["kafka"] = "kafka"
    bootstrap_servers: str = "localhost:9092"
    partition_key: Literal["sensor.id", "none"] = "sensor.id"
    producer: dict[str, str | int | float | bool] = {}


class RedisSinkConfig(_Broker):
    """Redis streams: ``XADD <topic> MAXLEN ~ <maxlen> * <field> <payload>``."""

    type: Literal["redis"] = "redis"
    host: str = "localhost"
    port: int = Field(6379, ge=1, le=65535)
    db: int = Field(0, ge=0)
    field: str = "metadata"
    maxlen: int | None = Field(10000, ge=1)
    approximate: bool = True
    password: str | None = None


SinkConfig = Annotated[
    VideoSinkConfig | JsonlSinkConfig | MqttSinkConfig | KafkaSinkConfig | RedisSinkConfig,
    Field(discriminator="type"),
]
BrokerSinkConfig = MqttSinkConfig | KafkaSinkConfig | RedisSinkConfig
