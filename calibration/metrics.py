"""Goodness of fit between measured and simulated series: RMSE, NSE, KGE and bias.

Each function takes two aligned arrays and ignores the pairs where either is NaN
(a sensor outage, an excluded period). NSE and KGE are 1 for a perfect fit; NSE is
0 for a model no better than the measured mean (Nash and Sutcliffe 1970); KGE
combines correlation, variability and bias ratios (Gupta et al. 2009).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("rmse", "nse", "kge", "bias")


def _pairs(obs, sim) -> tuple[np.ndarray, np.ndarray]:
    o, s = np.asarray(obs, dtype=float).ravel(), np.asarray(sim, dtype=float).ravel()
    if o.shape != s.shape:
        raise ValueError(f"measured and simulated series differ in length: {o.size} vs {s.size}")
    ok = np.isfinite(o) & np.isfinite(s)
    return o[ok], s[ok]


def rmse(obs, sim) -> float:
    o, s = _pairs(obs, sim)
    return float(np.sqrt(np.mean((s - o) ** 2))) if o.size else float("nan")


def bias(obs, sim) -> float:
    """Mean of simulated minus measured (positive: the model overestimates)."""
    o, s = _pairs(obs, sim)
    return float(np.mean(s - o)) if o.size else float("nan")


def nse(obs, sim) -> float:
    o, s = _pairs(obs, sim)
    if o.size < 2:
        return float("nan")
    spread = np.sum((o - o.mean()) ** 2)
    return float(1.0 - np.sum((s - o) ** 2) / spread) if spread > 0 else float("nan")


def kge(obs, sim) -> float:
    o, s = _pairs(obs, sim)
    if o.size < 2 or o.std() == 0 or o.mean() == 0:
        return float("nan")
    r = np.corrcoef(o, s)[0, 1] if s.std() > 0 else 0.0
    alpha, beta = s.std() / o.std(), s.mean() / o.mean()
    return float(1.0 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2))


def fit_table(observed: pd.DataFrame, simulated: pd.DataFrame) -> pd.DataFrame:
    """One row per sensor (the observed columns): points compared and each metric."""
    rows = []
    for sensor in observed.columns:
        o = observed[sensor].to_numpy(dtype=float)
        s = simulated[sensor].reindex(observed.index).to_numpy(dtype=float)
        n = int(np.count_nonzero(np.isfinite(o) & np.isfinite(s)))
        rows.append({"sensor": sensor, "points": n, "rmse": rmse(o, s), "nse": nse(o, s),
                     "kge": kge(o, s), "bias": bias(o, s)})
    return pd.DataFrame(rows).set_index("sensor")
