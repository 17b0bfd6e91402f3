"""Traffic layer: hourly user-equilibrium assignment of the city's car demand, and incidents.

``build`` turns the twin's city into a road network with zones
(:mod:`twin.networks.road_city`) and an hourly OD demand (:mod:`twin.networks.od_demand`).
On the clock, each period (an hour by default, aligned to the calendar) assigns that
hour's demand, warm-started from the previous period's solution. ``StreetClosed`` /
``StreetReopened`` and ``LanesClosed`` / ``LanesReopened`` change the network at once and
re-equilibrate from the current solution; a ``StreetFlooded`` with more than
``flood_close_lps`` closes the flooded streets (a ``StreetClosed`` whose cause is the
flood). While an incident lasts, the same demand is also assigned on the intact network,
so the incident's extra vehicle-hours are known.

After each assignment ``twin.street_times_s`` (seconds, mean of both directions; ``inf``
on a closed street) and ``twin.street_flows_veh_h`` (both directions) are updated and a
:class:`~twin.events.TravelTimesUpdated` names the streets whose time changed most.
Recorded per directed street link (``<street_id>/ab`` along the street's u->v, ``/ba``
back): ``flow`` (veh/h), ``travel_time`` (s), ``speed`` (km/h), and after an incident
``time_change`` (s, against the same demand before it); per network (element ``all``):
``tstt`` and ``tstt_no_incident`` (veh*h per hour).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point

from twin.engines.assignment import AssignmentChange, AssignmentResult, assign, compare
from twin.events import (Event, LanesClosed, LanesReopened, StreetClosed, StreetFlooded,
                         StreetReopened, TravelTimesUpdated)
from twin.networks.base import Layer
from twin.networks.od_demand import OdDemand, TripRates, activity_places, city_zones, hourly_demand
from twin.networks.road import RoadNetwork
from twin.networks.road_city import city_road_network, zone_skim_min

if TYPE_CHECKING:
    from twin.twin import Twin

H = 3600.0


@dataclass
class _Totals:
    """Running sums over simulated time (street links only, unless said)."""

    veh_h: float = 0.0                 # all links, access connectors included
    street_veh_h: float = 0.0
    veh_km: float = 0.0
    delay_veh_h: float = 0.0
    incident_extra_veh_h: float = 0.0
    assignments: int = 0
    iterations: int = 0
    unserved_veh: float = 0.0


class TrafficLayer(Layer):
    """Car traffic on the city's streets, re-equilibrated each period and on incidents.

    Parameters
    ----------
    period_s : length of a demand period (the OD matrix of the hour it starts in).
    clock_offset_s : time of day at the twin's time 0 (periods follow the calendar hour).
    gap : relative gap each assignment is solved to; ``max_iterations`` caps it; ``method``
        the solver (:func:`twin.engines.assignment.assign`).
    demand_scale : factor on the whole demand (1 = the rates of :class:`TripRates`).
    rates : trip rates and profiles; ``zone_size_m`` the side of a zone's square.
    flood_close_lps : a flood with at least this flow closes its streets (None: never);
        only those within ``flood_close_within_m`` of the water, when given.
    flood_closure_s : how long such a closure lasts (None: until a ``StreetReopened``).
    top_affected : how many streets a ``TravelTimesUpdated`` names.
    network, demand : a prebuilt road network and demand (e.g. from OpenStreetMap) instead
        of the city's; ``streets`` then gives the street geometries for :meth:`elements`.
    """

    name = "traffic"

    def __init__(self, *, period_s: float = H, clock_offset_s: float = 0.0, gap: float = 1e-4,
                 max_iterations: int = 200, method: str = "auto", demand_scale: float = 1.0,
                 rates: TripRates | None = None, zone_size_m: float = 400.0,
                 flood_close_lps: float | None = 50.0, flood_close_within_m: float | None = None,
                 flood_closure_s: float | None = None,
                 top_affected: int = 10, network: RoadNetwork | None = None,
                 demand: OdDemand | None = None, streets: gpd.GeoDataFrame | None = None,
                 incident_batch_s: float = 0.0) -> None:
        if period_s <= 0:
            raise ValueError(f"traffic layer: period_s must be > 0, got {period_s}")
        self.period_s = float(period_s)
        self.clock_offset_s = float(clock_offset_s)
        self.gap = float(gap)
        self.max_iterations = int(max_iterations)
        self.method = method
        self.demand_scale = float(demand_scale)
        self.rates = rates or TripRates()
        self.zone_size_m = float(zone_size_m)
        self.flood_close_lps = flood_close_lps
        self.flood_close_within_m = flood_close_within_m
        self.flood_closure_s = flood_closure_s
        self.top_affected = int(top_affected)
        # incidents within this time of the last solution wait for one solution together
        # (a storm closing streets minute after minute); 0: each instant is solved at once
        self.incident_batch_s = max(float(incident_batch_s), 0.0)
        self.base_network: RoadNetwork | None = network
        self.demand: OdDemand | None = demand
        self.streets: gpd.GeoDataFrame | None = streets
        self.zones: gpd.GeoDataFrame | None = None
        self.twin: "Twin | None" = None
        self.closed: dict[str, int] = {}             # street -> closures in force
        self.lanes_lost: dict[str, int] = {}         # street -> lanes closed per direction
        self.result: AssignmentResult | None = None  # current solution
        self.intact: AssignmentResult | None = None  # same demand without incidents
        self.network: RoadNetwork | None = None      # with the incidents in force
        self.totals = _Totals()
        self.incidents: list[dict[str, Any]] = []    # one row per re-equilibration
        self.peak_tstt_veh_h = 0.0
        self._since_s = 0.0
        self._hour = 0
        self._causes: list[Event] = []             # incidents since the last solution
        self._incident_pairs: list[tuple[AssignmentResult, AssignmentResult]] = []
        self._reopenings: list[tuple[float, tuple[str, ...], int | None]] = []
        self._restored: dict[str, Any] | None = None

    # ------------------------------------------------------------------ build
    def build(self, twin: "Twin") -> None:
        self.twin = twin
        if self.base_network is None:
            if twin.city is None:
                raise ValueError("traffic layer: no road network given and the twin has no city")
            city = twin.city
            places = activity_places(city, twin.rng.stream("traffic.demand"),
                                     jobs_per_resident=self.rates.jobs_per_resident)
            self.zones = city_zones(city, places, self.zone_size_m)
            self.base_network = city_road_network(city, self.zones)
            if self.streets is None:
                self.streets = city.streets
        elif self.base_network.links["street_id"].isna().all():
            self.base_network = _with_street_ids(self.base_network)
        if self.demand is None:
            if self.zones is None:
                raise ValueError("traffic layer: a prebuilt network needs its demand too")
            self.demand = hourly_demand(self.zones, zone_skim_min(self.base_network), self.rates)
        self.network = self.base_network
        links = self.base_network.links
        self._street_link = np.flatnonzero(links["street_id"].notna().to_numpy())
        sl = links.iloc[self._street_link]
        self.street_ids = sl["street_id"].astype(str).to_numpy()
        self.link_ids = _link_ids(sl, self.streets)
        self._length_km = sl["length_m"].to_numpy(float) / 1000.0
        self._fft_s = sl["free_flow_time_min"].to_numpy(float) * 60.0
        self.known_streets = set(self.street_ids)

    def check_event(self, event: Event) -> list[str]:
        if isinstance(event, (StreetClosed, StreetReopened, LanesClosed, LanesReopened)):
            unknown = [s for s in event.street_ids if s not in self.known_streets]
            return [f"unknown street {s!r} in the road network" for s in unknown]
        return []

    # ------------------------------------------------------------------ step
    def start(self, twin: "Twin") -> None:
        for cls in (StreetClosed, StreetReopened, LanesClosed, LanesReopened, StreetFlooded):
            twin.bus.subscribe(cls, self.apply)
        if self._restored is not None:
            self._resume(self._restored)
        twin.clock.process(self._periods())

    def _periods(self):
        clock = self.twin.clock
        while True:
            self._settle()
            into = (self.clock_offset_s + clock.now_s) % self.period_s
            yield clock.timeout(self.period_s - into if into > 1e-6 else self.period_s)

    def _hour_at(self, time_s: float) -> int:
        return int((self.clock_offset_s + time_s) // H) % 24

    def period_demand(self) -> np.ndarray:
        """The OD matrix (veh/h) of the current period."""
        return self.demand.hour(self._hour) * self.demand_scale

    def _settle(self) -> None:
        """Re-equilibrate now if the period's demand or the network changed since the last
        solution; every change at one instant makes one solution (one record)."""
        now = self.twin.clock.now_s
        hour = self._hour_at(now)
        causes, self._causes = self._causes, []
        if self.result is not None and hour == self._hour \
                and self.network is self.result.network:
            return
        self._accumulate(now)
        before = self.result
        if before is not None and hour != self._hour and self.network is not before.network:
            # a new period and an incident at once: the new demand on the old network first,
            # so the incident is measured against the same demand
            self._hour = hour
            before = self._assign(before.network, self.period_demand(), before)
        self._hour = hour
        demand = self.period_demand()
        result = self._assign(self.network, demand, before)
        intact = None
        if self.network is not self.base_network:      # an incident in force: also without it
            before_intact = before is not None and before.network is self.base_network
            if causes and before_intact:
                intact = before                          # same demand, same intact network
            else:
                warm = self.intact if self.intact is not None else (before if before_intact
                                                                     else None)
                intact = self._assign(self.base_network, demand, warm)
        incident = before is not None and before.network is not result.network
        self.result, self.intact = result, intact
        self._since_s = now
        cause = causes[0] if causes else None
        self._publish(now, before, cause)
        self._record(now, before if incident else None)
        if incident:
            # kept for incident_change() without the solver's path store (hundreds of MB a
            # solution on a large city, and a storm closes hundreds of streets)
            self._incident_pairs.append((replace(before, state=None), replace(result, state=None)))
            self.incidents.append({
                "time_s": now, "event_ids": tuple(c.event_id for c in causes),
                "kinds": tuple(c.kind for c in causes),
                "streets": tuple(s for c in causes for s in getattr(c, "street_ids", ())),
                "tstt_before_veh_h": before.tstt_veh_h, "tstt_after_veh_h": result.tstt_veh_h,
                "iterations": result.iterations,
                "extra_veh_h_per_h": result.tstt_veh_h - (intact or result).tstt_veh_h})

    def _assign(self, network: RoadNetwork, demand: np.ndarray,
                warm: AssignmentResult | None) -> AssignmentResult:
        result = assign(network, demand, gap=self.gap, max_iterations=self.max_iterations,
                        method=self.method, warm_start=warm, unreachable="drop")
        self.totals.assignments += 1
        self.totals.iterations += result.iterations
        return result

    def _accumulate(self, now: float) -> None:
        """Add the current solution's travel over [since, now] to the totals."""
        if self.result is None or now <= self._since_s:
            return
        hours = (now - self._since_s) / H
        flow, time_s = self._street_values(self.result)
        t = self.totals
        t.veh_h += self.result.tstt_veh_h * hours
        t.street_veh_h += float(flow @ time_s) / H * hours
        t.veh_km += float(flow @ self._length_km) * hours
        t.delay_veh_h += float(flow @ (time_s - self._fft_s)) / H * hours
        if self.intact is not None:
            t.incident_extra_veh_h += (self.result.tstt_veh_h - self.intact.tstt_veh_h) * hours
        t.unserved_veh += float(self.result.unserved["demand_veh_h"].sum()) * hours

    def incident_change(self, top: int = 10, which: int = -1) -> AssignmentChange | None:
        """An incident's change of total travel time and its ``top`` most affected links
        (same demand before and after); ``which`` indexes :attr:`incidents` (default the
        last). None before any incident."""
        if not self._incident_pairs:
            return None
        return compare(*self._incident_pairs[which], top=top)

    def _street_values(self, result: AssignmentResult) -> tuple[np.ndarray, np.ndarray]:
        return (result.link_flow_veh_h[self._street_link],
                result.link_time_s[self._street_link])

    # ------------------------------------------------------------------ incidents
    def apply(self, event: Event) -> None:
        if isinstance(event, StreetFlooded):
            self._flooded(event)
            return
        ids = [s for s in event.street_ids if s in self.known_streets]
        if not ids:
            return
        if isinstance(event, StreetClosed):
            for s in ids:
                self.closed[s] = self.closed.get(s, 0) + 1
        elif isinstance(event, StreetReopened):
            for s in ids:          # reopening ends every closure of the street
                self.closed.pop(s, None)
        elif isinstance(event, LanesClosed):
            for s in ids:
                self.lanes_lost[s] = self.lanes_lost.get(s, 0) + int(event.lanes)
        elif isinstance(event, LanesReopened):
            for s in ids:
                left = self.lanes_lost.get(s, 0) - int(event.lanes)
                if left > 0:
                    self.lanes_lost[s] = left
                else:
                    self.lanes_lost.pop(s, None)
        self.network = self._incident_network()
        self._causes.append(event)
        if self.result is not None and len(self._causes) == 1:
            self.twin.clock.process(self._settle_soon())

    def _settle_soon(self):
        """Solve once after every event of this instant has been applied (with an
        ``incident_batch_s``, not before that long after the last solution)."""
        wait = max(self._since_s + self.incident_batch_s - self.twin.clock.now_s, 0.0)
        yield self.twin.clock.timeout(wait)
        self._settle()

    def _incident_network(self) -> RoadNetwork:
        """The base network with the closures and lane losses in force."""
        if not self.closed and not self.lanes_lost:
            return self.base_network
        net = self.base_network
        links = net.links
        for street, lost in self.lanes_lost.items():
            for k in net.links_on_streets([street]):
                lanes = float(links.at[k, "lanes"])
                # losing every lane of a direction leaves one lane shared by both directions
                # in turn (signals or flaggers): half a lane's capacity
                net = net.set_lanes([k], lanes - lost if lanes - lost >= 1 else 0.5)
        return net.close(net.links_on_streets(self.closed))

    def _flooded(self, ev: StreetFlooded) -> None:
        if self.flood_close_lps is None or ev.flow_lps < self.flood_close_lps:
            return
        streets = tuple(s for s in ev.street_ids if s in self.known_streets)
        if self.flood_close_within_m is not None and self.streets is not None and streets:
            near = self.streets.geometry.loc[list(streets)].distance(Point(ev.x, ev.y))
            streets = tuple(near.index[near.to_numpy() <= self.flood_close_within_m])
        if not streets:
            return
        now = self.twin.clock.now_s
        closed = self.twin.publish(StreetClosed(time_s=now, source=self.name,
                                                cause_id=ev.event_id or None,
                                                street_ids=streets, reason="flooded"))
        if self.flood_closure_s is not None:
            self._reopen_at(now + float(self.flood_closure_s), streets, closed.event_id)

    def _reopen_at(self, due_s: float, streets: tuple[str, ...], cause_id: int | None) -> None:
        """Reopen ``streets`` at ``due_s`` (kept as data, so a fork reopens them too)."""
        self._reopenings.append((due_s, streets, cause_id))
        self.twin.schedule([StreetReopened(time_s=due_s, source=self.name, cause_id=cause_id,
                                           street_ids=streets)])

    # ------------------------------------------------------------------ outputs
    def street_times(self, result: AssignmentResult | None = None) -> pd.Series:
        """Per street: mean travel time of its open directions (s); ``inf`` if closed."""
        result = result or self.result
        flow, time_s = self._street_values(result)
        open_ = result.network.links["open"].to_numpy(bool)[self._street_link]
        frame = pd.DataFrame({"street_id": self.street_ids, "t": np.where(open_, time_s, np.nan),
                              "q": flow})
        g = frame.groupby("street_id", sort=False)
        return g["t"].mean().fillna(np.inf).rename("travel_time_s")

    def street_flows(self, result: AssignmentResult | None = None) -> pd.Series:
        """Per street: flow of both directions (veh/h)."""
        result = result or self.result
        flow, _ = self._street_values(result)
        return pd.Series(flow, index=self.street_ids).groupby(level=0, sort=False).sum() \
            .rename("flow_veh_h")

    def _publish(self, now: float, before: AssignmentResult | None, cause: Event | None) -> None:
        times = self.street_times()
        old = self.twin.street_times_s
        self.twin.street_times_s = times
        self.twin.street_flows_veh_h = self.street_flows()
        if old is None or before is None:
            change = pd.Series(0.0, index=times.index)
        else:
            a, b = old.reindex(times.index).to_numpy(), times.to_numpy()
            with np.errstate(invalid="ignore"):         # inf - inf: closed before and after
                diff = np.abs(b - a)
            change = pd.Series(np.where(np.isinf(a) & np.isinf(b), 0.0, diff), index=times.index)
        top = change[change > 0].sort_values(ascending=False, kind="stable")[:self.top_affected]
        tstt_change = 0.0 if before is None else self.result.tstt_veh_h - before.tstt_veh_h
        self.peak_tstt_veh_h = max(self.peak_tstt_veh_h, self.result.tstt_veh_h)
        self.twin.publish(TravelTimesUpdated(time_s=now, source=self.name,
                                             cause_id=None if cause is None else cause.event_id,
                                             street_ids=tuple(top.index),
                                             tstt_change_veh_h=float(tstt_change)))

    def _record(self, now: float, before: AssignmentResult | None) -> None:
        rec, ids = self.twin.recorder, self.link_ids
        flow, time_s = self._street_values(self.result)
        open_ = self.result.network.links["open"].to_numpy(bool)[self._street_link]
        rec.record(now, self.name, "flow", "veh/h", ids, flow)
        rec.record(now, self.name, "travel_time", "s", ids, np.where(open_, time_s, np.nan))
        speed = np.divide(self._length_km * 3600.0, time_s, out=np.full(len(ids), np.nan),
                          where=open_ & (time_s > 0))
        rec.record(now, self.name, "speed", "km/h", ids, speed)
        rec.record(now, self.name, "tstt", "veh*h/h", ("all",), [self.result.tstt_veh_h])
        no_incident = (self.intact or self.result).tstt_veh_h
        rec.record(now, self.name, "tstt_no_incident", "veh*h/h", ("all",), [no_incident])
        if before is not None:
            _, old = self._street_values(before)
            old_open = before.network.links["open"].to_numpy(bool)[self._street_link]
            change = np.where(open_ & old_open, time_s - old, np.nan)
            rec.record(now, self.name, "time_change", "s", ids, change)

    def kpis(self) -> dict[str, float]:
        self._accumulate(self.twin.clock.now_s if self.twin else 0.0)
        if self.twin is not None:
            self._since_s = self.twin.clock.now_s
        t = self.totals
        return {
            "total_travel_time_veh_h": t.veh_h,
            "vehicle_km": t.veh_km,
            "mean_speed_kph": t.veh_km / t.street_veh_h if t.street_veh_h > 0 else math.nan,
            "delay_veh_h": t.delay_veh_h,
            "incident_extra_veh_h": t.incident_extra_veh_h,
            "peak_hour_travel_time_veh_h": self.peak_tstt_veh_h,
            "unserved_trips_veh": t.unserved_veh,
            "daily_trips_veh": self.demand.daily_trips * self.demand_scale if self.demand else 0.0,
            "assignments": float(t.assignments),
            "mean_iterations": t.iterations / t.assignments if t.assignments else 0.0,
        }

    def elements(self) -> dict[str, gpd.GeoDataFrame]:
        """``links``: the directed street links with their current state; ``zones``."""
        links = self.base_network.links.iloc[self._street_link]
        frame = pd.DataFrame({
            "street_id": self.street_ids, "init_node": links["init_node"].to_numpy(),
            "term_node": links["term_node"].to_numpy(),
            "street_class": links.get("street_class", pd.Series("", index=links.index)).to_numpy(),
            "length_m": links["length_m"].to_numpy(float),
            "lanes": links["lanes"].to_numpy(float),
            "capacity_veh_h": links["capacity_veh_h"].to_numpy(float),
            "free_flow_time_s": self._fft_s,
        }, index=pd.Index(self.link_ids, name="link_id"))
        if self.result is not None:
            flow, time_s = self._street_values(self.result)
            frame["flow_veh_h"] = flow
            frame["travel_time_s"] = time_s
            frame["open"] = self.result.network.links["open"].to_numpy(bool)[self._street_link]
        if self.streets is not None:
            geometry = self.streets.geometry.reindex(self.street_ids).to_numpy()
        else:                          # straight lines between the nodes (None where unknown)
            xy = self.base_network.nodes[["x", "y"]]
            a = xy.loc[frame["init_node"]].to_numpy(float)
            b = xy.loc[frame["term_node"]].to_numpy(float)
            geometry = shapely.linestrings(np.stack([a, b], axis=1))
            geometry[~np.isfinite(np.hstack([a, b])).all(axis=1)] = None
        out = {"links": gpd.GeoDataFrame(frame, geometry=geometry,
                                         crs=None if self.streets is None else self.streets.crs)}
        if self.zones is not None:
            out["zones"] = gpd.GeoDataFrame(self.zones[["kind", "population", "jobs"]],
                                            geometry=self.zones.geometry, crs=self.zones.crs)
        return out

    # ------------------------------------------------------------------ forks
    def snapshot(self) -> dict[str, Any]:
        """Incidents in force (and the flood closures' reopening times), the current
        solution (flows, times, solver paths), totals."""
        now = self.twin.clock.now_s
        self._accumulate(now)               # the totals up to now, not to the last solution
        self._since_s = now
        def sol(r: AssignmentResult | None):
            return None if r is None else {"flow": r.link_flow_veh_h.copy(),
                                           "time": r.link_time_min.copy(), "state": r.state,
                                           "method": r.method}
        return {"time_s": now, "time_of_day_s": self.clock_offset_s,
                "closed": dict(self.closed), "lanes_lost": dict(self.lanes_lost),
                "result": sol(self.result), "intact": sol(self.intact),
                "totals": vars(self.totals).copy(), "peak_tstt_veh_h": self.peak_tstt_veh_h,
                "reopen_in_s": [(due - now, streets, None) for due, streets, _ in
                                self._reopenings if due > now]}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` of a layer built from the same city and options:
        the fork's time 0 is the snapshot's time (its time of day follows), the incidents
        in force stay, the first assignment is warm-started from the snapshot's solution."""
        self.clock_offset_s = float(state["time_of_day_s"]) + float(state["time_s"])
        self._restored = state

    def _resume(self, state: dict[str, Any]) -> None:
        self.closed, self.lanes_lost = dict(state["closed"]), dict(state["lanes_lost"])
        self.network = self._incident_network()
        self.totals = _Totals(**state["totals"])
        for in_s, streets, cause_id in state.get("reopen_in_s", []):
            self._reopen_at(float(in_s), tuple(streets), cause_id)
        self.peak_tstt_veh_h = float(state["peak_tstt_veh_h"])

        def back(sol, network):
            if sol is None:
                return None
            return AssignmentResult(network=network, link_flow_veh_h=sol["flow"],
                                    link_time_min=sol["time"],
                                    history=pd.DataFrame(columns=["iteration", "relative_gap",
                                                                  "beckmann", "tstt", "seconds"]),
                                    method=sol["method"], converged=True, state=sol["state"])
        self.result = back(state["result"], self.network)
        self.intact = back(state["intact"], self.base_network)


def _with_street_ids(network: RoadNetwork) -> RoadNetwork:
    """A copy where each link between two through nodes is on street ``"a-b"`` (its end
    nodes in sorted order, so both directions share it); links of zone nodes stay off-street
    (a TNTP network has no streets: its node pairs stand for them)."""
    links = network.links.copy()
    through = network.nodes["through"]
    ends = links[["init_node", "term_node"]].astype(str)
    pair = np.where(ends["init_node"] <= ends["term_node"],
                    ends["init_node"] + "-" + ends["term_node"],
                    ends["term_node"] + "-" + ends["init_node"])
    on_street = (links["init_node"].map(through) & links["term_node"].map(through)).to_numpy(bool)
    links["street_id"] = np.where(on_street, pair, None)
    return replace(network, links=links)


def _link_ids(links: pd.DataFrame, streets: gpd.GeoDataFrame | None) -> list[str]:
    """``<street_id>/ab`` for a link along its street's u -> v, ``/ba`` against it."""
    sid = links["street_id"].astype(str).to_numpy()
    if streets is None or "u" not in streets:
        return [f"{s}/{i}" for i, s in enumerate(sid)]
    u = streets["u"].reindex(sid).to_numpy()
    along = links["init_node"].to_numpy() == u
    return [f"{s}/{'ab' if a else 'ba'}" for s, a in zip(sid, along)]
