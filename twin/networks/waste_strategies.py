"""Which containers a day's tours collect: a fixed weekly schedule, or sensor-driven.

- ``fixed``: each container has collection weekdays set once from its nominal
  production (enough collections a week to stay under ``target_fill`` on average,
  1 to 6 a week), spread evenly over the week and balanced between days. What
  the containers really hold does not matter.
- ``sensor``: collect the containers whose fill, estimated from the (faulty)
  sensor readings, is forecast to pass ``threshold`` before the next tour could
  come; and any container not collected for ``max_days``. The estimate
  (:class:`FillEstimator`) re-zeroes each sensor after a collection (a drifting
  sensor's offset), learns each container's fill rate from its readings and from
  what the crews find, and falls back to that rate when a sensor repeats the same
  value (stuck) or is silent.
"""

from __future__ import annotations

import math

import numpy as np

STUCK_REPEATS = 3            # identical readings in a row before a sensor is distrusted
RATE_SMOOTHING = 0.5         # weight of the newest observed fill rate


class FillEstimator:
    """What the operator knows of each container's fill, from readings and collections."""

    def __init__(self, capacity_l: np.ndarray, prior_l_per_day: np.ndarray) -> None:
        n = len(capacity_l)
        self.capacity_l = np.asarray(capacity_l, dtype=float)
        self.rate_per_h = np.asarray(prior_l_per_day, dtype=float) / 24.0 / self.capacity_l
        self.collected_s = np.zeros(n)
        self.seen_collected = np.zeros(n, dtype=bool)   # collected since the start
        self.last_s = np.full(n, np.nan)        # last trusted reading
        self.last_v = np.full(n, np.nan)
        self.first_s = np.full(n, np.nan)       # first reading after the last collection
        self.first_v = np.full(n, np.nan)
        self.offset = np.zeros(n)               # sensor's zero error, found after collection
        self.repeats = np.zeros(n, dtype=int)
        self.previous_v = np.full(n, np.nan)

    def ingest(self, time_s: float, index: np.ndarray, value: np.ndarray) -> None:
        """Readings (fraction of capacity) of containers ``index`` at ``time_s``."""
        index, value = np.asarray(index, dtype=int), np.asarray(value, dtype=float)
        ok = np.isfinite(value)
        index, value = index[ok], value[ok]
        same = np.isfinite(self.previous_v[index]) & (np.abs(self.previous_v[index] - value) < 1e-9)
        self.repeats[index] = np.where(same, self.repeats[index] + 1, 0)
        self.previous_v[index] = value
        fresh = np.isnan(self.first_s[index])
        k = index[fresh]
        rezero = self.seen_collected[k]     # just emptied: the reading should be ~ the rate
        expected = self.rate_per_h[k] * (time_s - self.collected_s[k]) / 3600.0
        self.offset[k] = np.where(rezero, np.clip(value[fresh] - expected, -0.5, 0.5),
                                  self.offset[k])
        self.first_s[k], self.first_v[k] = time_s, value[fresh]
        self.last_s[index], self.last_v[index] = time_s, value

    def collected(self, k: int, time_s: float, litres: float) -> None:
        """A crew emptied container ``k`` finding ``litres``: learn its rate, reset."""
        hours = (time_s - self.collected_s[k]) / 3600.0
        if hours >= 12.0 and self.seen_collected[k]:
            observed = litres / self.capacity_l[k] / hours
            self.rate_per_h[k] += RATE_SMOOTHING * (observed - self.rate_per_h[k])
        self.collected_s[k] = time_s
        self.seen_collected[k] = True
        self.first_s[k] = self.first_v[k] = self.last_s[k] = self.last_v[k] = np.nan
        self.repeats[k] = 0

    def estimate(self, now_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(fill fraction now, fill rate per hour) of every container."""
        since = (now_s - self.collected_s) / 3600.0
        blind = self.rate_per_h * since
        rate = self.rate_per_h.copy()
        span = (self.last_s - self.first_s) / 3600.0
        learnt = np.isfinite(span) & (span >= 12.0)
        slope = np.where(learnt, (self.last_v - self.first_v) / np.where(learnt, span, 1.0), 0.0)
        good = learnt & (slope > 0) & (self.repeats < STUCK_REPEATS)
        rate[good] = slope[good]
        trusted = np.isfinite(self.last_v) & (self.repeats < STUCK_REPEATS)
        read = self.last_v - self.offset + rate * (now_s - self.last_s) / 3600.0
        return np.where(trusted, np.maximum(read, 0.0), blind), rate


def fixed_weekdays(nominal_l_per_day: np.ndarray, capacity_l: np.ndarray,
                   service_weekdays: tuple[int, ...], target_fill: float = 0.75
                   ) -> list[tuple[int, ...]]:
    """Collection weekdays of each container: as many a week as keep it under
    ``target_fill`` on average, spread evenly and balanced between days."""
    days = list(service_weekdays)
    load = np.zeros(len(days))
    weekly_fill = 7.0 * np.asarray(nominal_l_per_day) / np.asarray(capacity_l)
    order = np.argsort(-weekly_fill, kind="stable")       # the busiest first
    chosen: dict[int, tuple[int, ...]] = {}
    for k in order:
        per_week = int(min(len(days), max(1, math.ceil(weekly_fill[k] / target_fill))))
        step = len(days) / per_week
        best, best_cost = None, math.inf
        for offset in range(int(math.ceil(step))):
            slots = sorted({int(offset + i * step) % len(days) for i in range(per_week)})
            cost = load[slots].max() + 1e-3 * load[slots].sum()
            if cost < best_cost:
                best, best_cost = slots, cost
        load[best] += weekly_fill[k] / per_week
        chosen[int(k)] = tuple(days[s] for s in best)
    return [chosen[k] for k in range(len(weekly_fill))]


class FixedSchedule:
    """Collect on each container's fixed weekdays."""

    name = "fixed"

    def __init__(self, weekdays: list[tuple[int, ...]]) -> None:
        self.weekdays = weekdays

    def select(self, weekday: int, now_s: float, next_tour_s: float,
               estimator: FillEstimator) -> np.ndarray:
        return np.array([k for k, days in enumerate(self.weekdays) if weekday in days], dtype=int)


class SensorDriven:
    """Collect what is forecast to pass ``threshold`` before the next tour."""

    name = "sensor"

    def __init__(self, threshold: float = 0.8, max_days: float = 14.0) -> None:
        self.threshold = float(threshold)
        self.max_days = float(max_days)

    def select(self, weekday: int, now_s: float, next_tour_s: float,
               estimator: FillEstimator) -> np.ndarray:
        fill, rate = estimator.estimate(now_s)
        forecast = fill + rate * max(next_tour_s - now_s, 0.0) / 3600.0
        overdue = (now_s - estimator.collected_s) >= self.max_days * 86400.0
        return np.flatnonzero((forecast >= self.threshold) | overdue)
