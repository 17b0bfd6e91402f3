"""On-street pricing: charged hours, the demand-responsive rule, and car-park tariffs.

The responsive rule is SFpark's: after each day (or week), a zone whose occupancy over the
charged hours averaged above ``raise_above`` (80 %) costs ``step_eur_h`` more, one below
``lower_below`` (60 %) that much less, within ``min_price_eur_h``..``max_price_eur_h``.
Visitor demand follows the price with a constant elasticity: arrivals x (price / base)
** ``elasticity``; -0.4 is of the order SFpark measured (Pierce & Shoup 2013 report
-0.4 on average). Of the drivers a higher price deters, ``deterred_to_car_park`` park in
the nearest car park instead (assumption).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

@dataclass(frozen=True)
class PricingPolicy:
    """On-street prices and how they follow occupancy; car-park tariffs."""

    mode: str = "fixed"                  # 'fixed' or 'responsive'
    every: str = "day"                   # responsive: adjust each 'day' or each 'week'
    base_price_eur_h: float = 1.5
    step_eur_h: float = 0.25
    min_price_eur_h: float = 0.5
    max_price_eur_h: float = 6.0
    raise_above: float = 0.80
    lower_below: float = 0.60
    elasticity: float = -0.4             # visitor arrivals ~ (price / base) ** elasticity
    deterred_to_car_park: float = 0.5
    charged_from_h: int = 9
    charged_to_h: int = 19
    charged_days: int = 6                # Monday to Saturday
    car_park_eur_h: float = 2.0
    car_park_day_cap_eur: float = 12.0

    def __post_init__(self) -> None:
        if self.mode not in ("fixed", "responsive") or self.every not in ("day", "week"):
            raise ValueError(f"PricingPolicy: mode fixed|responsive and every day|week, got "
                             f"{self.mode!r}, {self.every!r}")

    def charged(self, weekday: int, hour: float) -> bool:
        """Whether on-street parking is paid at ``hour`` of a day with ``weekday`` (0 Monday)."""
        return weekday < self.charged_days and self.charged_from_h <= hour < self.charged_to_h

    def charged_seconds(self, t0: np.ndarray, t1: np.ndarray, start: dt.datetime) -> np.ndarray:
        """Charged seconds within each stay [t0, t1] (seconds from ``start``)."""
        t0, t1 = np.asarray(t0, dtype=float), np.asarray(t1, dtype=float)
        if len(t0) == 0:
            return np.zeros(0)
        offset = start.hour * 3600 + start.minute * 60 + start.second
        a, b = t0 + offset, t1 + offset               # seconds from the start's midnight
        total = np.zeros(len(a))
        for d in range(int(np.floor(a.min() / 86400)), int(np.floor(b.max() / 86400)) + 1):
            if (start.weekday() + d) % 7 >= self.charged_days:
                continue
            lo, hi = d * 86400 + self.charged_from_h * 3600, d * 86400 + self.charged_to_h * 3600
            total += np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0, None)
        return total

    def adjusted(self, price: np.ndarray, mean_share: np.ndarray) -> np.ndarray:
        """Prices after the 60-80 % rule on each zone's charged-hours mean occupancy."""
        change = np.where(mean_share > self.raise_above, self.step_eur_h,
                          np.where(mean_share < self.lower_below, -self.step_eur_h, 0.0))
        return np.clip(price + change, self.min_price_eur_h, self.max_price_eur_h)

    def demand_factor(self, price: np.ndarray) -> np.ndarray:
        """Visitor arrivals relative to those at the base price."""
        return (np.asarray(price, dtype=float) / self.base_price_eur_h) ** self.elasticity
