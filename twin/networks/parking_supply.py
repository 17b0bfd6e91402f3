"""Parking supply of a city: on-street zones (kerb bays) and off-street car parks.

Zones group the city's blocks on a square grid (``zone_size_m``); each street belongs to
the zone of the block centroid nearest to its midpoint. A street's bays are its kerb
length on both sides, less a clearance at each junction, times the share of kerb where
parking is allowed (lower on arterials: bus stops, turning lanes), divided by the bay
length. Jobs (the visitors' destinations) are placed on blocks by a centrality rule
(area x (0.3 + exp(-(r/r0)^2)), r0 = 0.35 sqrt(district area)) and scaled to
``jobs_per_resident``; the busiest zones by jobs get a car park sized to a share of
their daily visitors. Every rule is a parameter of :class:`SupplyRules`.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from twin.city.model import City


@dataclass(frozen=True)
class SupplyRules:
    """How bays, zones, jobs and car parks are laid out (assumptions, in the units named)."""

    zone_size_m: float = 700.0
    bay_length_m: float = 5.5
    junction_clearance_m: float = 10.0
    kerb_share_local: float = 0.8
    kerb_share_arterial: float = 0.5
    jobs_per_resident: float = 0.5
    car_park_zone_share: float = 0.25      # busiest zones (by jobs) with a car park
    car_park_spaces_per_job: float = 0.2
    car_park_min_spaces: int = 100
    car_park_max_spaces: int = 2000


def street_bays(city: City, rules: SupplyRules) -> pd.Series:
    """On-street bays of each street (both sides), indexed by street_id."""
    s = city.streets
    kerb = np.maximum(s["length_m"].to_numpy(float) - 2 * rules.junction_clearance_m, 0.0)
    share = np.where(s["street_class"].to_numpy() == "arterial", rules.kerb_share_arterial,
                     rules.kerb_share_local)
    return pd.Series(np.floor(2 * kerb * share / rules.bay_length_m).astype(np.int64),
                     index=s.index, name="bays")


def block_jobs(city: City, rules: SupplyRules) -> np.ndarray:
    """Jobs per block by the centrality rule (module docstring), summing to
    ``jobs_per_resident`` x residents."""
    blocks = city.blocks
    cxy = shapely.get_coordinates(shapely.centroid(blocks.geometry.values))
    area = shapely.area(blocks.geometry.values)
    centre = np.average(cxy, axis=0, weights=area)
    r0 = 0.35 * np.sqrt(area.sum())
    weight = area * (0.3 + np.exp(-(np.hypot(*(cxy - centre).T) / r0) ** 2))
    return weight / weight.sum() * rules.jobs_per_resident * float(blocks["population"].sum())


@dataclass
class Supply:
    """Zones, car parks and the zone of every block and street."""

    zones: gpd.GeoDataFrame          # capacity_bays, kerb_length_m, population, households, jobs
    car_parks: gpd.GeoDataFrame      # zone_id, capacity_spaces
    block_zone: pd.Series            # block_id -> zone_id
    street_zone: pd.Series           # street_id -> zone_id
    bays: pd.Series                  # street_id -> bays


def build_supply(city: City, rules: SupplyRules | None = None) -> Supply:
    """The parking supply of ``city`` by ``rules`` (deterministic)."""
    rules = rules or SupplyRules()
    if len(city.blocks) == 0 or len(city.streets) == 0:
        raise ValueError("parking: the city has no blocks or no streets to park on")
    blocks = city.blocks
    cxy = shapely.get_coordinates(shapely.centroid(blocks.geometry.values))
    cell = np.floor((cxy - cxy.min(axis=0)) / rules.zone_size_m).astype(np.int64)
    _, group = np.unique(cell[:, 0] * 1_000_003 + cell[:, 1], return_inverse=True)
    zone_ids = np.array([f"pz{g + 1}" for g in range(group.max() + 1)], dtype=object)
    block_zone = pd.Series(zone_ids[group], index=blocks.index, name="zone_id")

    mid = shapely.get_coordinates(shapely.line_interpolate_point(city.streets.geometry.values,
                                                                 0.5, normalized=True))
    _, nearest = cKDTree(cxy).query(mid)
    street_zone = pd.Series(zone_ids[group[nearest]], index=city.streets.index, name="zone_id")
    bays = street_bays(city, rules)
    jobs = pd.Series(block_jobs(city, rules), index=blocks.index)

    rows, geoms = [], []
    for zid in zone_ids:
        in_zone = street_zone.index[street_zone == zid]
        members = block_zone.index[block_zone == zid]
        geoms.append(shapely.union_all(blocks.geometry.loc[members].values))
        rows.append({"capacity_bays": int(bays.loc[in_zone].sum()),
                     "kerb_length_m": float(city.streets.loc[in_zone, "length_m"].sum()) * 2,
                     "streets": len(in_zone),
                     "population": int(blocks.loc[members, "population"].sum()),
                     "households": int(blocks.loc[members, "households"].sum()),
                     "jobs": float(jobs.loc[members].sum())})
    zones = gpd.GeoDataFrame(rows, geometry=geoms, crs=city.crs,
                             index=pd.Index(zone_ids, name="zone_id"))
    centroid = shapely.centroid(zones.geometry.values)
    zones["x_m"], zones["y_m"] = shapely.get_x(centroid), shapely.get_y(centroid)

    n_cp = max(1, int(round(rules.car_park_zone_share * len(zones))))
    busiest = zones["jobs"].sort_values(ascending=False, kind="stable").index[:n_cp]
    cp_ids = [f"cp{i + 1}" for i in range(len(busiest))]
    spaces = np.clip(np.round(zones.loc[busiest, "jobs"].to_numpy() * rules.car_park_spaces_per_job,
                              -1), rules.car_park_min_spaces, rules.car_park_max_spaces)
    car_parks = gpd.GeoDataFrame(
        {"zone_id": list(busiest), "capacity_spaces": spaces.astype(np.int64)},
        geometry=shapely.points(zones.loc[busiest, "x_m"], zones.loc[busiest, "y_m"]),
        crs=city.crs, index=pd.Index(cp_ids, name="carpark_id"))
    return Supply(zones=zones, car_parks=car_parks, block_zone=block_zone,
                  street_zone=street_zone, bays=bays)
