"""MQTT transport: settings, topic layout, the ingest source and the replay publisher.

Topics (``prefix`` defaults to ``twin``):

* ``{prefix}/readings/{sensor_id}``: one reading (a JSON object);
* ``{prefix}/readings/batch/{source}``: a batch of readings (a JSON array);
* ``{prefix}/alerts/{kind}``: an alert (a JSON object).

Everything travels at QoS 1. :class:`MqttSource` keeps a persistent session (fixed
client id, clean_session False) and acknowledges a message only when the caller says it
is stored (:meth:`MqttSource.ack`), so a crash of the bridge or a restart of the broker
loses nothing: unacknowledged messages are delivered again and the store's primary key
absorbs the repeats. :class:`Publisher` waits for every PUBACK; paho resends what was not
acknowledged after a reconnect.
"""

from __future__ import annotations

import getpass
import json
import os
import queue
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from twin.errors import BadInput

from live_bridge.readings import Reading, encode_reading, encode_readings

QOS = 1
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.25, 4.0


class BrokerUnreachable(BadInput, ConnectionError):
    """No broker answered at the address given (or it refused the login)."""


@dataclass(frozen=True)
class MqttSettings:
    """Where the broker is and how to log in. Paths are PEM files for TLS."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    ca_certs: str | None = None        # CA bundle: turns TLS on
    certfile: str | None = None        # client certificate (mutual TLS)
    keyfile: str | None = None
    tls_insecure: bool = False         # skip the broker hostname check (testing only)
    client_id: str = "urban-twin-bridge"
    prefix: str = "twin"
    keepalive_s: int = 30

    def reading_topic(self, sensor_id: str) -> str:
        return f"{self.prefix}/readings/{sensor_id}"

    def batch_topic(self, source: str) -> str:
        return f"{self.prefix}/readings/batch/{source}"

    def alert_topic(self, kind: str) -> str:
        return f"{self.prefix}/alerts/{kind}"

    @property
    def readings_filter(self) -> str:
        """The subscription that covers single readings and batches."""
        return f"{self.prefix}/readings/#"


def make_client(settings: MqttSettings, client_id: str, clean_session: bool,
                manual_ack: bool = False) -> paho.Client:
    """A paho 2.x client (MQTT 3.1.1) with the settings' login, TLS and reconnect delays."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=clean_session, protocol=paho.MQTTv311,
                         manual_ack=manual_ack)
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.ca_certs or settings.certfile:
        client.tls_set(ca_certs=settings.ca_certs, certfile=settings.certfile,
                       keyfile=settings.keyfile, cert_reqs=ssl.CERT_REQUIRED)
        client.tls_insecure_set(settings.tls_insecure)
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)  # type: ignore[arg-type]
    return client


@dataclass(frozen=True, slots=True)
class Message:
    """A received message; ``session`` numbers the connection it arrived on."""

    topic: str
    payload: bytes
    mid: int
    session: int


class MqttSource:
    """Subscribes to the readings topics and hands messages over in batches.

    Use :meth:`start`, then repeatedly :meth:`take` and, once the readings are stored,
    :meth:`ack`; :meth:`stop` at the end. The paho network thread reconnects by itself.
    """

    def __init__(self, settings: MqttSettings):
        self.settings = settings
        self.session = 0                        # connections made so far
        self.connected = threading.Event()
        self.subscribed = threading.Event()     # the broker acknowledged the subscription
        self.last_error: str | None = None
        self._queue: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._client = make_client(settings, settings.client_id, clean_session=False,
                                   manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda c, u, mid, codes, p: self.subscribed.set()

    def start(self) -> None:
        """Connect in the background (retrying until the broker answers)."""
        self._client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s)
        self._client.loop_start()

    def take(self, max_messages: int = 1000, timeout_s: float = 0.2) -> list[Message]:
        """The messages received so far (waits up to ``timeout_s`` for the first one)."""
        try:
            batch = [self._queue.get(timeout=timeout_s)]
        except queue.Empty:
            return []
        while len(batch) < max_messages:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def ack(self, messages: Iterable[Message]) -> int:
        """Acknowledge stored messages; those of an earlier connection are left to the
        broker, which delivers them again (their message ids may now name others)."""
        done = 0
        for m in messages:
            if m.session == self.session and self.connected.is_set():
                self._client.ack(m.mid, QOS)
                done += 1
        return done

    def stop(self) -> None:
        """Disconnect cleanly; the broker keeps the session and what was not acknowledged."""
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self.last_error = str(reason)
            return
        self.session += 1
        client.subscribe(self.settings.readings_filter, qos=QOS)
        self.connected.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if reason.is_failure:
            self.last_error = str(reason)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._queue.put(Message(msg.topic, msg.payload, msg.mid, self.session))


