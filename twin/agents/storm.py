"""A storm: many streets flooded within a few days, for the citizens' service to absorb.

:func:`storm_floods` draws ``StreetFlooded`` events (no burst behind them, so sewer crews
answer them) on random streets of the city at uniform times over the storm; the
citizens layer turns each into residents' reports and one work order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from twin.events import StreetFlooded

if TYPE_CHECKING:
    from twin.city.model import City

STORM_FLOOD_RADIUS_M = 40.0


def storm_floods(city: "City", start_s: float, days: float, floods_per_day: float,
                 rng: np.random.Generator) -> list[StreetFlooded]:
    """About ``floods_per_day`` flooded streets a day from ``start_s`` for ``days`` days.

    The count is Poisson (mean ``floods_per_day * days``, at most one flood per street),
    times uniform over the storm, each flood at the middle of its street.
    """
    if days < 0 or floods_per_day < 0:
        raise ValueError(f"storm: days and floods_per_day must be >= 0, got {days}, "
                         f"{floods_per_day}")
    streets = city.streets
    n = min(int(rng.poisson(floods_per_day * days)), len(streets))
    if n == 0:
        return []
    chosen = streets.iloc[np.sort(rng.choice(len(streets), size=n, replace=False))]
    mid = chosen.geometry.interpolate(0.5, normalized=True)
    times_s = start_s + np.sort(rng.uniform(0.0, days * 86400.0, n))
    return [StreetFlooded(time_s=float(t), source="storm", x=float(p.x), y=float(p.y),
                          radius_m=STORM_FLOOD_RADIUS_M, street_ids=(str(sid),))
            for t, p, sid in zip(times_s, mid, chosen.index)]
