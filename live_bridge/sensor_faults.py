"""Sensor-fault detection: stuck sensors, drift and bias, from peers or from the model.

Input: a wide frame of readings of one quantity (index time, one column per sensor,
e.g. pressures in m), and optionally a same-shaped frame of values the twin simulated
for the same sensors. The *signal* of a sensor is its reading (or reading − simulated).
Each sensor's signal is predicted from its peers' by ridge regression fitted on a
training window taken as healthy; the *residual* is signal − prediction, in the
readings' unit.

* **stuck**: the reading does not change (rolling standard deviation below
  ``stuck_tolerance``) over ``stuck_window`` while its peers vary;
* **bias**: a step in the residual;
* **drift**: a trend in the residual.

Bias and drift are found by a two-sided CUSUM on the residual standardised by its
training standard deviation σ (reference ``k``·σ; threshold the larger of ``h``·σ and
``h_margin`` × the largest CUSUM value reached on the training window, so the training
window itself never alarms). After an alarm, the residual from a while before the
CUSUM's change estimate is fitted by a step (zero, then a constant) and by a ramp
(zero, then a line from zero), each at its best change time; the fault is reported,
with that change time as its start, as a **bias** or a **drift** once one fits better
than the other by ``evidence`` (sum of squares in σ², twice a log-likelihood ratio).
A sensor found faulty is dropped from the peers of the others and the residuals
recomputed, so one bad sensor does not make its peers look bad.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import BadInput

__all__ = ["SensorFault", "FaultDetectorSettings", "SensorDataError", "detect_sensor_faults",
           "peer_residuals", "find_stuck", "cusum"]


class SensorDataError(BadInput):
    """Readings that cannot be analysed (shape, index, too few sensors or samples)."""


@dataclass(frozen=True)
class SensorFault:
    """A faulty sensor.

    ``start_time``: estimated start of the fault; ``alarm_time``: when the detector first
    saw something wrong; ``detection_time``: when the fault was reported with its kind
    (the same as the alarm for a stuck sensor). ``magnitude`` in ``unit``: for a bias the
    step (reading unit), for a drift the slope (reading unit per day), for a stuck
    sensor the difference between the held value and its prediction at detection.
    """

    sensor_id: str
    kind: str                      # 'stuck' | 'drift' | 'bias'
    start_time: Any
    alarm_time: Any
    detection_time: Any
    magnitude: float
    unit: str
    detail: str = ""


@dataclass(frozen=True)
class FaultDetectorSettings:
    """Tuning, with times in seconds (converted to samples from the index's step)."""

    train_s: float | None = None          # healthy training window from the start (None:
    #                                       the first third); cover a whole demand cycle (a week)
    ridge_alpha: float = 1.0              # ridge penalty on standardised peers
    stuck_window_s: float = 3600.0        # a flat reading this long is stuck ...
    stuck_tolerance: float = 1e-6         # ... flat: rolling std below this (reading unit)
    stuck_peer_factor: float = 100.0      # ... while the peers' median rolling std is this much larger
    k: float = 1.0                        # CUSUM reference, in training σ
    h: float = 15.0                       # CUSUM threshold floor, in training σ
    h_margin: float = 1.5                 # threshold >= this × training CUSUM maximum
    lead_s: float = 6 * 3600.0            # fit the change from this long before the CUSUM's estimate
    min_classify_s: float = 3600.0        # residual after the change needed to name the kind
    evidence: float = 15.0                # step vs ramp: SSE difference (in σ²) that decides
    max_classify_s: float = 86400.0       # undecided this long after the alarm: the better fit


def _step_seconds(index: pd.Index) -> float:
    if len(index) < 2:
        raise SensorDataError("readings: need at least two time steps")
    if isinstance(index, pd.DatetimeIndex):
        diffs = (index[1:] - index[:-1]).total_seconds().to_numpy()
    else:
        diffs = np.diff(np.asarray(index, dtype=float))
    if not np.all(diffs > 0):
        raise SensorDataError("readings: the index must be strictly increasing times")
    return float(np.median(diffs))


def find_stuck(readings: pd.DataFrame, window: int, tolerance: float = 1e-6,
               peer_factor: float = 100.0) -> dict[str, tuple[int, int]]:
    """Sensors whose reading stays within ``tolerance`` (rolling std, reading unit) for
    ``window`` samples while the median of the others' rolling std is ``peer_factor``
    times larger: sensor -> (start row, detection row)."""
    if window > len(readings):
        return {}
    # row i: the window ending at row window - 1 + i
    std = readings.rolling(window).std(ddof=0).to_numpy()[window - 1:]
    out: dict[str, tuple[int, int]] = {}
    for j, sensor in enumerate(readings.columns):
        peers = np.delete(std, j, axis=1)
        peer_std = np.median(peers, axis=1) if peers.shape[1] else np.full(len(std), np.inf)
        flat = (std[:, j] <= tolerance) & (peer_std > peer_factor * max(tolerance, 1e-12))
        rows = np.flatnonzero(flat)
        if len(rows):
            detect = int(rows[0]) + window - 1
            out[sensor] = (detect - window + 1, detect)
    return out


def peer_residuals(signals: pd.DataFrame, train: int, alpha: float = 1.0,
                   exclude_as_peers: set[str] = frozenset()) -> pd.DataFrame:
    """Each column minus its ridge prediction from the other columns (not in
    ``exclude_as_peers``), fitted on the first ``train`` rows. Same unit as ``signals``."""
    x = signals.to_numpy(dtype=float)
    mu, sd = x[:train].mean(axis=0), x[:train].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (x - mu) / sd
    usable = np.array([c not in exclude_as_peers for c in signals.columns])
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        peers = usable.copy()
        peers[j] = False
        if not peers.any():
            out[:, j] = z[:, j] - z[:train, j].mean()
        else:
            a = z[:train][:, peers]
            beta = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ z[:train, j])
            out[:, j] = z[:, j] - z[:, peers] @ beta
        out[:, j] *= sd[j]
    return pd.DataFrame(out, index=signals.index, columns=signals.columns)


