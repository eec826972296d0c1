"""The `mqtt` connector: the only module that imports paho-mqtt (2.x, MQTT 3.1.1).

Source: one client per (connector, client id, process) holding every subscription of that
process (RUN.md §1.2). paho's network thread receives; messages go through an `Inbox` (bounded,
with a wake descriptor) to the processing loop. The client id is used as given (the runtime has
appended `-<context>`). With QoS 1 the session is persistent (clean session off) and messages are
acknowledged by hand once the processing loop has taken them, so that what a dead worker had
not taken is delivered again. Subscriptions are sent on the first connection and again whenever the
broker has lost the session; a broker that is down at start is retried with backoff (100 ms
doubling, at most 5 s) by paho's thread, and `build()` never waits for it.

Sink: each sink partition has a client of its own, driven from its sender thread (`delivery`),
with a clean session and an id derived from the given one (`<id>-sink`, then `-2`, `-3`, ... for
further sinks of the same id in the process), so it never takes over the source's session.
A QoS 1 record counts as delivered once the broker acknowledged it; at most 100 wait for their
acknowledgement in paho at a time, and one published without it when the connection broke is in
doubt (io/delivery.py): sent again, never also a dead letter.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from varpulis_mp.io.connector_spec import BACKOFF_FIRST_S, BACKOFF_MAX_S, Params, Subscription
from varpulis_mp.io.delivery import DeliverySink, PartialDelivery, Transport
from varpulis_mp.io.inbox import DEFAULT_INBOX_CAPACITY, InboxPartition, Message
from varpulis_mp.io.lifecycle import connector_event
from varpulis_mp.io.ports import Sink, Source
from varpulis_mp.io.topics import MQTT_TOPICS, Route, Router, wire_patterns

__all__ = ["MQTT", "MqttKind", "MqttSink", "MqttSource", "MqttSourcePartition"]

_CONNACK_TIMEOUT_S: Final = 5.0
# Records a sink publishes before it waits for acknowledgements (paho's in-flight limit too).
_IN_FLIGHT: Final = 100


@dataclass(frozen=True, slots=True)
class _Broker:
    """Where and as whom a client connects."""

    host: str
    port: int
    client_id: str
    username: str | None
    password: str | None
    keepalive_s: int

    @staticmethod
    def of(connector: str, params: Mapping[str, object]) -> _Broker:
        p = Params(connector, params)
        keepalive_ms = p.integer("keepalive", 60_000, 1)
        client_id = p.text("client_id", "varpulis-mp")
        if not client_id:  # a persistent session needs one, and an empty id is the broker's choice
            raise ValueError(f"connector '{connector}': parameter 'client_id' must not be empty")
        return _Broker(p.text("host"), p.integer("port", 1883, 1, 65535), client_id,
                       p.optional_text("username"), p.optional_text("password"),
                       max(1, (keepalive_ms + 999) // 1000))

    def client(self, client_id: str, clean_session: bool) -> paho.Client:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                             protocol=paho.MQTTv311)
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        return client

    def __repr__(self) -> str:  # never the password
        return f"_Broker({self.host}:{self.port}, client_id={self.client_id!r})"


@dataclass(frozen=True, slots=True)
class _Filter:
    pattern: str
    event_type: str
    qos: int


@dataclass(frozen=True, slots=True)
class MqttSource:
    """The subscriptions of one MQTT client in one process (a Source description)."""

    name: str
    broker: _Broker
    filters: tuple[_Filter, ...]
    capacity: int = DEFAULT_INBOX_CAPACITY

    def build(self, worker_index: int, worker_count: int) -> MqttSourcePartition:
        return MqttSourcePartition(self)


class MqttSourcePartition(InboxPartition):
    """A live MQTT client: paho's thread receives, `next_batch` hands the events out."""

    def __init__(self, spec: MqttSource) -> None:
        super().__init__(spec.name, spec.capacity)
        self._spec = spec
        patterns = [f.pattern for f in spec.filters]
        wires = wire_patterns(MQTT_TOPICS, patterns)
        self._subscribe_to = [(w.pattern, max(spec.filters[i].qos for i in w.members)) for w in wires]
        router = Router(MQTT_TOPICS, [Route(f.pattern, f.event_type) for f in spec.filters],
                        [w.pattern for w in wires])
        self._router = router
        self._persistent = any(f.qos == 1 for f in spec.filters)
        self._connected = False
        self._subscribed = False
        self._subscribe_mid: int | None = None
        self._ever_connected = False
        self._ever_subscribed = False  # the next time it receives, it is back (not connected)
        self._refused: str | None = None  # the refusal last logged: said once, not at every retry
        client = spec.broker.client(spec.broker.client_id, clean_session=not self._persistent)
        client.manual_ack_set(True)
        # paho computes with floats although its signature says int: 100 ms doubling, at most 5 s.
        client.reconnect_delay_set(BACKOFF_FIRST_S, BACKOFF_MAX_S)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        client.connect_async(spec.broker.host, spec.broker.port, spec.broker.keepalive_s)
        client.loop_start()

    @property
    def healthy(self) -> bool:
        """Connected, and the broker acknowledged the subscriptions (or kept them in the session)."""
        return self._connected and self._subscribed

    @property
    def wire_filters(self) -> list[tuple[str, int]]:
        """The (topic filter, QoS) pairs the client subscribes to: overlapping filters merged."""
        return list(self._subscribe_to)

    def _stop_client(self) -> None:
        """A clean DISCONNECT; messages not yet taken stay unacknowledged, for the next session."""
        self._client.disconnect()
        self._client.loop_stop()

    # paho's callbacks, on its network thread.

    def _on_connect(self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags,
                    reason: ReasonCode, properties: Any) -> None:
        if reason.is_failure:
            if str(reason) != self._refused:
                self._refused = str(reason)
                connector_event("connector_refused", f"connector {self.name}: broker refused the connection: {reason}",
                                logging.WARNING, connector=self.name, reason=str(reason), **self._where())
            return
        self._refused = None
        self.counters.connects += 1
        first = not self._ever_connected
        self._ever_connected = True
        self._connected = True
        if flags.session_present and not first:
            # The broker kept our subscriptions; subscribing again would resend retained messages.
            self._subscribed = True
            self._receiving()
            return
        self._subscribed = False
        rc, mid = client.subscribe(self._subscribe_to)
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._subscribe_mid = mid

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                      properties: Any) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [pattern for (pattern, _), r in zip(self._subscribe_to, reasons, strict=False) if r.is_failure]
        if refused:
            connector_event("connector_refused",
                            f"connector {self.name}: the broker refused the subscription to {', '.join(refused)}",
                            logging.ERROR, connector=self.name, topics=refused, **self._where())
            return
        self._subscribed = True
        self._receiving()

    def _receiving(self) -> None:
        """Connected and subscribed: the one line saying so, `connector_connected` the first time,
        `connector_back` after a loss."""
        back = self._ever_subscribed
        self._ever_subscribed = True
        where = self._where()
        if back:
            connector_event("connector_back",
                            f"connector {self.name}: connected again, receiving from {where['host']}:{where['port']}",
                            connector=self.name, **where)
        else:
            connector_event("connector_connected",
                            f"connector {self.name}: subscribed, receiving from {where['host']}:{where['port']}",
                            connector=self.name, **where)

    def _where(self) -> dict[str, object]:
        """The broker as the log lines name it (host and port: no credentials)."""
        return {"connector_type": "mqtt", "host": self._spec.broker.host, "port": self._spec.broker.port}

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self.counters.failures += 1
        if self.counters.failures == 1 or self._connected:
            broker = f"{self._spec.broker.host}:{self._spec.broker.port}"
            connector_event("connector_unreachable", f"connector {self.name}: cannot reach {broker}; retrying with backoff",
                            logging.WARNING, connector=self.name, **self._where())
        self._connected = False

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: paho.DisconnectFlags,
                       reason: ReasonCode, properties: Any) -> None:
        was = self._connected
        self._connected = False
        self._subscribed = False
        if was and not self._closed:
            self.counters.failures += 1
            connector_event("connector_lost", f"connector {self.name}: connection lost ({reason}); reconnecting",
                            logging.WARNING, connector=self.name, reason=str(reason), **self._where())

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers check topics; keep the message and let it be rejected
            topic = bytes(msg._topic).decode("utf-8", "replace")
        ack = None
        if msg.qos == 1:
            mid = msg.mid

            def ack() -> None:
                client.ack(mid, 1)

        # Blocks while the inbox is full: paho then neither reads nor acknowledges.
        self._inbox.put(Message(topic, bytes(msg.payload), self._router, ack))


