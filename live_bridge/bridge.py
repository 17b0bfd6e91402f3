"""The ingest bridge: raw items -> checks -> durable store -> ``on_readings`` hook.

``on_readings(list[Reading])`` is where a consumer (the shadow twin) plugs in. It is
called after the readings are committed to the store, with exactly the readings newly
stored, in arrival order: a reading redelivered by MQTT or repeated by a sensor is
stored once and passed on once, also across bridge restarts. An exception raised by the
hook is logged and counted; it never stops the bridge.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from live_bridge.checks import Checker
from live_bridge.readings import Quarantined, Reading, decode_item, decode_payload
from live_bridge.registry import SensorRegistry
from live_bridge.store import Store

log = logging.getLogger(__name__)

OnReadings = Callable[[list[Reading]], Any]
STORE_RETRY_MAX_S = 5.0
CONNECT_WARNING_S = 10.0


@dataclass
class BridgeCounts:
    """What went through the bridge. received = accepted + quarantined;
    accepted = stored + duplicates (repeats absorbed by the store)."""

    messages: int = 0
    received: int = 0
    accepted: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: Counter = field(default_factory=Counter)
    callback_errors: int = 0
    store_errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("messages", "received", "accepted", "stored",
                                              "duplicates", "callback_errors", "store_errors")}
        out["quarantined"] = sum(self.quarantined.values())
        out["quarantined_by_reason"] = {str(r): n for r, n in sorted(self.quarantined.items())}
        return out


class Bridge:
    """Ties a source of raw items to the store through the checker."""

    def __init__(self, registry: SensorRegistry, store: Store, checker: Checker | None = None,
                 on_readings: OnReadings | None = None):
        self.registry = registry
        self.store = store
        self.checker = checker or Checker(registry)
        self.on_readings = on_readings
        self.counts = BridgeCounts()
        self.ready = threading.Event()     # run_mqtt is subscribed (cleared when it ends)

    def ingest(self, items: Iterable[Reading | Quarantined | dict], topic: str = "") -> list[Reading]:
        """Check a batch, store it in one transaction, pass it on; the newly stored readings.

        Items are Readings, decoded JSON objects (dicts) or decoding results.
        """
        decoded = [i if isinstance(i, (Reading, Quarantined)) else decode_item(i, topic)
                   for i in items]
        return self._commit(*self.checker.check_many(decoded, topic))

    def ingest_payloads(self, messages: Iterable[tuple[str, bytes | str]]) -> list[Reading]:
        """Decode, check and store raw payloads ((topic, payload) pairs) in one transaction."""
        return self._commit(*self._check_payloads(messages))

    def run_mqtt(self, settings: Any, on_readings: OnReadings | None = None,
                 stop: Callable[[], bool] | None = None, max_seconds: float | None = None,
                 idle_exit_s: float | None = None, max_messages: int = 1000) -> BridgeCounts:
        """Ingest from MQTT until ``stop()`` is true, ``max_seconds`` have passed or no
        message came for ``idle_exit_s`` (after the first). Each batch of messages is
        acknowledged only after it is stored."""
        from live_bridge.mqtt import MqttSource

        if on_readings is not None:
            self.on_readings = on_readings
        stop = stop or (lambda: False)
        start = last_message = time.monotonic()
        source = MqttSource(settings)
        source.subscribed = self.ready
        source.start()
        warned = False
        try:
            while not stop():
                now = time.monotonic()
                if not warned and not source.session and now - start > CONNECT_WARNING_S:
                    warned = True
                    log.warning("no MQTT broker accepted us at %s:%s yet (%s); still trying",
                                settings.host, settings.port, source.last_error or "no answer")
                if max_seconds is not None and now - start >= max_seconds:
                    break
                if idle_exit_s is not None and self.counts.messages and now - last_message > idle_exit_s:
                    break
                messages = source.take(max_messages, timeout_s=0.1)
                if not messages:
                    continue
                last_message = time.monotonic()
                accepted, refused = self._check_payloads((m.topic, m.payload) for m in messages)
                new = self._commit_retrying(accepted, refused, stop)
                if new is None:
                    break                   # stopped while the store was failing: no ack
                source.ack(messages)
        finally:
            source.stop()
            self.ready.clear()
        return self.counts

    def _check_payloads(self, messages: Iterable[tuple[str, bytes | str]]
                        ) -> tuple[list[Reading], list[Quarantined]]:
        accepted: list[Reading] = []
        refused: list[Quarantined] = []
        for topic, payload in messages:
            self.counts.messages += 1
            ok, bad = self.checker.check_many(decode_payload(payload, topic), topic)
            accepted += ok
            refused += bad
        return accepted, refused

    def _commit(self, accepted: list[Reading], refused: list[Quarantined]) -> list[Reading]:
        new = self.store.write_batch(accepted, refused)
        c = self.counts
        c.received += len(accepted) + len(refused)
        c.accepted += len(accepted)
        c.stored += len(new)
        c.duplicates += len(accepted) - len(new)
        c.quarantined.update(q.reason for q in refused)
        if new and self.on_readings is not None:
            try:
                self.on_readings(new)
            except Exception:                              # a consumer must not stop ingest
                c.callback_errors += 1
                log.exception("on_readings raised on %d readings; ingest goes on", len(new))
        return new

    def _commit_retrying(self, accepted: list[Reading], refused: list[Quarantined],
                         stop: Callable[[], bool]) -> list[Reading] | None:
        """Commit, retrying a failing store (backing off) until it works or ``stop()``."""
        delay = 0.1
        while True:
            try:
                return self._commit(accepted, refused)
            except Exception as exc:
                self.counts.store_errors += 1
                log.error("store %s failed (%s); retrying in %.1f s, nothing acknowledged",
                          getattr(self.store, "url", "?"), exc, delay)
                if stop():
                    return None
                time.sleep(delay)
                delay = min(2 * delay, STORE_RETRY_MAX_S)
