"""Street-lighting layer: luminaires on the city's streets, switched by an astronomical
clock, dimmed by a strategy, failing by their lifetime law, repaired by crews.

Build: :func:`~twin.networks.lighting_build.build_lighting_network` lays cabinets,
feeders (one per phase) and lamps along ``twin.city``'s streets.

Step: one process wakes every ``step_s`` (15 min). For the minutes just past it
computes, as matrices (lamps x minutes), which lamps burned and at what level, and
from them each feeder's (cabinet phase's) power every minute, with measurement
noise and the supply voltage's effect on HPS lamps; it records cabinet power at the
step and keeps the per-minute feeder series for the fault detector, which runs on
them as they come (:mod:`twin.networks.lighting_detect`) and raises an ``Alert`` per
finding. Lamps switch on ``on_after_sunset_min`` after sunset and off before sunrise
(:mod:`twin.sun`, at ``twin.city.lonlat``; the clock's naive times are local times
in ``timezone``).

Faults: a lamp fails when its burning hours reach its drawn life (a Weibull law per
:data:`~twin.networks.lighting_build.LAMP_MODELS` row, conditioned on the lamp's age),
or when a scenario orders it (:class:`~twin.events.LightingFault`) or
:meth:`LightingLayer.fail_lamp` is called: the layer publishes ``LampFailed``. Cabinet
and feeder (phase) faults come at ``cabinet_faults_per_year`` per cabinet: the layer
publishes one ``CabinetFault`` (never a ``LampFailed`` per dark lamp; the dark lamps are
those of :meth:`lamps_out`, ``supply_ok`` false). ``RepairDone(layer="lighting",
element_id=lamp, feeder or cabinet id)`` relights (a new lamp: life drawn anew).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from twin.errors import BadInput
from twin.events import Alert, CabinetFault, Event, LampFailed, LightingFault, RepairDone
from twin.networks.base import Layer
from twin.networks.lighting_build import BURNING_HOURS_PER_YEAR, build_lighting_network
from twin.networks.lighting_strategies import (DEFAULT_CO2_KG_PER_KWH,
                                               DEFAULT_TARIFF_EUR_PER_KWH, DimmingProgram,
                                               power_fraction)
from twin.sun import dark_intervals_utc_min, utc_minutes, zone

if TYPE_CHECKING:
    from twin.twin import Twin

NOMINAL_VOLTAGE_V = 230.0


class LightingLayer(Layer):
    """Street lights of the twin's city on the twin's clock.

    Parameters
    ----------
    program : the switching/dimming strategy (:class:`DimmingProgram`).
    step_s : how often the process computes the minutes past and records (900 s).
    random_failures : lamps fail by their lifetime law; cabinet/phase faults at
        ``cabinet_faults_per_year`` per cabinet (half whole cabinets, half one phase).
    repair_after_h : the maintenance contract's delay: every fault is repaired this long
        after it (a ``RepairDone`` from ``lighting.maintenance``); None leaves repairs to
        crews (the citizens layer) or to nobody.
    noise : measurement noise (0.1 % + 2 W) and a slowly varying supply voltage.
    detect : run the cabinet-power fault detector during the run.
    """

    name = "lighting"

    def __init__(self, program: DimmingProgram | None = None, *, step_s: float = 900.0,
                 tariff_eur_per_kwh: float = DEFAULT_TARIFF_EUR_PER_KWH,
                 co2_kg_per_kwh: float = DEFAULT_CO2_KG_PER_KWH, timezone: str = "Europe/Paris",
                 on_after_sunset_min: float = 10.0, off_before_sunrise_min: float = 10.0,
                 random_failures: bool = True, cabinet_faults_per_year: float = 0.2,
                 repair_after_h: float | None = None, noise: bool = True, detect: bool = True,
                 keep_minutes: bool = True) -> None:
        if step_s < 60 or step_s % 60:
            raise ValueError(f"lighting step_s: expected whole minutes >= 60 s, got {step_s}")
        self.program = program or DimmingProgram()
        self.step_s = float(step_s)
        self.tariff_eur_per_kwh = float(tariff_eur_per_kwh)
        self.co2_kg_per_kwh = float(co2_kg_per_kwh)
        self.timezone = timezone
        zone(timezone)                                   # fail early on an unknown zone
        self.on_after_sunset_min = float(on_after_sunset_min)
        self.off_before_sunrise_min = float(off_before_sunrise_min)
        self.random_failures = random_failures
        self.cabinet_faults_per_year = float(cabinet_faults_per_year)
        self.repair_after_h = repair_after_h
        self.noise = noise
        self.detect = detect
        self.keep_minutes = keep_minutes
        self.twin: "Twin | None" = None

    # ------------------------------------------------------------------ build
    def build(self, twin: "Twin") -> None:
        if twin.city is None:
            raise ValueError("lighting layer: the twin has no city to place lamps along")
        self.twin = twin
        self.net = build_lighting_network(twin.city)
        lamps = self.net.lamps
        self.lamp_ids = lamps.index.to_numpy()
        self._lamp_pos = {lid: i for i, lid in enumerate(self.lamp_ids)}
        self.feeder_ids = self.net.feeders.index.to_numpy()
        self._feeder_pos = {fid: i for i, fid in enumerate(self.feeder_ids)}
        self.cabinet_ids = self.net.cabinets.index.to_numpy()
        self._cabinet_pos = {cid: i for i, cid in enumerate(self.cabinet_ids)}
        self.lamp_feeder = np.array([self._feeder_pos[f] for f in lamps["feeder_id"]])
        self.feeder_cabinet = np.array([self._cabinet_pos[c] for c in self.net.feeders["cabinet_id"]])
        n, f = len(lamps), len(self.feeder_ids)
        self.power_w = lamps["power_w"].to_numpy(float)
        models = self.net.models.loc[lamps["lamp_type"]]
        self.min_level = models["min_level"].to_numpy(float)
        self.hps = (lamps["technology"] == "HPS").to_numpy()
        self.street_class = lamps["street_class"].to_numpy()
        self._shape = models["weibull_shape"].to_numpy(float)
        self._scale_h = models["weibull_scale_h"].to_numpy(float)
        self.feeder_matrix = sp.csr_matrix((np.ones(n), (self.lamp_feeder, np.arange(n))),
                                           shape=(f, n))
        self._feeder_hps = self.feeder_matrix @ sp.diags(self.hps.astype(float))
        self._feeder_led = self.feeder_matrix @ sp.diags((~self.hps).astype(float))
        self.lamp_ok = np.ones(n, dtype=bool)
        self.feeder_ok = np.ones(f, dtype=bool)
        self.fail_reason = np.full(n, "", dtype=object)
        self.failed_at_s = np.full(n, np.nan)
        self.burned_h = np.zeros(n)
        self._generation = np.zeros(n, dtype=np.int64)      # lamps put in at this pole
        life_rng = twin.rng.stream("lighting.lifetime")
        age_h = lamps["age_years"].to_numpy(float) * BURNING_HOURS_PER_YEAR
        self.life_h = self._residual_life_h(age_h, np.arange(n), life_rng) if self.random_failures \
            else np.full(n, np.inf)
        self._life_rng = life_rng
        self._fault_rng = twin.rng.stream("lighting.faults")
        self._pick_rng = twin.rng.stream("lighting.injected")
        self._noise_rng = twin.rng.stream("lighting.noise")
        self._voltage = np.full(len(self.cabinet_ids), NOMINAL_VOLTAGE_V)
        self._changes: list[tuple[float, str, int, bool]] = []   # (time, 'lamp'|'feeder', idx, ok)
        self._chunk_lamp_ok = self.lamp_ok.copy()
        self._chunk_feeder_ok = self.feeder_ok.copy()
        self._dark = np.empty((0, 2))
        self._dark_from, self._dark_until = np.inf, -np.inf
        self.failures: list[dict[str, Any]] = []          # the truth, for scoring the detector
        self.minutes_t: list[np.ndarray] = []             # kept per-minute feeder series
        self.minutes_power: list[np.ndarray] = []
        self.minutes_expected: list[np.ndarray] = []
        self.energy_kwh = 0.0
        self.energy_full_kwh = 0.0                        # what full power would have drawn
        self.lamp_hours_out = 0.0
        self.lamp_hours_on = 0.0
        self._utc0_min = utc_minutes(twin.clock.start, self.timezone)
        from twin.networks.lighting_detect import OnlineDetector

        self.detector = OnlineDetector(
            channels=self.feeder_ids,
            # the smallest lamp of a feeder, as a share of the feeder's power
            min_step_rel=0.6 * np.asarray(
                pd.Series(self.power_w).groupby(self.lamp_feeder).min().reindex(range(f)))
            / np.maximum(np.bincount(self.lamp_feeder, weights=self.power_w, minlength=f), 1.0),
            lamps_per_channel=np.bincount(self.lamp_feeder, minlength=f),
            lamp_powers_w=[self.power_w[self.lamp_feeder == k] for k in range(f)],
            channel_full_w=np.bincount(self.lamp_feeder, weights=self.power_w, minlength=f))

    def _residual_life_h(self, age_h: np.ndarray, idx: np.ndarray,
                         rng: np.random.Generator) -> np.ndarray:
        """Burning hours left before failure, given survival to ``age_h`` (Weibull)."""
        k, lam = self._shape[idx], self._scale_h[idx]
        u = rng.random(len(idx))
        total = lam * ((age_h / lam) ** k - np.log(u)) ** (1.0 / k)
        return total - age_h

    # ------------------------------------------------------------------ queries
    @property
    def lamps(self) -> gpd.GeoDataFrame:
        """The lamps table (Streetlight), with ``state`` and ``supply_ok`` as of now."""
        table = self.net.lamps.copy()
        supply = self.feeder_ok[self.lamp_feeder]
        table["supply_ok"] = supply
        table["state"] = np.where(~self.lamp_ok, "failed",
                                  np.where(supply & self.is_night(), "on", "off"))
        table["burning_hours_h"] = self.burned_h
        return table

    def is_night(self, time_s: float | None = None) -> bool:
        """Whether the lights are switched on at ``time_s`` (default: now)."""
        t = self.twin.clock.now_s if time_s is None else float(time_s)
        return bool(self._on_mask(np.array([t]))[0])

    def lamp_is_lit(self, lamp_id: str) -> bool:
        """Whether the lamp burns now: healthy, supplied, and switched on."""
        i = self._lamp_index(lamp_id)
        return bool(self.lamp_ok[i] and self.feeder_ok[self.lamp_feeder[i]] and self.is_night())

    def lamps_out(self) -> pd.DataFrame:
        """Lamps that should burn at night but cannot: failed, or on a faulty feeder/cabinet."""
        dark = ~self.lamp_ok | ~self.feeder_ok[self.lamp_feeder]
        out = self.net.lamps.loc[dark, ["x", "y", "street_id", "cabinet_id", "feeder_id"]].copy()
        out["reason"] = np.where(self.lamp_ok[dark], "supply", self.fail_reason[dark])
        return out

    def _lamp_index(self, lamp_id: str) -> int:
        i = self._lamp_pos.get(lamp_id)
        if i is None:
            raise BadInput(f"lighting: unknown lamp {lamp_id!r} (the network has "
                           f"{len(self.lamp_ids)} lamps, {self.lamp_ids[0]!r} to "
                           f"{self.lamp_ids[-1]!r})")
        return i

    # ------------------------------------------------------------------ faults and repairs
    def fail_lamp(self, lamp_id: str, time_s: float | None = None, reason: str = "injected",
                  cause_id: int | None = None) -> None:
        """Fail ``lamp_id`` now, or at ``time_s`` (scheduled on the clock)."""
        i = self._lamp_index(lamp_id)
        now = self.twin.clock.now_s
        if time_s is not None and time_s > now:
            def later():
                yield self.twin.clock.timeout(time_s - now)
                self._fail(i, reason, cause_id)
            self.twin.clock.process(later())
            return
        self._fail(i, reason, cause_id)

    def _fail(self, i: int, reason: str, cause_id: int | None = None) -> None:
        if not self.lamp_ok[i]:
            return
        now = self.twin.clock.now_s
        self.lamp_ok[i] = False
        self.fail_reason[i] = reason
        self.failed_at_s[i] = now
        self._changes.append((now, "lamp", i, False))
        row = self.net.lamps.iloc[i]
        self.failures.append({"time_s": now, "kind": "lamp", "element_id": self.lamp_ids[i],
                              "feeder": int(self.lamp_feeder[i]), "n_lamps": 1, "reason": reason})
        self.twin.publish(LampFailed(time_s=now, source=self.name, cause_id=cause_id,
                                     lamp_id=self.lamp_ids[i], x=float(row["x"]),
                                     y=float(row["y"]), cabinet_id=row["cabinet_id"],
                                     reason=reason))
        self._maintenance(self.lamp_ids[i])

    def fail_feeder(self, cabinet_id: str, feeder_id: str = "", reason: str = "tripped",
                    cause_id: int | None = None) -> None:
        """A cabinet (all its phases, ``feeder_id`` empty) or one feeder loses supply."""
        cab = self._cabinet_index(cabinet_id)
        feeders = np.flatnonzero(self.feeder_cabinet == cab) if not feeder_id \
            else np.array([self._feeder_index(feeder_id)])
        now = self.twin.clock.now_s
        newly = [k for k in feeders if self.feeder_ok[k]]
        if not newly:
            return
        for k in newly:
            self.feeder_ok[k] = False
            self._changes.append((now, "feeder", int(k), False))
            lit_lamps = int(np.sum(self.lamp_ok & (self.lamp_feeder == k)))
            self.failures.append({"time_s": now, "kind": "feeder", "element_id": self.feeder_ids[k],
                                  "feeder": int(k), "n_lamps": lit_lamps, "reason": reason})
        cab_row = self.net.cabinets.iloc[cab]
        self.twin.publish(CabinetFault(time_s=now, source=self.name, cause_id=cause_id,
                                       cabinet_id=cabinet_id, x=float(cab_row["x"]),
                                       y=float(cab_row["y"]), feeder_id=feeder_id, reason=reason))
        self._maintenance(cabinet_id)

    def _cabinet_index(self, cabinet_id: str) -> int:
        c = self._cabinet_pos.get(cabinet_id)
        if c is None:
            raise BadInput(f"lighting: unknown cabinet {cabinet_id!r} (the network has "
                           f"{len(self.cabinet_ids)} cabinets, {self.cabinet_ids[0]!r} to "
                           f"{self.cabinet_ids[-1]!r})")
        return c

    def _feeder_index(self, feeder_id: str) -> int:
        k = self._feeder_pos.get(feeder_id)
        if k is None:
            raise BadInput(f"lighting: unknown feeder {feeder_id!r} (feeders are "
                           f"'<cabinet>-L1'..'-L3', e.g. {self.feeder_ids[0]!r})")
        return k

    def _maintenance(self, element_id: str) -> None:
        if self.repair_after_h is None:
            return
        def repair():
            yield self.twin.clock.timeout(self.repair_after_h * 3600.0)
            self.twin.publish(RepairDone(time_s=self.twin.clock.now_s,
                                         source="lighting.maintenance", layer=self.name,
                                         element_id=element_id))
        self.twin.clock.process(repair())

    def repair(self, element_id: str) -> None:
        """Relight a lamp (a new one: life drawn anew) or resupply a feeder or cabinet."""
        now = self.twin.clock.now_s
        if element_id in self._lamp_pos:
            i = self._lamp_pos[element_id]
            if not self.lamp_ok[i]:
                self.lamp_ok[i] = True
                self.fail_reason[i] = ""
                self.burned_h[i] = 0.0
                self._generation[i] += 1
                if self.random_failures:
                    self.life_h[i] = self._residual_life_h(np.zeros(1), np.array([i]),
                                                           self._life_rng)[0]
                self._changes.append((now, "lamp", i, True))
            return
        if element_id in self._feeder_pos:
            feeders = [self._feeder_pos[element_id]]
        else:
            feeders = list(np.flatnonzero(self.feeder_cabinet == self._cabinet_index(element_id)))
        for k in feeders:
            if not self.feeder_ok[k]:
                self.feeder_ok[k] = True
                self._changes.append((now, "feeder", int(k), True))

    def check_event(self, event: Event) -> list[str]:
        problems = []
        if isinstance(event, RepairDone) and event.layer == self.name:
            eid = event.element_id
            if eid not in self._lamp_pos and eid not in self._feeder_pos \
                    and eid not in self._cabinet_pos:
                problems.append(f"unknown lamp, feeder or cabinet {eid!r} in the lighting network")
        elif isinstance(event, LightingFault):
            problems += [f"unknown lamp {lid!r} in the lighting network (ids like "
                         f"{self.lamp_ids[0]!r})" for lid in event.lamp_ids
                         if lid not in self._lamp_pos]
            if event.cabinet_id and event.cabinet_id not in self._cabinet_pos:
                problems.append(f"unknown cabinet {event.cabinet_id!r} in the lighting network")
            if event.feeder_id and event.feeder_id not in self._feeder_pos:
                problems.append(f"unknown feeder {event.feeder_id!r} in the lighting network")
            if event.random_lamps > len(self.lamp_ids):
                problems.append(f"{event.random_lamps} random lamps asked, the network has "
                                f"{len(self.lamp_ids)}")
        return problems

    def apply(self, event: Event) -> None:
        if isinstance(event, RepairDone):
            if event.layer == self.name:
                self.repair(event.element_id)
        elif isinstance(event, LightingFault):
            problems = self.check_event(event)
            if problems:
                raise BadInput(f"lighting fault at {event.time_s:g} s: {problems[0]}")
            for lid in event.lamp_ids:
                self._fail(self._lamp_pos[lid], event.reason, event.event_id or None)
            if event.random_lamps:
                healthy = np.flatnonzero(self.lamp_ok)
                take = min(event.random_lamps, len(healthy))
                for i in self._pick_rng.choice(healthy, size=take, replace=False):
                    self._fail(int(i), event.reason, event.event_id or None)
            if event.cabinet_id or event.feeder_id:
                cabinet = event.cabinet_id or str(self.net.feeders.at[event.feeder_id, "cabinet_id"])
                self.fail_feeder(cabinet, event.feeder_id, event.reason, event.event_id or None)

    # ------------------------------------------------------------------ step
    def start(self, twin: "Twin") -> None:
        twin.bus.subscribe(RepairDone, self.apply)
        twin.bus.subscribe(LightingFault, self.apply)
        twin.clock.process(self._process())
        if self.random_failures and self.cabinet_faults_per_year > 0:
            twin.clock.process(self._cabinet_faults())

    def _process(self):
        clock = self.twin.clock
        while True:
            t0 = clock.now_s
            self._schedule_wear_out(t0, t0 + self.step_s)
            yield clock.timeout(self.step_s)
            self._close_chunk(t0, clock.now_s)

    def _cabinet_faults(self):
        rate_per_s = self.cabinet_faults_per_year * len(self.cabinet_ids) / (365.25 * 86400.0)
        rng = self._fault_rng
        while True:
            yield self.twin.clock.timeout(float(rng.exponential(1.0 / rate_per_s)))
            cab = self.cabinet_ids[int(rng.integers(len(self.cabinet_ids)))]
            feeders = self.net.feeders.index[self.net.feeders["cabinet_id"] == cab]
            feeder = "" if rng.random() < 0.5 else str(feeders[int(rng.integers(len(feeders)))])
            self.fail_feeder(cab, feeder, "protection tripped" if feeder else "supply lost")

    def minute_times(self, t0: float, t1: float) -> np.ndarray:
        """Mid-minute times (s) of the minutes in [t0, t1)."""
        return t0 + 30.0 + 60.0 * np.arange(int(round((t1 - t0) / 60.0)))

    def _on_mask(self, t_s: np.ndarray) -> np.ndarray:
        """Whether the lights are switched on at each time (s since start)."""
        utc = self._utc0_min + np.asarray(t_s, dtype=float) / 60.0
        if utc.size and (utc.max() > self._dark_until or utc.min() < self._dark_from):
            lo = float(utc.min()) - 1440.0
            self._dark_from, self._dark_until = lo, float(utc.max()) + 60 * 1440.0
            lon, lat = self.twin.city.lonlat
            self._dark = dark_intervals_utc_min(lon, lat, lo, self._dark_until,
                                                self.on_after_sunset_min,
                                                self.off_before_sunrise_min)
        k = np.searchsorted(self._dark[:, 0], utc, side="right") - 1
        return (k >= 0) & (utc < self._dark[np.maximum(k, 0), 1])

    def _minute_of_day(self, t_s: np.ndarray) -> np.ndarray:
        """Local clock minute of day (0..1439) at each time; the clock's naive start is
        local time, whose UTC offset can change (DST) during a run."""
        tz = zone(self.timezone)
        start = self.twin.clock.start
        offset0 = _utc_offset_min(start, tz)
        utc = self._utc0_min + np.asarray(t_s, dtype=float) / 60.0
        off_a, off_b = _utc_offset_min_at_utc(utc[0], tz), _utc_offset_min_at_utc(utc[-1], tz)
        offs = (np.full(len(utc), off_a) if off_a == off_b
                else np.array([_utc_offset_min_at_utc(u, tz) for u in utc]))
        base = start.hour * 60 + start.minute + start.second / 60.0 + np.asarray(t_s) / 60.0
        return np.mod(np.floor(base + offs - offset0), 1440.0)

    def _schedule_wear_out(self, t0: float, t1: float) -> None:
        """Lamps whose life runs out while they burn in [t0, t1) fail at that minute."""
        if not self.random_failures:
            return
        t = self.minute_times(t0, t1)
        on = self._on_mask(t)
        if not on.any():
            return
        lit = self.lamp_ok & self.feeder_ok[self.lamp_feeder]
        left_min = (self.life_h - self.burned_h) * 60.0
        due = np.flatnonzero(lit & (left_min < on.sum()))
        if not due.size:
            return
        cum = np.cumsum(on)
        for i in due:
            k = int(np.searchsorted(cum, max(left_min[i], 0.0) + 1e-9))
            k = min(k, len(t) - 1)
            self.twin.clock.process(self._wear_out(i, t[k] - 30.0))

    def _wear_out(self, i: int, at_s: float):
        generation = self._generation[i]
        yield self.twin.clock.timeout(max(at_s - self.twin.clock.now_s, 0.0))
        if self._generation[i] == generation:      # not replaced meanwhile
            self._fail(int(i), "end of life")

    def _close_chunk(self, t0: float, t1: float) -> None:
        """Power, energy and detection for the minutes of [t0, t1)."""
        t = self.minute_times(t0, t1)
        m = len(t)
        on = self._on_mask(t)
        n_f = len(self.feeder_ids)
        lamp_ok = np.repeat(self._chunk_lamp_ok[:, None], m, axis=1)
        feeder_ok = np.repeat(self._chunk_feeder_ok[:, None], m, axis=1)
        for when, kind, idx, ok in self._changes:
            k0 = int(np.ceil((when - t0 - 30.0) / 60.0))
            target = lamp_ok if kind == "lamp" else feeder_ok
            target[idx, max(k0, 0):] = ok
        self._changes.clear()
        self._chunk_lamp_ok = self.lamp_ok.copy()
        self._chunk_feeder_ok = self.feeder_ok.copy()
        powered = lamp_ok & feeder_ok[self.lamp_feeder]
        if on.any():
            flows = None
            if self.program.strategy == "adaptive" and self.twin.street_flows_veh_h is not None:
                flows = (self.twin.street_flows_veh_h.reindex(self.net.lamps["street_id"])
                         .to_numpy(float))
                flows = np.where(np.isnan(flows), 0.0, flows)
            levels = self.program.levels(self._minute_of_day(t), self.street_class, flows)
            frac = power_fraction(levels, self.min_level) * on[None, :]
            lamp_w = self.power_w[:, None] * frac
            volt = self._voltage_series(m)                       # (cabinets, m)
            lit = powered & on[None, :]
            true_w = self._feeder_power(lamp_w * lit, volt)
            # the cabinet meters voltage too (to 0.1 V): the expected power follows it
            metered_v = volt + (self._noise_rng.normal(0.0, 0.1, volt.shape) if self.noise else 0.0)
            expected_w = self._feeder_power(lamp_w, metered_v)
            measured = true_w
            if self.noise:
                measured = true_w + self._noise_rng.normal(0.0, 1.0, true_w.shape) * \
                    (0.001 * true_w + 2.0) * (true_w > 0)
            self.burned_h += lit.sum(axis=1) / 60.0
            self.energy_kwh += float(true_w.sum()) / 60_000.0
            self.energy_full_kwh += float(self.power_w.sum() * on.sum()) / 60_000.0
            self.lamp_hours_on += float(lit.sum()) / 60.0
            self.lamp_hours_out += float((~powered & on[None, :]).sum()) / 60.0
        else:
            measured = expected_w = np.zeros((n_f, m))
        cab_w = np.zeros((len(self.cabinet_ids), m))
        np.add.at(cab_w, self.feeder_cabinet, measured)
        rec = self.twin.recorder
        rec.record(t1, self.name, "power", "W", self.cabinet_ids, cab_w.mean(axis=1))
        rec.record(t1, self.name, "lamps_out", "count", ("network",),
                   [float(np.sum(~powered[:, -1]))])
        if on.any():
            if self.keep_minutes:
                self.minutes_t.append(t)
                self.minutes_power.append(measured.astype(np.float32))
                self.minutes_expected.append(expected_w.astype(np.float32))
            if self.detect:
                for found in self.detector.update(t, measured, expected_w):
                    self._alert(found)
        elif self.detect:
            self.detector.update(t, measured, expected_w)

    def _feeder_power(self, lamp_w: np.ndarray, volt: np.ndarray) -> np.ndarray:
        """Feeder power (feeders, minutes) from lamp power at nominal voltage: HPS lamps on
        magnetic ballasts draw about (V/Vn)^2 of it, LED drivers hold their power."""
        ratio2 = (volt[self.feeder_cabinet] / NOMINAL_VOLTAGE_V) ** 2
        return self._feeder_led @ lamp_w + (self._feeder_hps @ lamp_w) * ratio2

    def _voltage_series(self, m: int) -> np.ndarray:
        """Supply voltage per cabinet and minute: AR(1) around nominal (sd 1.5 V, hours)."""
        if not self.noise:
            return np.full((len(self.cabinet_ids), m), NOMINAL_VOLTAGE_V)
        rho, sd = 0.995, 1.5
        shocks = self._noise_rng.normal(0.0, sd * np.sqrt(1 - rho ** 2), (len(self.cabinet_ids), m))
        out = np.empty_like(shocks)
        v = self._voltage - NOMINAL_VOLTAGE_V
        for k in range(m):
            v = rho * v + shocks[:, k]
            out[:, k] = v
        self._voltage = v + NOMINAL_VOLTAGE_V
        return out + NOMINAL_VOLTAGE_V

    def _alert(self, found: dict[str, Any]) -> None:
        feeder = found["channel"]
        msg = (f"{found['kind']} on {feeder}: {found['size_w']:.0f} W "
               f"(~{found['n_lamps']} lamps) since {found['start_s'] / 3600:.2f} h")
        self.twin.publish(Alert(time_s=self.twin.clock.now_s, source=self.name, layer=self.name,
                                element_id=feeder, message=msg,
                                severity="critical" if found["kind"] != "lamp_outage" else "warning"))

    # ------------------------------------------------------------------ results
    def detections(self) -> pd.DataFrame:
        """What the detector found so far (one row per event)."""
        return self.detector.events_frame()

    def kpis(self) -> dict[str, float]:
        out = {
            "energy_kwh": self.energy_kwh,
            "energy_full_night_kwh": self.energy_full_kwh,
            "cost_eur": self.energy_kwh * self.tariff_eur_per_kwh,
            "co2_kg": self.energy_kwh * self.co2_kg_per_kwh,
            "lamp_hours_out": self.lamp_hours_out,
            "lamp_hours_on": self.lamp_hours_on,
            "lamps": float(len(self.lamp_ids)),
            "lamps_out_end": float(np.sum(~self.lamp_ok | ~self.feeder_ok[self.lamp_feeder])),
            "lamp_failures": float(sum(1 for f in self.failures if f["kind"] == "lamp")),
            "feeder_faults": float(sum(1 for f in self.failures if f["kind"] == "feeder")),
        }
        if self.detect:
            from twin.networks.lighting_detect import score_events

            score = score_events(self.detections(), self.failures_frame(), self._visible_from)
            out.update({f"detector_{k}": float(v) for k, v in score.items()})
        return out

    def failures_frame(self) -> pd.DataFrame:
        """Every lamp failure and feeder fault of the run: time, element, feeder, reason."""
        cols = ["time_s", "kind", "element_id", "feeder", "n_lamps", "reason"]
        frame = pd.DataFrame(self.failures, columns=cols)
        frame["channel"] = self.feeder_ids[frame["feeder"].to_numpy(int)] if len(frame) else []
        return frame

    def _visible_from(self, time_s: float) -> float:
        """First switched-on minute at or after ``time_s`` (a lamp failing by day shows then)."""
        if self.is_night(time_s):
            return float(time_s)
        utc = self._utc0_min + time_s / 60.0
        self._on_mask(np.array([time_s, time_s + 2 * 86400.0]))
        k = np.searchsorted(self._dark[:, 0], utc)
        seen = float((self._dark[k, 0] - self._utc0_min) * 60.0) if k < len(self._dark) else np.inf
        return seen if seen <= self.twin.clock.now_s else float("inf")

    def minute_series(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kept per-minute feeder series: times (s), measured and expected power (W)."""
        if not self.minutes_t:
            n = len(self.feeder_ids)
            return np.empty(0), np.empty((n, 0)), np.empty((n, 0))
        return (np.concatenate(self.minutes_t), np.hstack(self.minutes_power),
                np.hstack(self.minutes_expected))

    def elements(self) -> dict[str, gpd.GeoDataFrame]:
        return {"lamps": self.lamps, "feeders": self.net.feeders, "cabinets": self.net.cabinets}

    def snapshot(self) -> dict[str, Any]:
        return {"lamp_ok": self.lamp_ok.copy(), "feeder_ok": self.feeder_ok.copy(),
                "burned_h": self.burned_h.copy(), "life_h": self.life_h.copy(),
                "fail_reason": self.fail_reason.copy()}

    def restore(self, state: dict[str, Any]) -> None:
        for key in ("lamp_ok", "feeder_ok", "burned_h", "life_h", "fail_reason"):
            setattr(self, key, np.array(state[key], copy=True))
        self._chunk_lamp_ok = self.lamp_ok.copy()
        self._chunk_feeder_ok = self.feeder_ok.copy()


def _utc_offset_min(local_naive: dt.datetime, tz: dt.tzinfo) -> float:
    off = local_naive.replace(tzinfo=tz).utcoffset()
    return off.total_seconds() / 60.0 if off is not None else 0.0


def _utc_offset_min_at_utc(utc_min: float, tz: dt.tzinfo) -> float:
    when = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=float(utc_min))
    off = when.astimezone(tz).utcoffset()
    return off.total_seconds() / 60.0 if off is not None else 0.0
