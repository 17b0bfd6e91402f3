"""How containers fill, and what their fill-level sensors report.

Production (documented assumptions): a container's nominal litres per day (its
residents x 5.7 L, see :mod:`twin.networks.waste_build`) times
- a persistent factor per container, lognormal with sigma 0.25 (habits, passers-by,
  a shop nearby): the same container is always fuller or emptier than nominal;
- a weekday factor, Monday to Sunday 1.10, 1.00, 0.95, 0.95, 1.00, 1.00, 1.00
  (more after the weekend at home; normalised to a mean of 1);
- a seasonal factor 1 + 0.08 cos(2 pi (day of year - 358) / 365): highest at
  Christmas, lowest in early summer;
- a daily noise factor per container, lognormal with sigma 0.2;
deposited over the day by an hourly profile with morning and evening peaks.
A container holds its capacity; the rest is left beside it (overflow).

Sensors (ultrasonic level sensors on LPWAN, one reading every ``interval_h``):
- reading noise: normal, sigma 0.03 of capacity (an irregular surface of bags);
- missing: each reading is lost with probability 0.05 (radio loss);
- stuck: onset 1 % per sensor per week (a bag jammed under the sensor, a dead
  transducer); a stuck sensor repeats its last value; a collection clears it
  with probability 0.5 (the crew removes the obstruction);
- drift: onset 0.5 % per sensor per week; from then on a bias growing by
  N(0, 0.02) of capacity per day (dirt on the transducer, temperature).
All draws come from the run's seeded streams ``waste.production`` and ``waste.sensors``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEEKDAY_FACTOR = np.array([1.10, 1.00, 0.95, 0.95, 1.00, 1.00, 1.00])
WEEKDAY_FACTOR = WEEKDAY_FACTOR / WEEKDAY_FACTOR.mean()
SEASON_AMPLITUDE = 0.08
SEASON_PEAK_DAY = 358
# share of a day's waste deposited in each hour (0-23 h): morning and evening peaks
HOURLY_SHARE = np.array([0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 2.5, 6.5, 9.0, 7.0, 5.0, 4.0,
                         4.5, 4.5, 3.5, 3.0, 3.5, 5.0, 7.5, 9.0, 9.0, 7.0, 4.0, 1.7])
HOURLY_SHARE = HOURLY_SHARE / HOURLY_SHARE.sum()
CONTAINER_SIGMA = 0.25
DAILY_SIGMA = 0.20


def seasonal_factor(day_of_year: float) -> float:
    """Production relative to the year's mean on ``day_of_year`` (1..366)."""
    return 1.0 + SEASON_AMPLITUDE * np.cos(2 * np.pi * (day_of_year - SEASON_PEAK_DAY) / 365.0)


class FillModel:
    """Fill of every container (litres), overflow beside it, advanced hour by hour."""

    def __init__(self, capacity_l: np.ndarray, nominal_l_per_day: np.ndarray,
                 rng: np.random.Generator, initial_fraction: np.ndarray | None = None) -> None:
        self.capacity_l = np.asarray(capacity_l, dtype=float)
        self.nominal_l_per_day = np.asarray(nominal_l_per_day, dtype=float)
        self.rng = rng
        n = len(self.capacity_l)
        self.container_factor = rng.lognormal(-CONTAINER_SIGMA ** 2 / 2, CONTAINER_SIGMA, n)
        if initial_fraction is None:     # mid-cycle: as if last collected some days ago
            initial_fraction = rng.uniform(0.05, 0.5, n)
        self.fill_l = self.capacity_l * initial_fraction
        self.overflow_l = np.zeros(n)               # left beside the container now
        self.overflowing = np.zeros(n, dtype=bool)
        self._day = -1
        self._today_l = np.zeros(n)

    def expected_l_per_day(self, weekday: int, day_of_year: float) -> np.ndarray:
        """Mean production of each container on such a day (no daily noise)."""
        return (self.nominal_l_per_day * self.container_factor * WEEKDAY_FACTOR[weekday]
                * seasonal_factor(day_of_year))

    def advance_hour(self, day_index: int, weekday: int, day_of_year: float, hour: int
                     ) -> np.ndarray:
        """Add one hour of waste; return the containers that just started to overflow."""
        if day_index != self._day:
            self._day = day_index
            noise = self.rng.lognormal(-DAILY_SIGMA ** 2 / 2, DAILY_SIGMA, len(self.fill_l))
            self._today_l = self.expected_l_per_day(weekday, day_of_year) * noise
        self.fill_l += self._today_l * HOURLY_SHARE[hour]
        excess = np.clip(self.fill_l - self.capacity_l, 0.0, None)
        self.overflow_l += excess
        self.fill_l -= excess
        started = (self.overflow_l > 0) & ~self.overflowing
        self.overflowing |= started
        return np.flatnonzero(started)

    def fraction(self) -> np.ndarray:
        """Fill as a share of capacity, counting what lies beside the container."""
        return (self.fill_l + self.overflow_l) / self.capacity_l

    def empty(self, k: int) -> float:
        """Collect container ``k`` (and what lies beside it); return the litres taken."""
        taken = float(self.fill_l[k] + self.overflow_l[k])
        self.fill_l[k] = 0.0
        self.overflow_l[k] = 0.0
        self.overflowing[k] = False
        return taken