@dataclass(frozen=True, slots=True)
class MqttSink:
    """Where one `.to(connector, topic: ...)` publishes (a transport description)."""

    broker: _Broker
    topic: str
    qos: int

    def open(self, worker_index: int, worker_count: int) -> Transport:
        client_id = self.broker.client_id + "-sink"
        if worker_count > 1:
            client_id += f"-{worker_index}"
        return _Publisher(self.broker, _unique(client_id), self.topic, self.qos)


_sink_ids: dict[str, itertools.count[int]] = {}
_sink_ids_lock = threading.Lock()


def _unique(client_id: str) -> str:
    """`id`, then `id-2`, `id-3`, ... for further sinks of one id in this process."""
    with _sink_ids_lock:
        n = next(_sink_ids.setdefault(client_id, itertools.count(1)))
    return client_id if n == 1 else f"{client_id}-{n}"


class _Publisher:
    """A paho client driven by the sender thread itself (no network thread of paho's)."""

    def __init__(self, broker: _Broker, client_id: str, topic: str, qos: int) -> None:
        self._broker = broker
        self._client_id = client_id
        self._topic = topic
        self._qos = qos
        self._client: paho.Client | None = None
        # An acknowledgement slower than this means a dead connection that TCP has not noticed yet.
        self._ack_timeout = max(10.0, broker.keepalive_s * 1.5)

    def connect(self) -> None:
        client = self._broker.client(self._client_id, clean_session=True)
        client.max_inflight_messages_set(_IN_FLIGHT)
        answers: list[ReasonCode] = []
        client.on_connect = lambda c, u, flags, reason, props: answers.append(reason)
        client.connect(self._broker.host, self._broker.port, self._broker.keepalive_s)
        deadline = time.monotonic() + _CONNACK_TIMEOUT_S
        while not answers:
            rc = client.loop(0.05)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or time.monotonic() > deadline:
                _drop(client)
                raise ConnectionError(f"no CONNACK from {self._broker.host}:{self._broker.port}")
        if answers[0].is_failure:
            _drop(client)
            raise ConnectionError(f"the broker refused the connection: {answers[0]}")
        self._client = client

    def send(self, payloads: Sequence[bytes]) -> None:
        """Publishes with at most `_IN_FLIGHT` records unacknowledged, so that paho never holds a
        record it has not written: on a loss each record is acknowledged (delivered), published
        without an acknowledgement (in doubt: the broker may have taken it), or never handed to
        paho (it waits) — and the client, dropped, sends nothing more."""
        client = self._client
        assert client is not None
        infos: list[paho.MQTTMessageInfo] = []
        deadline = time.monotonic() + self._ack_timeout
        done = 0  # infos[:done] are all acknowledged
        while True:
            unanswered = sum(1 for info in infos[done:] if not info.is_published())
            # With nothing to wait for, a look without waiting: a connection the broker has closed
            # since the last slice is noticed before a record is written into it.
            rc = client.loop(0.05 if unanswered else 0.0)
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                while done < len(infos) and infos[done].is_published():
                    done += 1
                if done == len(payloads):
                    return
                unanswered = sum(1 for info in infos[done:] if not info.is_published())
                fresh = payloads[len(infos):len(infos) + max(0, _IN_FLIGHT - unanswered)]
                infos += [client.publish(self._topic, payload, self._qos) for payload in fresh]
                if fresh:
                    deadline = time.monotonic() + self._ack_timeout
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                cause = paho.error_string(rc)
            elif time.monotonic() > deadline:
                cause = f"no acknowledgement within {self._ack_timeout:g} s"
            else:
                continue
            # The failing loop may have read acknowledgements before the end of the connection, and
            # they may come out of order: every acknowledged record counts, none is sent again.
            acknowledged = [i for i, info in enumerate(infos) if info.is_published()]
            # QoS 0 counts a record published once written; one not written dies with the client.
            in_doubt = [i for i, info in enumerate(infos) if not info.is_published()] if self._qos else []
            # Not a packet more: a DISCONNECT would first flush what paho still holds.
            self._client = None
            _close_socket(client)
            raise PartialDelivery(len(acknowledged), cause, delivered_indexes=acknowledged, in_doubt=in_doubt)

    def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            _drop(client)


