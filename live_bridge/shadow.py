"""The shadow water model: an EPANET model driven by measured boundary conditions.

The model follows the measurements step by step (one hydraulic solve per
sampling step) and returns what it expects each sensor to read, so that
``measured - simulated`` is a residual per sensor. Boundary conditions taken
from the measurements, where they are measured:

* **tank levels** (level sensors on tanks): the tank is set to the measured
  level before each solve, so the model never drifts from the real tank;
* **pump status** (flow sensors on pumps): the pump is on when it carries
  flow; the model's own controls on that pump are removed;
* **consumption**: a city-wide demand multiplier per step, from the metered
  (AMR) demands when there are any (sum measured / sum nominal), otherwise from
  the supply balance (metered source inflows minus the change of storage in
  measured tanks, over the model's nominal demand) when every source link is
  metered, otherwise 1. In the balance mode a leak is partly taken for
  consumption: :attr:`ShadowModel.demand_mode` says which mode is in use.

Units: pressures and levels m, flows m3/h, AMR demands L/h (the SCADA units).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.engines import epanet as en


@dataclass(frozen=True)
class SensorLayout:
    """Which model elements are measured: node ids for pressures, levels and AMR
    demands, link ids for flows."""

    pressures: tuple[str, ...] = ()
    flows: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    demands: tuple[str, ...] = ()

    def ids(self, kind: str) -> tuple[str, ...]:
        return getattr(self, kind)


KINDS = ("pressures", "flows", "levels", "demands")


@dataclass
class ShadowModel:
    """One EPANET project stepped beside the measurements (see module doc)."""

    inp: str | Path
    layout: SensorLayout
    start: dt.datetime
    step_s: int = 300
    engine: str = "owa"
    use_amr: bool = True
    time_offset_s: int = 0        # model time of the first step (patterns start that late)
    unknown: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.proj = p = en.EpanetProject(self.inp, library=self.engine)
        if self.time_offset_s:
            p.shift_clock(int(self.time_offset_s))
        self.unknown = {k: [s for s in self.layout.ids(k)
                            if s not in (p.link_index if k == "flows" else p.node_index)]
                        for k in KINDS}
        self.unknown = {k: v for k, v in self.unknown.items() if v}
        keep = {k: tuple(s for s in self.layout.ids(k)
                         if s in (p.link_index if k == "flows" else p.node_index)) for k in KINDS}
        self.layout = SensorLayout(**keep)
        self.idx = {k: np.array([(p.link_index if k == "flows" else p.node_index)[s]
                                 for s in keep[k]], dtype=int) for k in KINDS}
        tanks = {i for i in range(p.n_nodes) if p.node_types[i] == en.TANK}
        self.tank_cols = [c for c, i in enumerate(self.idx["levels"]) if i in tanks]
        self.tank_nodes = self.idx["levels"][self.tank_cols]
        self.tank_bounds = [(p.node_value(int(i), en.MINLEVEL), p.node_value(int(i), en.MAXLEVEL))
                            for i in self.tank_nodes]
        self.tank_area_m2 = [np.pi * p.node_value(int(i), 17) ** 2 / 4 * (p._h ** 2)
                             for i in self.tank_nodes]        # 17 = EN_TANKDIAM
        pumps = {i for i in range(p.n_links) if p.link_types[i] == en.PUMP}
        self.pump_cols = [c for c, i in enumerate(self.idx["flows"]) if i in pumps]
        self.pump_links = self.idx["flows"][self.pump_cols]
        if len(self.pump_links):
            p.delete_controls_on({int(i) for i in self.pump_links})
        # source links: links touching a reservoir, oriented out of it (+1) or into it (-1)
        self.sources: list[tuple[int, float]] = []
        for i in range(p.n_links):
            a, b = p.link_nodes(i)
            if p.node_types[a] == en.RESERVOIR:
                self.sources.append((i, 1.0))
            elif p.node_types[b] == en.RESERVOIR:
                self.sources.append((i, -1.0))
        flow_col = {int(l): c for c, l in enumerate(self.idx["flows"])}
        self.source_cols = [(flow_col[i], sign) for i, sign in self.sources if i in flow_col]
        balance_ok = len(self.sources) > 0 and len(self.source_cols) == len(self.sources)
        if self.use_amr and len(self.idx["demands"]):
            self.demand_mode = "amr"
        elif balance_ok and (len(self.tank_cols) == len(tanks)):
            self.demand_mode = "balance"
        else:
            self.demand_mode = "nominal"
        self._nominal_setup()
        p.set_time_param(en.DURATION, 10 ** 9)
        p.set_time_param(en.HYDSTEP, self.step_s)
        p.set_time_param(en.REPORTSTEP, self.step_s)
        p.open_hydraulics()
        self.t_s = 0
        self._last_levels: np.ndarray | None = None
        self.multipliers: list[float] = []

    # -- the model's nominal consumption ---------------------------------------
    def _nominal_setup(self) -> None:
        """Base demands and patterns, to compute the nominal demand of any node at any time."""
        p = self.proj
        self.pattern_step = p.time_param(en.PATTERNSTEP) or 3600
        self.pattern_start = p.time_param(en.PATTERNSTART)
        self._patterns: dict[int, np.ndarray] = {}
        rows = []     # (node, base_lps, pattern index)
        for i in range(p.n_nodes):
            if p.node_types[i] != en.JUNCTION:
                continue
            for c in range(1, p.num_demands(i) + 1):
                b = p.base_demand(i, c)
                if b != 0.0:
                    pat = p.demand_pattern(i, c)
                    if pat not in self._patterns:
                        self._patterns[pat] = p.pattern_values(pat)
                    rows.append((i, b, pat))
        self._dem_node = np.array([r[0] for r in rows], dtype=int)
        self._dem_base = np.array([r[1] for r in rows])
        self._dem_pat = np.array([r[2] for r in rows], dtype=int)
        amr = set(self.idx["demands"].tolist())
        self._amr_rows = np.array([k for k, n in enumerate(self._dem_node) if n in amr], dtype=int)

    def _factors(self, t_s: int) -> np.ndarray:
        period = (t_s + self.pattern_start) // self.pattern_step
        f = {pat: v[period % len(v)] for pat, v in self._patterns.items()}
        return np.array([f[k] for k in self._dem_pat])

    def nominal_total_lps(self, t_s: int, rows: np.ndarray | None = None) -> float:
        fac = self._factors(t_s)
        if rows is None:
            return float(np.sum(self._dem_base * fac))
        return float(np.sum(self._dem_base[rows] * fac[rows]))

    # -- stepping --------------------------------------------------------------
    def multiplier(self, measured: dict[str, np.ndarray]) -> float:
        """The city-wide demand multiplier for this step (see module doc)."""
        if self.demand_mode == "amr":
            d = measured.get("demands")
            nominal = self.nominal_total_lps(self.t_s, self._amr_rows) * 3600.0   # L/h
            if d is None or nominal <= 0:
                return self.multipliers[-1] if self.multipliers else 1.0
            ok = np.isfinite(d)
            if not ok.any():
                return self.multipliers[-1] if self.multipliers else 1.0
            share = self.nominal_share(ok)
            return float(np.nansum(d[ok]) / (nominal * share)) if share > 0 else 1.0
        if self.demand_mode == "balance":
            q = measured.get("flows")
            lev = measured.get("levels")
            if q is None or not np.all(np.isfinite([q[c] for c, _ in self.source_cols])):
                return self.multipliers[-1] if self.multipliers else 1.0
            supply = sum(sign * q[c] for c, sign in self.source_cols)           # m3/h
            storage = 0.0
            if lev is not None and self._last_levels is not None:
                dh = lev[self.tank_cols] - self._last_levels
                storage = float(np.nansum(dh * np.array(self.tank_area_m2))) / (self.step_s / 3600)
            nominal = self.nominal_total_lps(self.t_s) * 3.6
            return float(max(supply - storage, 0.0) / nominal) if nominal > 0 else 1.0
        return 1.0

    def nominal_share(self, ok: np.ndarray) -> float:
        """Share of the AMR nodes' nominal demand carried by the nodes with a reading."""
        if ok.all():
            return 1.0
        fac = self._factors(self.t_s)
        amr_nodes = self.idx["demands"]
        tot = np.zeros(len(amr_nodes))
        pos = {int(n): k for k, n in enumerate(amr_nodes)}
        for r in self._amr_rows:
            tot[pos[int(self._dem_node[r])]] += self._dem_base[r] * fac[r]
        s = tot.sum()
        return float(tot[ok].sum() / s) if s > 0 else 0.0

    def step(self, measured: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Solve the current step under ``measured`` boundary conditions (arrays in layout
        order, NaN where missing) and return the simulated sensor values; then advance."""
        p = self.proj
        m = self.multiplier(measured)
        self.multipliers.append(m)
        p.set_option(en.DEMANDMULT, m)
        lev = measured.get("levels")
        if lev is not None and len(self.tank_cols):
            for c, node, (lo, hi) in zip(self.tank_cols, self.tank_nodes, self.tank_bounds):
                v = lev[c]
                if np.isfinite(v):
                    p.set_tank_level_m(int(node), float(np.clip(v, lo * p._h + 1e-6,
                                                                hi * p._h - 1e-6)))
            self._last_levels = lev[self.tank_cols].copy()
        q = measured.get("flows")
        if q is not None:
            for c, link in zip(self.pump_cols, self.pump_links):
                if np.isfinite(q[c]):
                    p.set_link_value(int(link), en.STATUS, 1.0 if q[c] > 1e-3 else 0.0)
        target = self.t_s
        while True:
            t = p.run()
            if t >= target:
                break
            p.next()
        out = self._read()
        while True:          # on to the next sampling time (controls may cut a step)
            dt_s = p.next()
            if dt_s <= 0 or (t + dt_s) >= target + self.step_s:
                break
            t = p.run()
        self.t_s = target + self.step_s
        return out

    def _read(self) -> dict[str, np.ndarray]:
        p = self.proj
        out = {}
        if len(self.idx["pressures"]) or len(self.idx["levels"]):
            pr = p.pressures_m()
            out["pressures"] = pr[self.idx["pressures"]]
            out["levels"] = pr[self.idx["levels"]]
        if len(self.idx["flows"]):
            out["flows"] = p.flows_lps()[self.idx["flows"]] * 3.6
        if len(self.idx["demands"]):
            out["demands"] = p.demands_lps()[self.idx["demands"]] * 3600.0
        return out

    def close(self) -> None:
        self.proj.close()
