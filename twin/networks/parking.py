"""Parking layer: on-street zones and car parks, occupancy on the twin's clock, pricing, permits.

Supply (:mod:`twin.networks.parking_supply`): zones of the city's blocks with kerb bays
from street lengths, and car parks in the busiest zones. Demand
(:mod:`twin.networks.parking_demand`): visitors arrive as a non-homogeneous Poisson process
by hour and purpose (commuters, shoppers, evening visitors; the mix fitted on Birmingham
car-park recordings), residents come home in the evening; each stays a lognormal time of
its purpose. Visitor volumes by zone and hour are, by default, the car trips to activity
places of the city's OD demand that end in the zone
(:func:`twin.networks.parking_od.arrivals_from_od`); else the zone's jobs times
``visitors_per_job_day`` (``demand='jobs'``), or arrivals given per zone and hour.

Each step (5 min) vehicles leave, then arrivals look for a bay: with ``free`` of ``cap``
bays free, the distance driven to find one is geometric (a bay is free with probability
free/cap: ``bay_length / p`` on average), so cruising grows sharply as a zone fills. A
driver who has not found a bay within ``max_search_m`` goes to the nearest car park with
space within reach, else tries the nearest neighbouring zone with free bays, else gives up
(turned away). Cruising is counted in vehicle-hours at ``cruise_speed_kph`` (or the
traffic layer's speeds when lower).

Visitors pay the zone's price during charged hours (Mon-Sat 09-19); the price is fixed or
demand-responsive (each day or week: +step where the charged-hours occupancy was above
80 %, -step below 60 %). Visitor demand follows the price with a constant elasticity
(-0.4, of the order SFpark measured); of the drivers a higher price deters,
``deterred_to_car_park`` go to a car park. Occupancy sensors (one per zone and car park)
are recorded every ``sensor_step_s``; with ``publish_readings`` they are also published as
:class:`~twin.events.Reading` events. Permits and renewals: :mod:`twin.networks.permits`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from twin.errors import BadInput
from twin.events import Event, Reading, StreetClosed, StreetReopened
from twin.networks.base import Layer
from twin.networks.parking_pricing import PricingPolicy
from twin.networks.parking_demand import (FITTED_VISITORS, RESIDENT, ArrivalMix, day_type,
                                          with_evening)
from twin.networks.parking_supply import Supply, SupplyRules, build_supply
from twin.networks.permits import RenewalBehaviour, RenewalPlan, make_permits, plan_renewals

if TYPE_CHECKING:
    from twin.twin import Twin

SENSOR_PREFIX = "parking:"


@dataclass(frozen=True)
class ParkingParams:
    """Demand and search behaviour (assumptions unless said fitted)."""

    visitors_per_job_day: float = 0.8    # visitor arrivals a weekday per job in the zone
    evening_share: float = 0.15
    car_park_direct_share: float = 0.35  # of a car-park zone's visitors, straight to it
    cruise_speed_kph: float = 15.0
    max_search_m: float = 800.0
    car_park_reach_m: float = 1200.0
    neighbour_reach_m: float = 1100.0
    step_s: float = 300.0
    sensor_step_s: float = 900.0
    warmup_days: float = 2.0


@dataclass
class _Tally:
    arrivals: int = 0
    parked: int = 0
    to_car_park: int = 0
    to_neighbour: int = 0
    turned_away: int = 0
    net_deterred_by_price: float = 0.0
    cruise_s: float = 0.0
    revenue_street_eur: float = 0.0
    revenue_car_park_eur: float = 0.0


class ParkingLayer(Layer):
    """On-street zones and car parks of the twin's city, stepped on its clock.

    Parameters
    ----------
    supply_rules, params, pricing, behaviour : see their classes.
    arrivals : visitor arrivals per weekday hour (index 0-23) and zone (columns), veh/h.
    demand : without ``arrivals``, where visitors come from: 'od' (default: the trips to
        activity places of the city's OD demand, :mod:`twin.networks.parking_od`) or
        'jobs' (``params.visitors_per_job_day`` per job of the zone).
    reminders, reminder_lead_weeks, reminder_share : permit renewal reminders.
    capacities : capacity overrides by zone or car-park id (bays or spaces).
    publish_readings : publish each sensor reading on the bus too.
    """

    name = "parking"

    def __init__(self, *, supply_rules: SupplyRules | None = None,
                 params: ParkingParams | None = None, pricing: PricingPolicy | None = None,
                 behaviour: RenewalBehaviour | None = None, visitors: ArrivalMix | None = None,
                 arrivals: pd.DataFrame | None = None, demand: str = "od",
                 reminders: bool = True,
                 reminder_lead_weeks: float = 3.0, reminder_share: float = 1.0,
                 capacities: dict[str, int] | None = None, horizon_s: float | None = None,
                 publish_readings: bool = False) -> None:
        self.rules = supply_rules or SupplyRules()
        self.params = params or ParkingParams()
        self.pricing = pricing or PricingPolicy()
        self.behaviour = behaviour or RenewalBehaviour()
        self.mix = visitors or with_evening(FITTED_VISITORS, self.params.evening_share)
        if demand not in ("od", "jobs"):
            raise ValueError(f"parking: demand 'od' or 'jobs', got {demand!r}")
        self.arrivals = arrivals
        self.demand = "given" if arrivals is not None else demand
        self.reminders = bool(reminders)
        self.reminder_lead_weeks = float(reminder_lead_weeks)
        self.reminder_share = float(reminder_share)
        self.capacity_overrides = dict(capacities or {})
        self.horizon_s = horizon_s
        self.publish_readings = publish_readings
        self.tally = _Tally()
        self.twin: "Twin | None" = None
        self.observed: dict[str, tuple[float, float]] = {}   # sensor -> (time, value) from the bus
        self._hourly: list[tuple[float, np.ndarray]] = []
        self._restored: dict[str, Any] | None = None

    # ------------------------------------------------------------------ build
    def build(self, twin: "Twin") -> None:
        if twin.city is None:
            raise BadInput("parking layer: the scenario needs a city with streets and blocks "
                           "(the demo city)")
        self.twin = twin
        self.supply: Supply = build_supply(twin.city, self.rules)
        zones, cps = self.supply.zones, self.supply.car_parks
        self.zone_ids = list(zones.index)
        self.carpark_ids = list(cps.index)
        self.ids = self.zone_ids + self.carpark_ids
        self.index = {k: i for i, k in enumerate(self.ids)}
        nz = len(self.zone_ids)
        self.n_zones = nz
        self.cap = np.concatenate([zones["capacity_bays"].to_numpy(np.int64),
                                   cps["capacity_spaces"].to_numpy(np.int64)])
        self.set_capacities(self.capacity_overrides)
        self.base_cap = self.cap.copy()
        self.is_zone = np.arange(len(self.ids)) < nz
        self.occ = np.zeros(len(self.ids), dtype=np.int64)
        self.price = np.full(nz, self.pricing.base_price_eur_h)
        self._closed: set[str] = set()
        xy = np.vstack([zones[["x_m", "y_m"]].to_numpy(),
                        np.column_stack([cps.geometry.x, cps.geometry.y])])
        self.dist_m = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        p = self.params
        self.car_parks_near = [[j for j in np.argsort(self.dist_m[i]) if j >= nz
                                and self.dist_m[i, j] <= p.car_park_reach_m] for i in range(len(self.ids))]
        self.zones_near = [[j for j in np.argsort(self.dist_m[i]) if j < nz and j != i
                            and self.dist_m[i, j] <= p.neighbour_reach_m] for i in range(len(self.ids))]
        self.zone_of = np.concatenate([np.arange(nz), [self.index[z] for z in cps["zone_id"]]])
        if self.demand == "od":
            from twin.networks.parking_od import arrivals_from_od

            # the traffic layer's stream: the same activity places, the same trips
            self.arrivals = arrivals_from_od(twin.city, self.supply,
                                             twin.rng.stream("traffic.demand"))
        self._demand_volumes()
        rng = twin.rng.stream("parking.permits")
        self.permits = make_permits(zones["households"], self.behaviour, rng)
        self.renewals: RenewalPlan = plan_renewals(
            self.permits, self.behaviour, self.horizon_s if self.horizon_s is not None else 365 * 86400.0,
            rng, reminders=self.reminders, lead_weeks=self.reminder_lead_weeks,
            reminder_share=self.reminder_share)
        self.resident_day = np.zeros(len(self.ids))
        counts = self.permits["zone_id"].value_counts()
        self.resident_day[:nz] = [counts.get(z, 0) for z in self.zone_ids]
        self._dep = np.empty(0)
        self._loc = np.empty(0, dtype=np.int64)

    def set_capacities(self, capacities: dict[str, int]) -> None:
        """Change the capacity of zones or car parks by id; unknown ids and negative
        capacities raise :class:`BadInput`."""
        for key, value in capacities.items():
            if key not in self.index:
                raise BadInput(f"parking: unknown zone or car park {key!r} (the city has zones "
                               f"{self.zone_ids[0]}..{self.zone_ids[-1]} and car parks "
                               f"{', '.join(self.carpark_ids)})")
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise BadInput(f"parking: capacity of {key!r}: expected a whole number >= 0, "
                               f"got {value!r}")
            self.cap[self.index[key]] = int(value)
        if hasattr(self, "base_cap"):
            self.base_cap = self.cap.copy()

    def _demand_volumes(self) -> None:
        """Visitor arrivals a weekday by location (zones, car parks): from jobs, or from
        the given hourly arrivals (then ``self.visitor_hourly`` holds them)."""
        zones, nz = self.supply.zones, self.n_zones
        p = self.params
        self.visitor_hourly: np.ndarray | None = None
        if self.arrivals is not None:
            frame = self.arrivals
            unknown = [c for c in frame.columns if c not in self.zone_ids]
            if unknown:
                raise BadInput(f"parking arrivals: unknown zone {unknown[0]!r} (zones are "
                               f"{self.zone_ids[0]}..{self.zone_ids[-1]})")
            if len(frame.index) != 24 or (frame.to_numpy(float) < 0).any():
                raise BadInput("parking arrivals: expected 24 hourly rows of vehicles per hour "
                               ">= 0 by zone")
            hourly = frame.reindex(columns=self.zone_ids, fill_value=0.0).to_numpy(float)
            per_zone_day = hourly.sum(axis=0)
        else:
            hourly = None
            per_zone_day = zones["jobs"].to_numpy(float) * p.visitors_per_job_day
        day = np.zeros(len(self.ids))
        day[:nz] = per_zone_day
        for j, z in enumerate(self.supply.car_parks["zone_id"]):
            zi, cj = self.index[z], nz + j
            moved = day[zi] * p.car_park_direct_share / sum(
                1 for zz in self.supply.car_parks["zone_id"] if zz == z)
            day[cj] += moved
            day[zi] -= moved
        self.visitor_day = day
        if hourly is not None:
            share = np.divide(day[:nz], per_zone_day, out=np.zeros(nz), where=per_zone_day > 0)
            self.visitor_hourly = hourly * share[None, :]

    # ------------------------------------------------------------------ step
    def start(self, twin: "Twin") -> None:
        twin.bus.subscribe(StreetClosed, self.apply)
        twin.bus.subscribe(StreetReopened, self.apply)
        twin.bus.subscribe(Reading, self.apply)
        self._rng = twin.rng.stream("parking.arrivals")
        self._search_rng = twin.rng.stream("parking.search")
        step = self.params.step_s
        if self._restored is None:                 # fill the streets with the days before
            t = -self.params.warmup_days * 86400.0
            while t < 0:
                self._step(t, step)
                t += step
            self.tally = _Tally()
        self._reset_pricing_window()
        twin.clock.process(self._process())

    def _calendar(self, t: float) -> tuple[int, float]:
        """(weekday, hour of day) at ``t`` seconds from the start."""
        when = self.twin.clock.to_datetime(t)
        return when.weekday(), when.hour + when.minute / 60 + when.second / 3600

    def _process(self):
        clock, p = self.twin.clock, self.params
        next_sensor = 0.0
        hour_sum = np.zeros(len(self.ids))
        hour_n = 0
        hour_start = clock.now_s
        day = clock.to_datetime(clock.now_s).date()
        while True:
            now = clock.now_s
            if now >= next_sensor - 1e-6:
                self._record(now)
                next_sensor = (math.floor(now / p.sensor_step_s + 1e-9) + 1) * p.sensor_step_s
            weekday, hod = self._calendar(now)
            today = clock.to_datetime(now).date()
            if today != day:              # the first step of a new calendar day
                self._adjust_prices(weekday)
                day = today
            share = self._share()
            hour_sum += share
            hour_n += 1
            if self.pricing.charged(weekday, hod):
                self._window_sum += share[:self.n_zones]
                self._window_n += 1
            self._step(now, p.step_s)
            yield clock.timeout(p.step_s)
            if clock.now_s - hour_start >= 3600 - 1e-6:
                self._hourly.append((hour_start, hour_sum / max(hour_n, 1)))
                hour_sum = np.zeros(len(self.ids))
                hour_n, hour_start = 0, clock.now_s

    def _share(self) -> np.ndarray:
        return np.divide(self.occ, self.cap, out=np.zeros(len(self.ids)), where=self.cap > 0)

    def _step(self, now: float, step: float) -> None:
        """Departures up to ``now``, then the arrivals of [now, now + step)."""
        gone = self._dep <= now
        if gone.any():
            self.occ -= np.bincount(self._loc[gone], minlength=len(self.ids))
            self._dep, self._loc = self._dep[~gone], self._loc[~gone]
        weekday, hod = self._calendar(now + step / 2)
        dtype = day_type(weekday)
        rng, nz, pr = self._rng, self.n_zones, self.pricing
        rates = self.mix.rates_per_h(hod, dtype)                       # per purpose, per 1/day
        if self.visitor_hourly is not None:
            # given arrivals: that hour's total, split by the mix's purposes at that hour
            hour_total = np.zeros(len(self.ids))
            hour_total[:nz] = self.visitor_hourly[int(hod) % 24]
            hour_total[nz:] = self.visitor_day[nz:] * rates.sum()
            split = rates / max(rates.sum(), 1e-12)
            lam = hour_total[:, None] * split[None, :] * self.mix.daily_factor(dtype)
        else:
            lam = self.visitor_day[:, None] * rates[None, :]
        charged = self.pricing.charged(weekday, hod)
        if charged:        # a price above the base deters some visitors, below attracts
            factor = pr.demand_factor(self.price)
            deterred = lam[:nz] * (1 - factor)[:, None]
            lam[:nz] *= factor[:, None]
            self.tally.net_deterred_by_price += float(deterred.sum() * step / 3600)
            for i in range(nz):          # some deterred drivers use a car park instead
                if self.car_parks_near[i] and deterred[i].sum() > 0:
                    lam[self.car_parks_near[i][0]] += deterred[i] * pr.deterred_to_car_park
        lam = np.maximum(lam, 0.0)
        resident_rate = self.resident_day * float(RESIDENT.density_per_h(hod)) * \
            RESIDENT.day_factors[dtype]
        n_vis = rng.poisson(lam * step / 3600)
        n_res = rng.poisson(resident_rate * step / 3600)
        loc = np.concatenate([np.repeat(np.arange(len(self.ids)), n_vis.sum(axis=1)),
                              np.repeat(np.arange(len(self.ids)), n_res)])
        if len(loc) == 0:
            return
        purpose = np.concatenate([np.concatenate([np.repeat(np.arange(lam.shape[1]), row)
                                                  for row in n_vis]),
                                  np.full(int(n_res.sum()), -1)])
        stay = np.empty(len(loc))
        vis = purpose >= 0
        stay[vis] = self.mix.sample_stays_s(rng, purpose[vis])
        stay[~vis] = RESIDENT.sample_stay_s(rng, int((~vis).sum()))
        t_arr = now + rng.uniform(0, step, len(loc))
        order = np.argsort(t_arr, kind="stable")
        placed = self._place_all(loc[order])
        self._settle(placed, t_arr[order], stay[order], vis[order])

    def _place_all(self, loc: np.ndarray) -> np.ndarray:
        """Where each arrival parks (location index, or -1 turned away); counts cruising."""
        p, t = self.params, self.tally
        speed = self._cruise_speed_ms()
        u = self._search_rng.random(len(loc))
        out = np.empty(len(loc), dtype=np.int64)
        cap, occ, nz = self.cap, self.occ, self.n_zones
        bay, max_search = self.rules.bay_length_m, p.max_search_m
        for k in range(len(loc)):
            i = int(loc[k])
            where = -1
            if i < nz:
                dist = self._search_m(i, u[k], bay)
                if dist <= max_search:
                    where = i
                    t.cruise_s += dist / speed[i]
                else:
                    t.cruise_s += max_search / speed[i]
            elif occ[i] < cap[i]:
                where = i
            if where < 0:
                for j in self.car_parks_near[i]:
                    if j != i and occ[j] < cap[j]:
                        where = j
                        t.to_car_park += 1
                        t.cruise_s += self.dist_m[i, j] / speed[self.zone_of[i]]
                        break
            if where < 0:
                for j in self.zones_near[i]:
                    if occ[j] < cap[j]:
                        dist = self._search_m(j, 1 - u[k], bay)
                        t.cruise_s += (self.dist_m[i, j] + min(dist, max_search)) / speed[j]
                        if dist <= max_search:
                            where = j
                            t.to_neighbour += 1
                        break
            out[k] = where
            if where >= 0:
                occ[where] += 1
        t.arrivals += len(loc)
        t.parked += int((out >= 0).sum())
        t.turned_away += int((out < 0).sum())
        return out

    def _search_m(self, i: int, u: float, bay_m: float) -> float:
        """Distance driven to find a free bay in zone ``i`` (geometric in bays passed)."""
        free = self.cap[i] - self.occ[i]
        if free <= 0:
            return math.inf
        p = free / self.cap[i]
        if p >= 1.0:
            return bay_m
        return bay_m * math.ceil(math.log(max(u, 1e-300)) / math.log1p(-p))

    def _cruise_speed_ms(self) -> np.ndarray:
        """Cruising speed by location (m/s): ``cruise_speed_kph``, or slower where the traffic
        layer's street times say so (zone mean of length / time)."""
        base = np.full(len(self.ids), self.params.cruise_speed_kph / 3.6)
        times = self.twin.street_times_s if self.twin is not None else None
        if times is not None and len(times):
            streets = self.twin.city.streets
            speed = (streets["length_m"] / times.reindex(streets.index)).replace([np.inf], np.nan)
            by_zone = speed.groupby(self.supply.street_zone).mean()
            for i, z in enumerate(self.zone_ids):
                v = by_zone.get(z)
                if v is not None and np.isfinite(v) and v > 0:
                    base[i] = min(base[i], float(v))
            base[self.n_zones:] = base[self.zone_of[self.n_zones:]]
        return base

    def _settle(self, where: np.ndarray, t_arr: np.ndarray, stay: np.ndarray,
                visitor: np.ndarray) -> None:
        """Keep the parked vehicles' departures; charge visitors."""
        ok = where >= 0
        dep = t_arr + stay
        self._dep = np.concatenate([self._dep, dep[ok]])
        self._loc = np.concatenate([self._loc, where[ok]])
        pr, nz = self.pricing, self.n_zones
        street = ok & visitor & (where < nz)
        if street.any():
            paid_h = self.pricing.charged_seconds(t_arr[street], dep[street],
                                                   self.twin.clock.start) / 3600
            self.tally.revenue_street_eur += float((paid_h * self.price[where[street]]).sum())
        off = ok & (where >= nz)
        if off.any():
            days = np.ceil(stay[off] / 86400)
            fee = np.minimum(stay[off] / 3600 * pr.car_park_eur_h, days * pr.car_park_day_cap_eur)
            self.tally.revenue_car_park_eur += float(fee.sum())

    def _record(self, now: float) -> None:
        rec = self.twin.recorder
        rec.record(now, self.name, "occupancy", "veh", self.ids, self.occ)
        rec.record(now, self.name, "occupancy_share", "1", self.ids, self._share())
        if self.publish_readings:
            for sid, value in zip(self.ids, self.occ):
                self.twin.publish(Reading(time_s=now, source=self.name,
                                          sensor_id=SENSOR_PREFIX + sid, value=float(value),
                                          unit="veh"))

    # pricing
    def _reset_pricing_window(self) -> None:
        self._window_sum = np.zeros(self.n_zones)
        self._window_n = 0
        self.twin.recorder.record(self.twin.clock.now_s, self.name, "price", "EUR/h",
                                  self.zone_ids, self.price)

    def _adjust_prices(self, weekday: int) -> None:
        """At midnight: the 60-80 % rule on the charged hours since the last adjustment."""
        pr = self.pricing
        if pr.mode != "responsive" or self._window_n == 0:
            return
        if pr.every == "week" and weekday != 0:
            return
        self.price = pr.adjusted(self.price, self._window_sum / self._window_n)
        self._reset_pricing_window()

    # ------------------------------------------------------------------ events
    def check_event(self, event: Event) -> list[str]:
        if isinstance(event, Reading) and event.sensor_id.startswith(SENSOR_PREFIX):
            sid = event.sensor_id[len(SENSOR_PREFIX):]
            problems = []
            if sid not in self.index:
                problems.append(f"unknown parking zone or car park {sid!r} in sensor "
                                f"{event.sensor_id!r}")
            if not (event.value >= 0):
                problems.append(f"parking sensor {event.sensor_id!r}: expected an occupancy "
                                f">= 0 vehicles, got {event.value}")
            return problems
        return []

    def apply(self, event: Event) -> None:
        if isinstance(event, (StreetClosed, StreetReopened)):
            ids = [s for s in event.street_ids if s in self.supply.bays.index]
            if isinstance(event, StreetClosed):
                ids = [s for s in ids if s not in self._closed]
                self._closed.update(ids)
                sign = -1
            else:
                ids = [s for s in ids if s in self._closed]
                self._closed.difference_update(ids)
                sign = 1
            for s in ids:
                i = self.index[self.supply.street_zone[s]]
                self.cap[i] += sign * int(self.supply.bays[s])
        elif isinstance(event, Reading) and event.source != self.name \
                and event.sensor_id.startswith(SENSOR_PREFIX):
            problems = self.check_event(event)
            if problems:
                raise BadInput(f"parking reading at {event.time_s:g} s: {problems[0]}")
            self.observed[event.sensor_id[len(SENSOR_PREFIX):]] = (event.time_s, event.value)

    # ------------------------------------------------------------------ results
    def occupancy_by_zone_hour(self) -> pd.DataFrame:
        """Mean occupancy share of each zone and car park (columns) by clock hour (index)."""
        if not self._hourly:
            return pd.DataFrame(columns=self.ids)
        times = [self.twin.clock.to_datetime(t) for t, _ in self._hourly]
        return pd.DataFrame(np.vstack([v for _, v in self._hourly]), columns=self.ids,
                            index=pd.DatetimeIndex(times, name="hour"))

    def kpis(self) -> dict[str, float]:
        t, nz = self.tally, self.n_zones
        hourly = self.occupancy_by_zone_hour()
        street = hourly[self.zone_ids]
        bays = self.cap[:nz].astype(float)
        out: dict[str, float] = {
            "on_street_bays": float(bays.sum()),
            "car_park_spaces": float(self.cap[nz:].sum()),
            "occupancy_mean_share": float((street.to_numpy() @ bays).mean() / bays.sum())
            if len(street) else float("nan"),
            "occupancy_peak_share": float((street.to_numpy() @ bays).max() / bays.sum())
            if len(street) else float("nan"),
            "car_park_occupancy_mean_share": float(hourly[self.carpark_ids].to_numpy().mean())
            if len(hourly) and self.carpark_ids else float("nan"),
            "zone_hours_above_85pct": float((street.to_numpy() > 0.85).sum()),
            "cruising_veh_h": t.cruise_s / 3600,
            "cruising_min_per_arrival": t.cruise_s / 60 / max(t.arrivals, 1),
            "arrivals": float(t.arrivals),
            "spilled_to_car_park": float(t.to_car_park),
            "spilled_to_neighbour_zone": float(t.to_neighbour),
            "turned_away": float(t.turned_away),
            "visitors_deterred_by_price": t.net_deterred_by_price,   # < 0: drawn by lower prices
            "revenue_on_street_eur": t.revenue_street_eur,
            "revenue_car_parks_eur": t.revenue_car_park_eur,
            "mean_price_eur_h": float(self.price.mean()),
        }
        now = self.twin.clock.now_s
        renewals = self.renewals.kpis(now)
        renewed = self.renewals.table["renewal_s"]
        permit_eur = float(((renewed >= 0) & (renewed <= now)).sum()) * self.behaviour.fee_eur
        out["revenue_permits_eur"] = permit_eur
        out["revenue_eur"] = t.revenue_street_eur + t.revenue_car_park_eur + permit_eur
        out.update(renewals)
        for z in self.zone_ids:
            col = street[z] if len(street) else pd.Series(dtype=float)
            out[f"{z}_occupancy_mean_share"] = float(col.mean()) if len(col) else float("nan")
            out[f"{z}_occupancy_peak_share"] = float(col.max()) if len(col) else float("nan")
        return out

    def elements(self) -> dict[str, gpd.GeoDataFrame]:
        zones = self.supply.zones.copy()
        zones["capacity_bays"] = self.cap[:self.n_zones]
        zones["price_eur_h"] = self.price
        zones["permits"] = self.resident_day[:self.n_zones].astype(np.int64)
        cps = self.supply.car_parks.copy()
        cps["capacity_spaces"] = self.cap[self.n_zones:]
        return {"zones": zones, "car_parks": cps}

    def snapshot(self) -> dict[str, Any]:
        """Parked vehicles (location, time left), prices and capacities: a fork built from
        the same city and parameters continues from here without a warm-up."""
        now = self.twin.clock.now_s
        return {"time_s": now, "loc": [self.ids[i] for i in self._loc],
                "left_s": (self._dep - now).tolist(),
                "price_eur_h": dict(zip(self.zone_ids, self.price.tolist())),
                "capacity": dict(zip(self.ids, self.cap.tolist()))}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` (call after build, before the run)."""
        unknown = [k for k in state["capacity"] if k not in self.index]
        if unknown:
            raise BadInput(f"parking restore: unknown zone or car park {unknown[0]!r}")
        self._restored = state
        for k, v in state["capacity"].items():
            self.cap[self.index[k]] = int(v)
        self.price = np.array([state["price_eur_h"][z] for z in self.zone_ids], dtype=float)
        self._loc = np.array([self.index[k] for k in state["loc"]], dtype=np.int64)
        self._dep = np.asarray(state["left_s"], dtype=float)
        self.occ = np.bincount(self._loc, minlength=len(self.ids)).astype(np.int64)
