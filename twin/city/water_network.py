"""A drinking-water distribution network laid along a generated city's streets.

Conventions: one junction per intersection (same id), one pipe per street (same
id). The source is a treatment plant reservoir ``"plant"`` just outside the high
side of the district, lifting through two parallel pumps ``"pump1"``/``"pump2"``
(head curve ``"pump_curve"``) into junction ``"pump_station"`` and pipe
``"trunk_main"`` to the entry intersection. Water towers ``"tank1"``,
``"tank2"``... (one per started 100,000 inhabitants) stand on high ground, each
joined by pipe ``"<tank>_riser"``; rules ``"pump1_on"``, ``"pump1_high"``,
``"pump2_on"``, ``"pump2_high"``, ``"pump2_off"`` switch the pumps on the tower
levels, so the towers fill at night and between peaks and drain at the peaks.
Demands follow patterns ``"residential"`` and ``"non_residential"`` (hourly,
mean 1; demand categories of the same names).
Pipes are sized on a peak-hour flow routed along a shortest-path tree from the
entry that favours arterials, so the arterials carry the mains.
"""

from __future__ import annotations

from functools import reduce

import networkx as nx
import numpy as np
import pandas as pd
import wntr
from wntr.network.controls import (AndCondition, ControlAction, ControlCondition, ControlPriority,
                                   OrCondition, Rule, ValueCondition)
from wntr.network.elements import LinkStatus

from twin.city.model import City
from twin.randomness import RandomStreams

ArrayOrFloat = np.ndarray | float

DIAMETERS_M = np.array([0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50, 0.60, 0.80, 1.00])
TRUNK_DIAMETERS_M = np.append(DIAMETERS_M, [1.20, 1.40])
MAX_DESIGN_VELOCITY_MPS = 1.0
MAX_DESIGN_GRADIENT_M_PER_KM = 2.5
MIN_ARTERIAL_DIAMETER_M = 0.15
NON_RESIDENTIAL_SHARE = 0.06         # added on top of the residential demand
PUMP_EFFICIENCY_PCT = 75.0
ENERGY_PRICE_EUR_PER_J = 0.15 / 3.6e6
STORAGE_SHARE_OF_DAY = 0.22          # balancing storage in the towers
PEOPLE_PER_TANK = 100_000
HEADLOSS_ALLOWANCE_M_PER_M = 0.002   # used to site extra towers
TANK_FLOOR_ABOVE_HIGHEST_M = 25.5    # tower floor above the highest intersection
TANK_MIN_LEVEL_M, TANK_MAX_LEVEL_M, TANK_INIT_LEVEL_M = 0.5, 8.0, 4.0
PUMP1_ON_M, PUMP1_OFF_M = 3.0, 6.5   # tower levels switching the duty pump
PUMP2_ON_M, PUMP2_OFF_M = 2.6, 4.5   # ... and the standby pump
PLANT_OFFSET_M = 250.0               # plant distance outside the high edge
PUMP_SHARE_OF_PEAK = 0.65            # design flow of each pump / peak-hour demand
CLEARWELL_DEPTH_M = 4.0              # plant reservoir water level below ground

# Hourly multipliers, hour 0 = midnight; normalised to mean 1 below.
_RESIDENTIAL = [0.42, 0.33, 0.28, 0.27, 0.32, 0.55, 1.10, 1.75, 1.95, 1.55, 1.20, 1.10,
                1.20, 1.15, 1.00, 0.92, 0.95, 1.10, 1.40, 1.70, 1.65, 1.35, 0.95, 0.62]
_NON_RESIDENTIAL = [0.30, 0.25, 0.25, 0.25, 0.30, 0.45, 0.80, 1.30, 1.70, 1.80, 1.80, 1.70,
                    1.50, 1.60, 1.75, 1.75, 1.60, 1.35, 1.00, 0.70, 0.50, 0.40, 0.35, 0.30]


