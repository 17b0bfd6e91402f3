"""Switching and dimming programs of the street lights, and the KPIs' money and carbon.

Three strategies:

* ``full``: every lamp at full power from switch-on to switch-off;
* ``dimming``: a fixed program, ``dim_level`` (0.5) between ``dim_from`` and ``dim_to``
  (23:00-05:00 local time);
* ``adaptive``: each street's lamps follow its traffic, stepped as lighting classes are
  (EN 13201 M-class steps): at least half the class's design flow -> 100 %, a quarter ->
  75 %, a tenth -> 50 %, less -> the class's floor (arterial 50 %, local 30 %). Flows
  come from ``Twin.street_flows_veh_h`` when a traffic layer sets it, else from
  :data:`DEFAULT_TRAFFIC_SHARE` times the design flow.

A lamp draws ``power_w * max(level, min_level)``: gear that cannot dim below its
``min_level`` (bi-level HPS ballasts: 0.5) stays there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

STRATEGIES = ("full", "dimming", "adaptive")
# peak-hour design flow of a street class (veh/h, both directions)
DESIGN_FLOW_VEH_H = {"arterial": 900.0, "local": 120.0}
ADAPTIVE_FLOOR = {"arterial": 0.5, "local": 0.3}
# share of the peak-hour flow by local hour (0..23) on a working day: the documented
# default when no traffic layer runs (shape of French urban count profiles)
DEFAULT_TRAFFIC_SHARE = np.array([
    0.12, 0.07, 0.05, 0.04, 0.06, 0.15, 0.45, 0.85, 1.00, 0.80, 0.70, 0.72,
    0.75, 0.72, 0.70, 0.75, 0.85, 0.98, 0.95, 0.70, 0.48, 0.36, 0.28, 0.20])
DEFAULT_TARIFF_EUR_PER_KWH = 0.20      # public lighting tariff (energy + network), France
DEFAULT_CO2_KG_PER_KWH = 0.056         # French grid, life-cycle average (ADEME Base Empreinte)


def clock_minutes(text: str) -> int:
    """``"23:00"`` -> 1380 minutes after midnight; ValueError with the expected form."""
    hh, sep, mm = str(text).partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or int(hh) > 23 or int(mm) > 59:
        raise ValueError(f"expected a time of day HH:MM such as '23:00', got {text!r}")
    return int(hh) * 60 + int(mm)


@dataclass(frozen=True)
class DimmingProgram:
    """One strategy with its settings."""

    strategy: str = "full"
    dim_level: float = 0.5
    dim_from: str = "23:00"
    dim_to: str = "05:00"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"lighting strategy: expected one of {', '.join(STRATEGIES)}, "
                             f"got {self.strategy!r}")
        if not 0.0 <= self.dim_level <= 1.0:
            raise ValueError(f"dim_level: expected a fraction 0..1, got {self.dim_level}")
        clock_minutes(self.dim_from), clock_minutes(self.dim_to)

    def in_dim_window(self, minute_of_day: np.ndarray) -> np.ndarray:
        """True where the local minute of day lies in [dim_from, dim_to) (across midnight)."""
        a, b = clock_minutes(self.dim_from), clock_minutes(self.dim_to)
        m = np.asarray(minute_of_day)
        return (m >= a) & (m < b) if a <= b else (m >= a) | (m < b)

    def levels(self, minute_of_day: np.ndarray, street_class: np.ndarray,
               flow_veh_h: np.ndarray | None) -> np.ndarray:
        """Commanded level per lamp and minute, shape (lamps, minutes) or (1, minutes).

        ``street_class``: each lamp's street class; ``flow_veh_h``: each lamp's street flow
        (lamps,), or None for the default profile.
        """
        m = np.asarray(minute_of_day, dtype=float)
        if self.strategy == "full":
            return np.ones((1, m.size))
        if self.strategy == "dimming":
            return np.where(self.in_dim_window(m), self.dim_level, 1.0)[None, :]
        design, floor = _class_values(tuple(np.unique(street_class)))
        cls_idx = np.searchsorted(np.unique(street_class), street_class)
        if flow_veh_h is None:          # one profile for all: decide per class, then spread
            share = DEFAULT_TRAFFIC_SHARE[(m // 60).astype(int) % 24][None, :]
            per_class = _step_levels(np.broadcast_to(share, (len(design), m.size)), floor)
            return per_class[cls_idx]
        ratio = np.asarray(flow_veh_h, dtype=float) / design[cls_idx]
        return np.repeat(_step_levels(ratio[:, None], floor[cls_idx]), m.size, axis=1)


@lru_cache(maxsize=8)
def _class_values(classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Design flow and adaptive floor of each street class (sorted names)."""
    return (np.array([DESIGN_FLOW_VEH_H.get(c, DESIGN_FLOW_VEH_H["local"]) for c in classes]),
            np.array([ADAPTIVE_FLOOR.get(c, ADAPTIVE_FLOOR["local"]) for c in classes]))


def _step_levels(ratio: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Flow / design flow -> level: >= 1/2: 100 %, >= 1/4: 75 %, >= 1/10: 50 %, else floor."""
    return np.select([ratio >= 0.5, ratio >= 0.25, ratio >= 0.1], [1.0, 0.75, 0.5],
                     default=np.broadcast_to(np.asarray(floor)[:, None], ratio.shape))


def power_fraction(levels: np.ndarray, min_level: np.ndarray) -> np.ndarray:
    """Fraction of rated power drawn at ``levels`` by gear with floors ``min_level`` (lamps,)."""
    return np.maximum(levels, np.asarray(min_level)[:, None])