@dataclass(frozen=True)
class SensorFaults:
    """Fault rates of the fill sensors (see the module docstring for the reasons)."""

    noise_sigma: float = 0.03
    missing_p: float = 0.05
    stuck_per_week: float = 0.01
    stuck_cleared_at_collection_p: float = 0.5
    drift_per_week: float = 0.005
    drift_sigma_per_day: float = 0.02


class SensorBank:
    """Fill-level sensors on some containers: readings with noise and faults."""

    def __init__(self, has_sensor: np.ndarray, interval_h: float, faults: SensorFaults,
                 rng: np.random.Generator) -> None:
        self.has_sensor = np.asarray(has_sensor, dtype=bool)
        self.interval_h = float(interval_h)
        self.faults = faults
        self.rng = rng
        n = len(self.has_sensor)
        self.stuck = np.zeros(n, dtype=bool)
        self.drift_rate = np.zeros(n)            # fraction of capacity per day
        self.drift_bias = np.zeros(n)
        self.last_value = np.full(n, np.nan)
        self.stuck_episodes = 0
        self.drift_onsets = 0
        self.sent = 0
        self.lost = 0

    def read(self, true_fraction: np.ndarray) -> np.ndarray:
        """One round of readings (fraction of capacity); NaN where none arrives."""
        f, n = self.faults, len(self.has_sensor)
        weeks = self.interval_h / (24 * 7)
        start_stuck = self.has_sensor & ~self.stuck & (self.rng.random(n) < f.stuck_per_week * weeks)
        start_drift = self.has_sensor & (self.drift_rate == 0) & \
            (self.rng.random(n) < f.drift_per_week * weeks)
        self.stuck |= start_stuck
        self.stuck_episodes += int(start_stuck.sum())
        self.drift_rate[start_drift] = self.rng.normal(0.0, f.drift_sigma_per_day,
                                                       int(start_drift.sum()))
        self.drift_onsets += int(start_drift.sum())
        self.drift_bias += self.drift_rate * self.interval_h / 24.0
        noise = self.rng.normal(0.0, f.noise_sigma, n)
        value = np.clip(true_fraction + self.drift_bias + noise, 0.0, 1.5)
        value = np.where(self.stuck & np.isfinite(self.last_value), self.last_value, value)
        lost = self.rng.random(n) < f.missing_p
        self.last_value = np.where(self.has_sensor, value, np.nan)
        out = np.where(self.has_sensor & ~lost, value, np.nan)
        self.sent += int(self.has_sensor.sum())
        self.lost += int((self.has_sensor & lost).sum())
        return out

    def collected(self, k: int) -> None:
        """A crew emptied container ``k``: a jammed sensor may be freed."""
        if self.stuck[k] and self.rng.random() < self.faults.stuck_cleared_at_collection_p:
            self.stuck[k] = False
