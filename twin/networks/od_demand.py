"""Origin-destination car demand by hour of the day, from a city's homes and activity places.

Homes are the city's blocks (residents). Jobs and shops/services are placed on the
blocks by a documented rule (:func:`activity_places`): weight = block area x a kernel
peaking at the district centre x (1 + a bonus for frontage on arterial streets), with
a lognormal spread drawn from one seeded generator. Blocks are grouped into zones
(:func:`city_zones`); gateways where arterials leave the district are zones too, for
commuters in and out and for through traffic.

Trips are distributed by a gravity model with exponential deterrence on the free-flow
zone-to-zone travel time: doubly constrained for commuting (residents' jobs inside the
district against the district's jobs), production constrained for other trips, and
given hourly departure profiles with the morning and evening peaks (home -> activity
in the morning, the transposed matrix for the way back).

Trip rates (car-driver trips on a weekday; :class:`TripRates`) are assumptions of the
order reported by French household travel surveys (EMD/EMC2 of mid-size cities:
3.3 to 3.9 trips per resident per weekday, 40 to 50 % of them as car driver, about
1.3 persons per car) and by INSEE for employment (0.45 workers per resident). They are
not calibrated on counts: a planner with counts should change them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.city.model import City

HOURS = 24


def _profile(values: list[float]) -> np.ndarray:
    p = np.asarray(values, dtype=float)
    assert p.shape == (HOURS,)
    return p / p.sum()


# Share of a purpose's daily departures in each hour (00-01 ... 23-24). Shapes follow the
# weekday hourly distributions of car trips in French household surveys: a sharp 7-9 h
# commuting peak, a broader 16-19 h return, other purposes spread through the day.
WORK_OUT = _profile([0, 0, 0, 0, .2, 1.5, 7, 26, 30, 12, 5, 3, 3, 3, 2.5, 2, 1.5, 1, .8, .5,
                     .3, .2, .1, 0])
WORK_BACK = _profile([.2, 0, 0, 0, 0, 0, .2, .5, 1, 1.5, 2, 4, 7, 5, 3.5, 6, 14, 26, 19, 8,
                      3, 1.5, 1, .5])
OTHER_OUT = _profile([.2, .1, 0, 0, 0, .3, 2, 6, 8, 9, 10, 9, 6, 7, 9, 10, 9.5, 8.5, 6.5,
                      4.5, 2.5, 1.5, .8, .4])
OTHER_BACK = _profile([.6, .3, .1, 0, 0, 0, .3, 1.5, 4, 6, 7.5, 9, 9, 6.5, 7, 8.5, 10, 11,
                       9.5, 7, 4.5, 3, 2, 1])
NON_HOME = _profile([0, 0, 0, 0, 0, .2, 1, 3, 5, 7, 10, 12, 11, 9, 10, 10, 9, 7, 4, 2, 1,
                     .5, .2, .1])


# every purpose together, weighted by the default rates' daily trips (commute 0.46, other
# home-based 0.75, non-home-based 0.3 per resident): a day's shape for a single matrix
ALL_PURPOSES = _profile(list(0.23 * (WORK_OUT + WORK_BACK) + 0.375 * (OTHER_OUT + OTHER_BACK)
                             + 0.3 * NON_HOME))


@dataclass(frozen=True)
class TripRates:
    """Weekday car-driver trip rates and the rules of the model (assumptions, see module).

    Commuting: ``workers_per_resident`` x ``attendance`` x ``car_share_work`` residents
    drive to work and back; ``work_outside_share`` of them work outside the district
    (they leave through a gateway), and ``jobs_held_from_outside_share`` of the district's
    jobs are held by people driving in. Other home-based trips: ``other_trips_per_resident``
    (both legs), ``other_external_share`` of them leave the district. Non-home-based trips
    between activity places: ``non_home_trips_per_resident``. Through traffic:
    ``through_veh_per_gateway_day`` vehicles enter at each gateway and leave by another.
    ``beta_per_min``: gravity deterrence exp(-beta x free-flow minutes).
    """

    workers_per_resident: float = 0.45
    attendance: float = 0.85
    car_share_work: float = 0.6
    jobs_per_resident: float = 0.5
    work_outside_share: float = 0.45
    jobs_held_from_outside_share: float = 0.5
    other_trips_per_resident: float = 0.75
    other_external_share: float = 0.15
    non_home_trips_per_resident: float = 0.3
    through_veh_per_gateway_day: float = 6000.0
    beta_per_min: float = 0.15
    work_out: np.ndarray = field(default_factory=lambda: WORK_OUT.copy())
    work_back: np.ndarray = field(default_factory=lambda: WORK_BACK.copy())
    other_out: np.ndarray = field(default_factory=lambda: OTHER_OUT.copy())
    other_back: np.ndarray = field(default_factory=lambda: OTHER_BACK.copy())
    non_home: np.ndarray = field(default_factory=lambda: NON_HOME.copy())


# --- activity places and zones ------------------------------------------------------------
def activity_places(city: City, rng: np.random.Generator, jobs_per_resident: float = 0.5,
                    frontage_bonus: float = 2.0, spread_sigma: float = 0.4) -> pd.DataFrame:
    """Per block: ``population``, ``jobs`` and ``shops`` (a relative weight of shops and
    services, summing to 1).

    Rule: weight = area x (0.3 + exp(-(r / r0)^2)) x (1 + ``frontage_bonus`` x share of the
    block's perimeter along arterial streets) x lognormal(0, ``spread_sigma``), with r the
    distance to the district centre and r0 = 0.35 x sqrt(district area). Jobs are that
    weight scaled to ``jobs_per_resident`` x residents; shops use the same rule with twice
    the frontage bonus (shops line the main streets) and a spread of their own.
    """
    blocks = city.blocks
    if len(blocks) == 0:
        raise ValueError("activity_places: the city has no blocks")
    centre = np.asarray(city.meta.get("centre") or _centre(city), dtype=float)
    cxy = shapely.get_coordinates(shapely.centroid(blocks.geometry.values))
    area = blocks["area_m2"].to_numpy(float) if "area_m2" in blocks else \
        shapely.area(blocks.geometry.values)
    r0 = 0.35 * np.sqrt(area.sum())
    kernel = 0.3 + np.exp(-(np.hypot(*(cxy - centre).T) / r0) ** 2)
    frontage = _arterial_frontage_share(city)
    jobs_w = area * kernel * (1 + frontage_bonus * frontage) * rng.lognormal(0, spread_sigma,
                                                                             len(blocks))
    shop_w = area * kernel * (1 + 2 * frontage_bonus * frontage) * rng.lognormal(
        0, spread_sigma, len(blocks))
    jobs = jobs_w / jobs_w.sum() * jobs_per_resident * float(blocks["population"].sum())
    return pd.DataFrame({"population": blocks["population"].to_numpy(float), "jobs": jobs,
                         "shops": shop_w / shop_w.sum()}, index=blocks.index)


def _centre(city: City) -> tuple[float, float]:
    x0, y0, x1, y1 = city.bounds()
    return (x0 + x1) / 2, (y0 + y1) / 2


def _arterial_frontage_share(city: City, buffer_m: float = 15.0) -> np.ndarray:
    """Share of each block's perimeter lying within ``buffer_m`` of an arterial street."""
    streets = city.streets
    arterial = streets.geometry.values[(streets["street_class"] == "arterial").to_numpy()]
    rings = shapely.boundary(city.blocks.geometry.values)
    if len(arterial) == 0:
        return np.zeros(len(rings))
    zone = shapely.buffer(shapely.union_all(arterial), buffer_m)
    return np.clip(shapely.length(shapely.intersection(rings, zone)) /
                   np.maximum(shapely.length(rings), 1e-9), 0.0, 1.0)


def gateway_nodes(city: City, edge_m: float = 30.0) -> list[str]:
    """Intersections where an arterial street leaves the district: on the edge of the
    district's convex hull (within ``edge_m``), with an arterial leading inwards."""
    pts = city.intersections.geometry.values
    hull = shapely.boundary(shapely.convex_hull(shapely.union_all(pts)))
    on_edge = set(city.intersections.index[shapely.distance(pts, hull) <= edge_m])
    streets = city.streets[city.streets["street_class"] == "arterial"]
    out: set[str] = set()
    for u, v in zip(streets["u"], streets["v"]):
        if (u in on_edge) != (v in on_edge):
            out.add(u if u in on_edge else v)
    order = {node: i for i, node in enumerate(city.intersections.index)}
    return sorted(out, key=order.__getitem__)


def city_zones(city: City, places: pd.DataFrame, zone_size_m: float = 400.0,
               gateways: bool = True) -> gpd.GeoDataFrame:
    """Traffic zones: blocks grouped on a square grid of ``zone_size_m``, plus gateways.

    Columns: ``kind`` ('internal' or 'gateway'), ``population``, ``jobs``, ``shops``,
    ``nodes`` (the intersections the zone is attached to: its blocks' nearest ones, or the
    gateway's), ``block_ids``; geometry is the zone's centroid (population-weighted for
    internal zones). Index ``zone_id`` ('z1', 'z2'... then 'g1', 'g2'...).
    """
    blocks = city.blocks
    cxy = shapely.get_coordinates(shapely.centroid(blocks.geometry.values))
    x0, y0 = cxy.min(axis=0)
    cell = np.floor((cxy - [x0, y0]) / zone_size_m).astype(np.int64)
    key = cell[:, 0] * 1_000_003 + cell[:, 1]
    _, group = np.unique(key, return_inverse=True)
    rows = []
    for g in range(group.max() + 1):
        members = np.flatnonzero(group == g)
        pop = places["population"].to_numpy()[members]
        w = pop if pop.sum() > 0 else np.ones(len(members))
        x, y = np.average(cxy[members], axis=0, weights=w)
        node_ids = list(dict.fromkeys(blocks["node_id"].to_numpy()[members]))
        rows.append({"kind": "internal", "population": float(pop.sum()),
                     "jobs": float(places["jobs"].to_numpy()[members].sum()),
                     "shops": float(places["shops"].to_numpy()[members].sum()),
                     "nodes": tuple(node_ids), "block_ids": tuple(blocks.index[members]),
                     "x": x, "y": y})
    ids = [f"z{i + 1}" for i in range(len(rows))]
    if gateways:
        for k, node in enumerate(gateway_nodes(city)):
            p = city.intersections.geometry[node]
            rows.append({"kind": "gateway", "population": 0.0, "jobs": 0.0, "shops": 0.0,
                         "nodes": (node,), "block_ids": (), "x": p.x, "y": p.y})
            ids.append(f"g{k + 1}")
    frame = pd.DataFrame(rows, index=pd.Index(ids, name="zone_id"))
    return gpd.GeoDataFrame(frame.drop(columns=["x", "y"]),
                            geometry=shapely.points(frame["x"], frame["y"]), crs=city.crs)


# --- distribution -------------------------------------------------------------------------
def furness(seed: np.ndarray, rows: np.ndarray, cols: np.ndarray, iterations: int = 100,
            tol: float = 1e-9) -> np.ndarray:
    """Doubly-constrained balancing of ``seed`` to row sums ``rows`` and column sums
    ``cols`` (scaled to the row total). Rows or columns that cannot receive stay zero."""
    cols = cols * (rows.sum() / cols.sum()) if cols.sum() > 0 else cols
    t = seed.astype(float).copy()
    for _ in range(iterations):
        rs = t.sum(axis=1)
        t *= np.divide(rows, rs, out=np.zeros_like(rs), where=rs > 0)[:, None]
        cs = t.sum(axis=0)
        t *= np.divide(cols, cs, out=np.zeros_like(cs), where=cs > 0)[None, :]
        rs = t.sum(axis=1)
        if np.allclose(rs[rows > 0], rows[rows > 0], rtol=tol, atol=0):
            break
    return t


def production_constrained(rows: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Each row's total ``rows[i]`` shared over columns in proportion to ``weight[i, :]``."""
    s = weight.sum(axis=1)
    return weight * np.divide(rows, s, out=np.zeros_like(s), where=s > 0)[:, None]


@dataclass
class OdDemand:
    """Hourly car OD matrices over ``zone_ids``: ``veh_h[h, i, j]`` vehicles per hour
    leaving zone i for zone j during hour h (0-23), and the daily totals by purpose."""

    zone_ids: list[str]
    veh_h: np.ndarray
    daily_by_purpose: dict[str, float]

    def hour(self, hour: int) -> np.ndarray:
        """The matrix of hour ``hour`` (any integer; taken modulo 24)."""
        return self.veh_h[int(hour) % HOURS]

    @property
    def daily_trips(self) -> float:
        return float(self.veh_h.sum())

    def hourly_totals(self) -> np.ndarray:
        return self.veh_h.sum(axis=(1, 2))

    @classmethod
    def from_peak_matrix(cls, matrix: np.ndarray, zone_ids: list, peak_hour: int = 8,
                         profile: np.ndarray | None = None) -> "OdDemand":
        """A day from one matrix of ``peak_hour`` (a TNTP trips file, veh/h): each hour is
        that matrix times ``profile[h] / profile[peak_hour]`` (default: the weekday profile
        of all purposes, :data:`ALL_PURPOSES`)."""
        m = np.asarray(matrix, dtype=float)
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(zone_ids):
            raise ValueError(f"from_peak_matrix: a {len(zone_ids)} x {len(zone_ids)} matrix "
                             f"expected, got shape {m.shape}")
        p = np.asarray(ALL_PURPOSES if profile is None else profile, dtype=float)
        veh_h = np.einsum("h,ij->hij", p / p[peak_hour], m)
        return cls(zone_ids=list(zone_ids), veh_h=veh_h,
                   daily_by_purpose={"all": float(veh_h.sum())})


def hourly_demand(zones: gpd.GeoDataFrame, cost_min: np.ndarray,
                  rates: TripRates | None = None) -> OdDemand:
    """Hourly OD demand over ``zones`` (from :func:`city_zones`), with ``cost_min[i, j]`` the
    free-flow travel time between zones in minutes. Trips inside one zone (a few hundred
    metres) are taken as walked or cycled and left out."""
    r = rates or TripRates()
    n = len(zones)
    cost = np.asarray(cost_min, dtype=float)
    if cost.shape != (n, n):
        raise ValueError(f"hourly_demand: cost matrix {cost.shape} for {n} zones")
    internal = (zones["kind"] == "internal").to_numpy()
    gate = ~internal
    pop = zones["population"].to_numpy(float)
    jobs = zones["jobs"].to_numpy(float)
    shops = zones["shops"].to_numpy(float)
    deter = np.exp(-r.beta_per_min * np.where(np.isfinite(cost), cost, np.inf))
    np.fill_diagonal(deter, 0.0)
    ii = np.outer(internal, internal)

    # commuting, home -> work (a gateway is the home of those driving in, the workplace of
    # those driving out)
    drivers = pop * r.workers_per_resident * r.attendance * r.car_share_work
    commute = np.zeros((n, n))
    commute[ii.nonzero()] = furness(deter * ii, drivers * (1 - r.work_outside_share),
                                    jobs)[ii.nonzero()]
    commute += production_constrained(drivers * r.work_outside_share,
                                      deter * np.outer(internal, gate))
    jobs_from_outside = jobs * r.attendance * r.car_share_work * r.jobs_held_from_outside_share
    commute += production_constrained(jobs_from_outside, deter.T * np.outer(internal, gate)).T

    # other home-based trips: half of the trips go out, half come back
    tours = pop * r.other_trips_per_resident / 2
    attract = np.where(internal, 0.4 * pop / max(pop.sum(), 1e-9) + 0.6 * shops, 0.0)
    other = production_constrained(tours * (1 - r.other_external_share),
                                   deter * ii * attract[None, :])
    other += production_constrained(tours * r.other_external_share,
                                     deter * np.outer(internal, gate))

    # non-home-based trips between activity places
    nhb_total = pop.sum() * r.non_home_trips_per_resident
    non_home = production_constrained(nhb_total * attract / max(attract.sum(), 1e-9),
                                      deter * ii * attract[None, :])

    # through traffic: gateway to gateway, the farther apart the likelier (crossing trips)
    gg = np.outer(gate, gate) & ~np.eye(n, dtype=bool)
    through = production_constrained(np.where(gate, r.through_veh_per_gateway_day, 0.0),
                                     np.where(gg, np.nan_to_num(cost, posinf=0.0), 0.0))

    veh_h = (np.einsum("h,ij->hij", r.work_out, commute)
             + np.einsum("h,ij->hij", r.work_back, commute.T)
             + np.einsum("h,ij->hij", r.other_out, other)
             + np.einsum("h,ij->hij", r.other_back, other.T)
             + np.einsum("h,ij->hij", r.non_home, non_home)
             + np.einsum("h,ij->hij", (r.work_out + r.work_back + 2 * r.other_out) / 4, through))
    daily = {"commute": 2 * commute.sum(), "other_home_based": 2 * other.sum(),
             "non_home_based": non_home.sum(), "through": through.sum()}
    return OdDemand(zone_ids=list(zones.index), veh_h=veh_h,
                    daily_by_purpose={k: float(v) for k, v in daily.items()})
