"""What the shadow twin computed, step by step, for the dashboard to show.

:class:`LiveFeed` is a :data:`live_bridge.shadow_twin.StepListener`: after each solved step
it keeps every sensor's measured and simulated value (in the sensor's own unit). It answers
series for one sensor and hourly residual scores for the map: the hourly mean residual
(measured - simulated) minus the sensor's usual hourly residual, in units of its usual
spread (median and MAD over the first ``reference_s`` of the feed), so sensors of different
quantities share one colour scale. Thread-safe: the bridge thread appends, the web server
reads; ``version`` grows with every step.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np

HOUR_S = 3600.0
MAD_TO_SIGMA = 1.4826
RELATIVE_FLOOR = 1e-3


@dataclass(frozen=True)
class HourlyScores:
    """Hourly residual scores: ``hours_s`` (start of each hour, UTC epoch s), ``sensor_ids``,
    ``residual`` and ``score`` (hours x sensors, NaN where the hour had no reading)."""

    hours_s: np.ndarray
    sensor_ids: list[str]
    residual: np.ndarray
    score: np.ndarray


class LiveFeed:
    """Measured and simulated value of each sensor at each solved step (see module doc)."""

    def __init__(self, reference_s: float = 24 * HOUR_S, max_steps: int = 60 * 288,
                 min_scale: float = 1e-3) -> None:
        self.reference_s = float(reference_s)
        self.max_steps = int(max_steps)
        self.min_scale = float(min_scale)
        self.sensor_ids: list[str] = []
        self._col: dict[str, int] = {}
        self._times = np.empty(0)
        self._values = np.empty((0, 2, 0), dtype=np.float32)    # step x (measured, sim) x sensor
        self._n = 0
        self._reference: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)
        self.version = 0

    # -- writing (the shadow twin's on_step) -----------------------------------------
    def __call__(self, time_s: float, sensor_ids: list[str], measured: np.ndarray,
                 simulated: np.ndarray) -> None:
        self.add_step(time_s, sensor_ids, measured, simulated)

    def add_step(self, time_s: float, sensor_ids: list[str], measured: np.ndarray,
                 simulated: np.ndarray) -> None:
        """Keep one step: values in the order of ``sensor_ids`` (new ids are added)."""
        with self._lock:
            for sid in sensor_ids:
                if sid not in self._col:
                    self._add_sensor(sid)
            if self._n == len(self._times):
                self._grow()
            cols = [self._col[s] for s in sensor_ids]
            self._times[self._n] = time_s
            row = self._values[self._n]
            row[:] = np.nan
            row[0, cols] = measured
            row[1, cols] = simulated
            self._n += 1
            if self._n > self.max_steps:                 # forget the oldest
                drop = self._n - self.max_steps
                self._times[:-drop] = self._times[drop:].copy()
                self._values[:-drop] = self._values[drop:].copy()
                self._n -= drop
            if self._reference is None and time_s - self._times[0] >= self.reference_s:
                self._reference = self._reference_stats()
            self.version += 1
            self.changed.notify_all()

    def _add_sensor(self, sid: str) -> None:
        self._col[sid] = len(self.sensor_ids)
        self.sensor_ids.append(sid)
        extra = np.full((len(self._times), 2, 1), np.nan, dtype=np.float32)
        self._values = np.concatenate([self._values, extra], axis=2)
        if self._reference is not None:
            med, scale = self._reference
            self._reference = (np.append(med, np.nan), np.append(scale, np.nan))

    def _grow(self) -> None:
        size = max(64, 2 * len(self._times))
        times = np.full(size, np.nan)
        times[:self._n] = self._times[:self._n]
        values = np.full((size, 2, len(self.sensor_ids)), np.nan, dtype=np.float32)
        values[:self._n] = self._values[:self._n]
        self._times, self._values = times, values

    # -- reading -----------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return self._n

    def time_range(self) -> tuple[float, float] | None:
        """First and last step time (UTC epoch s), or None before the first step."""
        with self._lock:
            return None if self._n == 0 else (float(self._times[0]), float(self._times[self._n - 1]))

    def has_sensor(self, sensor_id: str) -> bool:
        return sensor_id in self._col

    def series(self, sensor_id: str, start_s: float, end_s: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, measured, simulated) of one sensor in [start_s, end_s]."""
        with self._lock:
            c = self._col.get(sensor_id)
            lo, hi = self._slice(start_s, end_s)
            if c is None:
                return np.empty(0), np.empty(0), np.empty(0)
            block = self._values[lo:hi, :, c].astype(float)
            return self._times[lo:hi].copy(), block[:, 0], block[:, 1]

    def hourly(self, start_s: float, end_s: float) -> HourlyScores:
        """Hourly mean residual and score of every sensor, for the hours overlapping
        [start_s, end_s]."""
        with self._lock:
            lo, hi = self._slice(np.floor(start_s / HOUR_S) * HOUR_S, end_s)
            times = self._times[lo:hi]
            resid = (self._values[lo:hi, 0] - self._values[lo:hi, 1]).astype(float)
            ids = list(self.sensor_ids)
            reference = self._reference or (self._reference_stats() if self._n else None)
        hours, mean = _hourly_means(times, resid)
        if reference is None or not len(hours):
            return HourlyScores(hours, ids, mean, np.full_like(mean, np.nan))
        med, scale = reference
        return HourlyScores(hours, ids, mean, (mean - med) / scale)

    def _slice(self, start_s: float, end_s: float) -> tuple[int, int]:
        times = self._times[:self._n]
        return (int(np.searchsorted(times, start_s, "left")),
                int(np.searchsorted(times, end_s, "right")))

    def _reference_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Median and robust spread of each sensor's hourly residual over the reference."""
        hi = int(np.searchsorted(self._times[:self._n], self._times[0] + self.reference_s))
        hi = max(hi, 1)
        measured = self._values[:hi, 0].astype(float)
        resid = measured - self._values[:hi, 1]
        _, mean = _hourly_means(self._times[:hi], resid)
        with warnings.catch_warnings():        # a sensor silent all along: NaN, no warning
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(mean, axis=0)
            mad = np.nanmedian(np.abs(mean - med), axis=0)
            typical = np.nanmedian(np.abs(measured), axis=0)
        # a spread never below a thousandth of the sensor's typical reading (a model that
        # matched the reference hours exactly would otherwise make noise look huge)
        scale = np.fmax(np.fmax(MAD_TO_SIGMA * mad, RELATIVE_FLOOR * typical), self.min_scale)
        return med, scale


def _hourly_means(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` (steps x sensors) per clock hour, NaN-aware."""
    if not len(times):
        return np.empty(0), np.empty((0, values.shape[1] if values.ndim == 2 else 0))
    hour = np.floor(times / HOUR_S).astype(np.int64)
    hours, inverse = np.unique(hour, return_inverse=True)
    ok = np.isfinite(values)
    sums = np.zeros((len(hours), values.shape[1]))
    counts = np.zeros_like(sums)
    np.add.at(sums, inverse, np.where(ok, values, 0.0))
    np.add.at(counts, inverse, ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    return hours * HOUR_S, mean
