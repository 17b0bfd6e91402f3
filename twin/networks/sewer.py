"""Sewer and stormwater layer: SWMM 5 (pyswmm) stepped on the twin's clock.

The model is any SWMM .inp, or the combined sewer generated along the demo city's
streets (:mod:`twin.networks.sewer_model`). Each control step the layer applies what
happened on the bus (rain, blockages, pump outages, water from a main break), the
dry-weather inflow from the water layer's demands when there is one, and the control
strategy's settings; then SWMM routes to the next step and the layer reads depths,
flows, overflows and flooding, records them and publishes :class:`SewerFlooding` and
:class:`OverflowSpill`. SWMM allows one simulation per process (see
:mod:`twin.engines.swmm`); a fork is "the .inp plus a hot-start file"
(:meth:`SewerLayer.snapshot`), continued in another process.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from shapely.geometry import LineString, Point
from swmm.toolkit import shared_enum as se
from swmm.toolkit import solver

from twin.engines.swmm import (CONDUIT, LINK_TYPE_NAMES, NODE_TYPE_NAMES, OUTFALL, PUMP,
                               STORAGE, SwmmRun, SwmmSummary)
from twin.errors import BadInput
from twin.events import (Alert, ConduitBlocked, Event, LeakStopped, OverflowSpill, PipeBurst,
                         Rainfall, RepairDone, SewerFlooding, SewerPumpOutage, StreetFlooded)
from twin.networks.base import Layer
from twin.networks.sewer_control import ControlLayout, SewerState, Strategy, Uncontrolled
from twin.networks.sewer_graph import (full_flow, inp_sections, node_coordinates,
                                       sewer_graph)

if TYPE_CHECKING:
    from twin.twin import Twin

# model flow units per L/s
FLOW_PER_LPS = {"CFS": 1 / 28.316846592, "GPM": 15.850323, "MGD": 0.022824465, "CMS": 0.001,
                "LPS": 1.0, "MLD": 0.0864}
M_PER_FT = 0.3048
SPILL_THRESHOLD_LPS = 1.0        # a CSO spills when its outflow exceeds this


@dataclass
class _Rain:
    start_s: float
    step_s: float
    intensities: np.ndarray          # mm/h
    gages: tuple[int, ...]
    event_id: int | None = None      # the Rainfall event: the cause of the floods it brings


class SewerLayer(Layer):
    """A sewer network stepped on the twin's clock.

    Parameters
    ----------
    model : a SWMM .inp path; ``None`` generates the combined sewer of the twin's city.
    control_step_s : how often the layer reads the state and applies controls (SWMM's
        own routing step is unchanged).
    horizon_s : moves the model's end date to start + horizon (default: the file's).
    strategy : a :class:`~twin.networks.sewer_control.Strategy` or a strategy name
        (``uncontrolled``, ``rule_based``, ``equal_filling``; the last two need a
        ``layout``, which the generated demo sewer brings).
    cso_outfalls / plant_outfalls : outfall ids counted as overflows / treated water
        (default for the demo sewer: its river outfalls and its plant).
    return_factor : share of the water consumed that returns to the sewer (coupling).
    couple_water : take dry-weather inflow from the twin's water layer when there is one.
    """

    name = "sewer"

    def __init__(self, model: str | Path | None = None, *, control_step_s: float = 300.0,
                 horizon_s: float | None = None, strategy: Strategy | str | None = None,
                 layout: ControlLayout | None = None,
                 cso_outfalls: Iterable[str] | None = None,
                 plant_outfalls: Iterable[str] | None = None, return_factor: float = 0.8,
                 couple_water: bool = True, record: Iterable[str] = ("depth", "flow", "flooding"),
                 demo_options: dict | None = None, crs: str | None = None) -> None:
        if not control_step_s > 0:
            raise BadInput(f"sewer layer: control step must be > 0 s, got {control_step_s}")
        self._model_arg = model
        self.control_step_s = float(control_step_s)
        self.horizon_s = horizon_s
        self._strategy_arg = strategy
        self.layout = layout
        self._cso_arg = None if cso_outfalls is None else list(cso_outfalls)
        self._plant_arg = None if plant_outfalls is None else list(plant_outfalls)
        self.return_factor = float(return_factor)
        self.couple_water = couple_water
        self.record_quantities = tuple(record)
        self.demo_options = dict(demo_options or {})
        self.crs = crs
        self.run: SwmmRun | None = None
        self.summary: SwmmSummary | None = None
        self.twin: "Twin | None" = None
        self.model = None                 # the generated SewerModel, for the demo city
        self.strategy: Strategy = Uncontrolled()
        self._rains: list[_Rain] = []
        self._rain_active = False
        self._held: dict[int, int] = {}           # link -> outages holding it closed
        self._limits: dict[int, tuple[float, int]] = {}   # conduit -> (own limit, blocks)
        self._pending: list[tuple[float, str, tuple]] = []
        self._burst_inflow: dict[int, tuple[int, float]] = {}   # burst event id -> (node, L/s)
        self._burst_pipe: dict[int, tuple[str, float]] = {}     # burst event id -> (pipe, t)
        self._api_inflow: np.ndarray | None = None
        self._water_map: tuple[pd.Index, np.ndarray] | None = None
        self.cso_duration_s = 0.0
        self.spill_events = 0
        self.flood_events = 0
        self.steps = 0

    # ------------------------------------------------------------------ build
    def build(self, twin: "Twin") -> None:
        self.twin = twin
        start = twin.clock.start if hasattr(twin.clock, "start") else None
        if self._model_arg is None:
            if twin.city is None:
                raise ValueError("sewer layer: no model given and the twin has no city")
            from twin.networks.sewer_model import build_sewer_model

            coupled = self.couple_water and "water" in twin.layers
            self.model = build_sewer_model(twin.city, start=start,
                                           horizon_s=self.horizon_s or 86_400.0,
                                           dry_weather_flow=not coupled, **self.demo_options)
            self.run = SwmmRun(inp_text=self.model.inp_text, label="generated demo sewer")
            self.layout = self.layout or self.model.layout
            self.crs = self.crs or twin.city.crs
        else:
            self.run = SwmmRun(self._model_arg)
            if self.horizon_s is not None:
                self.run.sim.end_time = self.run.start_time + dt.timedelta(seconds=self.horizon_s)
                self.run.end_time = self.run.sim.end_time
        try:
            self._index_model()
        except BaseException:          # a refused strategy or outfall: release SWMM
            self.close()
            raise

    def _index_model(self) -> None:
        run = self.run
        self.sections = inp_sections(run.inp_text)
        self.xy = node_coordinates(self.sections)
        outfall_ids = [run.node_ids[i] for i in run.outfalls]
        cso = self._cso_arg if self._cso_arg is not None else \
            (self.model.cso_outfalls if self.model is not None else [])
        plant = self._plant_arg if self._plant_arg is not None else \
            (self.model.plant_outfalls if self.model is not None else [])
        for kind, ids in (("overflow", cso), ("treatment", plant)):
            unknown = [o for o in ids if o not in outfall_ids]
            if unknown:
                raise BadInput(f"{run.label}: unknown {kind} outfall {unknown[0]!r} (the model's "
                               f"outfalls: {', '.join(outfall_ids[:8])})")
        self.cso_idx = np.array([run.node_index[o] for o in cso], dtype=int)
        self.plant_idx = np.array([run.node_index[o] for o in plant], dtype=int)
        self.strategy = self._make_strategy(self._strategy_arg)
        subs = {}
        for i, sid in enumerate(run.subcatch_ids):
            kind, k = solver.subcatch_get_connection(i)
            if int(getattr(kind, "value", kind)) == se.ObjectType.NODE.value:
                subs[sid] = run.node_ids[k]
        self.graph = sewer_graph(dict(zip(run.link_ids, run.link_ends)),
                                 {lid: LINK_TYPE_NAMES[int(t)] for lid, t in
                                  zip(run.link_ids, run.link_types)}, subs)
        self.flow_per_lps = FLOW_PER_LPS.get(run.flow_units, 1.0)
        self.length_to_m = 1.0 if run.si else M_PER_FT
        self._full_flow: dict[str, float] | None = None

    def _make_strategy(self, arg: Strategy | str | None) -> Strategy:
        from twin.networks.sewer_control import make_strategy

        strategy = make_strategy(arg, self.layout) if isinstance(arg, str) else (arg or Uncontrolled())
        run = self.run
        layout = getattr(strategy, "layout", None)
        if layout is not None:
            layout.check(set(run.node_ids), set(run.link_ids), f"strategy {strategy.name!r}")
        settable = {lid for lid, t in zip(run.link_ids, run.link_types) if int(t) != CONDUIT}
        for act in strategy.actuators():
            if act not in settable:
                what = "a conduit (not settable)" if act in run.link_index else "no such link"
                raise BadInput(f"strategy {strategy.name!r}: unknown actuator {act!r}: {what}; "
                               f"actuators are the model's pumps, orifices, weirs and outlets "
                               f"({len(settable)})")
        return strategy

    def check_event(self, event: Event) -> list[str]:
        run = self.run
        if isinstance(event, ConduitBlocked):
            k = run.link_index.get(event.conduit_id)
            if k is None or int(run.link_types[k]) != CONDUIT:
                return [f"unknown conduit {event.conduit_id!r} in the sewer network"]
            if event.conduit_id not in self.full_flows():
                return [f"conduit {event.conduit_id!r}: its full-pipe flow is unknown (only "
                        "circular and rectangular shapes can be blocked)"]
            if not 0 <= event.capacity_fraction < 1:
                return [f"a blockage leaves 0 to <1 of the capacity, got {event.capacity_fraction}"]
        elif isinstance(event, SewerPumpOutage):
            k = run.link_index.get(event.pump_id)
            if k is None or int(run.link_types[k]) != PUMP:
                return [f"unknown pump {event.pump_id!r} in the sewer network"]
        elif isinstance(event, Rainfall):
            unknown = [g for g in event.gages if g not in run.gage_ids]
            if unknown:
                return [f"unknown rain gage {unknown[0]!r} in the sewer network"]
            if not run.gage_ids:
                return ["the sewer model has no rain gage to rain on"]
        return []

    def element_kinds(self) -> dict[str, set[str]]:
        """Ids by kind, for checking a scenario's sewer events before the run."""
        run = self.run
        return {"sewer_conduit": {l for l, t in zip(run.link_ids, run.link_types) if int(t) == CONDUIT},
                "sewer_pump": {l for l, t in zip(run.link_ids, run.link_types) if int(t) == PUMP}}

    def full_flows(self) -> dict[str, float]:
        """Manning full-pipe flow of each circular/rectangular conduit (model flow units)."""
        if self._full_flow is None:
            run = self.run
            inverts = dict(zip(run.node_ids, run.invert))
            self._full_flow = full_flow(self.sections, inverts, us_units=not run.si)
            if run.flow_units not in ("CFS", "CMS"):      # Manning gives CFS or CMS
                base = 1 / 28.316846592 if not run.si else 0.001
                f = self.flow_per_lps / base
                self._full_flow = {k: v * f for k, v in self._full_flow.items()}
        return self._full_flow

    # ------------------------------------------------------------------ step
    def start(self, twin: "Twin") -> None:
        for cls in (Rainfall, ConduitBlocked, SewerPumpOutage, StreetFlooded, PipeBurst,
                    LeakStopped, RepairDone):
            twin.bus.subscribe(cls, self.apply)
        run = self.run
        self._api_inflow = np.zeros(len(run.node_ids))
        self._flooding = np.zeros(len(run.node_ids), dtype=bool)
        self._spilling = np.zeros(len(self.cso_idx), dtype=bool)
        water = twin.layers.get("water")
        if self.couple_water and water is not None and hasattr(water, "node_demands_lps"):
            self._water_map = self._map_water(water)
        twin.clock.process(self._process())

    def _map_water(self, water: Any) -> tuple[pd.Index, np.ndarray] | None:
        """Each water junction -> the nearest sewer junction (same CRS needed)."""
        nodes = water.elements().get("nodes")
        if nodes is None or not len(nodes) or not self.xy:
            return None
        run = self.run
        cand = [i for i in range(len(run.node_ids))
                if int(run.node_types[i]) == 0 and run.node_ids[i] in self.xy]
        if not cand:
            return None
        tree = cKDTree(np.array([self.xy[run.node_ids[i]] for i in cand]))
        _, near = tree.query(np.column_stack([nodes.geometry.x, nodes.geometry.y]))
        return nodes.index, np.array(cand)[near]

    def _process(self):
        clock, run = self.twin.clock, self.run
        while True:
            now = clock.now_s
            self._apply_inputs(now)
            step = self.control_step_s
            due = self.twin.next_expected_after(now)
            if due is not None and 0 < due - now < step:
                step = due - now
            change = self._next_rain_change(now)
            if change is not None and 0 < change - now < step:
                step = change - now
            moved = run.advance(step)
            if moved <= 0:
                return
            # SWMM is already at now + moved: its floods are published when the clock gets
            # there, so the layers that react to them (and their delays) start on time
            yield clock.timeout(moved)
            self._observe(now + moved, moved)

    def _apply_inputs(self, now: float) -> None:
        run = self.run
        for due, action, args in [p for p in self._pending if p[0] <= now + 1e-9]:
            self._pending.remove((due, action, args))
            {"release": self._release, "unblock": self._unblock}[action](*args)
        if self._rains or self._rain_active:
            per_gage = np.zeros(len(run.gage_ids))
            for rain in self._rains:
                k = int((now - rain.start_s) // rain.step_s)
                if 0 <= k < len(rain.intensities):
                    for g in rain.gages:
                        per_gage[g] += rain.intensities[k]
            unit = 1.0 if run.si else 1 / 25.4
            for g, value in enumerate(per_gage):
                run.set_gage_rainfall(g, value * unit)
            self._rain_active = True
        inflow = self._burst_total_lps()
        if self._water_map is not None:
            water_ids, sewer_nodes = self._water_map
            demand = self.twin.layers["water"].node_demands_lps().reindex(water_ids).fillna(0.0)
            np.add.at(inflow, sewer_nodes, self.return_factor * np.clip(demand.to_numpy(), 0, None))
        changed = np.flatnonzero(np.abs(inflow - self._api_inflow) > 1e-9)
        for i in changed:
            run.set_node_inflow(i, inflow[i] * self.flow_per_lps)
        self._api_inflow = inflow
        for k in self._held:
            run.set_link_setting(k, 0.0)
        settings = self.strategy.act(SewerState(run, now, self.control_step_s))
        for link_id, value in settings.items():
            k = run.link_index[link_id]
            if k not in self._held:
                run.set_link_setting(k, value)

    def _burst_total_lps(self) -> np.ndarray:
        out = np.zeros(len(self.run.node_ids))
        for node, q in self._burst_inflow.values():
            out[node] += q
        return out

    def _next_rain_change(self, now: float) -> float | None:
        times = []
        for rain in self._rains:
            end = rain.start_s + rain.step_s * len(rain.intensities)
            if now < end:
                k = max(math.floor((now - rain.start_s) / rain.step_s) + 1, 0)
                times.append(rain.start_s + k * rain.step_s)
        return min(times) if times else None

    def _rain_cause(self, t: float) -> int | None:
        """The id of the latest rain that started by ``t`` (a flood's cause), if any."""
        started = [r for r in self._rains if r.start_s <= t and r.event_id is not None]
        return max(started, key=lambda r: r.start_s).event_id if started else None

    def _observe(self, t: float, dt_s: float) -> None:
        run, rec = self.run, self.twin.recorder
        self.steps += 1
        depth = run.node_values(se.NodeResult.DEPTH)
        flood = run.node_values(se.NodeResult.FLOOD)
        if "depth" in self.record_quantities:
            rec.record(t, self.name, "depth", "m", run.node_ids, depth * self.length_to_m)
        if "flooding" in self.record_quantities:
            rec.record(t, self.name, "flooding", "L/s", run.node_ids, flood / self.flow_per_lps)
        if "flow" in self.record_quantities:
            rec.record(t, self.name, "flow", "L/s", run.link_ids,
                       run.link_values(se.LinkResult.FLOW) / self.flow_per_lps)
        starts = np.flatnonzero((flood > 0) & ~self._flooding)
        for i in starts:
            self.flood_events += 1
            x, y = self.xy.get(run.node_ids[i], (0.0, 0.0))
            vol = float(flood[i] / self.flow_per_lps / 1000.0 * dt_s)
            self.twin.publish(SewerFlooding(time_s=t, source=self.name,
                                            cause_id=self._rain_cause(t), node_id=run.node_ids[i],
                                            x=x, y=y, volume_m3=vol))
        self._flooding = flood > 0
        if len(self.cso_idx):
            q = run.node_values(se.NodeResult.TOTAL_INFLOW, self.cso_idx) / self.flow_per_lps
            spilling = q > SPILL_THRESHOLD_LPS
            if spilling.any():
                self.cso_duration_s += dt_s
            for j in np.flatnonzero(spilling & ~self._spilling):
                self.spill_events += 1
                oid = run.node_ids[self.cso_idx[j]]
                x, y = self.xy.get(oid, (0.0, 0.0))
                self.twin.publish(OverflowSpill(time_s=t, source=self.name, outfall_id=oid,
                                                x=x, y=y))
            self._spilling = spilling

    # ------------------------------------------------------------------ events
    def apply(self, event: Event) -> None:
        if isinstance(event, PipeBurst):
            self._burst_pipe[event.event_id] = (event.pipe_id, float(event.time_s))
            return
        if isinstance(event, (LeakStopped, RepairDone)):
            self._end_bursts(event)
            return
        if isinstance(event, StreetFlooded):
            self._add_burst(event)
            return
        problems = self.check_event(event)
        if problems:
            self.twin.publish(Alert(time_s=self.twin.clock.now_s, source=self.name,
                                    cause_id=event.event_id or None, layer=self.name,
                                    message=f"{event.kind} refused: " + "; ".join(problems),
                                    severity="error"))
            return
        run = self.run
        if isinstance(event, Rainfall):
            gages = tuple(run.gage_ids.index(g) for g in event.gages) or \
                tuple(range(len(run.gage_ids)))
            self._rains.append(_Rain(float(event.time_s), float(event.step_s),
                                     np.asarray(event.intensities_mm_h, dtype=float), gages,
                                     event.event_id or None))
        elif isinstance(event, SewerPumpOutage):
            k = run.link_index[event.pump_id]
            self._held[k] = self._held.get(k, 0) + 1
            run.set_link_setting(k, 0.0)
            self._until(event.duration_s, "release", k)
        elif isinstance(event, ConduitBlocked):
            k = run.link_index[event.conduit_id]
            own, count = self._limits.get(k, (run.conduit_flow_limit(k), 0))
            self._limits[k] = (own, count + 1)
            limit = self.full_flows()[event.conduit_id] * max(event.capacity_fraction, 1e-6)
            run.set_conduit_flow_limit(k, limit)
            self._until(event.duration_s, "unblock", k)

    def _until(self, duration_s: float | None, action: str, *args) -> None:
        if duration_s is None:
            return
        due = self.twin.clock.now_s + float(duration_s)
        self._pending.append((due, action, args))
        self.twin.expect(due)

    def _release(self, k: int) -> None:
        self._held[k] -= 1
        if self._held[k] <= 0:
            del self._held[k]
            self.run.set_link_setting(k, 1.0)

    def _unblock(self, k: int) -> None:
        own, count = self._limits[k]
        if count <= 1:
            del self._limits[k]
            self.run.set_conduit_flow_limit(k, own)
        else:
            self._limits[k] = (own, count - 1)

    def _add_burst(self, ev: StreetFlooded) -> None:
        """Water from a main break runs into the nearest sewer inlet until the leak stops."""
        run = self.run
        if ev.cause_id is None or ev.cause_id not in self._burst_pipe or not self.xy:
            return
        inlets = [i for i in range(len(run.node_ids)) if int(run.node_types[i]) == 0
                  and run.node_ids[i] in self.xy]
        if not inlets:
            return
        pts = np.array([self.xy[run.node_ids[i]] for i in inlets])
        near = inlets[int(np.argmin(np.hypot(pts[:, 0] - ev.x, pts[:, 1] - ev.y)))]
        self._burst_inflow[ev.cause_id] = (near, float(ev.flow_lps))

    def _end_bursts(self, ev: Event) -> None:
        for burst_id, (pipe, t0) in list(self._burst_pipe.items()):
            if isinstance(ev, LeakStopped):
                match = pipe == ev.pipe_id and (ev.started_at_s is None
                                                or float(ev.started_at_s) == t0)
            else:
                match = ev.layer == "water" and ev.element_id == pipe
            if match:
                self._burst_inflow.pop(burst_id, None)

    def burst_inflows_lps(self) -> dict[str, float]:
        """Sewer node -> water from main breaks flowing in now (L/s)."""
        out: dict[str, float] = {}
        for node, q in self._burst_inflow.values():
            nid = self.run.node_ids[node]
            out[nid] = out.get(nid, 0.0) + q
        return out

    # ------------------------------------------------------------------ results
    def finish(self) -> SwmmSummary:
        """End the SWMM run and read its report (outfall volumes, continuity errors)."""
        if self.summary is None and self.run is not None:
            self._final_stats()
            self.summary = self.run.finish()
        return self.summary

    def _final_stats(self) -> None:
        run = self.run
        self._surcharge_h = {}
        self._max_flow = {}
        for k, lid in enumerate(run.link_ids):
            if int(run.link_types[k]) == CONDUIT:
                st = solver.link_get_stats(k)
                self._surcharge_h[lid] = float(st.timeSurcharged) / 3600.0
                self._max_flow[lid] = float(st.maxFlow) / self.flow_per_lps
        self._kpis = self._live_kpis()

    def _live_kpis(self) -> dict[str, float]:
        run = self.run
        totals = run.routing_totals_m3()
        cso = float(run.cumulative_inflow_m3(self.cso_idx).sum()) if len(self.cso_idx) else 0.0
        treated = float(run.cumulative_inflow_m3(self.plant_idx).sum()) if len(self.plant_idx) else 0.0
        rt = solver.system_get_routing_totals()
        ro = solver.system_get_runoff_totals()
        return {
            "cso_volume_m3": cso,
            "cso_duration_h": self.cso_duration_s / 3600.0,
            "cso_spill_events": float(self.spill_events),
            "flooding_volume_m3": totals["flooding"],
            "flooding_events": float(self.flood_events),
            "treated_volume_m3": treated,
            "outfall_volume_m3": totals["outflow"],
            "runoff_continuity_error_pct": float(ro.pctError),
            "flow_routing_continuity_error_pct": float(rt.pctError),
        }

    def kpis(self) -> dict[str, float]:
        if self.summary is not None:
            out = dict(self._kpis)
            out["runoff_continuity_error_pct"] = self.summary.runoff_continuity_error_pct or 0.0
            out["flow_routing_continuity_error_pct"] = self.summary.flow_routing_continuity_error_pct
            return out
        if self.run is None or self.run.sim is None:
            return {}
        return self._live_kpis()

    def elements(self) -> dict[str, gpd.GeoDataFrame]:
        run = self.run
        f = self.length_to_m
        nodes = gpd.GeoDataFrame(
            {"node_type": [NODE_TYPE_NAMES[int(t)] for t in run.node_types],
             "invert_m": run.invert * f, "full_depth_m": run.full_depth * f,
             "cso": [i in set(self.cso_idx.tolist()) for i in range(len(run.node_ids))]},
            geometry=[Point(self.xy[n]) if n in self.xy else None for n in run.node_ids],
            index=pd.Index(run.node_ids, name="node_id"), crs=self.crs)
        geoms = []
        for a, b in run.link_ends:
            geoms.append(LineString([self.xy[a], self.xy[b]])
                         if a in self.xy and b in self.xy else None)
        surcharge = getattr(self, "_surcharge_h", {})
        max_flow = getattr(self, "_max_flow", {})
        links = gpd.GeoDataFrame(
            {"link_type": [LINK_TYPE_NAMES[int(t)] for t in run.link_types],
             "from_node": [a for a, _ in run.link_ends], "to_node": [b for _, b in run.link_ends],
             "surcharged_h": [surcharge.get(lid, np.nan) for lid in run.link_ids],
             "max_flow_lps": [max_flow.get(lid, np.nan) for lid in run.link_ids]},
            geometry=geoms, index=pd.Index(run.link_ids, name="link_id"), crs=self.crs)
        out = {"nodes": nodes, "links": links}
        if self.model is not None:
            out["subcatchments"] = self.model.subcatchments
        return out

    def snapshot(self) -> dict[str, Any]:
        """A fork's starting point: the model text, SWMM's hot-start file of now, the time,
        and what the layer itself holds (rain still to fall, outages, blockages)."""
        run = self.run
        return {"inp_text": run.inp_text, "hotstart": run.save_hotstart(),
                "time": run.current_time, "time_s": run.elapsed_s,
                "rains": [(r.start_s, r.step_s, r.intensities.tolist(), r.gages) for r in self._rains],
                "held": dict(self._held),
                "limits": {k: (own, count, run.conduit_flow_limit(k))
                           for k, (own, count) in self._limits.items()},
                "pending": list(self._pending)}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (a :meth:`snapshot`): reopen SWMM on the snapshot's model
        from its time with its hot-start file. Call after ``build``, before the run; in a
        process of its own when the original run is still open (one SWMM per process)."""
        end = self.run.end_time
        self.run.close()
        self.run = SwmmRun(inp_text=state["inp_text"], label=self.run.label, start=state["time"],
                           end=end, hotstart=state["hotstart"])
        offset = float(state["time_s"])
        self._rains = [_Rain(t0 - offset, step, np.asarray(vals, dtype=float), tuple(g))
                       for t0, step, vals, g in state.get("rains", [])]
        for k, count in state.get("held", {}).items():
            self._held[int(k)] = count          # set closed again at each control step
        for k, (own, count, current) in state.get("limits", {}).items():
            self._limits[int(k)] = (own, count)
            self.run.set_conduit_flow_limit(int(k), current)
        self._pending = [(max(due - offset, 0.0), action, args)
                         for due, action, args in state.get("pending", [])]

    def close(self) -> None:
        if self.run is not None:
            if self.summary is None and self.run._started:
                try:
                    self.finish()
                except Exception:
                    pass
            self.run.close()
            self.run = None
