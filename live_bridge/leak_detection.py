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
finds leak onsets from the minimum night consumption instead.
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
    if not pressures or sm.demand_mode != "amr" and not pressures:
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


def night_flow_onsets(frames: dict[str, pd.DataFrame], sm: ShadowModel) -> pd.DataFrame:
    """Placeholder replaced below."""
    return pd.DataFrame()
