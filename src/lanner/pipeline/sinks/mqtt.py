"""MQTT transport (paho-mqtt 2 API): publish payloads to ``topic`` at QoS ``qos``.

paho runs its network loop in its own thread (``loop_start``) and reconnects on its own after the
first connection; a publish while disconnected raises ``BrokerError`` (counted by the queue).
DeepStream's MQTT adaptor takes ``host;port`` and the topic the same way.
"""

from __future__ import annotations

import contextlib

from lanner.pipeline.sinks.broker import BrokerError
from lanner.pipeline.sinks.config import MqttSinkConfig


class MqttTransport:
    """One paho ``Client`` with its loop thread; ``connect`` raises ``BrokerError`` naming host:port."""

    def __init__(self, config: MqttSinkConfig) -> None:
        self.config = config
        self.where = f"mqtt://{config.host}:{config.port}"
        self._client = None
        self._last = None  # the last publish's MQTTMessageInfo, waited for on close

    def connect(self) -> None:
        import paho.mqtt.client as mqtt  # optional dependency, only for this sink

        cfg = self.config
        if self._client is None:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.client_id)
            client.connect_timeout = cfg.connect_timeout_s
            client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(cfg.reconnect_s * 8)))
            if cfg.username is not None:
                client.username_pw_set(cfg.username, cfg.password)
            self._client = client
        try:
            self._client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        except OSError as exc:
            raise BrokerError(f"cannot connect to the MQTT broker: {exc}", where=self.where,
                              fix="start the broker (mosquitto) or fix sinks[].host/port") from None  # fmt: skip
        self._client.loop_start()

    def publish(self, key: str, payload: bytes) -> None:
        import paho.mqtt.client as mqtt

        info = self._client.publish(self.config.topic, payload, qos=self.config.qos)
        self._last = info
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise BrokerError(f"MQTT publish failed: {mqtt.error_string(info.rc)}", where=self.where,
                              fix="check the broker is up; paho reconnects on its own")  # fmt: skip

    def close(self) -> None:
        if self._client is None:
            return
        client, self._client = self._client, None
        if self._last is not None and self._last.rc == 0:
            # let queued messages leave before disconnecting; if the connection is gone there is nothing to wait for
            with contextlib.suppress(RuntimeError, ValueError):
                self._last.wait_for_publish(timeout=self.config.close_timeout_s)
        client.disconnect()
        client.loop_stop()
