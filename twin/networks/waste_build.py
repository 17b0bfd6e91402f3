"""The waste network of a city: containers on the streets, a garage, a transfer site, trucks.

Figures used (documented assumptions, change them through :class:`WasteConfig`):

- residual household waste 250 kg per inhabitant and year (France: 248 kg in
  2021, ADEME "Déchets chiffres-clés"), loose in a container at 0.12 kg/L
  (0.10-0.15 kg/L is the usual range for bagged residual waste), so about 5.7 L
  per inhabitant and day;
- containers: 4 m3 (4,000 L) underground or column containers where a block has
  at least ``column_households`` households (collected by a crane truck, about
  150 s each), 1,100 L wheeled bins elsewhere (about 40 s each); a block gets as
  many as hold ``design_days`` of its nominal waste at ``design_fill``;
- each container is placed on a street bordering its block and serves an equal
  share of the block's households;
- the garage is at the city's low edge (``city.meta['low_node']``), the transfer
  station or incineration plant ``transfer_access_m`` beyond the intersection
  farthest from the garage, reached at ``transfer_speed_kph``;
- trucks carry ``truck_capacity_l`` loose litres (a 19-20 m3 body at a compaction
  ratio of about 3), one shift a day Monday to Saturday; the fleet is sized so that
  a day's nominal waste takes ``fleet_loads_per_day`` loads per truck.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.city.model import City

KG_PER_INHABITANT_YEAR = 250.0
DENSITY_KG_PER_L = 0.12
L_PER_INHABITANT_DAY = KG_PER_INHABITANT_YEAR / 365.0 / DENSITY_KG_PER_L
CONTAINER_TYPES = {            # type -> (capacity L, service time s)
    "column_4000": (4000.0, 150.0),
    "bin_1100": (1100.0, 40.0),
}


@dataclass(frozen=True)
class WasteConfig:
    """Everything the waste network and its operation are built from."""

    l_per_inhabitant_day: float = L_PER_INHABITANT_DAY
    column_households: int = 40
    design_days: float = 3.5
    design_fill: float = 0.8
    truck_capacity_l: float = 60_000.0
    fleet_loads_per_day: float = 2.0
    fleet_margin: float = 1.3
    trucks: int | None = None                  # None: sized from the city's waste
    shift_start_h: float = 6.0
    shift_hours: float = 7.0
    service_weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5)     # Monday .. Saturday
    unload_s: float = 900.0
    transfer_access_m: float = 4000.0
    transfer_speed_kph: float = 60.0
    sensor_share: float = 1.0                  # share of containers with a fill sensor
    kg_co2_per_km: float = 1.61                # ~60 L diesel/100 km x 2.68 kg CO2/L


@dataclass
class WasteNetwork:
    """Containers, sites and trucks as tables (units in column names)."""

    containers: gpd.GeoDataFrame
    sites: gpd.GeoDataFrame
    trucks: pd.DataFrame
    config: WasteConfig


def build_waste_network(city: City, config: WasteConfig, rng: np.random.Generator
                        ) -> WasteNetwork:
    """Place containers on the streets around the inhabited blocks, the sites and the fleet."""
    streets = city.streets
    blocks = city.blocks[city.blocks["households"] > 0]
    rows = []
    for block_id, block in blocks.iterrows():
        kind = "column_4000" if block["households"] >= config.column_households else "bin_1100"
        capacity_l, service_s = CONTAINER_TYPES[kind]
        daily_l = block["population"] * config.l_per_inhabitant_day
        count = max(1, math.ceil(daily_l * config.design_days / (capacity_l * config.design_fill)))
        ring = block.geometry.exterior if block.geometry.geom_type == "Polygon" else \
            max(block.geometry.geoms, key=lambda g: g.area).exterior
        spots = [ring.interpolate((k + 0.5) / count, normalized=True) for k in range(count)]
        people = _split(int(block["population"]), count)
        homes = _split(int(block["households"]), count)
        for k, spot in enumerate(spots):
            rows.append({"block_id": block_id, "type": kind, "capacity_l": capacity_l,
                         "service_s": service_s, "population": people[k], "households": homes[k],
                         "spot": spot})
    table = pd.DataFrame(rows)
    spot_geoms = gpd.GeoSeries(table["spot"].to_numpy(), crs=city.crs)
    tree = shapely.STRtree(streets.geometry.to_numpy())
    nearest = tree.nearest(spot_geoms.to_numpy())
    street_geom = streets.geometry.to_numpy()[nearest]
    offset_m = shapely.line_locate_point(street_geom, spot_geoms.to_numpy())
    points = shapely.line_interpolate_point(street_geom, offset_m)
    ids = [f"c{i}" for i in range(len(table))]
    containers = gpd.GeoDataFrame({
        "container_type": table["type"].to_numpy(),
        "capacity_l": table["capacity_l"].to_numpy(float),
        "service_s": table["service_s"].to_numpy(float),
        "population": table["population"].to_numpy(np.int64),
        "households": table["households"].to_numpy(np.int64),
        "block_id": table["block_id"].to_numpy(),
        "street_id": streets.index.to_numpy()[nearest],
        "offset_m": offset_m,
        "nominal_l_per_day": table["population"].to_numpy(float) * config.l_per_inhabitant_day,
        "has_sensor": _sensor_mask(len(table), config.sensor_share, rng),
    }, geometry=points, index=pd.Index(ids, name="container_id"), crs=city.crs)
    sites = _sites(city, config)
    trucks = _fleet(containers, config)
    return WasteNetwork(containers=containers, sites=sites, trucks=trucks, config=config)


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if k < extra else 0) for k in range(parts)]


def _sensor_mask(n: int, share: float, rng: np.random.Generator) -> np.ndarray:
    if share >= 1.0:
        return np.ones(n, dtype=bool)
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: int(round(share * n))]] = True
    return mask


def _sites(city: City, config: WasteConfig) -> gpd.GeoDataFrame:
    """The garage at the low edge; the transfer site beyond the far side of the district."""
    nodes = city.intersections
    garage = str(city.meta.get("low_node", nodes.index[0]))
    gx, gy = nodes.geometry[garage].x, nodes.geometry[garage].y
    far = (nodes.geometry.x - gx) ** 2 + (nodes.geometry.y - gy) ** 2
    gate = str(far.idxmax())
    cx, cy = nodes.geometry.x.mean(), nodes.geometry.y.mean()
    ex, ey = nodes.geometry[gate].x, nodes.geometry[gate].y
    norm = math.hypot(ex - cx, ey - cy) or 1.0
    tx = ex + (ex - cx) / norm * config.transfer_access_m
    ty = ey + (ey - cy) / norm * config.transfer_access_m
    return gpd.GeoDataFrame({
        "kind": ["garage", "transfer"],
        "node_id": [garage, gate],
        "access_m": [0.0, config.transfer_access_m],
        "access_s": [0.0, config.transfer_access_m / (config.transfer_speed_kph / 3.6)],
        "gate_x": [gx, ex], "gate_y": [gy, ey],          # where the site meets the streets
    }, geometry=[shapely.Point(gx, gy), shapely.Point(tx, ty)],
        index=pd.Index(["garage", "transfer"], name="site_id"), crs=city.crs)


def _fleet(containers: gpd.GeoDataFrame, config: WasteConfig) -> pd.DataFrame:
    """Trucks enough for a day's nominal waste (with a margin), or ``config.trucks``."""
    days = len(config.service_weekdays) or 1
    daily_l = containers["nominal_l_per_day"].sum() * 7.0 / days
    needed = daily_l * config.fleet_margin / (config.truck_capacity_l * config.fleet_loads_per_day)
    n = config.trucks if config.trucks is not None else max(1, math.ceil(needed))
    return pd.DataFrame({"capacity_l": np.full(n, config.truck_capacity_l),
                         "shift_start_h": np.full(n, config.shift_start_h),
                         "shift_hours": np.full(n, config.shift_hours)},
                        index=pd.Index([f"truck{i + 1}" for i in range(n)], name="truck_id"))