def _drop(client: paho.Client) -> None:
    """Says DISCONNECT if it still can, and closes the socket whatever happens."""
    client.disconnect()
    client.loop(0.01)
    _close_socket(client)


def _close_socket(client: paho.Client) -> None:
    sock = client.socket()
    if sock is not None:
        sock.close()


class MqttKind:
    """`mqtt(host, port, client_id, qos, username, password, keepalive)`."""

    kind = "mqtt"

    def source(self, connector: str, params: Mapping[str, object],
               subscriptions: Sequence[Subscription], context: str) -> Source:
        """One client for every subscription given.

        `params["client_id"]` is the id the client uses on the wire (the caller has appended the
        context); a `.from`'s own `client_id` only tells the caller which client a subscription
        belongs to, so all subscriptions given here must agree on it.
        """
        broker = _Broker.of(connector, params)
        default_qos = Params(connector, params).qos()
        own_ids = {s.params.get("client_id") for s in subscriptions}
        if len(own_ids) > 1:
            raise ValueError(f"connector '{connector}': subscriptions of different client ids need a source each")
        filters = []
        for sub in subscriptions:
            p = Params(connector, sub.params)
            topic = p.text("topic")
            problem = MQTT_TOPICS.problem(topic)
            if problem:
                raise ValueError(f"connector '{connector}': {problem}")
            filters.append(_Filter(topic, sub.event_type, p.qos(default=default_qos)))
        return MqttSource(connector, broker, tuple(filters))

    def sink(self, connector: str, params: Mapping[str, object], to_params: Mapping[str, object],
             stream: str, context: str) -> Sink:
        broker = _Broker.of(connector, params)
        p = Params(connector, to_params)
        topic = p.text("topic", f"{stream}-output")
        problem = MQTT_TOPICS.problem(topic, wildcards=False)
        if problem:
            raise ValueError(f"connector '{connector}': {problem}")
        qos = p.qos(default=Params(connector, params).qos())
        return DeliverySink(connector, stream, MqttSink(broker, topic, qos))


MQTT: Final = MqttKind()
