"""Leak detection and localisation from SCADA data and the network model.

Method (model-based, one pass forward in time, so it can run live):

1. The shadow model (:mod:`live_bridge.shadow`) follows the measurements
   (tank levels, pump states, metered consumption) and gives residuals
   ``measured - simulated`` for every pressure and flow sensor, averaged per hour.
2. A training window (the first ``train_days``) gives each sensor's residual
   baseline per hour of day and its noise level; later residuals are centred
   and scaled by them.
3. Every hour, the last ``block_h`` hours of residuals are tested against the
   leak signature of every pipe (:mod:`live_bridge.sensitivity`): a generalised
   likelihood ratio test for one more leak of unknown size (>= 0) at pipe j,
   given the leaks already found (their sizes are re-fitted in every block, so
   a growing or repaired leak is followed, not found twice).
4. When the best pipe's statistic stays above ``threshold`` for
   ``persistence_h`` hours, a leak is declared at that pipe, at that time (the
   detection time is when the detector is sure, not a guess of the onset). A new
   leak closer than ``min_separation_m`` to one already declared refines the
   fit but is not reported again.

Without pressure sensors a leak cannot be placed: :func:`night_flow_onsets`
finds leak onsets (time and size, no place) from the minimum night consumption
instead, with a CUSUM against a rolling baseline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from live_bridge.leak_scoring import Detection, PipeDistances
from live_bridge.scada import read_scada, regular_index, step_seconds
from live_bridge.sensitivity import Signatures, compute_signatures
from live_bridge.shadow import KINDS, SensorLayout, ShadowModel


@dataclass(frozen=True)
class DetectorSettings:
    train_days: float = 7.0
    block_h: int = 24
    threshold: float = 60.0
    persistence_h: int = 6
    min_separation_m: float = 300.0
    sigma_floor: dict = field(default_factory=lambda: {"pressures": 0.005, "flows": 0.2})
    engine: str = "owa"


@dataclass
class DetectionResult:
    detections: list[Detection]
    statistic: pd.DataFrame           # hourly: best pipe, its statistic, fitted leak sizes
    residuals: pd.DataFrame           # hourly residuals (measured - simulated) per sensor
    demand_mode: str
    meta: dict = field(default_factory=dict)


def shadow_residuals(inp, frames: dict[str, pd.DataFrame], engine: str = "owa",
                     progress: bool = False) -> tuple[pd.DataFrame, ShadowModel]:
    """Step the shadow model along ``frames``; residuals per step (tidy columns
    ``kind:sensor``) in SCADA units."""
    index = regular_index(frames)
    step = step_seconds(index)
    frames = {k: v.reindex(index) for k, v in frames.items() if k in KINDS}
    layout = SensorLayout(**{k: tuple(v.columns) for k, v in frames.items()})
    sm = ShadowModel(inp, layout, index[0].to_pydatetime(), step_s=step, engine=engine)
    kept = {k: list(sm.layout.ids(k)) for k in frames}
    arrs = {k: frames[k][kept[k]].to_numpy(dtype=float) for k in frames}
    kinds = [k for k in ("pressures", "flows") if k in arrs and arrs[k].shape[1]]
    out = {k: np.full_like(arrs[k], np.nan) for k in kinds}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(index), unit="step", desc="shadow model", disable=None, leave=False)
    try:
        for n in range(len(index)):
            sim = sm.step({k: v[n] for k, v in arrs.items()})
            for k in kinds:
                out[k][n] = arrs[k][n] - sim[k]
            if bar is not None and n % 1000 == 0:
                bar.update(n - bar.n)
    finally:
        if bar is not None:
            bar.close()
        sm.close()
    cols, data = [], []
    for k in kinds:
        cols += [f"{k}:{s}" for s in kept[k]]
        data.append(out[k])
    res = pd.DataFrame(np.hstack(data) if data else np.zeros((len(index), 0)), index, cols)
    return res, sm


def _hourly(res: pd.DataFrame) -> pd.DataFrame:
    return res.resample("1h").mean()


def glrt_detect(hourly: pd.DataFrame, sig: Signatures, settings: DetectorSettings,
                distances: PipeDistances | None = None) -> tuple[list[Detection], pd.DataFrame]:
    """The sequential test of the module doc on hourly residuals."""
    rows = [sig.sensors.index(c) for c in hourly.columns]
    S = sig.values[:, rows, :]                                    # [24, n_s, n_p]
    E = hourly.to_numpy(dtype=float)
    hours = hourly.index.hour.to_numpy()
    train = hourly.index < hourly.index[0] + pd.Timedelta(days=settings.train_days)
    base = np.zeros((24, E.shape[1]))
    for h in range(24):
        sel = train & (hours == h)
        if sel.any():
            base[h] = np.nanmedian(E[sel], axis=0)
    C = E - base[hours]
    sigma = np.nanstd(C[train], axis=0)
    floor = np.array([settings.sigma_floor.get(c.split(":")[0], 1e-3) for c in hourly.columns])
    sigma = np.where(np.isfinite(sigma), np.maximum(sigma, floor), floor)
    C = np.where(np.isfinite(C), C, 0.0) / sigma ** 2            # E / sigma^2, NaN -> no evidence
    Sw = S / sigma[None, :, None]
    gram = np.einsum("hij,hik->jk", Sw, Sw)                       # per full day
    G = np.zeros((len(E), S.shape[2]))
    for h in range(24):
        sel = hours == h
        G[sel] = C[sel] @ S[h]
    cum = np.vstack([np.zeros((1, G.shape[1])), np.cumsum(G, axis=0)])
    B = settings.block_h
    scale = B / 24.0
    diag = np.diag(gram) * scale
    detected: list[int] = []
    reported: list[tuple[str, pd.Timestamp]] = []
    over = 0
    stats = []
    for w in range(B - 1, len(E)):
        num = cum[w + 1] - cum[w + 1 - B]
        if detected:
            D = np.array(detected)
            GDD = gram[np.ix_(D, D)] * scale
            a = np.linalg.lstsq(GDD, num[D], rcond=None)[0]
            cross = gram[:, D] * scale                             # [n_p, |D|]
            num_j = num - cross @ a
            inv = np.linalg.pinv(GDD)
            den_j = diag - np.einsum("jd,de,je->j", cross, inv, cross)
        else:
            a = np.zeros(0)
            num_j, den_j = num, diag
        den_j = np.maximum(den_j, 1e-12)
        T = np.where(num_j > 0, num_j ** 2 / den_j, 0.0)
        if detected:
            T[np.array(detected)] = 0.0
        j = int(np.argmax(T))
        tmax = float(T[j])
        t_w = hourly.index[w] + pd.Timedelta(hours=1)             # the end of the hour
        stats.append((t_w, sig.pipes[j], tmax, float(num_j[j] / den_j[j]),
                      ";".join(f"{sig.pipes[d]}={x:.2f}" for d, x in zip(detected, a))))
        if hourly.index[w] < hourly.index[0] + pd.Timedelta(days=settings.train_days):
            continue
        over = over + 1 if tmax > settings.threshold else 0
        if over >= settings.persistence_h:
            over = 0
            detected.append(j)
            near = False
            if distances is not None:
                near = any(distances.distance(sig.pipes[j], link) <= settings.min_separation_m
                           for link, _ in reported)
            if not near:
                reported.append((sig.pipes[j], t_w))
    stat = pd.DataFrame(stats, columns=["time", "best_pipe", "statistic", "leak_m3h",
                                        "fitted_leaks_m3h"]).set_index("time")
    dets = [Detection(link, t.to_pydatetime().replace(second=0, microsecond=0))
            for link, t in reported]
    return dets, stat


def detect_leaks(inp: str | Path, scada: str | Path | dict, settings: DetectorSettings | None = None,
                 progress: bool = False) -> DetectionResult:
    """Run the detector on a SCADA folder (or frames by kind) for ``inp``."""
    settings = settings or DetectorSettings()
    frames = read_scada(scada) if not isinstance(scada, dict) else scada
    res, sm = shadow_residuals(inp, frames, engine=settings.engine, progress=progress)
    hourly = _hourly(res)
    pressures = [c.split(":", 1)[1] for c in res.columns if c.startswith("pressures:")]
    flows = [c.split(":", 1)[1] for c in res.columns if c.startswith("flows:")]
    meta = {"demand_mode": sm.demand_mode, "unknown_sensors": sm.unknown,
            "pressure_sensors": len(pressures), "flow_sensors": len(flows)}
    if not pressures:
        onsets = night_flow_onsets(frames, sm)
        return DetectionResult([], onsets, hourly, sm.demand_mode, meta | {"onsets": len(onsets)})
    mult = float(np.nanmedian(sm.multipliers[: max(1, int(86400 * settings.train_days
                                                           / sm.step_s))]))
    sig = compute_signatures(inp, tuple(pressures), tuple(flows), multiplier=mult,
                             engine=settings.engine)
    if sm.demand_mode == "balance":      # a leak is partly taken for consumption
        sig.values = sig.values - sig.uniform[:, :, None]
    dets, stat = glrt_detect(hourly, sig, settings, PipeDistances.from_inp(inp))
    return DetectionResult(dets, stat, hourly, sm.demand_mode, meta)


@dataclass(frozen=True)
class NightFlowSettings:
    """CUSUM on the daily minimum night consumption (see :func:`night_flow_onsets`)."""

    baseline_days: int = 14        # rolling baseline: median of the last accepted days
    min_baseline_days: int = 7     # days collected (a week) after an alarm before testing again
    k_sigma: float = 0.5           # CUSUM allowance (in baseline spreads)
    h_sigma: float = 5.0           # CUSUM alarm level (in baseline spreads)
    sigma_floor_m3h: float = 2.0
    window_h: int = 2              # the night minimum is taken over means of this length


def net_consumption(frames: dict[str, pd.DataFrame], sm: ShadowModel | None = None) -> pd.Series:
    """Consumption of the network (m3/h): metered source inflows minus the filling of
    the measured tanks. With a shadow model its source links (and their orientation)
    and tank areas are used; without one, every flow column is taken as an inflow."""
    flows = frames.get("flows")
    if flows is None or flows.empty:
        raise ValueError("night flows need flow readings")
    index = flows.index
    if sm is not None and sm.source_cols:
        ids = list(sm.layout.flows)
        supply = sum(sign * flows[ids[c]] for c, sign in sm.source_cols)
    else:
        supply = flows.sum(axis=1, min_count=1)
    storage = pd.Series(0.0, index=index)
    levels = frames.get("levels")
    if sm is not None and levels is not None and len(sm.tank_cols):
        ids = list(sm.layout.levels)
        step_h = step_seconds(index) / 3600.0
        for c, area in zip(sm.tank_cols, sm.tank_area_m2):
            lev = levels[ids[c]].reindex(index)
            storage = storage + (lev.diff() * area / step_h).fillna(0.0)
    return (supply - storage).rename("consumption_m3h")


def night_flow_onsets(frames: dict[str, pd.DataFrame], sm: ShadowModel | None = None,
                      settings: NightFlowSettings | None = None) -> pd.DataFrame:
    """Leak onsets from the minimum night consumption, for networks without pressure
    sensors (a leak cannot be placed, only dated and sized).

    Every day's minimum of the ``window_h``-hour mean consumption (the night
    minimum: consumers are asleep, a leak is not) is compared with a rolling
    baseline (median and spread of the last ``baseline_days`` accepted days). A
    one-sided CUSUM accumulates upward shifts; when it passes ``h_sigma`` an onset
    is declared, dated by the most likely change day inside the CUSUM's run, sized
    by the mean excess over the baseline since that day, and the baseline restarts
    from that day (so the same
    leak is not found twice, and the next leak is measured on top of it).

    Columns: ``time`` (the end of the day when the detector became sure: causal),
    ``onset_day`` (the first day of the shift), ``step_m3h`` (the excess known at
    ``time``), ``baseline_m3h``, ``step_week_m3h`` (the median of the first
    ``min_baseline_days`` on the new level minus the old baseline: a later, steadier
    size; NaN until those days are in).
    """
    cfg = settings or NightFlowSettings()
    q = net_consumption(frames, sm)
    hourly = q.resample(f"{cfg.window_h}h").mean()
    per_day = 24 // max(cfg.window_h, 1)
    full = hourly.resample("1D").count() >= 0.8 * per_day      # incomplete days say nothing
    mnf = hourly.resample("1D").min()[full].dropna()
    rows = []
    hist: list[float] = []          # accepted baseline days
    cus, run_days, run_vals = 0.0, [], []
    for day, x in mnf.items():
        if len(hist) < cfg.min_baseline_days:
            hist.append(float(x))
            if rows and len(hist) == cfg.min_baseline_days and np.isnan(rows[-1]["step_week_m3h"]):
                rows[-1]["step_week_m3h"] = float(np.median(hist)) - rows[-1]["baseline_m3h"]
            continue
        ref = np.array(hist[-cfg.baseline_days:])
        base = float(np.median(ref))
        spread = max(1.4826 * float(np.median(np.abs(ref - base))), cfg.sigma_floor_m3h)
        cus = max(0.0, cus + (float(x) - base) / spread - cfg.k_sigma)
        if cus > 0:
            run_days.append(day)
            run_vals.append(float(x))
        else:
            hist.extend(run_vals + [float(x)])     # a run that died out was no leak
            run_days, run_vals = [], []
        if cus > cfg.h_sigma:
            # the change point inside the run: the split with the largest shift evidence
            v = np.array(run_vals)
            gain = [(len(v) - i) * (v[i:].mean() - base) ** 2 for i in range(len(v))]
            i = int(np.argmax(gain))
            rows.append({"time": day + pd.Timedelta(days=1), "onset_day": run_days[i],
                         "step_m3h": float(v[i:].mean()) - base, "baseline_m3h": base,
                         "step_week_m3h": (float(np.median(v[i:i + cfg.min_baseline_days])) - base
                                           if len(v) - i >= cfg.min_baseline_days else np.nan)})
            hist = list(v[i:])                     # re-baseline on the new level
            cus, run_days, run_vals = 0.0, [], []
    out = pd.DataFrame(rows, columns=["time", "onset_day", "step_m3h", "baseline_m3h",
                                      "step_week_m3h"])
    out.attrs["night_minimum"] = mnf
    return out.set_index("time")
