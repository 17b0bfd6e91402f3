"""The live bridge and the shadow twin running inside the dashboard's process, so the
dashboard sees what the twin simulates at every step (its :class:`LiveFeed`)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from live_bridge.bridge import Bridge
from live_bridge.checks import Checker
from live_bridge.dashboard.feed import LiveFeed
from live_bridge.glrt import DetectorSettings
from live_bridge.mqtt import MqttSettings, Publisher
from live_bridge.registry import SensorRegistry
from live_bridge.shadow_twin import ShadowTwin, mqtt_sink, store_sink

log = logging.getLogger(__name__)


class LiveTwin:
    """Bridge (MQTT -> checks -> store) + shadow twin (residuals, alerts to the store and
    MQTT) + the dashboard's feed, in a background thread.

    ``replay``: the readings are a recording (the checks' "now" is the newest reading and
    the twin runs as fast as the data comes) rather than live sensors (wall clock). When
    no reading came for ``idle_flush_s``, the steps received so far are solved (the end of
    a replay)."""

    def __init__(self, registry: SensorRegistry, store, inp: str | Path, feed: LiveFeed,
                 settings: MqttSettings, replay: bool = True, train_days: float = 7.0,
                 idle_flush_s: float = 3.0, publish_alerts: bool = True) -> None:
        self.registry, self.store, self.feed, self.settings = registry, store, feed, settings
        self.idle_flush_s = float(idle_flush_s)
        periods = [s.period_s for s in registry if s.period_s]
        self._alert_pub = (Publisher(settings, client_id=f"{settings.client_id}-alerts").connect()
                           if publish_alerts else None)
        sinks = [store_sink(store)] + ([mqtt_sink(self._alert_pub)] if self._alert_pub else [])
        self.shadow = ShadowTwin(inp, registry, start=None,
                                 step_s=int(round(min(periods))) if periods else 300,
                                 realtime=not replay, sinks=sinks, on_step=feed,
                                 settings=DetectorSettings(train_days=train_days))
        checker = Checker(registry, now=None if replay else time.time,
                          future_tolerance_s=86400.0 if replay else 300.0)
        self.bridge = Bridge(registry, store, checker)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._ingest, name="dashboard-bridge", daemon=True),
                         threading.Thread(target=self._flusher, name="dashboard-flush", daemon=True)]

    def start(self, timeout_s: float = 10.0) -> "LiveTwin":
        for t in self._threads:
            t.start()
        if not self.bridge.ready.wait(timeout_s):
            log.warning("the bridge is not subscribed yet at %s:%s; it keeps trying",
                        self.settings.host, self.settings.port)
        return self

    def _ingest(self) -> None:
        self.bridge.run_mqtt(self.settings, on_readings=self.shadow.on_readings,
                             stop=self._stop.is_set)

    def _flusher(self) -> None:
        seen, since, flushed = -1, time.monotonic(), True
        while not self._stop.wait(0.5):
            stored = self.bridge.counts.stored
            if stored != seen:
                seen, since, flushed = stored, time.monotonic(), False
            elif not flushed and time.monotonic() - since >= self.idle_flush_s:
                self.shadow.flush()
                flushed = True

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        self.shadow.close()
        if self._alert_pub is not None:
            self._alert_pub.close()
