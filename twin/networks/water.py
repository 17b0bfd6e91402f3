"""Water distribution layer: WNTR for the model, the EPANET toolkit for stepping.

The network is held as a WNTR ``WaterNetworkModel`` (building, editing, I/O,
GIS) and simulated by one EPANET project opened once and advanced on the
twin's clock (:mod:`twin.engines.epanet`). Events from the bus change the open
project between steps: leaks and bursts (an orifice emitter at a point of a
pipe), valve closures, pump outages, demand surges, fire flows. A burst
publishes a :class:`~twin.events.StreetFlooded` event once its outflow is known.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import geopandas as gpd
import numpy as np
import wntr
from shapely.geometry import Point

from twin.engines import epanet as en
from twin.errors import InpError
from twin.networks.water_io import epanet_pressures, load_inp, network_frames

__all__ = ["WaterLayer", "leak_coefficient_si", "load_inp", "network_frames", "epanet_pressures",
           "InpError"]
from twin.events import (Alert, DemandSurge, Event, FireFlow, LeakStopped, PipeBurst, PumpOutage,
                         StreetFlooded, ValveClosed, ValveOpened)
from twin.networks.base import Layer

if TYPE_CHECKING:
    from twin.twin import Twin

G = 9.81


def leak_coefficient_si(area_m2: float, discharge_coeff: float = 0.75) -> float:
    """Orifice emitter coefficient C with Q[m3/s] = C * sqrt(p[m])."""
    return discharge_coeff * area_m2 * math.sqrt(2 * G)


def _fresh_id(taken: dict, wanted: str) -> str:
    """``wanted``, or ``wanted_2``, ``wanted_3``... whichever the network does not use yet."""
    candidate, i = wanted, 1
    while candidate in taken:
        i += 1
        candidate = f"{wanted}_{i}"
    return candidate


@dataclass
class _Leak:
    pipe_id: str
    node: int                      # engine node index carrying the emitter
    coeff_si: float
    event: PipeBurst
    volume_m3: float = 0.0
    peak_lps: float = 0.0
    announced: bool = False


@dataclass
class _Hold:
    """A link held closed: what it was before, since when, the controls overridden."""
    status: float
    setting: float
    since_s: float
    controls: list
    count: int = 0


@dataclass
class _Stats:
    leak_volume_m3: float = 0.0
    energy_kwh: float = 0.0
    demand_m3: float = 0.0
    delivered_m3: float = 0.0
    deficit_node_hours: float = 0.0
    min_pressure_m: float = math.inf
    max_nodes_below: int = 0
    steps: int = 0
    solves: int = 0
    tank_min_m: dict[str, float] = field(default_factory=dict)
    tank_max_m: dict[str, float] = field(default_factory=dict)


class WaterLayer(Layer):
    """Water network stepped on the twin's clock.

    Parameters
    ----------
    model : a WNTR model, or a path to an EPANET .inp file; ``None`` builds the
        demo network along the twin's city streets.
    horizon_s : simulated duration (EPANET's duration is set to it).
    hydraulic_step_s : hydraulic time step; ``None`` keeps the model's.
    engine : 'wntr' (default: EPANET 2.2 as shipped with WNTR, the engine behind its
        EpanetSimulator, so results agree on any network) or 'owa' (EPANET 2.3 from
        owa-epanet: about 1.5x faster, a newer solver whose results can differ).
    service_pressure_m : pressure below which a junction with demand counts as in deficit.
    planned_bursts : (pipe id, position) pairs known before the run; those pipes are
        split at build so the leak sits exactly there. Unplanned bursts go to the
        nearer end node of the pipe.
    clock_offset_s : where in its patterns and day the model starts (e.g. the time of day
        of the scenario start for a network whose patterns begin at midnight).
    record : quantities to record at each report step.
    engine_pool : where to take an already open EPANET project of ``inp_file`` from and give
        it back to when closing (an ensemble worker's, see ``twin.ensemble_water``): an
        object with ``take(inp_file, library)`` and ``give(project)``. A run that only
        bursts pipes at an end junction (no pipe split) and stops leaks gives the project
        back with its emitters and times restored; any other change closes it.
    """

    name = "water"

    def __init__(self, model: wntr.network.WaterNetworkModel | str | Path | None = None, *,
                 horizon_s: float | None = None, hydraulic_step_s: float | None = None,
                 report_step_s: float | None = None, engine: str = "wntr",
                 service_pressure_m: float = 20.0,
                 planned_bursts: Iterable[tuple[str, float]] = (),
                 clock_offset_s: float = 0.0,
                 record: Iterable[str] = ("pressure", "demand", "flow", "tank_level"),
                 crs: str | None = None, inp_file: str | Path | None = None,
                 engine_pool: Any = None) -> None:
        self._model_arg = model
        self.engine_pool = engine_pool if inp_file is not None else None
        self._pooled = False           # the engine came from engine_pool
        self._reusable = True          # only leaks changed it: it can go back to the pool
        self._pool_times: dict[int, int] = {}
        # an .inp already written from ``model`` (a WNTR model): EPANET opens it as is and
        # nothing is written (ensemble members reuse one file per worker)
        self.inp_file = inp_file
        self.horizon_s = horizon_s
        self.hydraulic_step_s = hydraulic_step_s
        self.report_step_s = report_step_s
        self.engine_name = engine
        self.service_pressure_m = float(service_pressure_m)
        self.planned_bursts = list(planned_bursts)
        self.clock_offset_s = int(clock_offset_s)
        self.record_quantities = tuple(record)
        self.crs = crs
        self.wn: wntr.network.WaterNetworkModel | None = None
        self.engine: en.EpanetProject | None = None
        self.twin: "Twin | None" = None
        self.source_path: str | None = None
        self.leaks: dict[tuple[str, float], _Leak] = {}    # (pipe, start time) -> leak
        self.stats = _Stats()
        self.closed_leaks: list[_Leak] = []
        self._base_emitter: dict[int, float] = {}       # node -> the model's own emitter
        self._split: dict[str, tuple[int, int]] = {}    # pipe -> (leak node, second half)
        self._inserted_nodes: set[int] = set()
        self._holds: dict[int, _Hold] = {}              # link -> held closed
        self._throttled: dict[int, float] = {}          # link -> its own minor loss
        self._fire_category: dict[int, int] = {}        # node -> its fire demand category
        self._fire_lps: dict[int, float] = {}
        self._pending: list[tuple] = []                 # (due_s, action, args)
        self._restored_pending: list[tuple] = []        # from restore(), scheduled at start
        self._settle = 0
        self._stale_emitters: set[int] = set()
        self._surged_nodes: set[str] = set()

    # ------------------------------------------------------------------ build
    def build(self, twin: "Twin") -> None:
        self.twin = twin
        model = self._model_arg
        if model is None:
            if twin.city is None:
                raise ValueError("water layer: no model given and the twin has no city to lay "
                                 "a network along")
            from twin.city.water_network import build_water_network

            # the network belongs to the city (its seed), not to the run: a run's seed
            # changes what is random in a run, never the pipes
            self.wn = build_water_network(twin.city)
            self.crs = self.crs or twin.city.crs
            # the demo city delivers what pressure allows (pressure-driven demand), so a
            # main break shows as water not delivered, not as negative pressures
            hyd = self.wn.options.hydraulic
            hyd.demand_model = "PDA"
            hyd.minimum_pressure = 0.0
            hyd.required_pressure = self.service_pressure_m
            hyd.pressure_exponent = 0.5
        elif isinstance(model, wntr.network.WaterNetworkModel):
            self.wn = model                    # read, never changed: times are set in EPANET
        else:
            self.source_path = str(model)
            self.wn = load_inp(model)
        if self.crs is None and twin.city is not None:
            self.crs = twin.city.crs
        self._open_engine()

    def _open_engine(self) -> None:
        """Write the model once (unless ``inp_file`` holds it), open it in EPANET, insert
        planned leak nodes."""
        if self.engine_pool is not None and self._open_pooled():
            return
        tmp = Path(tempfile.mkdtemp(prefix="twin-water-")) if self.inp_file is None else None
        try:
            inp = Path(self.inp_file) if tmp is None else tmp / "model.inp"
            if tmp is not None:
                wntr.network.write_inpfile(self.wn, str(inp),
                                           units=self.wn.options.hydraulic.inpfile_units,
                                           version=2.2)
            try:
                self.engine = en.EpanetProject(inp, library=self.engine_name)
            except en.EpanetError as exc:
                where = self.source_path or "the water network"
                raise InpError(f"{where}: EPANET cannot load this network: "
                               f"error {exc.code}: {exc.message}") from exc
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        self._configure_engine()

    def _needs_split(self, eng: en.EpanetProject, pipe_id: str, position: float) -> bool:
        k = eng.link_index.get(pipe_id)
        if k is None or eng.link_types[k] not in (en.CVPIPE, en.PIPE):
            return False            # unknown ids and non-pipes are refused when the event comes
        return not (position in (0.0, 1.0) and eng.node_types[
            eng.link_nodes(k)[int(position)]] == en.JUNCTION)

    def _open_pooled(self) -> bool:
        """Take an open project from the pool if this run changes no structure (no pipe
        split): False (and nothing taken) otherwise."""
        try:
            eng = self.engine_pool.take(self.inp_file, self.engine_name)
        except en.EpanetError:
            return False            # opened the usual way below, which reports the error
        if eng is None:
            return False
        if any(self._needs_split(eng, pipe, pos) for pipe, pos in self.planned_bursts):
            self.engine_pool.give(eng)
            return False
        self._pool_times = {what: eng.time_param(what) for what in (
            en.DURATION, en.HYDSTEP, en.REPORTSTEP, en.PATTERNSTART, en.STARTTIME)}
        self.engine, self._pooled = eng, True
        self._configure_engine()
        return True

    def _configure_engine(self) -> None:
        eng = self.engine
        for pipe_id, position in self.planned_bursts:
            k = eng.link_index.get(pipe_id)
            if k is None or pipe_id in self._split or eng.link_types[k] not in (en.CVPIPE, en.PIPE):
                continue            # unknown ids and non-pipes are refused when the event comes
            if position in (0.0, 1.0) and eng.node_types[
                    eng.link_nodes(k)[int(position)]] == en.JUNCTION:
                continue            # a leak at an end junction needs no new node: it goes there
            n = len(self._split) + 1
            node_id, link_id = _fresh_id(eng.node_index, f"LK{n}"), _fresh_id(eng.link_index, f"LKB{n}")
            eng.split_pipe_for_leak(pipe_id, float(position), node_id, link_id)
            self._split[pipe_id] = (eng.node_index[node_id], eng.link_index[link_id])
        self._inserted_nodes = {node for node, _ in self._split.values()}
        if self.horizon_s is not None:
            eng.set_time_param(en.DURATION, int(self.horizon_s))
        report_step = self.report_step_s or self.hydraulic_step_s
        if report_step is not None:        # the report step first: EPANET caps the
            eng.set_time_param(en.REPORTSTEP, int(report_step))   # hydraulic step by it
        if self.hydraulic_step_s is not None:
            eng.set_time_param(en.HYDSTEP, int(self.hydraulic_step_s))
        if self.clock_offset_s:
            eng.shift_clock(self.clock_offset_s)
        self.report_step = eng.time_param(en.REPORTSTEP)
        self.report_start = eng.time_param(en.REPORTSTART)
        self.duration_s = eng.time_param(en.DURATION)
        # consumers' junctions: the leak nodes we inserted are holes in pipes, not customers
        self.junctions = np.array([k for k in np.flatnonzero(eng.node_types == en.JUNCTION)
                                   if k not in self._inserted_nodes], dtype=int)
        self.tanks = np.flatnonzero(eng.node_types == en.TANK)
        self.pumps = np.flatnonzero(eng.link_types == en.PUMP)
        halves = {eng.link_ids[b] for _, b in self._split.values()}
        self.pipe_ids = {lid for lid, t in zip(eng.link_ids, eng.link_types)
                         if t in (en.CVPIPE, en.PIPE) and lid not in halves}
        self.junction_ids = {eng.node_ids[k] for k in self.junctions}
        self._consumer_junctions = set(int(k) for k in self.junctions)
        self.pda = getattr(self.wn.options.hydraulic, "demand_model", "DDA") in ("PDA", "PDD")

    def leak_node_ids(self) -> dict[str, str]:
        """Pipe id -> id of the junction inserted in it for a planned burst."""
        return {pipe: self.engine.node_ids[node] for pipe, (node, _) in self._split.items()}

    def check_event(self, event: Event) -> list[str]:
        eng = self.engine
        refs: list[tuple[str, str, set | dict]] = []
        problems: list[str] = []
        if isinstance(event, (PipeBurst, LeakStopped)):
            refs.append(("pipe", event.pipe_id, self.pipe_ids))
            exponent = eng.option(en.EMITEXPON)
            if isinstance(event, PipeBurst) and abs(exponent - 0.5) > 1e-6:
                problems.append(f"a leak is an orifice (emitter exponent 0.5) but this network "
                                f"sets the emitter exponent to {exponent:g}")
            if (isinstance(event, PipeBurst) and event.pipe_id in self.pipe_ids
                    and event.pipe_id not in self._split
                    and self._end_junction(event.pipe_id, event.position) is None):
                problems.append(f"pipe {event.pipe_id!r} joins no junction to carry a leak")
        elif isinstance(event, (ValveClosed, ValveOpened)):
            refs.append(("link", event.link_id, eng.link_index))
            k = eng.link_index.get(event.link_id)
            kind = None if k is None else int(eng.link_types[k])
            if isinstance(event, ValveClosed) and kind is not None:
                if event.setting <= 0 and kind in (en.CVPIPE, en.GPV):
                    problems.append(f"{event.link_id!r} is a check valve or general-purpose "
                                    "valve: EPANET cannot close it by command")
                elif 0 < event.setting < 1 and kind not in (en.PIPE, en.CVPIPE):
                    problems.append(f"{event.link_id!r} is a pump or valve: only pipes can be "
                                    "throttled (close it, or change the valve's setting)")
        elif isinstance(event, PumpOutage):
            refs.append(("pump", event.pump_id, {eng.link_ids[i] for i in self.pumps}))
        elif isinstance(event, FireFlow):
            refs.append(("junction", event.node_id, self.junction_ids))
        elif isinstance(event, DemandSurge):
            refs.extend(("junction", n, self.junction_ids) for n in event.nodes)
            if not event.factor > 0:
                problems.append(f"a demand surge needs a factor > 0, got {event.factor}")
        problems += [f"unknown {kind} {eid!r} in the water network" for kind, eid, known in refs
                     if eid not in known]
        return problems

    # ------------------------------------------------------------------ step
    def start(self, twin: "Twin") -> None:
        for cls in (PipeBurst, LeakStopped, ValveClosed, ValveOpened, PumpOutage, DemandSurge,
                    FireFlow):
            twin.bus.subscribe(cls, self.apply)
        if self._pooled:        # a project that ran before: back to time 0 (EN_INITFLOW)
            self.engine.restart_hydraulics()
        else:
            self.engine.open_hydraulics()
        for due, action, args in self._restored_pending:
            self._schedule(due, action, args)
        twin.clock.process(self._process())

    def _process(self):
        eng, clock = self.engine, self.twin.clock
        hydstep = eng.time_param(en.HYDSTEP)
        while True:
            t = eng.run()
            while self._settle > 0:    # extra solves at the same time (see _refresh_emitter)
                self._settle -= 1
                t = eng.run()
            self._observe(t)
            # an event due before the next hydraulic time: stop there, not after it
            due = self.twin.next_expected_after(clock.now_s)
            cut = due is not None and 0 < due - clock.now_s < hydstep
            if cut:
                eng.set_time_param(en.HYDSTEP, max(int(round(due - clock.now_s)), 1))
            dt = eng.next()
            if cut:
                eng.set_time_param(en.HYDSTEP, hydstep)
            if dt <= 0:
                return
            self._integrate(dt)
            yield clock.timeout(dt)

    def _observe(self, t: int) -> None:
        """Read the solution at engine time ``t``: record report steps, keep step values."""
        eng, st = self.engine, self.stats
        st.solves += 1
        self._p = eng.pressures_m()
        self._d = eng.demands_lps()
        if self._stale_emitters:
            stale = np.fromiter(self._stale_emitters, dtype=int)
            self._d[stale] = eng.consumer_demands_lps()[stale] if eng.has_arrays else 0.0
        self._e = eng.pump_energy_kw(self.pumps) if len(self.pumps) else None
        self._deficit = eng.demand_deficits_lps() if self.pda else None
        self._leak_now = {}
        leak_at_node = np.zeros(eng.n_nodes)
        for key, leak in self.leaks.items():
            q = self._leak_flow_lps(leak)
            self._leak_now[key] = q
            leak_at_node[leak.node] += q
            leak.peak_lps = max(leak.peak_lps, q)
            if not leak.announced and q > 1e-3:
                leak.announced = True
                self._announce_flood(leak, q)
        j = self.junctions
        pj = self._p[j]
        # what consumers draw: node outflow less the leaks' orifice flow
        self._consumer = np.clip(self._d[j] - leak_at_node[j], 0.0, None)
        st.min_pressure_m = min(st.min_pressure_m, float(pj.min()) if len(pj) else math.inf)
        demanding = self._consumer > 1e-9
        if self.pda and self._deficit is not None:
            demanding |= self._deficit[j] > 1e-9
        for k in self.tanks:
            tid, level = eng.node_ids[k], float(self._p[k])
            st.tank_min_m[tid] = min(st.tank_min_m.get(tid, math.inf), level)
            st.tank_max_m[tid] = max(st.tank_max_m.get(tid, -math.inf), level)
        below = demanding & (pj < self.service_pressure_m)
        st.max_nodes_below = max(st.max_nodes_below, int(below.sum()))
        self._below = int(below.sum())
        if t >= self.report_start and (t - self.report_start) % self.report_step == 0:
            st.steps += 1
            self._record(t)

    def _leak_flow_lps(self, leak: _Leak) -> float:
        p = max(float(self._p[leak.node]), 0.0)
        return leak.coeff_si * math.sqrt(p) * 1000.0

    def _integrate(self, dt: int) -> None:
        st, j = self.stats, self.junctions
        hours = dt / 3600.0
        consumer = self._consumer
        if self.pda and self._deficit is not None:
            delivered = float(consumer.sum())
            required = delivered + float(np.clip(self._deficit[j], 0, None).sum())
        else:   # demand-driven: count as delivered what is served at the service pressure
            required = float(consumer.sum())
            delivered = float(consumer[self._p[j] >= self.service_pressure_m].sum())
        st.demand_m3 += required * dt / 1000.0
        st.delivered_m3 += delivered * dt / 1000.0
        st.deficit_node_hours += self._below * hours
        if self._e is not None:
            st.energy_kwh += float(self._e[self.pumps].sum()) * hours
        for key, q in self._leak_now.items():
            vol = q * dt / 1000.0
            st.leak_volume_m3 += vol
            self.leaks[key].volume_m3 += vol

    def _record(self, t: int) -> None:
        rec, eng = self.twin.recorder, self.engine
        q = self.record_quantities
        if "pressure" in q:
            rec.record(t, self.name, "pressure", "m", eng.node_ids, self._p)
        if "demand" in q:
            rec.record(t, self.name, "demand", "L/s", eng.node_ids, self._d)
        if "head" in q:
            rec.record(t, self.name, "head", "m", eng.node_ids, eng.heads_m())
        if "flow" in q:
            rec.record(t, self.name, "flow", "L/s", eng.link_ids, eng.flows_lps())
        if "tank_level" in q and len(self.tanks):
            rec.record(t, self.name, "tank_level", "m",
                       [eng.node_ids[k] for k in self.tanks], self._p[self.tanks])
        if "energy" in q and len(self.pumps) and self._e is not None:
            rec.record(t, self.name, "pump_power", "kW",
                       [eng.link_ids[k] for k in self.pumps], self._e[self.pumps])

    # ------------------------------------------------------------------ events
    def apply(self, event: Event) -> None:
        problems = self.check_event(event)
        if problems:   # refuse it on the record and keep running: a live twin must not stop
            self.twin.publish(Alert(time_s=self.twin.clock.now_s, source=self.name,
                                    cause_id=event.event_id or None, layer=self.name,
                                    message=f"{event.kind} refused: " + "; ".join(problems),
                                    severity="error"))
            return
        if not isinstance(event, (PipeBurst, LeakStopped)):
            self._reusable = False      # statuses, controls, demands changed: not pooled
        handler = {PipeBurst: self._burst, LeakStopped: self._stop_leak,
                   ValveClosed: self._close_link, ValveOpened: self._open_link,
                   PumpOutage: self._pump_outage, DemandSurge: self._demand_surge,
                   FireFlow: self._fire_flow}[type(event)]
        handler(event)

    # leaks: one orifice per burst; a node's emitter is its own plus its open leaks'
    def _burst(self, ev: PipeBurst) -> None:
        eng = self.engine
        if ev.pipe_id in self._split:
            node = self._split[ev.pipe_id][0]
        else:   # not planned: the nearer end junction carries the leak
            node = self._end_junction(ev.pipe_id, ev.position)
        if node not in self._base_emitter:
            self._base_emitter[node] = eng.node_value(node, en.EMITTER)
        leak = _Leak(ev.pipe_id, node, leak_coefficient_si(ev.leak_area_m2, ev.discharge_coeff),
                     ev)
        self.leaks[(ev.pipe_id, float(ev.time_s))] = leak
        self._refresh_emitter(node)

    def _stop_leak(self, ev: LeakStopped) -> None:
        keys = [key for key in self.leaks if key[0] == ev.pipe_id
                and (ev.started_at_s is None or key[1] == float(ev.started_at_s))]
        nodes = set()
        for key in keys:
            leak = self.leaks.pop(key)
            self.closed_leaks.append(leak)
            nodes.add(leak.node)
        for node in nodes:
            self._refresh_emitter(node)

    def _end_junction(self, pipe_id: str, position: float) -> int | None:
        """The pipe's end junction nearer ``position`` (tanks and reservoirs take no leak)."""
        link = self.wn.get_link(pipe_id)
        ends = [link.start_node_name, link.end_node_name]
        if position > 0.5:
            ends.reverse()
        for end in ends:
            k = self.engine.node_index[end]
            if k in self._consumer_junctions:
                return k
        return None

    def _refresh_emitter(self, node: int) -> None:
        """Emitter of ``node`` = its own (from the model) + the orifices of its open leaks."""
        eng = self.engine
        base = self._base_emitter.get(node, 0.0)
        open_si = sum(lk.coeff_si for lk in self.leaks.values() if lk.node == node)
        if open_si > 0:
            self._stale_emitters.discard(node)
            eng.set_emitter_si(node, open_si)
            if base:
                eng.set_node_value(node, en.EMITTER, eng.node_value(node, en.EMITTER) + base)
            return
        # EPANET stops updating the emitter flow of a node whose coefficient becomes 0 and
        # keeps reporting the last value in its demand (not in its hydraulics). Such nodes'
        # demand is read as consumer demand (EPANET 2.3) or as zero for a leak node of our
        # own, which has no consumers (2.2). On 2.2 an end node that has consumers keeps a
        # negligible coefficient instead (a residual of hundredths of a litre per second).
        if base == 0 and (eng.has_arrays or node in self._inserted_nodes):
            eng.set_node_value(node, en.EMITTER, 0.0)
            self._stale_emitters.add(node)
        else:
            eng.set_node_value(node, en.EMITTER, max(base, 1e-12))
            # EPANET 2.2 relaxes the emitter flow towards the new coefficient over several
            # solves: solve a few more times now, so the repair shows at once
            self._settle = 20

    def _announce_flood(self, leak: _Leak, flow_lps: float) -> None:
        x, y = self._leak_xy(leak)
        radius = max(20.0, 10.0 * math.sqrt(flow_lps))
        streets: tuple[str, ...] = ()
        if self.twin.city is not None and self.crs == self.twin.city.crs:
            near = self.twin.city.streets.distance(Point(x, y)) <= radius
            streets = tuple(self.twin.city.streets.index[near])
        self.twin.publish(StreetFlooded(time_s=self.twin.clock.now_s, source=self.name,
                                        cause_id=leak.event.event_id or None, x=x, y=y,
                                        radius_m=radius, flow_lps=flow_lps, street_ids=streets))

    def _leak_xy(self, leak: _Leak) -> tuple[float, float]:
        ev = leak.event
        if ev.x is not None and ev.y is not None:
            return float(ev.x), float(ev.y)
        link = self.wn.get_link(leak.pipe_id)
        (x1, y1), (x2, y2) = link.start_node.coordinates, link.end_node.coordinates
        f = ev.position
        return float(x1 + f * (x2 - x1)), float(y1 + f * (y2 - y1))

    # closures and outages: held closed against controls and rules, counted, then released
    def _links_of(self, link_id: str) -> list[int]:
        """The engine links of ``link_id``: both halves of a pipe split for a leak."""
        k = self.engine.link_index[link_id]
        partner = self._split.get(link_id)
        return [k] if partner is None else [k, partner[1]]

    def _hold_closed(self, k: int) -> None:
        eng = self.engine
        hold = self._holds.get(k)
        if hold is None:
            hold = self._holds[k] = _Hold(status=eng.link_value(k, en.STATUS),
                                          setting=eng.link_value(k, en.SETTING),
                                          since_s=self.twin.clock.now_s,
                                          controls=eng.force_link_closed(k))
        hold.count += 1
        eng.set_link_value(k, en.STATUS, 0)

    def _release(self, k: int) -> None:
        hold = self._holds.get(k)
        if hold is None:
            return
        hold.count -= 1
        if hold.count > 0:
            return
        del self._holds[k]
        eng = self.engine
        eng.restore_link_controls(hold.controls)
        status, setting = self._held_state(k, hold, self.twin.clock.now_s)
        if int(eng.link_types[k]) >= en.PRV:
            if status and setting > 0:   # a control valve regulates again at its setting
                eng.set_link_value(k, en.SETTING, setting)
            else:                        # fixed open (EPANET reports setting 0) or closed
                eng.set_link_value(k, en.STATUS, 1 if status else 0)
        else:
            eng.set_link_value(k, en.STATUS, 1 if status else 0)
            if status and int(eng.link_types[k]) == en.PUMP and setting > 0:
                eng.set_link_value(k, en.SETTING, setting)

    def _held_state(self, k: int, hold: "_Hold", now_s: float) -> tuple[float, float]:
        """(status, setting) a held link should have at ``now_s``: as before the hold, unless
        a timer or time-of-day control on it fell due meanwhile (replayed here). EPANET
        reports a status control as setting 1 (open) or 0 (closed); on a valve a replayed
        1 is read as OPEN, not as a setting of 1."""
        status, setting = hold.status, hold.setting
        replay = self.engine.last_timed_control(hold.controls, hold.since_s, now_s)
        if replay is not None:
            if replay == 0:
                status = 0
            elif int(self.engine.link_types[k]) >= en.PRV and replay == 1:
                status, setting = 1, 0.0     # fixed open
            else:
                status, setting = 1, replay
        return status, setting

    def _close_link(self, ev: ValveClosed) -> None:
        eng = self.engine
        for k in self._links_of(ev.link_id):
            if ev.setting <= 0:   # until a ValveOpened for this link
                self._hold_closed(k)
            elif k == eng.link_index[ev.link_id]:   # one throttle for a split pipe's halves
                # partly open: an orifice of relative opening s adds K = 1/s^2 - 1
                minor = self._throttled.setdefault(k, eng.link_value(k, en.MINORLOSS))
                eng.set_link_value(k, en.MINORLOSS, minor + (1.0 / ev.setting ** 2 - 1.0))

    def _open_link(self, ev: ValveOpened) -> None:
        for k in self._links_of(ev.link_id):   # ends a throttle and a closure alike
            self._unthrottle(k)
            self._release(k)

    def _unthrottle(self, k: int) -> None:
        eng = self.engine
        minor = self._throttled.pop(k, None)
        if minor is not None:
            # EPANET 2.2 refuses a minor loss of exactly 0 (error 211): 1e-12 is none
            eng.set_link_value(k, en.MINORLOSS, minor if minor > 0 or eng.has_arrays else 1e-12)

    def _pump_outage(self, ev: PumpOutage) -> None:
        k = self.engine.link_index[ev.pump_id]
        self._hold_closed(k)
        self._until(ev.duration_s, "release", k)

    # demands
    def _demand_surge(self, ev: DemandSurge) -> None:
        self._scale_demands(ev.factor, ev.nodes)
        self._until(ev.duration_s, "scale", 1.0 / ev.factor, ev.nodes)

    def _scale_demands(self, factor: float, nodes: tuple[str, ...]) -> None:
        eng = self.engine
        if not nodes:
            eng.set_option(en.DEMANDMULT, eng.option(en.DEMANDMULT) * factor)
            for n in self._fire_lps:          # the multiplier applies to every category:
                self._set_fire_category(n)    # keep fire flows at their litres per second
            return
        for nid in dict.fromkeys(nodes):
            self._surged_nodes.add(nid)
            n = eng.node_index[nid]
            fire = self._fire_category.get(n)
            for c in range(1, eng.num_demands(n) + 1):
                if c != fire:        # the consumers' demands, not a fire flow
                    eng.set_demand_category(n, c, eng.base_demand(n, c) * factor)

    def _fire_flow(self, ev: FireFlow) -> None:
        self._add_fire(self.engine.node_index[ev.node_id], ev.flow_lps)
        self._until(ev.duration_s, "fire", self.engine.node_index[ev.node_id], -ev.flow_lps)

    def _add_fire(self, n: int, flow_lps: float) -> None:
        eng = self.engine
        if n not in self._fire_category:
            eng.add_constant_demand(n, "fire")
            self._fire_category[n] = eng.num_demands(n)
        self._fire_lps[n] = max(self._fire_lps.get(n, 0.0) + flow_lps, 0.0)
        self._set_fire_category(n)

    def _set_fire_category(self, n: int) -> None:
        eng = self.engine
        eng.set_demand_category(n, self._fire_category[n],
                                self._fire_lps[n] / eng.option(en.DEMANDMULT))

    # undo actions due later (kept as data, so a snapshot can carry them to a fork)
    def _until(self, duration_s: float | None, action: str, *args) -> None:
        if duration_s is None:          # open-ended
            return
        self._schedule(self.twin.clock.now_s + float(duration_s), action, args)

    def _schedule(self, due_s: float, action: str, args: tuple) -> None:
        item = (due_s, action, args)
        self._pending.append(item)
        self.twin.expect(due_s)
        self.twin.clock.process(self._run_pending(item))

    def _run_pending(self, item):
        due, action, args = item
        yield self.twin.clock.timeout(max(due - self.twin.clock.now_s, 0.0))
        if item in self._pending:
            self._pending.remove(item)
            {"release": self._release, "unthrottle": self._unthrottle,
             "scale": self._scale_demands, "fire": self._add_fire}[action](*args)

    # ------------------------------------------------------------------ results
    def kpis(self) -> dict[str, float]:
        st = self.stats
        leaks = list(self.leaks.values()) + self.closed_leaks
        out = {
            "min_pressure_m": st.min_pressure_m if st.solves else float("nan"),
            "pressure_deficit_node_hours": st.deficit_node_hours,
            "max_nodes_below_service_pressure": float(st.max_nodes_below),
            "water_service_availability": (st.delivered_m3 / st.demand_m3) if st.demand_m3 else 1.0,
            "demand_required_m3": st.demand_m3,
            "demand_delivered_m3": st.delivered_m3,
            "leak_volume_m3": st.leak_volume_m3,
            "leak_peak_lps": max((lk.peak_lps for lk in leaks), default=0.0),
            "pump_energy_kwh": st.energy_kwh,
        }
        for tid in st.tank_min_m:
            out[f"tank_{tid}_min_level_m"] = st.tank_min_m[tid]
            out[f"tank_{tid}_max_level_m"] = st.tank_max_m[tid]
        return out

    def node_demands_lps(self) -> "pd.Series":
        """What consumers draw now at each junction (L/s, leaks excluded), by node id; the
        sewer layer turns it into dry-weather inflow."""
        import pandas as pd

        eng = self.engine
        consumer = getattr(self, "_consumer", None)
        return pd.Series(0.0 if consumer is None else consumer,
                         index=[eng.node_ids[k] for k in self.junctions], dtype=float)

    def elements(self) -> dict[str, gpd.GeoDataFrame]:
        return network_frames(self.wn, self.crs)

    def snapshot(self) -> dict[str, Any]:
        """What a fork needs to continue from now: time, tank levels, link states, incidents
        and the undo actions still due (ends of outages, closures, surges, fire flows).

        Plain data (ids, numbers, event objects): it can be pickled and sent to another
        process, where a layer built from the same model with the same ``planned_bursts``
        calls :meth:`restore`.
        """
        eng = self.engine
        now = eng.time_s
        status, setting = eng.link_status(), eng.link_settings()
        ids = eng.link_ids
        return {
            "time_s": int(now),
            "planned_bursts": list(self.planned_bursts),
            "tank_levels_m": {eng.node_ids[k]: float(self._p[k]) for k in self.tanks},
            "link_status": {ids[k]: (int(status[k]), float(setting[k])) for k in range(eng.n_links)},
            "leaks": [lk.event for lk in self.leaks.values()],
            "holds": {ids[k]: (h.count, *self._held_state(k, h, now), 0.0)
                      for k, h in self._holds.items()},
            "throttled": {ids[k]: (minor, eng.link_value(k, en.MINORLOSS))
                          for k, minor in self._throttled.items()},
            "demand_multiplier": eng.option(en.DEMANDMULT),
            "node_demands_lps": {nid: self._consumer_categories(eng.node_index[nid])
                                 for nid in self._surged_nodes},
            "fire_lps": {eng.node_ids[n]: q for n, q in self._fire_lps.items() if q > 0},
            "pending": [(due - now, action, args) for due, action, args in self._pending],
        }

    def _consumer_categories(self, n: int) -> list[float]:
        eng = self.engine
        fire = self._fire_category.get(n)
        return [eng.base_demand(n, c) for c in range(1, eng.num_demands(n) + 1) if c != fire]

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (a :meth:`snapshot` of a layer built from the same model).

        Call after ``build`` and before the run starts. Patterns, time-of-day controls and
        one-shot timer controls are shifted so the engine's time 0 is the snapshot's time;
        tanks start at their levels, links in their states; leaks, closures, outages, surges
        and fire flows go on and end when they were due to.
        Rules with a SYSTEM TIME / CLOCKTIME premise are not shifted.
        """
        eng = self.engine
        if eng is None or getattr(eng, "_hyd_open", False):
            raise RuntimeError("restore() goes between build and the start of the run")
        self._reusable = False
        if list(state.get("planned_bursts", [])) != list(self.planned_bursts):
            raise ValueError("restore(): build the fork with the snapshot's planned_bursts "
                             f"({state.get('planned_bursts')}), got {self.planned_bursts}")
        offset = int(state["time_s"])
        eng.shift_time(offset)
        for tid, level in state["tank_levels_m"].items():
            eng.set_tank_level_m(eng.node_index[tid], level)
        for lid, (status, setting) in state["link_status"].items():
            k = eng.link_index.get(lid)
            if k is not None:
                eng.set_initial_link_state(k, status, setting)
        eng.set_option(en.DEMANDMULT, state["demand_multiplier"])
        for nid, demands in state.get("node_demands_lps", {}).items():
            n = eng.node_index[nid]
            for c, q in enumerate(demands, start=1):
                eng.set_demand_category(n, c, q)
            self._surged_nodes.add(nid)
        for nid, q in state.get("fire_lps", {}).items():
            self._add_fire(eng.node_index[nid], q)
        for lid, (own_minor, current) in state.get("throttled", {}).items():
            k = eng.link_index[lid]
            self._throttled[k] = own_minor
            eng.set_link_value(k, en.MINORLOSS, current)
        for lid, (count, status, setting, since) in state.get("holds", {}).items():
            k = eng.link_index[lid]
            self._holds[k] = _Hold(status=status, setting=setting, since_s=since,
                                   controls=eng.force_link_closed(k), count=count)
            eng.set_initial_link_state(k, 0, setting)
        for event in state["leaks"]:
            self._burst(event)
        self._restored_pending = [(max(due, 0.0), action, args)
                                  for due, action, args in state.get("pending", [])]

    def close(self) -> None:
        eng = self.engine
        if eng is None:
            return
        self.engine = None
        if self._pooled and self._reusable:
            try:    # what a run of leaks changed: emitters and times
                for node, base in self._base_emitter.items():
                    eng.set_node_value(node, en.EMITTER, base)
                for what in (en.REPORTSTEP, en.HYDSTEP, en.DURATION, en.PATTERNSTART,
                             en.STARTTIME):
                    eng.set_time_param(what, self._pool_times[what])
            except en.EpanetError:
                eng.close()
                return
            self.engine_pool.give(eng)
        else:
            eng.close()
