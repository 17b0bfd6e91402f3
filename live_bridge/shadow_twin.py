"""The shadow twin: follows live or replayed readings, computes residuals, raises leak alerts.

Plugged into the bridge as its ``on_readings`` hook, it receives readings after
they are durably stored, files them by sampling step, and when a step is
complete (every expected sensor reported, or readings two steps later arrived)
steps the shadow model (:class:`live_bridge.shadow.ShadowModel`) under the
measured boundary conditions. Residuals (measured - simulated) are kept per
sensor and averaged per hour; every hour the leak detector looks at them.

The twin's clock (:class:`twin.twin.Twin`) follows the data: it is advanced to
each processed step (SimPy's real-time environment when ``realtime``, as fast as
possible for replay), and alerts are published on the twin's bus, so any layer
or agent (crews) that subscribes to :class:`twin.events.Alert` sees them. Each
alert also goes to the sinks given (the store, MQTT).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from twin.events import Alert
from twin.twin import Twin

from live_bridge.glrt import DetectorSettings
from live_bridge.online_detection import OnlineLeakDetector
from live_bridge.readings import Reading
from live_bridge.registry import SensorRegistry
from live_bridge.shadow import SensorLayout, ShadowModel

log = logging.getLogger(__name__)

KIND_OF = {"pressure": "pressures", "flow": "flows", "level": "levels", "demand": "demands"}
# the shadow model's units per kind, and conversions from other units into them
MODEL_UNIT = {"pressures": "m", "flows": "m3/h", "levels": "m", "demands": "L/h"}
TO_MODEL = {("m", "m"): 1.0, ("m3/h", "m3/h"): 1.0, ("L/s", "m3/h"): 3.6,
            ("m3/s", "m3/h"): 3600.0, ("L/h", "m3/h"): 1e-3, ("L/h", "L/h"): 1.0,
            ("L/s", "L/h"): 3600.0, ("m3/h", "L/h"): 1000.0}

AlertSink = Callable[[dict], None]
# after each solved step: (step time, UTC epoch s; sensor ids; measured; simulated), the
# values in each sensor's own unit, NaN where a sensor sent nothing (dashboards, recorders)
StepListener = Callable[[float, list[str], np.ndarray, np.ndarray], None]


@dataclass
class ShadowCounts:
    readings: int = 0
    steps: int = 0
    late_for_model: int = 0       # stored, but arrived after their step was solved
    off_model: int = 0            # sensors of other layers or elements not in the model
    alerts: int = 0


class ShadowTwin:
    """Shadow water model + leak detector fed by the bridge (see module doc)."""

    def __init__(self, inp: str | Path, registry: SensorRegistry,
                 start: dt.datetime | None = None, step_s: int = 300,
                 settings: DetectorSettings | None = None, sinks: Iterable[AlertSink] = (),
                 realtime: bool = False, engine: str = "owa",
                 time_offset_s: int | None = None,
                 on_step: StepListener | None = None) -> None:
        """``start``: the calendar time of the first step; None = the first reading's step,
        with the model's patterns started at that time of day (``time_offset_s`` sets the
        model time of the first step explicitly)."""
        self.inp, self.engine, self.realtime = inp, engine, realtime
        self.step_s = int(step_s)
        self.settings = settings or DetectorSettings()
        self.sinks = list(sinks)
        self.on_step = on_step
        self.counts = ShadowCounts()
        self.alerts: list[dict] = []
        self.stuck_window_s = 6 * 3600.0
        self._cols: dict[str, list[str]] = {k: [] for k in MODEL_UNIT}
        self._where: dict[str, tuple[str, int, float]] = {}
        for row in (registry.get(i) for i in registry.ids()):
            kind = KIND_OF.get(str(row.quantity)) if row.layer == "water" else None
            if kind is None:
                continue
            factor = TO_MODEL.get((str(row.unit), MODEL_UNIT[kind]))
            if factor is None:
                raise ValueError(f"sensor {row.sensor_id}: unit {row.unit!r} cannot be converted "
                                 f"to {MODEL_UNIT[kind]} for a {row.quantity} sensor")
            if row.element not in self._cols[kind]:
                self._cols[kind].append(str(row.element))
            self._where[str(row.sensor_id)] = (kind, self._cols[kind].index(str(row.element)),
                                               factor)
        self.model = None
        self._lock = threading.RLock()
        self._time_offset_s = time_offset_s
        if start is not None:
            self._start_model(start.replace(tzinfo=None))

    def _start_model(self, start: dt.datetime) -> None:
        self.start = start
        self.start_s = pd.Timestamp(start).timestamp()
        offset = self._time_offset_s
        if offset is None:
            offset = 0 if start == start.replace(hour=0, minute=0, second=0, microsecond=0) \
                else start.hour * 3600 + start.minute * 60 + start.second
        cols = self._cols
        self.model = ShadowModel(self.inp, SensorLayout(**{k: tuple(v) for k, v in cols.items()}),
                                 start, step_s=self.step_s, engine=self.engine,
                                 time_offset_s=offset)
        # sensors whose element the model lacks are left out (counted as off-model)
        kept = {k: list(self.model.layout.ids(k)) for k in MODEL_UNIT}
        self._where = {sid: (kind, kept[kind].index(cols[kind][c]), f)
                       for sid, (kind, c, f) in self._where.items() if cols[kind][c] in kept[kind]}
        self.n = {k: len(v) for k, v in kept.items()}
        first_id: dict[tuple[str, int], str] = {}
        for sid, (kind, col, _) in self._where.items():
            first_id.setdefault((kind, col), sid)
        self._names = {k: [first_id.get((k, c), kept[k][c]) for c in range(len(kept[k]))]
                       for k in kept}
        self._recent: list[dict[str, np.ndarray]] = []
        self._faulty: set[tuple[str, str]] = set()
        self.health_steps = max(int(86400 // self.step_s), 2)
        self.expected = len(self._where)
        self.columns = [f"{k}:{s}" for k in ("pressures", "flows") for s in kept[k]]
        self._pending: dict[int, dict[str, np.ndarray]] = {}
        self._seen: dict[int, int] = {}
        self.next_k = 0
        self._newest_k = -1
        self._hour_rows: list[np.ndarray] = []
        self.residuals: list[tuple[pd.Timestamp, np.ndarray]] = []      # hourly means
        self.twin = Twin(start=start, realtime=self.realtime)
        if self.realtime:
            # the real-time clock's zero is the first step's wall time, not the moment this
            # twin was built: a step is due when its readings can have arrived, and solving
            # it never waits behind the data (SimPy's RealtimeEnvironment keeps real_start)
            env = self.twin.clock.env
            env.real_start = time.monotonic() - (time.time() - self.start_s)
        self.detector = OnlineLeakDetector(
            self.inp, self.columns, self.settings, start=start,
            multiplier=lambda: float(np.nanmedian(self.model.multipliers or [1.0])),
            demand_mode=lambda: self.model.demand_mode)

    # -- the bridge hook ------------------------------------------------------
    def on_readings(self, readings: list[Reading]) -> None:
        with self._lock:              # the bridge thread and a final flush may meet
            self._on_readings(readings)

    def _on_readings(self, readings: list[Reading]) -> None:
        if self.model is None and readings:
            first = min(r.time_s for r in readings)
            step0 = math.floor(first / self.step_s) * self.step_s
            self._start_model(dt.datetime.fromtimestamp(step0, dt.timezone.utc)
                              .replace(tzinfo=None))
        for r in readings:
            where = self._where.get(r.sensor_id)
            if where is None:
                self.counts.off_model += 1
                continue
            k = int(round((r.time_s - self.start_s) / self.step_s))
            if k < self.next_k:
                self.counts.late_for_model += 1
                continue
            kind, col, factor = where
            slot = self._pending.get(k)
            if slot is None:
                slot = self._pending[k] = {kk: np.full(n, np.nan) for kk, n in self.n.items()}
                self._seen[k] = 0
            if not math.isfinite(slot[kind][col]):
                self._seen[k] += 1
            slot[kind][col] = r.value * factor
            self.counts.readings += 1
            self._newest_k = max(self._newest_k, k)
        self._advance()

    def flush(self) -> None:
        """Solve every step received so far (end of a replay)."""
        with self._lock:
            if self.model is not None:
                self._advance(final=True)

    def _advance(self, final: bool = False) -> None:
        while self.next_k in self._pending or (final and self.next_k <= self._newest_k):
            k = self.next_k
            complete = self._seen.get(k, 0) >= self.expected
            if not (complete or final or self._newest_k >= k + 2):
                return
            measured = self._pending.pop(k, None) or {kk: np.full(n, np.nan)
                                                       for kk, n in self.n.items()}
            self._seen.pop(k, None)
            self._solve(k, measured)
            self.next_k = k + 1

    def _solve(self, k: int, measured: dict[str, np.ndarray]) -> None:
        sim = self.model.step(measured)
        if self.on_step is not None:
            self._tell_step(k, measured, sim)
        row = np.concatenate([measured[kind] - sim.get(kind, np.full(self.n[kind], np.nan))
                              for kind in ("pressures", "flows")])
        self._hour_rows.append(row)
        self._health(k, measured)
        self.counts.steps += 1
        t_s = (k + 1) * self.step_s
        self.twin.clock.run(until=k * self.step_s)
        if t_s % 3600 == 0:               # an hour is complete
            with warnings.catch_warnings():      # a sensor silent all hour: NaN, no warning
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(np.vstack(self._hour_rows), axis=0)
            hour = pd.Timestamp(self.start) + pd.Timedelta(seconds=t_s - 3600)
            self._hour_rows = []
            self.residuals.append((hour, mean))
            for det in self.detector.update(hour, mean):
                self._alert(det)

    def _tell_step(self, k: int, measured: dict[str, np.ndarray],
                   sim: dict[str, np.ndarray]) -> None:
        """Hand the step's measured and simulated value of every sensor to ``on_step``."""
        ids = list(self._where)
        both = np.full((2, len(ids)), np.nan)
        for i, (kind, col, factor) in enumerate(self._where.values()):
            both[0, i] = measured[kind][col] / factor
            if kind in sim:
                both[1, i] = sim[kind][col] / factor
        try:
            self.on_step(self.start_s + k * self.step_s, ids, both[0], both[1])
        except Exception:               # a listener failing must not stop the twin
            log.exception("on_step listener failed at step %d", k)

    def _alert(self, det) -> None:
        if det.kind == "sensor_bias":
            self._emit(pd.Timestamp(det.time), "sensor_bias", det.link_id, "medium",
                       f"sensor {det.link_id} departs alone from the model by {det.size_m:+.2f} m:"
                       f" a faulty sensor, or a leak right beside it",
                       {"bias_m": det.size_m, "statistic": det.statistic})
            return
        size = det.size_m3h
        about = f" (about {size:.1f} m3/h)" if size is not None and np.isfinite(size) else ""
        self._emit(pd.Timestamp(det.time), "leak", det.link_id, "high",
                   f"leak suspected on pipe {det.link_id}{about}",
                   {"estimated_m3h": size, "statistic": det.statistic})

    # -- sensor health ---------------------------------------------------------
    def _health(self, k: int, measured: dict[str, np.ndarray]) -> None:
        """Silent and stuck sensors, checked once a day on the last day of readings."""
        self._recent.append(measured)
        if len(self._recent) > self.health_steps:
            self._recent.pop(0)
        if ((k + 1) * self.step_s) % 86400 or len(self._recent) < self.health_steps:
            return
        from live_bridge.sensor_faults import find_stuck

        when = pd.Timestamp(self.start) + pd.Timedelta(seconds=(k + 1) * self.step_s)
        window = max(int(round(self.stuck_window_s / self.step_s)), 2)
        for kind, n in self.n.items():
            if n == 0:
                continue
            block = np.vstack([m[kind] for m in self._recent])
            names = self._names[kind]
            silent = np.all(~np.isfinite(block[-window:]), axis=0)
            for col in np.flatnonzero(silent):
                self._sensor_alert(when, "sensor_silent", names[col],
                                   f"sensor {names[col]} sent nothing for "
                                   f"{window * self.step_s / 3600:g} h")
            if n >= 3:
                frame = pd.DataFrame(block, columns=names).ffill().bfill()
                if kind == "flows":      # a closed pump or valve reads 0 for hours: not stuck
                    frame = frame.mask(frame.abs() <= 1e-9)
                frame = frame.loc[:, ~silent]          # a silent sensor is not also stuck
                for sid in find_stuck(frame, window):
                    self._sensor_alert(when, "sensor_stuck", sid,
                                       f"sensor {sid} reads a constant value while its peers "
                                       f"vary ({window * self.step_s / 3600:g} h)")
            for col, sid in enumerate(names):       # a sensor that recovered can alert again
                vals = block[-window:, col]
                ok = np.isfinite(vals).any() and np.nanstd(vals) > 1e-6
                if ok:
                    self._faulty.discard(("sensor_silent", sid))
                    self._faulty.discard(("sensor_stuck", sid))

    def _sensor_alert(self, when, kind: str, sensor_id: str, message: str) -> None:
        if (kind, sensor_id) in self._faulty:
            return
        self._faulty.add((kind, sensor_id))
        self._emit(when, kind, sensor_id, "medium", message, {})

    def _emit(self, when: pd.Timestamp, kind: str, element: str, severity: str, message: str,
              details: dict) -> None:
        alert = {"kind": kind, "element": element, "layer": "water",
                 "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "time_s": when.timestamp(),
                 "severity": severity, "message": message, "details": details}
        self.alerts.append(alert)
        self.counts.alerts += 1
        self.twin.publish(Alert(time_s=self.twin.clock.now_s, layer="water",
                                element_id=element, message=message, severity=severity))
        for sink in self.sinks:
            try:
                sink(alert)
            except Exception:           # a sink failing must not stop the twin
                log.exception("alert sink failed for %s", element)

    def residual_frame(self) -> pd.DataFrame:
        if not self.residuals:
            return pd.DataFrame(columns=self.columns)
        t, rows = zip(*self.residuals)
        return pd.DataFrame(np.vstack(rows), pd.DatetimeIndex(t), self.columns)

    def close(self) -> None:
        if self.model is not None:
            self.model.close()


def store_sink(store) -> AlertSink:
    """An alert sink writing into the bridge's store."""
    def sink(alert: dict) -> None:
        store.add_alert(alert["time_s"], alert["kind"], alert["severity"], alert["message"],
                        element=alert["element"], details=alert["details"])
    return sink


def mqtt_sink(publisher) -> AlertSink:
    """An alert sink publishing on ``{prefix}/alerts/{kind}`` (QoS 1)."""
    def sink(alert: dict) -> None:
        publisher.publish_alert(alert["kind"], alert)
    return sink
