"""Leak signatures: how much each sensor moves per m3/h of leak at each pipe.

For every junction, a small extra outflow is added (a flat demand) and the
model re-solved at the same time; the change at each sensor per unit flow is
that junction's column. A pipe's signature is the mean of its two end
junctions' columns (a leak in the middle of the pipe). Columns are computed at
every hour of a typical day, since a leak's effect on pressures depends on the
flows of the hour.

Units: pressure sensors m per (m3/h), flow sensors (m3/h) per (m3/h).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.engines import epanet as en

UNIT_LEAK_M3H = 3.6          # the probe outflow: 1 L/s


@dataclass
class Signatures:
    """``values[h, i, j]``: change at sensor i per m3/h leaking at pipe j, at hour h."""

    values: np.ndarray
    sensors: list[str]          # "pressures:n54", "flows:p227"
    pipes: list[str]
    uniform: np.ndarray         # [h, i]: the same for a demand-proportional increase
    pipe_ends: dict[str, tuple[str, str]]


def compute_signatures(inp: str | Path, pressures: tuple[str, ...], flows: tuple[str, ...],
                       multiplier: float = 1.0, hours: int = 24, engine: str = "owa",
                       tank_levels_m: dict[str, float] | None = None,
                       probe_m3h: float = UNIT_LEAK_M3H) -> Signatures:
    """Signatures per m3/h, from a probe outflow of ``probe_m3h`` (a secant: a larger probe
    carries the curvature of leaks of that size)."""
    p = en.EpanetProject(inp, library=engine)
    try:
        junctions = [i for i in range(p.n_nodes) if p.node_types[i] == en.JUNCTION]
        for i in junctions:
            p.add_constant_demand(i, "_probe")
        cat = {i: p.num_demands(i) for i in junctions}
        p_idx = np.array([p.node_index[s] for s in pressures], dtype=int)
        f_idx = np.array([p.link_index[s] for s in flows], dtype=int)
        for tid, lev in (tank_levels_m or {}).items():
            if tid in p.node_index:
                p.set_tank_level_m(p.node_index[tid], lev)
        p.set_option(en.DEMANDMULT, multiplier)
        p.set_time_param(en.DURATION, hours * 3600)
        p.set_time_param(en.HYDSTEP, 3600)
        p.open_hydraulics()
        n_s = len(p_idx) + len(f_idx)
        node_cols = np.zeros((hours, n_s, len(junctions)))
        uniform = np.zeros((hours, n_s))
        q = probe_m3h / 3.6 / max(multiplier, 1e-6)       # L/s in the model, pre-multiplier

        def read():
            return np.concatenate([p.pressures_m()[p_idx], p.flows_lps()[f_idx] * 3.6])

        h = 0
        while h < hours:
            t = p.run()
            if t % 3600 == 0 and t // 3600 == h:
                base = read()
                for col, i in enumerate(junctions):
                    p.set_demand_category(i, cat[i], q)
                    p.run()
                    node_cols[h, :, col] = (read() - base) / probe_m3h
                    p.set_demand_category(i, cat[i], 0.0)
                # a demand-proportional increase of the same total
                mult0 = p.option(en.DEMANDMULT)
                demand_now = float(np.sum(p.demands_lps()[junctions]))
                if demand_now > 0:
                    p.set_option(en.DEMANDMULT, mult0 * (1 + (probe_m3h / 3.6) / demand_now))
                    p.run()
                    uniform[h] = (read() - base) / probe_m3h
                    p.set_option(en.DEMANDMULT, mult0)
                p.run()
                h += 1
            if p.next() <= 0:
                break
        jpos = {i: c for c, i in enumerate(junctions)}
        pipes, cols, ends = [], [], {}
        for li in range(p.n_links):
            if p.link_types[li] not in (en.PIPE, en.CVPIPE):
                continue
            a, b = p.link_nodes(li)
            js = [jpos[x] for x in (a, b) if x in jpos]
            if not js:
                continue
            pipes.append(p.link_ids[li])
            ends[p.link_ids[li]] = (p.node_ids[a], p.node_ids[b])
            cols.append(node_cols[:, :, js].mean(axis=2))
        values = np.stack(cols, axis=2) if cols else np.zeros((hours, n_s, 0))
        sensors = [f"pressures:{s}" for s in pressures] + [f"flows:{s}" for s in flows]
        return Signatures(values, sensors, pipes, uniform, ends)
    finally:
        p.close()
