"""Redis streams transport (redis-py): ``XADD <topic> MAXLEN ~ <maxlen> * <field> <payload>``.

DeepStream's Redis adaptor writes to a stream the same way; ``maxlen`` keeps the stream bounded.
"""

from __future__ import annotations

from typing import Any

from lanner.pipeline.sinks.broker import BrokerError
from lanner.pipeline.sinks.config import RedisSinkConfig


class RedisTransport:
    """One ``redis.Redis`` client; connection errors become ``BrokerError`` naming host:port."""

    def __init__(self, config: RedisSinkConfig) -> None:
        self.config = config
        self.where = f"redis://{config.host}:{config.port}/{config.db} stream {config.topic}"
        self._client: Any = None

    def connect(self) -> None:
        import redis  # optional dependency, only for this sink

        cfg = self.config
        if self._client is None:
            self._client = redis.Redis(host=cfg.host, port=cfg.port, db=cfg.db, password=cfg.password,
                                       socket_connect_timeout=cfg.connect_timeout_s,
                                       socket_timeout=cfg.connect_timeout_s)  # fmt: skip
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise BrokerError(f"cannot connect to Redis: {exc}", where=self.where,
                              fix="start redis-server or fix sinks[].host/port") from None  # fmt: skip

    def publish(self, key: str, payload: bytes) -> None:
        import redis

        cfg = self.config
        try:
            self._client.xadd(cfg.topic, {cfg.field: payload, "sensorId": key}, maxlen=cfg.maxlen,
                              approximate=cfg.approximate)  # fmt: skip
        except redis.RedisError as exc:
            raise BrokerError(f"Redis XADD failed: {exc}", where=self.where, fix="check redis-server is up") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
