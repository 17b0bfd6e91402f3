"""The city's households as Mesa agents, and the requests they make.

:class:`Households` holds every household of the city as one Mesa
``AgentSet`` of :class:`Household` agents; their attributes (home x/y in the
city's CRS, preferred channel, propensity to report) live in numpy arrays, so
drawing a day of requests or the residents around an incident is vectorised.
The Mesa model is never stepped: the twin's SimPy clock is the only clock.

:class:`BackgroundDemand` draws background requests as a non-homogeneous
Poisson process per service: counts per hour (rate x month x weekday x hour
factors of :func:`twin.agents.services.demand_profile`), times uniform in the
hour, households drawn in proportion to their propensity.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mesa
import numpy as np
import shapely
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    from twin.agents.services import Service
    from twin.city.model import City

CHANNELS: tuple[str, ...] = ("app", "web", "phone", "counter")
# preferred channel of a household (assumption: app-first city service, as Paris' DansMaRue)
CHANNEL_SHARES: tuple[float, ...] = (0.42, 0.20, 0.32, 0.06)
PROPENSITY_SIGMA = 0.8        # lognormal spread of the propensity to report (mean 1)
HOURS_PER_YEAR = 8766.0       # as in demand_profile's docstring


class Household(mesa.Agent):
    """One household; its attributes are rows of the :class:`Households` arrays."""

    def __init__(self, model: mesa.Model, row: int, owner: "Households") -> None:
        super().__init__(model)
        self.row = row
        self._owner = owner

    @property
    def home_xy_m(self) -> tuple[float, float]:
        return float(self._owner.x_m[self.row]), float(self._owner.y_m[self.row])

    @property
    def channel(self) -> str:
        return CHANNELS[self._owner.channel[self.row]]

    @property
    def propensity(self) -> float:
        return float(self._owner.propensity[self.row])


class Households:
    """Every household of ``city``: arrays plus one Mesa ``AgentSet`` (``agents``).

    Arrays (one row per household): ``x_m``, ``y_m`` (home, city CRS), ``channel``
    (index into :data:`CHANNELS`), ``propensity`` (mean 1), ``block`` (row of city.blocks).
    """

    def __init__(self, city: "City", rng: np.random.Generator,
                 channel_shares: tuple[float, ...] = CHANNEL_SHARES,
                 with_agents: bool = True) -> None:
        if len(channel_shares) != len(CHANNELS) or abs(sum(channel_shares) - 1) > 1e-9:
            raise ValueError(f"channel_shares: expected {len(CHANNELS)} shares of "
                             f"{CHANNELS} summing to 1, got {channel_shares}")
        blocks = city.blocks
        counts = blocks["households"].to_numpy(dtype=np.int64)
        self.block = np.repeat(np.arange(len(blocks)), counts)
        n = len(self.block)
        centroid = shapely.centroid(blocks.geometry.values)
        half_m = 0.4 * np.sqrt(blocks["area_m2"].to_numpy())
        self.x_m = shapely.get_x(centroid)[self.block] + rng.uniform(-1, 1, n) * half_m[self.block]
        self.y_m = shapely.get_y(centroid)[self.block] + rng.uniform(-1, 1, n) * half_m[self.block]
        self.channel = rng.choice(len(CHANNELS), size=n, p=np.asarray(channel_shares))
        p = rng.lognormal(0.0, PROPENSITY_SIGMA, n)
        self.propensity = p / p.mean()
        self._cdf = np.cumsum(self.propensity) / self.propensity.sum()
        self._tree = cKDTree(np.column_stack([self.x_m, self.y_m]))
        self.population = int(blocks["population"].sum())
        # Mesa owns agents, never time: model.step() is never called
        self.model = mesa.Model(rng=rng.integers(2**31))
        self.agents = (Household.create_agents(self.model, n, list(range(n)), self)
                       if with_agents else None)

    def __len__(self) -> int:
        return len(self.x_m)

    def draw(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` household rows drawn with replacement in proportion to propensity."""
        return np.minimum(np.searchsorted(self._cdf, rng.random(k)), len(self) - 1)

    def near(self, x_m: float, y_m: float, radius_m: float) -> np.ndarray:
        """Rows of the households whose home lies within ``radius_m`` of (x_m, y_m)."""
        return np.asarray(self._tree.query_ball_point((x_m, y_m), radius_m), dtype=np.int64)

    def within_box(self, xmin: float, ymin: float, xmax: float, ymax: float,
                   margin_m: float = 0.0) -> np.ndarray:
        """Rows of the households whose home lies in the box grown by ``margin_m``."""
        inside = ((self.x_m >= xmin - margin_m) & (self.x_m <= xmax + margin_m)
                  & (self.y_m >= ymin - margin_m) & (self.y_m <= ymax + margin_m))
        return np.flatnonzero(inside)


