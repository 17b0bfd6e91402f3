"""Generate BattLeDIM-style SCADA data: an EPANET model, a leak list, a year of readings.

The model is stepped in memory through :class:`twin.engines.epanet.EpanetProject`
at the sampling step (5 minutes by default) over the configuration's period.
Each leak is an orifice in the middle of its pipe (the pipe is split there):
``Q = Cd * A(t) * sqrt(2 g p)`` with ``Cd = 0.75``, as BattLeDIM's generator
models it; an incipient leak's diameter grows linearly from zero at its start to
full size at its peak time, an abrupt one is full size from its start; both stop
at their end time.

Demand uncertainty (the model never knows the true consumption):

* a seasonal cycle over the year (``seasonal_amplitude``, peak in mid-July);
* a slowly varying city-wide factor (AR(1), ``global_sigma``, ``global_tau_h``),
  applied every step through EPANET's demand multiplier;
* a per-node factor, fixed (``node_sigma``) times a day-to-day AR(1) part
  (``node_daily_sigma``), applied to every node's base demands once a day.

Sensor noise is Gaussian: absolute for pressures and levels (m), relative for
flows and AMR demands; values are written with two decimals, as BattLeDIM's.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin.engines import epanet as en
from live_bridge.leak_config import LeakConfig, LeakSpec, check_against_network
from live_bridge.scada import write_scada

G = 9.81
LEAK_DISCHARGE_COEFF = 0.75
MAX_LEAK_SOLVES = 30


@dataclass(frozen=True)
class Uncertainty:
    """Demand uncertainty and sensor noise of a generated dataset (see module doc)."""

    seasonal_amplitude: float = 0.08
    global_sigma: float = 0.03
    global_tau_h: float = 3.0
    node_sigma: float = 0.05
    node_daily_sigma: float = 0.04
    pressure_sigma_m: float = 0.05
    level_sigma_m: float = 0.01
    flow_rel_sigma: float = 0.01
    amr_rel_sigma: float = 0.02

    @classmethod
    def none(cls) -> "Uncertainty":
        return cls(**{k: 0.0 for k in asdict(cls())} | {"global_tau_h": 3.0})


@dataclass
class LeakDataset:
    """A generated year: SCADA frames by kind and the true leak outflows (m3/h)."""

    frames: dict[str, pd.DataFrame]
    leak_flows_m3h: pd.DataFrame
    meta: dict = field(default_factory=dict)

    def save(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        year = int(self.meta["year"])
        written = write_scada(folder, year, self.frames)
        leak_path = folder / f"{year}_Leakages.csv"
        lf = self.leak_flows_m3h.copy()
        lf.index = pd.DatetimeIndex(lf.index).strftime("%Y-%m-%d %H:%M:%S")
        lf.index.name = "Timestamp"
        lf.to_csv(leak_path, sep=";", decimal=",", float_format="%.4f")
        meta_path = folder / "generation.json"
        meta_path.write_text(json.dumps(self.meta, indent=2, default=str))
        return written + [leak_path, meta_path]


def leak_diameter_m(leak: LeakSpec, when: dt.datetime) -> float:
    """The orifice diameter of ``leak`` at ``when`` (0 outside its life)."""
    if when < leak.start or when >= leak.end:
        return 0.0
    if leak.kind == "abrupt" or leak.peak <= leak.start or when >= leak.peak:
        return leak.diameter_m
    return leak.diameter_m * (when - leak.start) / (leak.peak - leak.start)


def epoch_seconds(times) -> np.ndarray:
    """Seconds since 1970 (naive times read as UTC) of a DatetimeIndex, whatever its unit."""
    times = pd.DatetimeIndex(times)
    return np.asarray((times - pd.Timestamp(0)).total_seconds(), dtype=np.float64)


def leak_diameters(leaks, times: pd.DatetimeIndex) -> np.ndarray:
    """Diameters (m) of every leak at every time, shape (len(times), len(leaks))."""
    t = epoch_seconds(times)
    out = np.zeros((len(times), len(leaks)))
    for j, leak in enumerate(leaks):
        s, e, p = (pd.Timestamp(x).timestamp() for x in (leak.start, leak.end, leak.peak))
        frac = np.ones_like(t) if (leak.kind == "abrupt" or p <= s) else np.clip((t - s) / (p - s), 0, 1)
        out[:, j] = np.where((t >= s) & (t < e), leak.diameter_m * frac, 0.0)
    return out


def _ar1(rng: np.random.Generator, n: int, sigma: float, tau_steps: float) -> np.ndarray:
    """A stationary AR(1) series of ``n`` values with standard deviation ``sigma`` and
    correlation time ``tau_steps``."""
    if sigma <= 0 or n == 0:
        return np.zeros(n)
    from scipy.signal import lfilter

    phi = math.exp(-1.0 / max(tau_steps, 1e-9))
    e = rng.normal(0.0, sigma * math.sqrt(1 - phi * phi), n)
    x0 = rng.normal(0.0, sigma)
    return lfilter([1.0], [1.0, -phi], e, zi=[x0 * phi])[0]


def generate_dataset(inp: str | Path, config: LeakConfig, *, seed: int = 0,
                     uncertainty: Uncertainty | None = None, step_s: int = 300,
                     engine: str = "owa", progress: bool = False,
                     until: dt.datetime | None = None) -> LeakDataset:
    """Simulate ``config``'s period on ``inp`` with its leaks; return SCADA frames.

    ``until`` cuts the period short (tests). Same seed, same dataset.
    """
    unc = uncertainty or Uncertainty()
    rng = np.random.default_rng(seed)
    end = min(config.end, until) if until is not None else config.end
    times = pd.date_range(config.start, end, freq=f"{step_s}s")
    n = len(times)
    proj = en.EpanetProject(inp, library=engine)
    try:
        pipes = {proj.link_ids[i] for i in range(proj.n_links)
                 if proj.link_types[i] in (en.PIPE, en.CVPIPE)}
        check_against_network(config, proj.node_ids, proj.link_ids, pipes)
        leaks = list(config.leaks)
        leak_nodes = []
        for j, leak in enumerate(leaks):
            nid, lid = f"_leak{j}_{leak.link_id}"[:31], f"_leakp{j}_{leak.link_id}"[:31]
            leak_nodes.append(proj.split_pipe_for_leak(leak.link_id, 0.5, nid, lid))
        # the run: the period at the sampling step, every step reported
        proj.set_time_param(en.DURATION, (n - 1) * step_s)
        proj.set_time_param(en.HYDSTEP, step_s)
        proj.set_time_param(en.REPORTSTEP, step_s)
        idx = proj.node_index
        p_idx = np.array([idx[s] for s in config.pressure_sensors], dtype=int)
        l_idx = np.array([idx[s] for s in config.level_sensors], dtype=int)
        a_idx = np.array([idx[s] for s in config.amrs], dtype=int)
        f_idx = np.array([proj.link_index[s] for s in config.flow_sensors], dtype=int)
        k_idx = np.array(leak_nodes, dtype=int)
        # demand uncertainty
        days = int(math.ceil(n * step_s / 86400)) + 1
        junctions = [i for i in range(proj.n_nodes) if proj.node_types[i] == en.JUNCTION
                     and i not in set(leak_nodes)]
        base = {(i, c): proj.base_demand(i, c) for i in junctions
                for c in range(1, proj.num_demands(i) + 1)}
        base = {k: v for k, v in base.items() if v != 0.0}
        node_static = 1.0 + rng.normal(0.0, unc.node_sigma, proj.n_nodes)
        node_daily = np.stack([_ar1(rng, days, unc.node_daily_sigma, 3.0)
                               for _ in range(proj.n_nodes)], axis=1) if unc.node_daily_sigma > 0 \
            else np.zeros((days, proj.n_nodes))
        doy = times.day_of_year.to_numpy() + times.hour.to_numpy() / 24.0
        seasonal = 1.0 + unc.seasonal_amplitude * np.cos(2 * np.pi * (doy - 196) / 365.25)
        glob = seasonal * (1.0 + _ar1(rng, n, unc.global_sigma, unc.global_tau_h * 3600 / step_s))
        glob = np.maximum(glob, 0.05)
        diam = leak_diameters(leaks, times)
        coeff = LEAK_DISCHARGE_COEFF * (np.pi * diam ** 2 / 4.0) * math.sqrt(2 * G)

        pres = np.full((n, len(p_idx)), np.nan)
        lev = np.full((n, len(l_idx)), np.nan)
        amr = np.full((n, len(a_idx)), np.nan)
        flo = np.full((n, len(f_idx)), np.nan)
        lk = np.zeros((n, len(k_idx)))

        def set_inputs(k: int) -> None:
            t_s = k * step_s
            if t_s % 86400 == 0:
                day = min(t_s // 86400, days - 1)
                for (i, c), b in base.items():
                    f = node_static[i] * (1.0 + node_daily[day, i])
                    proj.set_demand_category(i, c, b * max(f, 0.0))
            proj.set_option(en.DEMANDMULT, float(glob[k]))
            for j, node in enumerate(k_idx):
                # never exactly 0: EPANET leaves an emitter's last flow in place at 0
                proj.set_emitter_si(int(node), max(float(coeff[k, j]), 1e-12))

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, unit="step", desc="generating SCADA data", disable=None,
                       leave=False)
        proj.open_hydraulics()
        set_inputs(0)
        while True:
            t = proj.run()
            if t % step_s == 0 and t // step_s < n:
                k = t // step_s
                p, d = proj.pressures_m(), proj.demands_lps()
                for _ in range(MAX_LEAK_SOLVES):
                    # EPANET carries an emitter's flow over from the last solve and may stop
                    # iterating before a leak that just changed has settled: solve again
                    want = coeff[k] * np.sqrt(np.maximum(p[k_idx], 0.0)) * 1000.0
                    if np.all(np.abs(d[k_idx] - want) <= 1e-4 + 1e-3 * want):
                        break
                    proj.run()
                    p, d = proj.pressures_m(), proj.demands_lps()
                pres[k] = p[p_idx]
                lev[k] = p[l_idx]            # a tank's pressure is its level
                amr[k] = d[a_idx]
                lk[k] = d[k_idx]
                flo[k] = proj.flows_lps()[f_idx]
                if bar is not None and k % 500 == 0:
                    bar.update(k - bar.n)
            dt_s = proj.next()
            if dt_s <= 0:
                break
            tn = t + dt_s
            if tn % step_s == 0 and tn // step_s < n:
                set_inputs(tn // step_s)
        if bar is not None:
            bar.close()
    finally:
        proj.close()

    def noisy(x, sigma, relative):
        if sigma <= 0:
            return x
        e = rng.normal(0.0, sigma, x.shape)
        return x * (1.0 + e) if relative else x + e

    frames = {}
    for kind, values, sigma, relative, ids in (    # SCADA units: m, m3/h, m, L/h
            ("pressures", pres, unc.pressure_sigma_m, False, config.pressure_sensors),
            ("flows", flo * 3.6, unc.flow_rel_sigma, True, config.flow_sensors),
            ("levels", lev, unc.level_sigma_m, False, config.level_sensors),
            ("demands", amr * 3600.0, unc.amr_rel_sigma, True, config.amrs)):
        if len(ids):
            frames[kind] = pd.DataFrame(noisy(values, sigma, relative), times, list(ids))
    for df in frames.values():
        df.index.name = "Timestamp"
    leak_flows = pd.DataFrame(lk * 3.6, times, [lk_.link_id for lk_ in leaks])
    meta = {"year": config.year, "inp": str(inp), "config": config.source, "seed": seed,
            "step_s": step_s, "engine": engine, "start": str(times[0]), "end": str(times[-1]),
            "uncertainty": asdict(unc), "leaks": [asdict(lk_) for lk_ in leaks]}
    return LeakDataset(frames, leak_flows, meta)
