"""The demo city's streets as a :class:`~twin.networks.road.RoadNetwork`, and its zones.

Each undirected street becomes two directed links (``street_id`` kept on both) with
capacity and BPR parameters by street class (:data:`ROAD_CLASSES`) and a free-flow time
from its length and speed limit plus the delay of the junction at its end
(:data:`JUNCTION_DELAY_S`). Zones (groups of blocks, and gateways where arterials
leave the district; :func:`twin.networks.od_demand.city_zones`) are centroid nodes that
do not carry through traffic (``through = False``, TNTP's first-thru-node rule), joined
to the intersections their blocks are attached to by centroid connectors.

The helpers here (:func:`street_links`, :func:`connector_links`, :func:`zone_skim_min`)
serve any street table: :mod:`twin.networks.osm` builds OpenStreetMap networks with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from twin.city.model import City
from twin.networks.road import RoadNetwork


@dataclass(frozen=True)
class RoadClass:
    """Defaults of a street class: free speed (km/h), lanes per direction, capacity per lane
    (veh/h) and BPR ``alpha``/``beta`` (t = t0 (1 + alpha (v/c)^beta))."""

    speed_kph: float
    lanes: float
    capacity_per_lane_veh_h: float
    alpha: float = 0.15
    beta: float = 4.0


# Capacities per lane: a signalised urban street passes about 1,800 veh/h of green per lane
# (HCM base saturation flow 1,900 pc/h/ln less heavy vehicles) for about half the cycle:
# 900 veh/h; priority-controlled local streets about 600; motorways 2,000. BPR 0.15/4 is the
# Bureau of Public Roads' 1964 curve. Speeds are the French urban limits (50, 30, 20 km/h).
ROAD_CLASSES: dict[str, RoadClass] = {
    "motorway": RoadClass(110.0, 2, 2000.0),
    "trunk": RoadClass(90.0, 2, 1800.0),
    "primary": RoadClass(50.0, 2, 900.0),
    "secondary": RoadClass(50.0, 1, 900.0),
    "tertiary": RoadClass(50.0, 1, 800.0),
    "unclassified": RoadClass(40.0, 1, 600.0),
    "residential": RoadClass(30.0, 1, 600.0),
    "living_street": RoadClass(20.0, 1, 300.0),
    "service": RoadClass(20.0, 1, 300.0),
    "road": RoadClass(30.0, 1, 600.0),
    "arterial": RoadClass(50.0, 1, 900.0),     # the demo city's classes
    "local": RoadClass(30.0, 1, 600.0),
}
MAJOR_CLASSES = ("trunk", "primary", "secondary", "tertiary", "arterial")
# Delay (s) added to a link's free-flow time for the junction at its end, by what meets there.
# A signalised crossing of two major streets: cycle 80 s, half green -> uniform delay
# C (1 - g/C)^2 / 2 = 10 s; a minor street giving way to a major one 6 s; priority to the
# right between minor streets 3 s; a major street past minor side streets 2 s; a dead end or
# a bend (two streets) nothing. Motorways are grade-separated: no junction delay.
JUNCTION_DELAY_S = {"signals": 10.0, "give_way": 6.0, "minor": 3.0, "major_past_minor": 2.0}
CONNECTOR_SPEED_KPH = 20.0            # driving from the car park or kerb to the network
CONNECTOR_CAPACITY_VEH_H = 1e6        # never congested (alpha 0)


def street_links(streets: pd.DataFrame, oneway: pd.Series | None = None) -> pd.DataFrame:
    """Directed links of a street table (index ``street_id``; columns ``u``, ``v``,
    ``street_class``, ``length_m``, ``lanes`` per direction, ``speed_kph``): two per
    street, one where ``oneway`` is True. Class defaults fill missing lanes and speeds."""
    defaults = streets["street_class"].map(lambda c: ROAD_CLASSES.get(c, ROAD_CLASSES["road"]))
    lanes = streets["lanes"].astype(float) if "lanes" in streets else \
        defaults.map(lambda d: d.lanes)
    lanes = lanes.where(lanes > 0, defaults.map(lambda d: d.lanes)).astype(float)
    speed = streets["speed_kph"].astype(float) if "speed_kph" in streets else \
        defaults.map(lambda d: d.speed_kph)
    speed = speed.where(speed > 0, defaults.map(lambda d: d.speed_kph)).astype(float)
    one = pd.DataFrame({
        "init_node": streets["u"].to_numpy(), "term_node": streets["v"].to_numpy(),
        "capacity_veh_h": (lanes * defaults.map(lambda d: d.capacity_per_lane_veh_h)).to_numpy(float),
        "free_flow_time_min": (streets["length_m"].astype(float) / (speed / 3.6) / 60.0).to_numpy(),
        "alpha": defaults.map(lambda d: d.alpha).to_numpy(float),
        "beta": defaults.map(lambda d: d.beta).to_numpy(float),
        "length": streets["length_m"].to_numpy(float),
        "length_m": streets["length_m"].to_numpy(float),
        "lanes": lanes.to_numpy(),
        "street_id": streets.index.to_numpy(dtype=object),
        "street_class": streets["street_class"].to_numpy(dtype=object),
        "speed_kph": speed.to_numpy(),
    })
    back = one.copy()
    back["init_node"], back["term_node"] = one["term_node"], one["init_node"]
    if oneway is not None:
        back = back[~oneway.reindex(streets.index).fillna(False).to_numpy(bool)]
    return pd.concat([one, back], ignore_index=True)


def connector_links(zone_ids: Sequence[Hashable], zone_xy: np.ndarray,
                    attached: Sequence[Sequence[Hashable]], node_xy: pd.DataFrame,
                    speed_kph: float = CONNECTOR_SPEED_KPH) -> pd.DataFrame:
    """Centroid connectors both ways between each zone and its attached nodes; free-flow
    time from the straight distance at ``speed_kph`` (at least 0.05 min), never congested."""
    rows = []
    for zone, (zx, zy), nodes in zip(zone_ids, zone_xy, attached):
        for node in nodes:
            dist = float(np.hypot(node_xy.at[node, "x"] - zx, node_xy.at[node, "y"] - zy))
            t = max(dist / (speed_kph / 3.6) / 60.0, 0.05)
            for a, b in ((zone, node), (node, zone)):
                rows.append({"init_node": a, "term_node": b,
                             "capacity_veh_h": CONNECTOR_CAPACITY_VEH_H,
                             "free_flow_time_min": t, "alpha": 0.0, "beta": 1.0,
                             "length": dist, "length_m": dist, "lanes": 1.0,
                             "street_id": None, "street_class": "connector",
                             "speed_kph": speed_kph, "link_type": 0})
    return pd.DataFrame(rows)


def junction_delays_s(streets: pd.DataFrame) -> pd.Series:
    """Per node: (delay of a major street's link ending there, of a minor street's), from
    :data:`JUNCTION_DELAY_S` by the streets meeting at the node."""
    ends = pd.concat([streets["u"], streets["v"]], ignore_index=True)
    is_major = pd.concat([streets["street_class"]] * 2, ignore_index=True).isin(MAJOR_CLASSES)
    degree = ends.value_counts()
    majors = ends[is_major.to_numpy()].value_counts().reindex(degree.index, fill_value=0)
    d = JUNCTION_DELAY_S
    out = {}
    for node, n in degree.items():
        m = int(majors[node])
        if n <= 2:
            out[node] = (0.0, 0.0)
        elif m >= 3:
            out[node] = (d["signals"], d["signals"])
        elif m >= 1:
            out[node] = (d["major_past_minor"], d["give_way"])
        else:
            out[node] = (d["minor"], d["minor"])
    return pd.Series(out, dtype=object)


def network_with_zones(streets: pd.DataFrame, node_xy: pd.DataFrame, zones: gpd.GeoDataFrame,
                       name: str, oneway: pd.Series | None = None,
                       source: str = "streets") -> RoadNetwork:
    """A :class:`RoadNetwork` of ``streets`` (see :func:`street_links`) and ``zones`` (index
    zone id, column ``nodes`` with the attached node ids, point geometry). Zone nodes come
    first in the nodes table and carry no through traffic."""
    links = street_links(streets, oneway)
    links["link_type"] = 1
    delays = junction_delays_s(streets).reindex(links["term_node"]).to_numpy()
    major = links["street_class"].isin(MAJOR_CLASSES).to_numpy()
    links["junction_delay_s"] = np.array([d[0] if m else d[1] for d, m in zip(delays, major)],
                                         dtype=float)
    links.loc[links["street_class"] == "motorway", "junction_delay_s"] = 0.0
    links["free_flow_time_min"] += links["junction_delay_s"] / 60.0
    zone_xy = np.column_stack([zones.geometry.x, zones.geometry.y])
    connectors = connector_links(list(zones.index), zone_xy, list(zones["nodes"]), node_xy)
    nodes = pd.concat([
        pd.DataFrame({"x": zone_xy[:, 0], "y": zone_xy[:, 1], "through": False},
                     index=pd.Index(zones.index, name="node_id")),
        pd.DataFrame({"x": node_xy["x"].to_numpy(float), "y": node_xy["y"].to_numpy(float),
                      "through": True}, index=pd.Index(node_xy.index, name="node_id")),
    ])
    net = RoadNetwork.from_links(pd.concat([links, connectors], ignore_index=True),
                                 list(zones.index), nodes, name=name, length_unit="m",
                                 first_thru_node=len(zones) + 1, source=source)
    return net


def city_road_network(city: City, zones: gpd.GeoDataFrame) -> RoadNetwork:
    """The demo city's streets and ``zones``. A city street's ``lanes`` counts both
    directions (as OpenStreetMap's tag does): each direction gets half, at least one."""
    node_xy = pd.DataFrame({"x": city.intersections.geometry.x,
                            "y": city.intersections.geometry.y}, index=city.intersections.index)
    streets = city.streets.copy()
    streets["lanes"] = np.maximum(1.0, np.floor(streets["lanes"].astype(float) / 2))
    return network_with_zones(streets, node_xy, zones, name=f"{city.name} streets",
                              source=f"city {city.name!r}")


def zone_skim_min(network: RoadNetwork, times_min: np.ndarray | None = None) -> np.ndarray:
    """Zone-to-zone shortest travel times (min) over open links, at ``times_min`` (default
    free flow); no path passes through a zone node. Unreachable pairs are ``inf``."""
    links = network.links
    t = links["free_flow_time_min"].to_numpy(float) if times_min is None else np.asarray(times_min)
    pos = network.node_positions()
    a = pos[links["init_node"]].to_numpy()
    b = pos[links["term_node"]].to_numpy()
    through = network.nodes["through"].to_numpy(bool)
    usable = links["open"].to_numpy(bool) & through[b]   # never enter a zone node on the way
    n = len(pos)
    # parallel links: csr_matrix would add them up; keep the fastest
    order = np.lexsort((t[usable], b[usable], a[usable]))
    aa, bb, tt = a[usable][order], b[usable][order], t[usable][order]
    first = np.ones(len(aa), bool)
    first[1:] = (aa[1:] != aa[:-1]) | (bb[1:] != bb[:-1])
    graph = csr_matrix((np.maximum(tt[first], 1e-9), (aa[first], bb[first])), shape=(n, n))
    zpos = pos[network.zone_nodes].to_numpy()
    dist = dijkstra(graph, indices=zpos)                         # zones x nodes
    skim = np.full((len(zpos), len(zpos)), np.inf)
    into = links["open"].to_numpy(bool) & ~through[b]
    for k in np.flatnonzero(into):                                 # last leg: into the zone
        j = np.flatnonzero(zpos == b[k])
        if len(j):
            skim[:, j[0]] = np.minimum(skim[:, j[0]], dist[:, a[k]] + t[k])
    np.fill_diagonal(skim, 0.0)
    return skim
