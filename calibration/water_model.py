"""A water model that maps a parameter vector to simulated sensor series.

One EPANET project is opened once and re-run for every evaluation (parameters set from
the nominal values each time, hydraulics re-initialised): no file is written, so many
evaluations run in a row in one process, and one model per worker process runs them
in parallel.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from calibration.config import UNITS, CalibrationSpec, ParameterSpec, SensorSpec
from calibration.groups import Group, water_group
from twin.engines.epanet import (ACCURACY, DURATION, PATTERNSTART, ROUGHNESS, STARTTIME,
                                 PATTERNSTEP, PUMP, TANK, EpanetProject)
from twin.errors import BadInput


@dataclass(frozen=True)
class _Probe:
    sensor: str
    table: str          # 'pressure', 'head' or 'flow'
    index: int
    factor: float       # model SI unit -> the sensor's unit


class WaterModel:
    """``simulate(x)`` -> DataFrame (datetime index, one column per sensor, sensor units)."""

    output_name = "calibrated.inp"

    def __init__(self, spec: CalibrationSpec, initial_levels_m: dict[str, float] | None = None,
                 pump_schedules: dict[str, list[tuple[float, int]]] | None = None):
        m = spec.model
        if m.inp is None:
            raise BadInput("calibration: the water model needs `model.inp`")
        try:
            self.project = p = EpanetProject(m.inp)
        except FileNotFoundError:
            raise BadInput(f"calibration: model.inp: no such file {m.inp}") from None
        self.start: dt.datetime = m.start
        self.duration_s = int(m.duration_s)
        self.step_s = int(m.report_step_s)
        p.set_time_param(DURATION, self.duration_s)
        p.set_time_param(PATTERNSTART, int(m.pattern_start_s))
        # a tight hydraulic tolerance: the solver's own noise (EPANET's default accuracy
        # is 1e-3, files often say 1e-2) would otherwise swamp finite-difference slopes
        p.set_option(ACCURACY, min(p.option(ACCURACY), m.accuracy))
        self.parameters: list[ParameterSpec] = list(spec.parameters)
        self.groups: dict[str, Group] = {name: water_group(p, name, rule)
                                         for name, rule in spec.groups.items()}
        self._nominal_rough = np.array([p.link_value(i, ROUGHNESS) for i in range(p.n_links)])
        self._nominal_base = {i: [p.base_demand(i, c) for c in range(1, p.num_demands(i) + 1)]
                              for i in range(p.n_nodes)}
        self._nominal_patterns: dict[int, np.ndarray] = {}
        self._hour_patterns: dict[str, list[int]] = {}
        for par in self.parameters:
            if par.kind in ("bpr_alpha", "bpr_beta"):
                raise BadInput(f"parameter {par.name!r}: kind {par.kind} needs a traffic model "
                               "(`model.tntp`)")
            group = self._group(par)
            if par.kind in ("demand", "demand_hour") and group.kind == "pattern":
                k = int(group.index[0])
                self._nominal_patterns[k] = p.pattern_values(k)
            elif par.kind == "demand_hour":       # the patterns the group's demands follow
                self._hour_patterns[par.name] = self._own_patterns(par, group)
                for k in self._hour_patterns[par.name]:
                    self._nominal_patterns[k] = p.pattern_values(k)
            elif par.kind in ("roughness",) and group.kind != "links":
                raise BadInput(f"parameter {par.name!r}: roughness needs a group of pipes, "
                               f"group {par.group!r} holds {group.kind}")
            elif par.kind in ("leak", "demand", "demand_hour") and group.kind == "links":
                raise BadInput(f"parameter {par.name!r}: {par.kind} needs a group of nodes "
                               f"or a pattern, group {par.group!r} holds pipes")
        self.probes = [self._probe(s) for s in spec.sensors]
        for element, level in (initial_levels_m or {}).items():
            node = p.node_index.get(element)
            if node is None or p.node_types[node] != TANK:
                raise BadInput(f"initial level for {element!r}: not a tank of the model")
            p.set_tank_level_m(node, level)
        self.scheduled_pumps: list[str] = []
        for element, schedule in (pump_schedules or {}).items():
            link = p.link_index.get(element)
            if link is None or p.link_types[link] != PUMP:
                continue                              # a flow sensor on a pipe
            self.scheduled_pumps.append(element)
            p.delete_controls_on({link})
            for t, status in schedule:
                if t <= 0:
                    p.set_initial_link_state(link, status, 1.0 if status else 0.0)
                else:
                    p.add_timer_control(link, t, float(status))
        self._rough_now: np.ndarray | None = None     # what is set in the project now
        self._node_mult_now: dict[int, float] = {}
        self._pattern_step = p.time_param(PATTERNSTEP)
        self._clock_start = p.time_param(STARTTIME)

    def _group(self, par: ParameterSpec) -> Group:
        if par.group == "all":
            rule = {"pipes": "all"} if par.kind == "roughness" else {"nodes": "all"}
            return water_group(self.project, "all", rule)
        return self.groups[par.group]

    def _own_patterns(self, par: ParameterSpec, group: Group) -> list[int]:
        """Demand patterns of the group's nodes; an error if nodes outside it share one
        (scaling it would change their demand too)."""
        p = self.project
        used: dict[int, set[int]] = {}
        for i in range(p.n_nodes):
            for c in range(1, p.num_demands(i) + 1):
                used.setdefault(p.demand_pattern(i, c), set()).add(i)
        inside = set(int(i) for i in group.index)
        mine = sorted(k for k, nodes in used.items() if k > 0 and nodes & inside)
        shared = [k for k in mine if used[k] - inside - {i for i in range(p.n_nodes)
                                                         if p.num_demands(i) == 0}]
        if shared:
            raise BadInput(f"parameter {par.name!r}: the demand pattern(s) of group "
                           f"{par.group!r} also drive nodes outside it; use a pattern group "
                           "or a group of every node using them")
        if not mine:
            raise BadInput(f"parameter {par.name!r}: the nodes of group {par.group!r} have no "
                           "demand pattern to scale by hour")
        return mine

    def _probe(self, s: SensorSpec) -> _Probe:
        p, element = self.project, s.element or s.id
        factor = 1.0 / UNITS[s.unit][1]
        if s.quantity == "flow":
            if element not in p.link_index:
                raise BadInput(f"sensor {s.id!r}: no link {element!r} in the model")
            return _Probe(s.id, "flow", p.link_index[element], factor)
        if element not in p.node_index:
            raise BadInput(f"sensor {s.id!r}: no node {element!r} in the model")
        node = p.node_index[element]
        if s.quantity == "level" and p.node_types[node] != TANK:
            raise BadInput(f"sensor {s.id!r}: a level sensor on {element!r}, which is not a tank")
        table = "head" if s.quantity == "head" else "pressure"   # a tank's pressure is its level
        return _Probe(s.id, table, node, factor)

    # ------------------------------------------------------------------ run
    def apply(self, x: np.ndarray) -> None:
        """Set the model's inputs for the parameter values ``x`` (natural units)."""
        p = self.project
        rough = self._nominal_rough.copy()
        node_mult: dict[int, float] = {}
        patterns = {k: v.copy() for k, v in self._nominal_patterns.items()}
        for par, value in zip(self.parameters, np.asarray(x, dtype=float)):
            g = self._group(par)
            if par.kind == "roughness":
                rough[g.index] *= value
            elif par.kind == "demand" and g.kind == "pattern":
                patterns[int(g.index[0])] *= value
            elif par.kind == "demand":
                for i in g.index:
                    node_mult[int(i)] = node_mult.get(int(i), 1.0) * value
            elif par.kind == "demand_hour":
                for k in (self._hour_patterns.get(par.name) or [int(g.index[0])]):
                    if len(patterns[k]) > 1:       # a constant pattern has no hours
                        patterns[k][self._hours(len(patterns[k])) == par.hour] *= value
            elif par.kind == "leak":
                for i in g.index:
                    p.set_emitter_si(int(i), value)
        for i in np.flatnonzero(rough != self._applied_rough()):
            p.set_link_value(int(i), ROUGHNESS, rough[i])
        self._rough_now = rough
        for i, base in self._nominal_base.items():
            mult = node_mult.get(i, 1.0)
            if mult != self._node_mult_now.get(i, 1.0):
                for c, q in enumerate(base, start=1):
                    p.set_demand_category(i, c, q * mult)
        self._node_mult_now = node_mult
        for k, values in patterns.items():
            p.set_pattern_values(k, values)

    def _applied_rough(self) -> np.ndarray:
        return self._nominal_rough if self._rough_now is None else self._rough_now

    def _hours(self, n: int) -> np.ndarray:
        """Hour of the day at which each of a pattern's ``n`` steps applies."""
        pstart = self.project.time_param(PATTERNSTART)
        t = np.arange(n) * self._pattern_step - pstart + self._clock_start
        return (t // 3600) % 24

    def simulate(self, x: np.ndarray) -> pd.DataFrame:
        """Run the model for ``x`` and return the sensors' series at each report step."""
        self.apply(x)
        p = self.project
        p.restart_hydraulics()
        times, rows = [], []
        pressure = [pr for pr in self.probes if pr.table == "pressure"]
        head = [pr for pr in self.probes if pr.table == "head"]
        flow = [pr for pr in self.probes if pr.table == "flow"]
        pi = np.array([pr.index for pr in pressure], dtype=int)
        hi = np.array([pr.index for pr in head], dtype=int)
        fi = np.array([pr.index for pr in flow], dtype=int)
        factors = np.array([pr.factor for pr in pressure + head + flow])
        while True:
            t = p.run()
            if t % self.step_s == 0 and (not times or times[-1] != t):
                parts = []
                if pi.size:
                    parts.append(p.pressures_m()[pi])
                if hi.size:
                    parts.append(p.heads_m()[hi])
                if fi.size:
                    parts.append(p.flows_lps()[fi])
                times.append(t)
                rows.append(np.concatenate(parts) * factors)
            if p.next() <= 0:
                break
        columns = [pr.sensor for pr in pressure + head + flow]
        index = pd.DatetimeIndex([self.start + dt.timedelta(seconds=t) for t in times])
        frame = pd.DataFrame(np.array(rows), index=index, columns=columns)
        return frame[[pr.sensor for pr in self.probes]]

    def save(self, x: np.ndarray, path) -> None:
        """Write the model with parameters ``x`` applied as an .inp file."""
        self.apply(x)
        self.project.save_inp(path)

    def close(self) -> None:
        self.project.close()
