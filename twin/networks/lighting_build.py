"""The street-lighting network of a city: luminaires along its streets, feeders, cabinets.

Names follow the FIWARE Smart Data Models (Streetlighting): a *Streetlight* (lamp) of a
*StreetlightModel* (lamp type), fed by a *StreetlightFeeder* (one phase of a cabinet's
outgoing circuit) from a *StreetlightControlCabinet*; lamps of a cabinet on streets of one
class form a *StreetlightGroup* (one switching and dimming program).

The network belongs to the city (derived from the city's seed), not to a run: a run's seed
changes failures and noise, never where the lamps stand. The electrical tree is a NetworkX
graph supply -> cabinet -> feeder -> lamps, the lamps of a feeder linked by the shortest cable that
reaches them all (a minimum spanning tree from the cabinet).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy.cluster.vq import kmeans2
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from twin.city.model import City
from twin.randomness import RandomStreams

# StreetlightModel: one row per lamp type. power_w includes ballast/driver losses;
# min_level: lowest power fraction the gear can dim to (bi-level HPS ballasts: 0.5);
# lifetime: Weibull law of burning hours to failure (LED luminaire: driver and board,
# B50 about 90,000 h; HPS lamp: B50 about 24,000 h, the rated "average life").
LAMP_MODELS = pd.DataFrame(
    {
        "technology": ["LED", "LED", "HPS", "HPS"],
        "street_class": ["arterial", "local", "arterial", "local"],
        "power_w": [100.0, 40.0, 275.0, 115.0],
        "min_level": [0.1, 0.1, 0.5, 0.5],
        "luminous_flux_lm": [13_000.0, 5_000.0, 27_000.0, 9_500.0],
        "weibull_shape": [2.0, 2.0, 3.5, 3.5],
        "weibull_scale_h": [110_000.0, 110_000.0, 26_500.0, 26_500.0],
        "max_age_years": [12.0, 12.0, 5.0, 5.0],     # ages drawn uniformly below this
    },
    index=pd.Index(["LED-100", "LED-40", "HPS-250", "HPS-100"], name="lamp_type"),
)
SPACING_M = {"arterial": 30.0, "local": 40.0}    # between luminaires along a street
SIDE_OFFSET_M = 6.0                               # from the street axis to the pole
HPS_STREET_SHARE = 0.35                           # streets not yet converted to LED
LAMPS_PER_CABINET = 45
PHASES = (1, 2, 3)
BURNING_HOURS_PER_YEAR = 4_150.0                  # a dusk-to-dawn year, for the ages
SUPPLY_NODE = "supply"                            # root of the tree: the utility's supply


@dataclass
class LightingNetwork:
    """Tables of the network (GeoDataFrames in the city's CRS) and its electrical tree."""

    lamps: gpd.GeoDataFrame          # index lamp_id (Streetlight)
    feeders: gpd.GeoDataFrame        # index feeder_id (StreetlightFeeder)
    cabinets: gpd.GeoDataFrame       # index cabinet_id (StreetlightControlCabinet)
    groups: pd.DataFrame             # index group_id (StreetlightGroup)
    models: pd.DataFrame             # index lamp_type (StreetlightModel)
    tree: nx.Graph


def build_lighting_network(city: City, lamps_per_cabinet: int = LAMPS_PER_CABINET,
                           hps_street_share: float = HPS_STREET_SHARE) -> LightingNetwork:
    """Place luminaires along ``city``'s streets and wire them to cabinets by phase."""
    rng = RandomStreams(int(city.meta.get("seed", 0))).stream("lighting.network")
    streets = city.streets
    lamps = _place_lamps(streets, rng, hps_street_share)
    n_cab = max(1, int(np.ceil(len(lamps) / lamps_per_cabinet)))
    xy = lamps[["x", "y"]].to_numpy()
    centres, label = kmeans2(xy, n_cab, seed=rng, minit="++", iter=25)
    used = np.unique(label)                      # an empty cluster gets no cabinet
    remap = np.full(n_cab, -1)
    remap[used] = np.arange(len(used))
    label, centres = remap[label], centres[used]
    inter = city.intersections
    _, near = cKDTree(np.column_stack([inter.geometry.x, inter.geometry.y])).query(centres)
    cab_ids = np.array([f"CAB{i:03d}" for i in range(len(used))], dtype=object)
    cab_x = inter.geometry.x.to_numpy()[near]
    cab_y = inter.geometry.y.to_numpy()[near]
    lamps["cabinet_id"] = cab_ids[label]
    # along each cabinet's streets consecutive poles take L1, L2, L3 in turn (balanced load)
    order = lamps.sort_values(["cabinet_id", "street_id", "along_m"]).index
    rank = lamps.loc[order].groupby("cabinet_id").cumcount().to_numpy()
    lamps.loc[order, "phase"] = np.asarray(PHASES)[rank % len(PHASES)]
    lamps["phase"] = lamps["phase"].astype(np.int64)
    lamps["feeder_id"] = lamps["cabinet_id"] + "-L" + lamps["phase"].astype(str)
    lamps["group_id"] = lamps["cabinet_id"] + "-" + lamps["street_class"]
    lamps = lamps.drop(columns=["along_m"])

    cabinets = gpd.GeoDataFrame(
        {"node_id": inter.index.to_numpy()[near], "x": cab_x, "y": cab_y},
        geometry=shapely.points(cab_x, cab_y), index=pd.Index(cab_ids, name="cabinet_id"),
        crs=city.crs)
    tree, cables = _electrical_tree(lamps, cabinets)
    feeders = _feeder_table(lamps, cabinets, cables, city.crs)
    cabinets["n_lamps"] = lamps.groupby("cabinet_id").size().reindex(cab_ids).fillna(0).astype(int)
    cabinets["rated_power_w"] = lamps.groupby("cabinet_id")["power_w"].sum().reindex(cab_ids).fillna(0.0)
    cabinets["n_feeders"] = feeders.groupby("cabinet_id").size().reindex(cab_ids).fillna(0).astype(int)
    groups = lamps.groupby("group_id").agg(cabinet_id=("cabinet_id", "first"),
                                           street_class=("street_class", "first"),
                                           n_lamps=("power_w", "size"),
                                           rated_power_w=("power_w", "sum"))
    return LightingNetwork(lamps=lamps, feeders=feeders, cabinets=cabinets, groups=groups,
                           models=LAMP_MODELS.copy(), tree=tree)


def _place_lamps(streets: gpd.GeoDataFrame, rng: np.random.Generator,
                 hps_street_share: float) -> gpd.GeoDataFrame:
    """Poles at regular spacing (by street class) along every street, set off the axis."""
    cls = streets["street_class"].to_numpy()
    length = streets["length_m"].to_numpy()
    spacing = np.array([SPACING_M.get(c, SPACING_M["local"]) for c in cls])
    count = np.maximum(1, np.rint(length / spacing)).astype(int)
    street_idx = np.repeat(np.arange(len(streets)), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    along = (k + 0.5) / count[street_idx] * length[street_idx]
    lines = streets.geometry.to_numpy()[street_idx]
    on_axis = shapely.line_interpolate_point(lines, along)
    ahead = shapely.line_interpolate_point(lines, np.minimum(along + 1.0, length[street_idx]))
    behind = shapely.line_interpolate_point(lines, np.maximum(along - 1.0, 0.0))
    dx = shapely.get_x(ahead) - shapely.get_x(behind)
    dy = shapely.get_y(ahead) - shapely.get_y(behind)
    norm = np.hypot(dx, dy)
    norm[norm == 0] = 1.0
    side = np.where(k % 2 == 0, 1.0, -1.0)       # staggered on both sides of the street
    x = shapely.get_x(on_axis) - side * SIDE_OFFSET_M * dy / norm
    y = shapely.get_y(on_axis) + side * SIDE_OFFSET_M * dx / norm
    street_cls = cls[street_idx]
    hps_street = rng.random(len(streets)) < hps_street_share
    tech = np.where(hps_street[street_idx], "HPS", "LED")
    lamp_type = np.where(street_cls == "arterial",
                         np.where(tech == "HPS", "HPS-250", "LED-100"),
                         np.where(tech == "HPS", "HPS-100", "LED-40"))
    models = LAMP_MODELS.loc[lamp_type]
    age = rng.uniform(0.0, 1.0, size=len(lamp_type)) * models["max_age_years"].to_numpy()
    ids = np.array([f"SL{i:05d}" for i in range(len(lamp_type))], dtype=object)
    return gpd.GeoDataFrame(
        {"x": x, "y": y, "street_id": streets.index.to_numpy()[street_idx],
         "street_class": street_cls.astype(object), "along_m": along,
         "lamp_type": lamp_type.astype(object), "technology": tech.astype(object),
         "power_w": models["power_w"].to_numpy(), "age_years": np.round(age, 2),
         "state": "off"},
        geometry=shapely.points(x, y), index=pd.Index(ids, name="lamp_id"), crs=streets.crs)


def _electrical_tree(lamps: gpd.GeoDataFrame, cabinets: gpd.GeoDataFrame
                     ) -> tuple[nx.Graph, dict[str, list]]:
    """Graph cabinet -> feeder -> lamps; each feeder's cable a spanning tree from the cabinet."""
    tree = nx.Graph()
    tree.add_node(SUPPLY_NODE, kind="supply")
    for cid, row in cabinets.iterrows():
        tree.add_node(cid, kind="cabinet", x=row["x"], y=row["y"])
        tree.add_edge(SUPPLY_NODE, cid, length_m=0.0)
    tree.add_nodes_from((lid, {"kind": "lamp", "x": x, "y": y})
                        for lid, x, y in zip(lamps.index, lamps["x"], lamps["y"]))
    cables: dict[str, list] = {}
    for fid, members in lamps.groupby("feeder_id"):
        cid = members["cabinet_id"].iloc[0]
        tree.add_node(fid, kind="feeder")
        tree.add_edge(cid, fid, length_m=0.0)
        ids = [fid, *members.index]
        pts = np.vstack([[cabinets.at[cid, "x"], cabinets.at[cid, "y"]],
                         members[["x", "y"]].to_numpy()])
        dist = cdist(pts, pts) + 1e-9          # zero distances would read as "no edge"
        np.fill_diagonal(dist, 0.0)
        mst = minimum_spanning_tree(dist).tocoo()
        segments = []
        for a, b, d in zip(mst.row, mst.col, mst.data):
            tree.add_edge(ids[a], ids[b], length_m=float(d - 1e-9))
            segments.append((pts[a], pts[b]))
        cables[fid] = segments
    return tree, cables


def _feeder_table(lamps: gpd.GeoDataFrame, cabinets: gpd.GeoDataFrame,
                  cables: dict[str, list], crs: str) -> gpd.GeoDataFrame:
    g = lamps.groupby("feeder_id")
    ids = list(g.groups)
    geoms = [shapely.multilinestrings([np.array(s) for s in cables[f]]) if cables[f]
             else shapely.Point(cabinets.at[g.get_group(f)["cabinet_id"].iloc[0], "x"],
                                cabinets.at[g.get_group(f)["cabinet_id"].iloc[0], "y"])
             for f in ids]
    return gpd.GeoDataFrame(
        {"cabinet_id": g["cabinet_id"].first().reindex(ids).to_numpy(),
         "phase": g["phase"].first().reindex(ids).to_numpy(),
         "n_lamps": g.size().reindex(ids).to_numpy(),
         "rated_power_w": g["power_w"].sum().reindex(ids).to_numpy(),
         "cable_length_m": [float(sum(np.hypot(*(b - a)) for a, b in cables[f])) for f in ids]},
        geometry=geoms, index=pd.Index(ids, name="feeder_id"), crs=crs)