class Publisher:
    """Publishes at QoS 1 and waits for the broker's PUBACKs (paho resends after a
    reconnect whatever was not acknowledged). Use as a context manager."""

    def __init__(self, settings: MqttSettings, client_id: str | None = None,
                 max_outstanding: int = 200):
        self.settings = settings
        self.max_outstanding = max_outstanding     # published, not yet acknowledged messages
        self.connected = threading.Event()
        self._pending: list[paho.MQTTMessageInfo] = []
        self._client = make_client(settings, client_id or f"urban-twin-pub-{os.getpid()}-"
                                   f"{threading.get_ident() % 100000}", clean_session=True)
        self._client.max_inflight_messages_set(100)
        self._client.on_connect = lambda c, u, f, reason, p: (
            None if reason.is_failure else self.connected.set())
        self._client.on_disconnect = lambda c, u, f, reason, p: self.connected.clear()

    def connect(self, timeout_s: float = 10.0) -> "Publisher":
        """Connect (in the background thread, which keeps reconnecting)."""
        self._client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s)
        self._client.loop_start()
        if not self.connected.wait(timeout_s):
            self._client.loop_stop()
            raise BrokerUnreachable(f"no MQTT broker accepted us at {self.settings.host}:"
                                    f"{self.settings.port} within {timeout_s:g} s (check host, "
                                    f"port, TLS and login)")
        return self

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> "Publisher":
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def publish(self, topic: str, payload: bytes) -> None:
        """Queue one QoS 1 message; blocks while too many await their PUBACK."""
        info = self._client.publish(topic, payload, qos=QOS)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS   # paho keeps it and sends it on reconnect
        elif info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        self._pending.append(info)
        if len(self._pending) >= self.max_outstanding:
            self._wait(len(self._pending) // 2, None)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until the broker acknowledged every message published so far."""
        self._wait(len(self._pending), timeout_s)

    def publish_readings(self, readings: Iterable[Reading], batch: int = 500,
                         speed: float | None = None, source: str = "replay") -> dict[str, float]:
        """Publish readings as field sensors would, then wait for every PUBACK.

        ``batch`` readings per message (1: one reading per message on its sensor's topic).
        ``speed``: None as fast as possible; x = x times real time by the readings'
        timestamps. Returns readings, messages and seconds.
        """
        t0 = time.perf_counter()
        n_readings = n_messages = 0
        first_time_s: float | None = None
        for group in _groups(readings, batch, paced=speed is not None):
            if speed is not None:             # due (time_s - first) / speed after the start
                first_time_s = group[0].time_s if first_time_s is None else first_time_s
                delay = t0 + (group[0].time_s - first_time_s) / speed - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            if batch == 1 and not set("+#/") & set(group[0].sensor_id):
                self.publish(self.settings.reading_topic(group[0].sensor_id),
                             encode_reading(group[0]))
            else:
                self.publish(self.settings.batch_topic(source), encode_readings(group))
            n_readings += len(group)
            n_messages += 1
        self.flush()
        return {"readings": n_readings, "messages": n_messages,
                "seconds": time.perf_counter() - t0}

    def publish_alert(self, kind: str, alert: dict[str, Any]) -> None:
        """Publish an alert (a JSON object) on ``{prefix}/alerts/{kind}`` and wait for it."""
        self.publish(self.settings.alert_topic(kind), json.dumps(alert, default=str).encode())
        self.flush()

    def _wait(self, count: int, timeout_s: float | None) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for info in self._pending[:count]:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            info.wait_for_publish(left)
            if not info.is_published():
                raise TimeoutError(f"broker at {self.settings.host}:{self.settings.port} did not "
                                   f"acknowledge message {info.mid} within {timeout_s:g} s")
        del self._pending[:count]


def _groups(readings: Iterable[Reading], size: int, paced: bool) -> Iterator[list[Reading]]:
    """Consecutive readings in groups of ``size``; when paced, a group holds one timestamp."""
    group: list[Reading] = []
    for r in readings:
        if group and (len(group) >= size or (paced and r.time_s != group[0].time_s)):
            yield group
            group = []
        group.append(r)
    if group:
        yield group


class LocalMosquitto:
    """A private Mosquitto on 127.0.0.1 (tests, benchmarks, demos), persistent in ``folder``.

    ``max_queued_messages 0`` (no limit) so that nothing queued for a slow or absent
    persistent subscriber is dropped (Mosquitto's default drops beyond 1000).
    :meth:`stop` sends SIGTERM, on which Mosquitto saves its sessions and queues;
    :meth:`start` again reuses the same port and persistence.
    """

    def __init__(self, folder: str | os.PathLike, port: int | None = None,
                 max_inflight: int = 100, binary: str = "mosquitto"):
        self.folder = os.fspath(folder)
        self.port = port or free_port()
        self.binary = binary
        self.conf = os.path.join(self.folder, "mosquitto.conf")
        os.makedirs(self.folder, exist_ok=True)
        with open(self.conf, "w") as f:       # run as us: a root broker would drop to the
            f.write(f"user {getpass.getuser()}\n"  # mosquitto user and fail to save in folder
                    f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                    f"persistence true\npersistence_location {self.folder}/\n"
                    f"max_queued_messages 0\nmax_inflight_messages {max_inflight}\n"
                    f"log_dest file {self.folder}/mosquitto.log\n")
        self.process: Any = None

    def start(self, timeout_s: float = 10.0) -> "LocalMosquitto":
        import socket
        import subprocess

        self.process = subprocess.Popen([self.binary, "-c", self.conf],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto -c {self.conf} exited: "
                                   f"{self.process.stderr.read().decode(errors='replace')}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within {timeout_s:g} s")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (Mosquitto saves its persistence file) and wait for the exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout_s)
        self.process = None

    def settings(self, **kwargs: Any) -> MqttSettings:
        return MqttSettings(host="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> "LocalMosquitto":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