def build_water_network(city: City, rng: np.random.Generator | None = None,
                        per_capita_lpd: float = 150.0) -> wntr.network.WaterNetworkModel:
    """A pumped, tower-balanced water network for ``city`` (24 h, SI, H-W, LPS in INP)."""
    if rng is None:
        rng = RandomStreams(int(city.meta.get("seed", 0))).stream("water_network")
    patterns = _patterns(rng)
    demand = _node_demands_m3s(city, per_capita_lpd)
    peak_m3s = (np.outer(demand["residential"], patterns["residential"])
                + np.outer(demand["non_residential"], patterns["non_residential"])).max(axis=1)
    peak_m3s = pd.Series(peak_m3s, index=demand.index)
    daily_m3 = float(demand.to_numpy().sum() * 86_400)
    peak_total_m3s = float(peak_m3s.sum())

    entry = _entry_node(city)
    tanks = _tank_nodes(city, max(1, int(np.ceil(city.population / PEOPLE_PER_TANK))), entry)
    pump_design_m3s = PUMP_SHARE_OF_PEAK * peak_total_m3s
    fill_m3s = 2 * pump_design_m3s / len(tanks)
    flow_m3s = _design_flows_m3s(city, entry, peak_m3s, {t: fill_m3s for t in tanks})
    streets = city.streets
    diameter_m = _pick_diameter(flow_m3s.reindex(streets.index).to_numpy(), DIAMETERS_M)
    diameter_m = np.where(streets["street_class"] == "arterial",
                          np.maximum(diameter_m, MIN_ARTERIAL_DIAMETER_M), diameter_m)
    age_years = rng.uniform(0.0, 60.0, size=len(streets))
    roughness = np.clip(130.0 - 0.5 * age_years, 100.0, 130.0).round(1)

    wn = wntr.network.WaterNetworkModel()
    _set_options(wn)
    for name, values in patterns.items():
        wn.add_pattern(name, list(values))

    nodes = city.intersections
    for node_id, elevation, point in zip(nodes.index, nodes["elevation_m"], nodes.geometry):
        wn.add_junction(node_id, base_demand=float(demand.at[node_id, "residential"]),
                        demand_pattern="residential", elevation=float(elevation),
                        coordinates=(point.x, point.y), demand_category="residential")
        non_residential = float(demand.at[node_id, "non_residential"])
        if non_residential > 0:
            wn.get_node(node_id).add_demand(non_residential, "non_residential", "non_residential")
    for sid, u, v, length, d, c in zip(streets.index, streets["u"], streets["v"],
                                        streets["length_m"], diameter_m, roughness):
        wn.add_pipe(sid, u, v, length=float(length), diameter=float(d), roughness=float(c))

    floor_m = float(nodes["elevation_m"].max()) + TANK_FLOOR_ABOVE_HIGHEST_M
    volume_m3 = STORAGE_SHARE_OF_DAY * daily_m3 / len(tanks)
    tank_diameter_m = float(np.sqrt(4 * volume_m3 / (np.pi * (TANK_MAX_LEVEL_M - TANK_MIN_LEVEL_M))))
    for k, node_id in enumerate(tanks, start=1):
        x, y = nodes.geometry[node_id].x, nodes.geometry[node_id].y
        wn.add_tank(f"tank{k}", elevation=floor_m, init_level=TANK_INIT_LEVEL_M,
                    min_level=TANK_MIN_LEVEL_M, max_level=TANK_MAX_LEVEL_M,
                    diameter=round(tank_diameter_m, 2), coordinates=(x + 30.0, y + 30.0))
        riser_d = float(_pick_diameter(np.array([1.5 * fill_m3s]), DIAMETERS_M)[0])
        wn.add_pipe(f"tank{k}_riser", f"tank{k}", node_id, length=45.0, diameter=riser_d,
                    roughness=120.0)

    _add_source(wn, city, entry, floor_m, pump_design_m3s)
    return wn


def _set_options(wn: wntr.network.WaterNetworkModel) -> None:
    """24 h, 15 min hydraulic and report steps, hourly patterns, H-W, LPS in INP files."""
    wn.options.time.duration = 24 * 3600
    wn.options.time.hydraulic_timestep = 900
    wn.options.time.report_timestep = 900
    wn.options.time.pattern_timestep = 3600
    wn.options.hydraulic.headloss = "H-W"
    wn.options.hydraulic.inpfile_units = "LPS"
    wn.options.hydraulic.demand_model = "DD"
    wn.options.energy.global_efficiency = PUMP_EFFICIENCY_PCT
    wn.options.energy.global_price = ENERGY_PRICE_EUR_PER_J