@dataclass
class DayOfRequests:
    """Background requests of one day, sorted by time: seconds since run start,
    service row (in the demand's ``services``), household row."""

    time_s: np.ndarray
    service: np.ndarray
    household: np.ndarray


class BackgroundDemand:
    """Non-homogeneous Poisson demand per service for ``population`` inhabitants.

    The expected count of service s in an hour is
    ``rate_s * population / 1000 * month_s[m] * weekday_s[d] * hour_s[h] / 8766``;
    ``volume_factor`` scales every rate (the 10x benchmark, a stress test).
    """

    def __init__(self, services: list["Service"], population: int,
                 volume_factor: float = 1.0) -> None:
        from twin.agents.services import demand_profile

        if not volume_factor > 0:
            raise ValueError(f"volume_factor: expected > 0, got {volume_factor}")
        self.services = list(services)
        rates = np.array([s.rate_per_1000_per_year for s in self.services])
        self.per_hour = rates * population / 1000.0 * volume_factor / HOURS_PER_YEAR
        profiles = [demand_profile(s) for s in self.services]
        self.month = np.array([p[0] for p in profiles])       # (services, 12)
        self.weekday = np.array([p[1] for p in profiles])     # (services, 7)
        self.hour = np.array([p[2] for p in profiles]).T      # (24, services)

    def expected_per_year(self) -> float:
        return float(self.per_hour.sum() * HOURS_PER_YEAR)

    def draw_day(self, day: dt.date, day_start_s: float, households: Households,
                 rng: np.random.Generator, extra: np.ndarray | None = None) -> DayOfRequests:
        """The background requests of calendar ``day`` starting at ``day_start_s``.

        ``extra`` (hours x services, as :meth:`surge_extra` gives it): draw only the extra
        requests of a surge, its expected count being ``extra`` times the usual one."""
        scale = self.per_hour * self.month[:, day.month - 1] * self.weekday[:, day.weekday()]
        expected = self.hour * scale if extra is None else self.hour * scale * extra
        counts = rng.poisson(expected)                          # (24, services)
        hours, service = np.nonzero(counts)
        reps = counts[hours, service]
        hours, service = np.repeat(hours, reps), np.repeat(service, reps)
        time_s = day_start_s + (hours + rng.random(len(hours))) * 3600.0
        order = np.argsort(time_s, kind="stable")
        return DayOfRequests(time_s[order], service[order],
                             households.draw(len(order), rng))



def surge_extra(day_start_s: float, start_s: float, end_s: float, mask: np.ndarray,
                factor: float) -> np.ndarray | None:
    """(24, services) extra factors of a day for a surge from ``start_s`` to ``end_s`` of the
    services in ``mask``: ``factor - 1`` in every hour it touches (the draws are then kept
    between ``start_s`` and ``end_s`` only); None if it does not touch the day."""
    hours = day_start_s + np.arange(25) * 3600.0
    touched = (hours[1:] > start_s) & (hours[:-1] < end_s)
    if not touched.any() or factor <= 1.0:
        return None
    return np.outer(touched, mask * (factor - 1.0))