def cusum(z: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided CUSUM of standardised ``z`` with reference ``k``: (upper, lower) sums."""
    up, low = np.zeros(len(z)), np.zeros(len(z))
    s_up = s_low = 0.0
    for i, v in enumerate(z):
        s_up = max(0.0, s_up + v - k)
        s_low = max(0.0, s_low - v - k)
        up[i], low[i] = s_up, s_low
    return up, low


def _step_or_ramp(y: np.ndarray) -> tuple[float, int, float, float, int, float]:
    """Best step and best ramp from zero fitted to ``y`` (one change in an otherwise zero
    series): (step SSE, step row, step level, ramp SSE, ramp row, slope per sample)."""
    n = len(y)
    total_sq = float(y @ y)
    # step at c: zero before, its mean after
    tail_sum = np.cumsum(y[::-1])[::-1]
    counts = np.arange(n, 0, -1)
    step_sse = total_sq - tail_sum ** 2 / counts
    c_step = int(np.argmin(step_sse))
    # ramp from c: zero before, a * (i - c) after
    i = np.arange(n, dtype=float)
    ramp_sse = np.full(n, np.inf)
    slopes = np.zeros(n)
    for c in range(n - 1):
        x = i[c:] - c
        sxx = float(x @ x)
        sxy = float(x @ y[c:])
        slopes[c] = sxy / sxx
        ramp_sse[c] = total_sq - sxy * sxy / sxx
    c_ramp = int(np.argmin(ramp_sse))
    return (float(step_sse[c_step]), c_step, float(tail_sum[c_step] / counts[c_step]),
            float(ramp_sse[c_ramp]), c_ramp, float(slopes[c_ramp]))


def _cusum_fault(r: np.ndarray, train: int, cfg: FaultDetectorSettings, step_s: float):
    """First bias/drift in residual ``r``: (kind, start row, alarm row, detect row,
    step or slope per sample) or None."""
    mu, sigma = float(r[:train].mean()), float(r[:train].std())
    if not sigma > 0:
        return None
    z = (r - mu) / sigma
    up, low = cusum(z, cfg.k)
    h = max(cfg.h, cfg.h_margin * float(max(up[:train].max(), low[:train].max())))
    alarms = np.flatnonzero((up[train:] > h) | (low[train:] > h))
    if not len(alarms):
        return None
    alarm = train + int(alarms[0])
    side = up if up[alarm] > h else low
    zeros = np.flatnonzero(side[:alarm] == 0)
    change = int(zeros[-1]) + 1 if len(zeros) else train
    # fit from some way before the CUSUM's change estimate: a drift starts before it
    lead = int(round(cfg.lead_s / step_s))
    first = max(train, change - lead)
    min_n = max(int(round(cfg.min_classify_s / step_s)), 3)
    last = min(len(r), alarm + int(round(cfg.max_classify_s / step_s)) + 1)
    y = (r - mu) / sigma
    fit = None
    for end in range(max(alarm + 1, change + min_n), last + 1):
        fit = _step_or_ramp(y[first:end])
        step_sse, c_step, level, ramp_sse, c_ramp, slope = fit
        if abs(step_sse - ramp_sse) > cfg.evidence:     # in σ²: a log-likelihood ratio x2
            break
    if fit is None:
        return None
    step_sse, c_step, level, ramp_sse, c_ramp, slope = fit
    if ramp_sse < step_sse:
        return "drift", first + c_ramp, alarm, end - 1, slope * sigma
    return "bias", first + c_step, alarm, end - 1, level * sigma


def detect_sensor_faults(readings: pd.DataFrame, simulated: pd.DataFrame | None = None,
                         unit: str = "m", settings: FaultDetectorSettings | None = None
                         ) -> list[SensorFault]:
    """Stuck, drifting and biased sensors in ``readings`` (one quantity, in ``unit``).

    ``simulated``: the model's values for the same sensors and times (then the signal
    is reading − simulated). The training window (``settings.train_s``, default the
    first third) is taken as healthy. Returns the faults sorted by detection time, at
    most one per sensor (its first).
    """
    cfg = settings or FaultDetectorSettings()
    if not isinstance(readings, pd.DataFrame) or readings.shape[1] < 3:
        raise SensorDataError("readings: need a DataFrame with one column per sensor and at "
                              "least 3 sensors (each is predicted from its peers)")
    if readings.isna().any().any():
        bad = readings.columns[readings.isna().any()].tolist()
        raise SensorDataError(f"readings: missing values in {bad[:5]} (fill or drop them first)")
    signals = readings.astype(float)
    if simulated is not None:
        if not simulated.index.equals(readings.index) or \
                set(simulated.columns) != set(readings.columns):
            raise SensorDataError("simulated: expected the same index and columns as readings")
        signals = signals - simulated[readings.columns].astype(float)
    step_s = _step_seconds(readings.index)
    n = len(readings)
    train = int(round(cfg.train_s / step_s)) if cfg.train_s else n // 3
    if not 10 <= train < n:
        raise SensorDataError(f"training window: {train} samples of {n}; expected at least 10 "
                              "and fewer than all")
    index = readings.index

    faults: list[SensorFault] = []
    window = max(int(round(cfg.stuck_window_s / step_s)), 2)
    stuck = find_stuck(readings, window, cfg.stuck_tolerance, cfg.stuck_peer_factor)
    flagged = set(stuck)
    residual = peer_residuals(signals, train, cfg.ridge_alpha, flagged)
    for sensor, (start, detect) in stuck.items():
        faults.append(SensorFault(
            sensor, "stuck", index[start], index[detect], index[detect],
            float(residual[sensor].iloc[detect]), unit,
            f"held at {readings[sensor].iloc[detect]:.4g} {unit} for "
            f"{window * step_s / 3600:g} h while its peers varied"))

    # one sensor at a time: the earliest alarm is the likeliest culprit; drop it from the
    # peers and look again, so its fault does not show in the others' residuals
    while True:
        found = []
        for sensor in residual.columns:
            if sensor in flagged:
                continue
            hit = _cusum_fault(residual[sensor].to_numpy(), train, cfg, step_s)
            if hit is not None:
                found.append((hit[2], sensor, hit))
        if not found:
            break
        _, sensor, (kind, start, alarm, detect, size, *_) = min(found)
        if kind == "drift":
            magnitude, fault_unit = size * 86400.0 / step_s, f"{unit}/day"
            detail = f"residual trend {magnitude:+.3g} {unit}/day"
        else:
            magnitude, fault_unit = size, unit
            detail = f"residual step {magnitude:+.3g} {unit}"
        faults.append(SensorFault(sensor, kind, index[start], index[alarm], index[detect],
                                  float(magnitude), fault_unit, detail))
        flagged.add(sensor)
        residual = peer_residuals(signals, train, cfg.ridge_alpha, flagged)
    return sorted(faults, key=lambda f: f.detection_time)