def _patterns(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Hourly diurnal multipliers with a little noise, each of mean exactly 1."""
    out = {}
    for name, base in (("residential", _RESIDENTIAL), ("non_residential", _NON_RESIDENTIAL)):
        values = np.asarray(base) * rng.uniform(0.97, 1.03, size=24)
        out[name] = (values / values.mean()).round(4)
    return out


def _node_demands_m3s(city: City, per_capita_lpd: float) -> pd.DataFrame:
    """Base demand per intersection: residents of its blocks, plus a share for shops and offices."""
    people = city.blocks.groupby("node_id")["population"].sum()
    people = people.reindex(city.intersections.index, fill_value=0).astype(float)
    residential = people * per_capita_lpd / 86_400 / 1_000
    points = city.intersections.geometry
    cx, cy = city.meta.get("centre", (points.x.mean(), points.y.mean()))
    r_m = np.hypot(points.x - cx, points.y - cy)
    weight = residential * (1.0 + 2.0 * np.exp(-(r_m / (0.3 * r_m.max())) ** 2))
    non_residential = NON_RESIDENTIAL_SHARE * residential.sum() * weight / weight.sum()
    return pd.DataFrame({"residential": residential, "non_residential": non_residential})


def _uphill(city: City) -> np.ndarray:
    """Unit vector pointing away from the river (the generator's ``downhill_unit``)."""
    dx, dy = city.meta.get("downhill_unit", (0.0, -1.0))
    return -np.array([dx, dy], dtype=float)


def _entry_node(city: City) -> str:
    """The intersection on the high edge closest to the district's axis."""
    up = _uphill(city)
    x, y = city.intersections.geometry.x.to_numpy(), city.intersections.geometry.y.to_numpy()
    along, across = x * up[0] + y * up[1], -x * up[1] + y * up[0]
    score = along - 0.3 * np.abs(across - np.median(across))
    return str(city.intersections.index[int(np.argmax(score))])


def _tank_nodes(city: City, n_tanks: int, entry: str) -> list[str]:
    """Tower sites: the highest intersection, then each time the one worst served so far
    (high ground far from the towers and the pump entry, at ``HEADLOSS_ALLOWANCE_M_PER_M``)."""
    nodes = city.intersections
    xy = np.column_stack([nodes.geometry.x, nodes.geometry.y])
    elevation_m = nodes["elevation_m"].to_numpy()
    chosen = [int(np.argmax(elevation_m))]
    supplied = chosen + [nodes.index.get_loc(entry)]
    while len(chosen) < n_tanks:
        gap_m = np.hypot(xy[:, None, 0] - xy[None, supplied, 0],
                         xy[:, None, 1] - xy[None, supplied, 1]).min(axis=1)
        chosen.append(int(np.argmax(elevation_m + HEADLOSS_ALLOWANCE_M_PER_M * gap_m)))
        supplied.append(chosen[-1])
    return [str(nodes.index[i]) for i in chosen]


def _design_flows_m3s(city: City, entry: str, peak_m3s: pd.Series,
                      fill_m3s: dict[str, float]) -> pd.Series:
    """Peak flow per street: demands and tower filling routed down a tree from the entry."""
    def weight(u: str, v: str, data: dict) -> float:
        return data["length_m"] * (0.5 if data["street_class"] == "arterial" else 1.0)

    pred, dist = nx.dijkstra_predecessor_and_distance(city.graph, entry, weight=weight)
    load = peak_m3s.to_dict()
    for node_id, q in fill_m3s.items():
        load[node_id] = load.get(node_id, 0.0) + q
    flow = {}
    for node_id in sorted(dist, key=dist.__getitem__, reverse=True):
        if node_id == entry:
            continue
        parent = pred[node_id][0]
        street_id = city.graph.edges[parent, node_id]["street_id"]
        flow[street_id] = load[node_id]
        load[parent] = load.get(parent, 0.0) + load[node_id]
    return pd.Series(flow, dtype=float).reindex(city.streets.index, fill_value=0.0)


def _pick_diameter(flow_m3s: np.ndarray, sizes_m: np.ndarray) -> np.ndarray:
    """Smallest size keeping the design velocity under ``MAX_DESIGN_VELOCITY_MPS`` and the
    Hazen-Williams gradient (at C = 110) under ``MAX_DESIGN_GRADIENT_M_PER_KM``."""
    q = np.abs(flow_m3s)[:, None]
    velocity_mps = q / (np.pi * sizes_m**2 / 4)
    gradient_m_per_km = 1_000 * _hazen_williams_m(q, 1.0, sizes_m, 110.0)
    ok = (velocity_mps <= MAX_DESIGN_VELOCITY_MPS) & (gradient_m_per_km <= MAX_DESIGN_GRADIENT_M_PER_KM)
    idx = np.where(ok.any(axis=1), ok.argmax(axis=1), len(sizes_m) - 1)
    return sizes_m[idx]


def _hazen_williams_m(flow_m3s: ArrayOrFloat, length_m: ArrayOrFloat, diameter_m: ArrayOrFloat,
                      c: ArrayOrFloat) -> ArrayOrFloat:
    """Friction head loss (m) of a pipe, Hazen-Williams in SI units."""
    return 10.67 * length_m * flow_m3s**1.852 / (c**1.852 * diameter_m**4.87)


def _add_source(wn: wntr.network.WaterNetworkModel, city: City, entry: str, floor_m: float,
                pump_design_m3s: float) -> None:
    """Plant reservoir, two parallel pumps on one head curve, the trunk main, pump rules."""
    up = _uphill(city)
    entry_node = wn.get_node(entry)
    ex, ey = entry_node.coordinates
    ground_m = entry_node.elevation + 2.0
    plant_xy = (ex + up[0] * PLANT_OFFSET_M, ey + up[1] * PLANT_OFFSET_M)
    station_xy = (plant_xy[0] - up[0] * 20.0, plant_xy[1] - up[1] * 20.0)
    reservoir_head_m = ground_m - CLEARWELL_DEPTH_M
    wn.add_reservoir("plant", base_head=round(reservoir_head_m, 3), coordinates=plant_xy)
    wn.add_junction("pump_station", base_demand=0.0, elevation=round(reservoir_head_m, 3),
                    coordinates=station_xy)
    trunk_d = float(_pick_diameter(np.array([2 * pump_design_m3s]), TRUNK_DIAMETERS_M)[0])
    trunk_length_m = PLANT_OFFSET_M - 20.0
    wn.add_pipe("trunk_main", "pump_station", entry, length=trunk_length_m,
                diameter=trunk_d, roughness=130.0)

    friction_m = _hazen_williams_m(2 * pump_design_m3s, trunk_length_m, trunk_d, 130.0)
    design_head_m = floor_m + TANK_INIT_LEVEL_M - reservoir_head_m + friction_m + 3.0
    q, h = pump_design_m3s, design_head_m
    wn.add_curve("pump_curve", "HEAD", [(0.0, 1.33 * h), (q, h), (2 * q, 0.0)])
    for name, status in (("pump1", LinkStatus.Open), ("pump2", LinkStatus.Closed)):
        wn.add_pump(name, "plant", "pump_station", pump_type="HEAD",
                    pump_parameter="pump_curve", initial_status=status)

    _add_pump_rules(wn)


def _add_pump_rules(wn: wntr.network.WaterNetworkModel) -> None:
    """Duty pump on when any tower is below ``PUMP1_ON_M``, standby pump below ``PUMP2_ON_M``;
    the standby stops once every tower is above ``PUMP2_OFF_M``; both stop as soon as
    any tower is above ``PUMP1_OFF_M`` (that rule wins, so no tower overflows)."""
    tanks = [wn.get_node(t) for t in sorted(wn.tank_name_list, key=lambda t: int(t[4:]))]

    def any_level(relation: str, level_m: float) -> ControlCondition:
        return reduce(OrCondition, [ValueCondition(t, "level", relation, level_m) for t in tanks])

    def all_above(level_m: float) -> ControlCondition:
        return reduce(AndCondition, [ValueCondition(t, "level", ">", level_m) for t in tanks])

    for name, on_m in (("pump1", PUMP1_ON_M), ("pump2", PUMP2_ON_M)):
        pump = wn.get_link(name)
        start = [ControlAction(pump, "status", LinkStatus.Open)]
        stop = [ControlAction(pump, "status", LinkStatus.Closed)]
        wn.add_control(f"{name}_on", Rule(any_level("<", on_m), start,
                                          priority=ControlPriority.medium, name=f"{name}_on"))
        wn.add_control(f"{name}_high", Rule(any_level(">", PUMP1_OFF_M), stop,
                                            priority=ControlPriority.high, name=f"{name}_high"))
    stop2 = [ControlAction(wn.get_link("pump2"), "status", LinkStatus.Closed)]
    wn.add_control("pump2_off", Rule(all_above(PUMP2_OFF_M), stop2,
                                     priority=ControlPriority.low, name="pump2_off"))
