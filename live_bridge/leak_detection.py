"""Leak detection and localisation from SCADA data and the network model.

Method (model-based, one pass forward in time, so it can run live):

1. The shadow model (:mod:`live_bridge.shadow`) follows the measurements
   (tank levels, pump states, metered consumption) and gives residuals
   ``measured - simulated`` for every pressure and flow sensor, averaged per hour.
2. The sequential test of :mod:`live_bridge.glrt` looks at those residuals every
   hour: after a training window it removes each sensor's baseline, noise level
   and the city-wide patterns of consumption error, and tests the last 24 hours
   against the leak signature of every pipe (:mod:`live_bridge.sensitivity`),
   given the leaks already found. A leak is declared at the best pipe when the
   test stays above its threshold for ``persistence_h`` hours.

Without pressure sensors a leak cannot be placed: :func:`night_flow_onsets`
finds leak onsets (time and size, no place) from the minimum night consumption
instead, with a CUSUM against a rolling baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from live_bridge.glrt import DetectorSettings, SequentialLeakTest
from live_bridge.leak_scoring import Detection, PipeDistances
from live_bridge.scada import read_scada, regular_index, step_seconds
from live_bridge.sensitivity import Signatures, compute_signatures
from live_bridge.shadow import KINDS, SensorLayout, ShadowModel


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


def glrt_detect(hourly: pd.DataFrame, sig: Signatures | list[Signatures],
                settings: DetectorSettings, distances: PipeDistances | None = None
                ) -> tuple[list[Detection], pd.DataFrame]:
    """The sequential test (:mod:`live_bridge.glrt`) over a frame of hourly residuals."""
    test = SequentialLeakTest(sig, list(hourly.columns), settings, distances)
    detections: list[Detection] = []
    for t, row in zip(hourly.index, hourly.to_numpy(dtype=float)):
        detections += [d for d in test.update(t, row) if d.kind == "leak"]
    stat = test.statistic_frame()
    stat.attrs["sensor_faults"] = list(test.sensor_faults)     # biased pressure sensors
    return detections, stat


def leak_signatures(inp, pressures, flows, settings: DetectorSettings, multiplier: float,
                    demand_mode: str) -> list[Signatures]:
    """One set of pipe signatures per probe size of ``settings``."""
    sigs = []
    for probe in settings.probes_m3h:
        sig = compute_signatures(inp, tuple(pressures), tuple(flows), multiplier=multiplier,
                                 engine=settings.engine, probe_m3h=probe)
        if demand_mode == "balance":      # a leak is partly taken for consumption
            sig.values = sig.values - sig.uniform[:, :, None]
        sigs.append(sig)
    return sigs


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
    sigs = leak_signatures(inp, pressures, flows, settings, mult, sm.demand_mode)
    dets, stat = glrt_detect(hourly, sigs, settings, PipeDistances.from_inp(inp))
    faults = stat.attrs.get("sensor_faults", [])
    meta["sensor_faults"] = [{"sensor": f.link_id, "time": f.time.strftime("%Y-%m-%d %H:%M"),
                              "bias_m": round(f.size_m, 3)} for f in faults]
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
