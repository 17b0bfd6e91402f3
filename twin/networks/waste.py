"""Waste collection layer: containers filling on the streets, trucks collecting them.

Build (:mod:`twin.networks.waste_build`): containers by the inhabited blocks, a
garage, a transfer site, a fleet. Step: every hour the containers fill
(:mod:`twin.networks.waste_fill`); every ``sensor_interval_h`` the sensors report
(faults included) and the readings are recorded; each service day at the shift
start the strategy (:mod:`twin.networks.waste_strategies`) picks the containers,
PyVRP plans the tours on the street travel times (:mod:`twin.engines.vrp`) and
each truck drives its tour as a process on the clock: legs timed at departure on
the current streets (a street closed meanwhile delays it), a service time per
container, an unload at the transfer site when the plan says or when the truck
turns out to be full, the end of the shift at the transfer site and back to the
garage. A container that starts to overflow publishes
:class:`~twin.events.ContainerOverflow`; a collection empties it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.engines.vrp import TourProblem, plan_tours
from twin.errors import BadInput
from twin.events import (Alert, ContainerOverflow, Event, Reading, StreetClosed, StreetReopened,
                         TravelTimesUpdated)
from twin.networks.base import Layer
from twin.networks.waste_build import (DENSITY_KG_PER_L, WasteConfig, WasteNetwork,
                                       build_waste_network)
from twin.networks.waste_fill import FillModel, SensorBank, SensorFaults
from twin.networks.waste_streets import StreetRouter
from twin.networks.waste_strategies import (FillEstimator, FixedSchedule, SensorDriven,
                                            fixed_weekdays)

if TYPE_CHECKING:
    from twin.twin import Twin

READING_UNIT = "fill_fraction"
STRATEGIES = ("fixed", "sensor")


@dataclass
class _Stats:
    km_driven: float = 0.0
    collections: int = 0
    overflows: int = 0
    overflow_container_hours: float = 0.0
    collected_l: float = 0.0
    truck_hours: float = 0.0
    overtime_h: float = 0.0
    unload_trips: int = 0
    extra_unloads: int = 0
    tours: int = 0
    plans: int = 0
    plan_seconds: float = 0.0
    delay_s: float = 0.0             # legs slower than when planned (closures, traffic)
    collection_log: list[tuple] = field(default_factory=list)
    tour_log: list[tuple] = field(default_factory=list)   # (day, truck, points visited)


class WasteLayer(Layer):
    """Waste containers and collection trucks on the twin's streets.

    Parameters
    ----------
    strategy : 'fixed' (weekly schedule) or 'sensor' (forecast from fill sensors).
    config : the network's and fleet's figures (:class:`WasteConfig`).
    threshold : the sensor strategy's fill threshold at the next tour.
    sensor_interval_h : hours between two readings of a sensor.
    faults : sensor fault rates.
    solver_iterations, solver_seconds : the daily PyVRP budget (iterations keep a run
        reproducible; the seconds only cap a slow machine).
    """

    name = "waste"

    def __init__(self, strategy: str = "fixed", config: WasteConfig | None = None, *,
                 threshold: float = 0.8, max_days: float = 14.0, sensor_interval_h: float = 6.0,
                 faults: SensorFaults | None = None, solver_iterations: int = 1000,
                 solver_seconds: float = 20.0, fixed_target_fill: float = 0.75) -> None:
        if strategy not in STRATEGIES:
            raise BadInput(f"waste strategy: expected one of {', '.join(STRATEGIES)}, "
                           f"got {strategy!r}")
        self.strategy_name = strategy
        self.config = config or WasteConfig()
        self.threshold = float(threshold)
        self.max_days = float(max_days)
        self.sensor_interval_h = float(sensor_interval_h)
        self.faults = faults or SensorFaults()
        self.solver_iterations = int(solver_iterations)
        self.solver_seconds = float(solver_seconds)
        self.fixed_target_fill = float(fixed_target_fill)
        self.stats = _Stats()
        self.twin: "Twin | None" = None

    # ------------------------------------------------------------------ build
    def build(self, twin: "Twin") -> None:
        if twin.city is None:
            raise BadInput("waste layer: the twin has no city (streets and blocks) to place "
                           "containers on; use the demo city")
        self.twin = twin
        cfg = self.config
        self.network: WasteNetwork = build_waste_network(twin.city, cfg,
                                                         twin.rng.stream("waste.build"))
        c, s = self.network.containers, self.network.sites
        self.container_ids = list(c.index)
        self.index_of = {cid: k for k, cid in enumerate(self.container_ids)}
        n = len(c)
        # router points: 0 garage, 1 transfer site, 2.. containers
        self.router = StreetRouter(
            twin.city,
            street_id=np.concatenate([["", ""], c["street_id"].to_numpy(str)]),
            offset_m=np.concatenate([[0.0, 0.0], c["offset_m"].to_numpy(float)]),
            node_id=np.concatenate([s["node_id"].to_numpy(str), [""] * n]),
            access_m=np.concatenate([s["access_m"].to_numpy(float), np.zeros(n)]),
            access_s=np.concatenate([s["access_s"].to_numpy(float), np.zeros(n)]))
        if twin.street_times_s is not None:
            self.router.set_times(twin.street_times_s)
        self.point_xy = np.vstack([np.column_stack([s.geometry.x, s.geometry.y]),
                                   np.column_stack([c.geometry.x, c.geometry.y])])
        self.fill = FillModel(c["capacity_l"].to_numpy(), c["nominal_l_per_day"].to_numpy(),
                              twin.rng.stream("waste.production"))
        self.sensors = SensorBank(c["has_sensor"].to_numpy(), self.sensor_interval_h, self.faults,
                                  twin.rng.stream("waste.sensors"))
        self.estimator = FillEstimator(c["capacity_l"].to_numpy(), c["nominal_l_per_day"].to_numpy())
        self.weekdays = fixed_weekdays(c["nominal_l_per_day"].to_numpy(), c["capacity_l"].to_numpy(),
                                       cfg.service_weekdays, self.fixed_target_fill)
        self.strategy = (FixedSchedule(self.weekdays) if self.strategy_name == "fixed"
                         else SensorDriven(self.threshold, self.max_days))
        self._plans: dict[tuple, Any] = {}

    # ------------------------------------------------------------------ readings
    def ingest_reading(self, container_id: str, fill_fraction: float,
                       time_s: float | None = None) -> None:
        """A fill reading from outside (a live sensor feed, a file): checked, then used by
        the sensor strategy's estimate. Raises :class:`BadInput` for an unknown container,
        a negative or non-finite fill."""
        problem = self._reading_problem(container_id, fill_fraction)
        if problem:
            raise BadInput(problem)
        now = self.twin.clock.now_s if time_s is None else float(time_s)
        self.estimator.ingest(now, np.array([self.index_of[container_id]]),
                              np.array([float(fill_fraction)]))

    def _reading_problem(self, container_id: str, fill_fraction: Any) -> str:
        if container_id not in self.index_of:
            return (f"fill reading: unknown container {container_id!r} (the waste network has "
                    f"{len(self.container_ids)} containers, c0 .. c{len(self.container_ids) - 1})")
        try:
            value = float(fill_fraction)
        except (TypeError, ValueError):
            return f"fill reading of {container_id!r}: expected a number, got {fill_fraction!r}"
        if not math.isfinite(value) or value < 0:
            return (f"fill reading of {container_id!r}: expected a fill fraction >= 0 "
                    f"(0 empty, 1 full), got {fill_fraction!r}")
        return ""

    def check_event(self, event: Event) -> list[str]:
        if isinstance(event, Reading) and event.unit == READING_UNIT:
            problem = self._reading_problem(event.sensor_id, event.value)
            return [problem] if problem else []
        return []

    # ------------------------------------------------------------------ step
    def start(self, twin: "Twin") -> None:
        twin.bus.subscribe(StreetClosed, self.apply)
        twin.bus.subscribe(StreetReopened, self.apply)
        twin.bus.subscribe(TravelTimesUpdated, self.apply)
        twin.bus.subscribe(Reading, self.apply)
        twin.clock.process(self._fill_process())
        twin.clock.process(self._day_process())

    def apply(self, event: Event) -> None:
        if isinstance(event, StreetClosed):
            self.router.set_closed(event.street_ids, True)
        elif isinstance(event, StreetReopened):
            self.router.set_closed(event.street_ids, False)
        elif isinstance(event, TravelTimesUpdated):
            self.router.set_times(self.twin.street_times_s)
        elif isinstance(event, Reading) and event.unit == READING_UNIT:
            problems = self.check_event(event)
            if problems:   # refused on the record; a live twin keeps running
                self.twin.publish(Alert(time_s=self.twin.clock.now_s, source=self.name,
                                        cause_id=event.event_id or None, layer=self.name,
                                        element_id=event.sensor_id, severity="error",
                                        message="Reading refused: " + problems[0]))
                return
            self.ingest_reading(event.sensor_id, event.value, event.time_s)

    def _calendar(self, time_s: float) -> tuple[int, int, float, int]:
        """(day index, weekday, day of year, hour) at ``time_s``."""
        when = self.twin.clock.to_datetime(time_s)
        start = self.twin.clock.start
        day = (when.date() - start.date()).days
        return day, when.weekday(), when.timetuple().tm_yday + when.hour / 24.0, when.hour

    def _fill_process(self):
        clock, rec = self.twin.clock, self.twin.recorder
        # align to the next whole hour
        start = self.twin.clock.to_datetime(0)
        first = (60 - start.minute) % 60 * 60 - start.second
        if first > 0:
            yield clock.timeout(first)
        readings_every = max(1, int(round(self.sensor_interval_h)))
        hour_count = 0
        while True:
            day, weekday, doy, hour = self._calendar(clock.now_s)
            started = self.fill.advance_hour(day, weekday, doy, hour)
            for k in started:
                self._announce_overflow(int(k))
            self.stats.overflow_container_hours += float(self.fill.overflowing.sum())
            if hour_count % readings_every == 0:
                true_fraction = self.fill.fraction()
                reading = self.sensors.read(np.minimum(true_fraction, 1.0))
                sensed = np.flatnonzero(np.isfinite(reading))
                self.estimator.ingest(clock.now_s, sensed, reading[sensed])
                rec.record(clock.now_s, self.name, "fill", "fraction", self.container_ids,
                           true_fraction)
                rec.record(clock.now_s, self.name, "fill_reading", "fraction",
                           self.container_ids, reading)
                rec.record(clock.now_s, self.name, "overflowing", "containers", ["all"],
                           [float(self.fill.overflowing.sum())])
            hour_count += 1
            yield clock.timeout(3600.0)

    def _announce_overflow(self, k: int) -> None:
        self.stats.overflows += 1
        point = self.network.containers.geometry.iloc[k]
        self.twin.publish(ContainerOverflow(time_s=self.twin.clock.now_s, source=self.name,
                                            container_id=self.container_ids[k], x=float(point.x),
                                            y=float(point.y),
                                            fill_fraction=float(self.fill.fraction()[k])))

    def _next_shift_s(self, after_s: float) -> float:
        """Start of the first shift strictly after ``after_s``."""
        cfg = self.config
        when = self.twin.clock.to_datetime(after_s)
        day0 = when.replace(hour=0, minute=0, second=0, microsecond=0)
        for d in range(0, 15):
            day = day0 + pd.Timedelta(days=d).to_pytimedelta()
            if day.weekday() not in cfg.service_weekdays:
                continue
            t = self.twin.clock.to_seconds(day) + cfg.shift_start_h * 3600.0
            if t > after_s + 1e-6:
                return t
        return after_s + 7 * 86400.0

    def _day_process(self):
        clock = self.twin.clock
        while True:
            nxt = self._next_shift_s(clock.now_s)
            yield clock.timeout(nxt - clock.now_s)
            self._dispatch()

    def _dispatch(self) -> None:
        """Pick the day's containers, plan the tours, send the trucks."""
        now, cfg = self.twin.clock.now_s, self.config
        day, weekday, _, _ = self._calendar(now)
        shift_end = now + cfg.shift_hours * 3600.0
        chosen = self.strategy.select(weekday, now, self._next_shift_s(now) + cfg.shift_hours * 1800,
                                      self.estimator)
        if len(chosen) == 0:
            return
        travel_s, distance_m = self.router.matrices()
        points = np.concatenate([[0, 1], chosen + 2])
        est, rate = self.estimator.estimate(now)
        cap = self.network.containers["capacity_l"].to_numpy()
        if self.strategy_name == "fixed":      # the planner's expectation: the nominal fill
            expected = np.full(len(cap), self.fixed_target_fill)
        else:
            expected = np.clip(est + rate * cfg.shift_hours / 2, 0.0, 1.3)
        problem = TourProblem(
            travel_s=travel_s[np.ix_(points, points)], distance_m=distance_m[np.ix_(points, points)],
            load_l=(expected * cap)[chosen], service_s=self.network.containers["service_s"]
            .to_numpy()[chosen], capacity_l=int(cfg.truck_capacity_l),
            vehicles=len(self.network.trucks), shift_s=int(cfg.shift_hours * 3600),
            unload_s=int(cfg.unload_s))
        # a fixed schedule drives fixed routes: planned once per weekday and kept while the
        # streets stay as they were; the sensor strategy plans each day's selection afresh
        key = (weekday, self.router.version, tuple(chosen)) if self.strategy_name == "fixed" \
            else None
        plan = self._plans.get(key) if key else None
        if plan is None:
            plan = plan_tours(problem, seed=self.twin.seed * 1000 + (weekday if key else day),
                              seconds=self.solver_seconds, iterations=self.solver_iterations)
            self.stats.plan_seconds += plan.seconds
            self.stats.plans += 1
            if key:
                self._plans[key] = plan
        for tour in plan.tours:
            legs = [int(points[leg]) for leg in tour.legs]
            truck = self.network.trucks.index[tour.vehicle % len(self.network.trucks)]
            self.stats.tours += 1
            self.twin.clock.process(self._truck(day, truck, legs, shift_end, travel_s))
        left = [int(points[p]) for p in plan.unplanned]
        if left:   # the solver could not fit them: tomorrow's strategy sees them again
            self.twin.publish(Alert(time_s=now, source=self.name, layer=self.name,
                                    message=f"{len(left)} containers left out of the day's tours",
                                    severity="warning"))

    def _truck(self, day: int, truck: str, legs: list[int], shift_end_s: float,
               planned_s: np.ndarray):
        clock, cfg, fill = self.twin.clock, self.config, self.fill
        started = clock.now_s
        capacity = cfg.truck_capacity_l
        pos, load, visited = 0, 0.0, [0]

        def drive(a: int, b: int):
            travel_s, distance_m = self.router.matrices()     # as the streets are now
            self.stats.km_driven += distance_m[a, b] / 1000.0
            self.stats.delay_s += max(0.0, travel_s[a, b] - planned_s[a, b])
            visited.append(b)
            return clock.timeout(travel_s[a, b])

        for leg in legs:
            if leg == 1:
                yield drive(pos, 1)
                yield clock.timeout(cfg.unload_s)
                self.stats.unload_trips += 1
                pos, load = 1, 0.0
                continue
            k = leg - 2
            yield drive(pos, leg)
            if load + fill.fill_l[k] + fill.overflow_l[k] > capacity:   # full: unload first
                yield drive(leg, 1)
                yield clock.timeout(cfg.unload_s)
                self.stats.unload_trips += 1
                self.stats.extra_unloads += 1
                load = 0.0
                yield drive(1, leg)
            yield clock.timeout(float(self.network.containers["service_s"].iat[k]))
            fraction = float(fill.fraction()[k])
            litres = fill.empty(k)
            load += litres
            self.sensors.collected(k)
            self.estimator.collected(k, clock.now_s, litres)
            self.stats.collections += 1
            self.stats.collected_l += litres
            self.stats.collection_log.append((clock.now_s, day, truck, self.container_ids[k],
                                              fraction, litres))
            pos = leg
        if pos != 1:
            yield drive(pos, 1)
            yield clock.timeout(cfg.unload_s)
            self.stats.unload_trips += 1
        yield drive(1, 0)
        hours = (clock.now_s - started) / 3600.0
        self.stats.truck_hours += hours
        self.stats.overtime_h += max(0.0, clock.now_s - shift_end_s) / 3600.0
        self.stats.tour_log.append((day, truck, visited))

    # ------------------------------------------------------------------ results
    def kpis(self) -> dict[str, float]:
        st = self.stats
        fills = [row[4] for row in st.collection_log]
        return {
            "km_driven": st.km_driven,
            "collections": float(st.collections),
            "container_overflows": float(st.overflows),
            "overflow_container_hours": st.overflow_container_hours,
            "mean_fill_at_collection": float(np.mean(fills)) if fills else float("nan"),
            "co2_kg": st.km_driven * self.config.kg_co2_per_km,
            "collected_t": st.collected_l * DENSITY_KG_PER_L / 1000.0,
            "truck_hours": st.truck_hours,
            "overtime_h": st.overtime_h,
            "delay_h": st.delay_s / 3600.0,
            "unload_trips": float(st.unload_trips),
            "tours": float(st.tours),
            "containers": float(len(self.container_ids)),
            "trucks": float(len(self.network.trucks)),
            "sensor_stuck_episodes": float(self.sensors.stuck_episodes),
            "sensor_drift_onsets": float(self.sensors.drift_onsets),
            "sensor_readings_lost_share": (self.sensors.lost / self.sensors.sent
                                           if self.sensors.sent else 0.0),
        }

    def collections(self) -> pd.DataFrame:
        """One row per collection: time, day, truck, container, fill found, litres."""
        return pd.DataFrame(self.stats.collection_log,
                            columns=["time_s", "day", "truck_id", "container_id",
                                     "fill_fraction", "collected_l"])

    def elements(self) -> dict[str, gpd.GeoDataFrame]:
        c = self.network.containers.copy()
        c["fixed_weekdays"] = [",".join(map(str, d)) for d in self.weekdays]
        c["fill_fraction"] = self.fill.fraction()
        log = self.collections()
        geoms = c.geometry.reindex(log["container_id"]).to_numpy()
        collections = gpd.GeoDataFrame(log, geometry=geoms, crs=c.crs)
        return {"containers": c, "sites": self.network.sites.copy(),
                "collections": collections, "tours": self._tour_lines()}

    def _tour_lines(self) -> gpd.GeoDataFrame:
        """The last service day's tours along the streets."""
        rows = []
        if self.stats.tour_log:
            last = max(day for day, _, _ in self.stats.tour_log)
            for day, truck, visited in self.stats.tour_log:
                if day != last:
                    continue
                parts = [self.router.leg_line(a, b, self.point_xy)
                         for a, b in zip(visited[:-1], visited[1:]) if a != b]
                rows.append({"day": day, "truck_id": truck,
                             "stops": sum(1 for p in visited if p >= 2),
                             "geometry": shapely.MultiLineString(parts) if parts else None})
        return gpd.GeoDataFrame(rows, columns=["day", "truck_id", "stops", "geometry"],
                                geometry="geometry", crs=self.network.containers.crs)

    def snapshot(self) -> dict[str, Any]:
        return {"fill_l": self.fill.fill_l.copy(), "overflow_l": self.fill.overflow_l.copy(),
                "overflowing": self.fill.overflowing.copy(),
                "collected_s": self.estimator.collected_s.copy(),
                "closed": sorted(self.router.closed)}

    def restore(self, state: dict[str, Any]) -> None:
        self.fill.fill_l[:] = state["fill_l"]
        self.fill.overflow_l[:] = state["overflow_l"]
        self.fill.overflowing[:] = state["overflowing"]
        self.estimator.collected_s[:] = state["collected_s"]
        self.router.set_closed(state.get("closed", ()), True)
