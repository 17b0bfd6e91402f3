"""A combined sewer generated along the demo city's streets, written as a SWMM .inp.

Layout (ids): one junction per intersection (same id as the intersection and the
water junction), one conduit per street of the drainage tree (``S<street id>``).
The city is split into districts, each draining downhill along a shortest-path tree
(uphill steps are penalised) to an outlet on the low side. Each district ends in a
storage tank ``T<k>`` emptied through a gate (orifice ``G<k>``) into the interceptor
``I<k>`` along the river; the tank's overflow weir ``CSO_T<k>`` spills to the river
(outfall ``RIVER_T<k>``). The interceptor ends in the wet well ``PS`` of a pumping
station (pump ``P1``, the plant's capacity) lifting to the treatment plant (outfall
``WWTP``); the wet well's overflow weir ``CSO_PS`` spills to ``RIVER_PS``.
One subcatchment per block (``B<block id>``) drains to the block's intersection;
rain falls from gage ``RG1`` (series ``rain``).

Figures (documented design assumptions, not survey data): 150 L per inhabitant per
day of water of which 80 % returns, an hourly diurnal pattern; pipes sized by
Manning (n = 0.013) for peak dry-weather flow plus 60 mm/h on the impervious area
upstream; cover 2 m; minimum slope 0.3 %; 25 m3 of tank per impervious hectare;
plant capacity 3x the mean dry-weather flow.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
from shapely.geometry import LineString, Point

from twin.city.model import City
from twin.networks.sewer_control import ControlLayout

PER_CAPITA_LPD = 150.0
RETURN_FACTOR = 0.8
PEAK_FACTOR = 2.0
DESIGN_RAIN_MM_H = 60.0
MANNING_N = 0.013
COVER_M = 2.0
MIN_SLOPE = 0.003
TANK_M3_PER_IMP_HA = 25.0
TANK_DEPTH_M = 4.0
PLANT_FACTOR = 3.0
DIAMETERS_M = np.array([0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.4, 2.8, 3.2])
# hourly dry-weather pattern (mean 1), midnight first
DIURNAL = np.array([0.55, 0.45, 0.40, 0.38, 0.40, 0.55, 0.90, 1.35, 1.50, 1.40, 1.25, 1.20,
                    1.20, 1.15, 1.05, 1.00, 1.05, 1.15, 1.30, 1.35, 1.25, 1.10, 0.90, 0.72])
DIURNAL = DIURNAL / DIURNAL.mean()


@dataclass
class SewerModel:
    """The generated sewer: SWMM text, element tables, what the controls steer."""

    inp_text: str
    nodes: gpd.GeoDataFrame
    links: gpd.GeoDataFrame
    subcatchments: gpd.GeoDataFrame
    layout: ControlLayout
    cso_outfalls: list[str] = field(default_factory=list)
    plant_outfalls: list[str] = field(default_factory=list)

    def write(self, path: str | Path) -> Path:
        """Write the model as a SWMM .inp file."""
        path = Path(path)
        path.write_text(self.inp_text, encoding="utf-8")
        return path


def _full_flow_m3s(d_m: np.ndarray, slope: np.ndarray) -> np.ndarray:
    return 1 / MANNING_N * (np.pi * d_m ** 2 / 4) * (d_m / 4) ** (2 / 3) * np.sqrt(slope)


def _diameter(flow_m3s: np.ndarray, slope: np.ndarray) -> np.ndarray:
    out = np.full(len(flow_m3s), DIAMETERS_M[-1])
    for d in DIAMETERS_M[::-1]:
        out = np.where(_full_flow_m3s(np.full(len(flow_m3s), d), slope) >= flow_m3s, d, out)
    return out


def _districts(city: City, n: int) -> list[str]:
    """Outlet intersections: the lowest of each of ``n`` stretches along the river."""
    xy = np.column_stack([city.intersections.geometry.x, city.intersections.geometry.y])
    elev = city.intersections["elevation_m"].to_numpy()
    dx, dy = city.meta.get("downhill_unit", (0.0, -1.0))
    along = xy @ np.array([-dy, dx])
    low = elev <= np.quantile(elev, 0.2)
    edges = np.linspace(along[low].min(), along[low].max() + 1e-6, n + 1)
    outlets = []
    for a, b in zip(edges[:-1], edges[1:]):
        pick = np.flatnonzero(low & (along >= a) & (along < b))
        if len(pick):
            outlets.append(str(city.intersections.index[pick[np.argmin(elev[pick])]]))
    return list(dict.fromkeys(outlets))


def build_sewer_model(city: City, start: dt.datetime | None = None, horizon_s: float = 86_400.0,
                      districts: int | None = None, dry_weather_flow: bool = True,
                      rain_mm_h: np.ndarray | None = None, rain_start_s: float = 0.0,
                      rain_step_s: float = 300.0) -> SewerModel:
    """The combined sewer of ``city`` as a SWMM model (see the module docstring)."""
    start = start or dt.datetime(2026, 6, 15)
    nodes_xy = {n: (float(p.x), float(p.y)) for n, p in city.intersections.geometry.items()}
    elev = city.intersections["elevation_m"].to_dict()
    n_districts = districts or int(np.clip(round(city.population / 20_000), 2, 5))
    outlets = _districts(city, n_districts)
    g = city.graph

    def weight(u, v, d):      # u nearer the outlet: flow runs v -> u
        return d["length_m"] * (1.0 + 30.0 * max(0.0, elev[u] - elev[v]) / d["length_m"])

    dist, paths = nx.multi_source_dijkstra(g, outlets, weight=weight)
    parent = {n: p[-2] for n, p in paths.items() if len(p) > 1}
    district_of = {n: p[0] for n, p in paths.items()}
    reached = set(paths)
    # blocks and their population, impervious area -> node
    blocks = city.blocks.copy()
    pts = np.array([nodes_xy[n] for n in reached])
    ids = np.array(list(reached))
    node_of_block = []
    for nid, poly in zip(blocks["node_id"], blocks.geometry):
        if nid in reached:
            node_of_block.append(nid)
        else:
            c = poly.centroid
            node_of_block.append(str(ids[np.argmin(np.hypot(pts[:, 0] - c.x, pts[:, 1] - c.y))]))
    blocks["outlet"] = node_of_block
    density = blocks["population"] / blocks["area_m2"].clip(lower=1.0) * 1e6
    imperv = np.where(blocks["population"] > 0,
                      np.clip(30 + 45 * density / max(float(density.max()), 1.0), 30, 85), 10.0)
    blocks["imperv_pct"] = imperv
    dwf_lps = blocks.groupby("outlet")["population"].sum() * PER_CAPITA_LPD * RETURN_FACTOR / 86_400
    imp_ha = (blocks["area_m2"] * blocks["imperv_pct"] / 100 / 1e4).groupby(blocks["outlet"]).sum()
    # accumulate down the tree, farthest first
    order = sorted(reached, key=lambda n: -dist[n])
    acc_dwf = {n: float(dwf_lps.get(n, 0.0)) for n in reached}
    acc_imp = {n: float(imp_ha.get(n, 0.0)) for n in reached}
    invert = {n: elev[n] - COVER_M for n in reached}
    street_of = {}
    for u, v, d in g.edges(data=True):
        street_of[(u, v)] = street_of[(v, u)] = (d["street_id"], d["length_m"])
    for n in order:
        p = parent.get(n)
        if p is None:
            continue
        acc_dwf[p] += acc_dwf[n]
        acc_imp[p] += acc_imp[n]
        length = street_of[(n, p)][1]
        invert[p] = min(invert[p], invert[n] - MIN_SLOPE * length)
    conduits = []
    for n, p in parent.items():
        sid, length = street_of[(n, p)]
        slope = max((invert[n] - invert[p]) / length, MIN_SLOPE)
        q = acc_dwf[n] / 1000 * PEAK_FACTOR + acc_imp[n] * 1e4 * DESIGN_RAIN_MM_H / 3.6e6
        conduits.append((f"S{sid}", n, p, length, slope, q))
    cd = pd.DataFrame(conduits, columns=["id", "from", "to", "length_m", "slope", "q_m3s"])
    cd["diameter_m"] = _diameter(cd["q_m3s"].to_numpy(), cd["slope"].to_numpy())

    # tanks, gates, interceptor, pumping station, plant, river outfalls
    dx, dy = city.meta.get("downhill_unit", (0.0, -1.0))
    along = {o: nodes_xy[o][0] * -dy + nodes_xy[o][1] * dx for o in outlets}
    low_end = min(outlets, key=lambda o: elev[o])
    chain = sorted(outlets, key=lambda o: along[o])
    if chain[0] == low_end:
        chain = chain[::-1]                     # the interceptor runs towards the low end
    mean_dwf_lps = float(dwf_lps.sum())
    capacity_lps = PLANT_FACTOR * mean_dwf_lps
    storages, orifices, weirs, outfalls, extra_conduits, coords = [], [], [], [], [], {}
    tank_volume, gate_area = {}, {}
    prev_i = None
    ground: dict[str, float] = {}
    interceptor_q = 0.0
    for k, o in enumerate(chain, start=1):
        ox, oy = nodes_xy[o]
        t, gate, i_node, river = f"T{k}", f"G{k}", f"I{k}", f"RIVER_T{k}"
        coords[t] = (ox + 40 * dx, oy + 40 * dy)
        coords[i_node] = (ox + 80 * dx, oy + 80 * dy)
        coords[river] = (ox + 130 * dx, oy + 130 * dy)
        district_imp = acc_imp[o]
        q_design = acc_dwf[o] / 1000 * PEAK_FACTOR + district_imp * 1e4 * DESIGN_RAIN_MM_H / 3.6e6
        area_m2 = max(TANK_M3_PER_IMP_HA * district_imp / TANK_DEPTH_M, 50.0)
        t_inv = invert[o] - 0.5
        storages.append((t, t_inv, TANK_DEPTH_M, area_m2))
        tank_volume[t] = area_m2 * TANK_DEPTH_M
        d_trunk = float(cd.loc[cd["to"] == o, "diameter_m"].max()) if (cd["to"] == o).any() else 0.6
        extra_conduits.append((f"C_{t}", o, t, 40.0, d_trunk, 0.0, 0.0))
        # gate: passes the district's design flow under 1 m of water
        opening = q_design / (0.65 * math.sqrt(2 * 9.81 * 1.0))
        height = min(1.5, max(0.3, math.sqrt(opening)))
        width = max(opening / height, 0.3)
        gate_area[gate] = height * width
        orifices.append((gate, t, i_node, height, width))
        # overflow weir long enough to pass the design flow under 0.3 m of head
        weirs.append((f"CSO_{t}", t, river, 0.9 * TANK_DEPTH_M,
                      max(5.0, q_design / (1.84 * 0.3 ** 1.5))))
        outfalls.append((river, t_inv))
        i_inv = t_inv - 0.3
        interceptor_q += q_design
        if prev_i is not None:
            length = float(np.hypot(coords[prev_i][0] - coords[i_node][0],
                                    coords[prev_i][1] - coords[i_node][1]))
            i_inv = min(i_inv, invert[prev_i] - MIN_SLOPE * length)
            d = _diameter(np.array([interceptor_q]), np.array([MIN_SLOPE]))[0]
            extra_conduits.append((f"C_{prev_i}_{i_node}", prev_i, i_node, length, d, 0.0, 0.0))
        invert[i_node] = i_inv
        ground[i_node] = elev[o]
        prev_i = i_node
    px, py = coords[prev_i]
    coords["PS"] = (px + 40 * dx, py + 40 * dy)
    coords["WWTP"] = (px + 40 * dx - 60 * dy, py + 40 * dy + 60 * dx)
    coords["RIVER_PS"] = (px + 90 * dx, py + 90 * dy)
    ps_inv = invert[prev_i] - 0.5
    storages.append(("PS", ps_inv, 5.0, 60.0))
    d = _diameter(np.array([interceptor_q]), np.array([MIN_SLOPE]))[0]
    extra_conduits.append((f"C_{prev_i}_PS", prev_i, "PS", 40.0, d, 0.0, 0.0))
    weirs.append(("CSO_PS", "PS", "RIVER_PS", 3.5, max(10.0, interceptor_q / 1.5)))
    outfalls.append(("RIVER_PS", ps_inv))
    plant_elev = float(city.meta.get("river_elevation_m", elev[low_end] - 3)) + 2.0
    outfalls.append(("WWTP", plant_elev))

    layout = ControlLayout(gates={f"G{k}": f"T{k}" for k in range(1, len(chain) + 1)},
                           downstream_node="PS", capacity=capacity_lps, tank_volume=tank_volume,
                           gate_area=gate_area,
                           gate_cd={f"G{k}": 0.65 for k in range(1, len(chain) + 1)})
    text = _write_inp(city, start, horizon_s, reached, nodes_xy, elev, invert, cd, extra_conduits,
                      storages, orifices, weirs, outfalls, coords, blocks, dwf_lps,
                      capacity_lps, dry_weather_flow, rain_mm_h, rain_start_s, rain_step_s, ground)
    node_rows = [(n, "junction", invert[n], elev[n] - invert[n], Point(nodes_xy[n])) for n in reached]
    node_rows += [(s[0], "storage", s[1], s[2], Point(coords[s[0]])) for s in storages]
    node_rows += [(o, "outfall", e, 0.0, Point(coords[o])) for o, e in outfalls]
    node_rows += [(f"I{k}", "junction", invert[f"I{k}"], ground[f"I{k}"] - invert[f"I{k}"],
                   Point(coords[f"I{k}"]))
                  for k in range(1, len(chain) + 1)]
    nodes = gpd.GeoDataFrame(pd.DataFrame(node_rows, columns=["node_id", "node_type", "invert_m",
                                                              "depth_m", "geometry"]),
                             geometry="geometry", crs=city.crs).set_index("node_id")
    xy_all = {**nodes_xy, **coords}
    link_rows = [(r.id, "conduit", r["from"], r.to, r.length_m, r.diameter_m) for _, r in cd.iterrows()]
    link_rows += [(c[0], "conduit", c[1], c[2], c[3], c[4]) for c in extra_conduits]
    link_rows += [(o[0], "orifice", o[1], o[2], 0.0, o[3]) for o in orifices]
    link_rows += [(w[0], "weir", w[1], w[2], 0.0, 0.0) for w in weirs]
    link_rows += [("P1", "pump", "PS", "WWTP", 0.0, 0.0)]
    links = pd.DataFrame(link_rows, columns=["link_id", "link_type", "from_node", "to_node",
                                             "length_m", "diameter_m"])
    links = gpd.GeoDataFrame(links, geometry=[LineString([xy_all[a], xy_all[b]]) for a, b in
                                              zip(links["from_node"], links["to_node"])],
                             crs=city.crs).set_index("link_id")
    subs = gpd.GeoDataFrame({"outlet": blocks["outlet"].to_numpy(),
                             "area_m2": blocks["area_m2"].to_numpy(),
                             "imperv_pct": blocks["imperv_pct"].to_numpy(),
                             "population": blocks["population"].to_numpy()},
                            geometry=blocks.geometry.to_numpy(),
                            index=pd.Index([f"B{b}" for b in blocks.index], name="subcatchment_id"),
                            crs=city.crs)
    return SewerModel(inp_text=text, nodes=nodes, links=links, subcatchments=subs, layout=layout,
                      cso_outfalls=[o for o, _ in outfalls if o.startswith("RIVER")],
                      plant_outfalls=["WWTP"])


def _write_inp(city, start, horizon_s, reached, nodes_xy, elev, invert, cd, extra_conduits,
               storages, orifices, weirs, outfalls, coords, blocks, dwf_lps, capacity_lps,
               dry_weather_flow, rain_mm_h, rain_start_s, rain_step_s, ground) -> str:
    end = start + dt.timedelta(seconds=float(horizon_s))
    out = ["[TITLE]", f";;Combined sewer of the urban-twin demo city ({city.population} inhabitants)",
           "", "[OPTIONS]"]
    opts = {"FLOW_UNITS": "LPS", "INFILTRATION": "HORTON", "FLOW_ROUTING": "DYNWAVE",
            "LINK_OFFSETS": "DEPTH", "MIN_SLOPE": "0", "ALLOW_PONDING": "NO",
            "SKIP_STEADY_STATE": "NO",
            "START_DATE": start.strftime("%m/%d/%Y"), "START_TIME": start.strftime("%H:%M:%S"),
            "REPORT_START_DATE": start.strftime("%m/%d/%Y"),
            "REPORT_START_TIME": start.strftime("%H:%M:%S"),
            "END_DATE": end.strftime("%m/%d/%Y"), "END_TIME": end.strftime("%H:%M:%S"),
            "SWEEP_START": "01/01", "SWEEP_END": "12/31", "DRY_DAYS": "2",
            "REPORT_STEP": "00:05:00", "WET_STEP": "00:01:00", "DRY_STEP": "00:05:00",
            "ROUTING_STEP": "0:00:05", "INERTIAL_DAMPING": "PARTIAL",
            "NORMAL_FLOW_LIMITED": "BOTH", "FORCE_MAIN_EQUATION": "H-W",
            "VARIABLE_STEP": "0.75", "LENGTHENING_STEP": "0", "MIN_SURFAREA": "1.14",
            "MAX_TRIALS": "8", "HEAD_TOLERANCE": "0.0015", "SYS_FLOW_TOL": "5",
            "LAT_FLOW_TOL": "5", "MINIMUM_STEP": "0.5", "THREADS": "1"}
    out += [f"{k:20s} {v}" for k, v in opts.items()]
    interval = f"{int(rain_step_s // 3600)}:{int(rain_step_s % 3600 // 60):02d}"
    out += ["", "[RAINGAGES]", f"RG1 INTENSITY {interval} 1.0 TIMESERIES rain", "",
            "[SUBCATCHMENTS]"]
    for b, row in blocks.iterrows():
        area_ha = row["area_m2"] / 1e4
        width = max(row["area_m2"] / 60.0, 10.0)
        out.append(f"B{b} RG1 {row['outlet']} {area_ha:.4f} {row['imperv_pct']:.1f} "
                   f"{width:.1f} 1.0 0")
    out += ["", "[SUBAREAS]"]
    out += [f"B{b} 0.015 0.24 1.5 5 25 OUTLET" for b in blocks.index]
    out += ["", "[INFILTRATION]"]
    out += [f"B{b} 75 5 4 7 0" for b in blocks.index]
    out += ["", "[JUNCTIONS]"]
    for n in sorted(reached):
        out.append(f"{n} {invert[n]:.3f} {elev[n] - invert[n]:.3f} 0 0 0")
    for k in range(1, len(orifices) + 1):
        out.append(f"I{k} {invert[f'I{k}']:.3f} {ground[f'I{k}'] - invert[f'I{k}']:.3f} 0 0 0")
    out += ["", "[OUTFALLS]"]
    out += [f"{o} {e:.3f} FREE NO" for o, e in outfalls]
    out += ["", "[STORAGE]"]
    out += [f"{s} {inv:.3f} {depth:.2f} 0 FUNCTIONAL 0 0 {area:.1f} 0 0" for s, inv, depth, area in storages]
    out += ["", "[CONDUITS]"]
    for _, r in cd.iterrows():
        out.append(f"{r.id} {r['from']} {r.to} {r.length_m:.2f} {MANNING_N} 0 0 0 0")
    for cid, a, b, length, d, o1, o2 in extra_conduits:
        out.append(f"{cid} {a} {b} {length:.2f} {MANNING_N} {o1} {o2} 0 0")
    out += ["", "[PUMPS]", "P1 PS WWTP plant_pump ON 0 0", "", "[ORIFICES]"]
    out += [f"{g} {t} {i} SIDE 0 0.65 NO 0" for g, t, i, _, _ in orifices]
    out += ["", "[WEIRS]"]
    out += [f"{w} {a} {b} TRANSVERSE {crest:.2f} 1.84 NO 0 0 YES" for w, a, b, crest, _ in weirs]
    out += ["", "[XSECTIONS]"]
    for _, r in cd.iterrows():
        out.append(f"{r.id} CIRCULAR {r.diameter_m:.2f} 0 0 0 1")
    for cid, a, b, length, d, o1, o2 in extra_conduits:
        out.append(f"{cid} CIRCULAR {d:.2f} 0 0 0 1")
    out += [f"{g} RECT_CLOSED {h:.3f} {w:.3f} 0 0" for g, _, _, h, w in orifices]
    out += [f"{w} RECT_OPEN 1.5 {length:.2f} 0 0" for w, _, _, _, length in weirs]
    out += ["", "[CURVES]", f"plant_pump PUMP4 0.0 0.0", f"plant_pump 0.5 {capacity_lps:.2f}",
            f"plant_pump 10.0 {capacity_lps:.2f}"]
    if dry_weather_flow:
        out += ["", "[DWF]"]
        out += [f"{n} FLOW {q:.5f} \"\" \"\" dwf_hourly" for n, q in dwf_lps.items() if q > 0]
        out += ["", "[PATTERNS]", "dwf_hourly HOURLY " + " ".join(f"{v:.4f}" for v in DIURNAL)]
    out += ["", "[TIMESERIES]"]
    series = np.zeros(1) if rain_mm_h is None else np.asarray(rain_mm_h, dtype=float)
    t0 = float(rain_start_s)
    points = [(0.0, 0.0)] if t0 > 0 else []
    points += [(t0 + k * rain_step_s, v) for k, v in enumerate(series)]
    points.append((t0 + len(series) * rain_step_s, 0.0))
    for t, v in points:
        when = start + dt.timedelta(seconds=t)
        out.append(f"rain {when:%m/%d/%Y} {when:%H:%M} {v:.3f}")
    out += ["", "[REPORT]", "INPUT NO", "CONTROLS NO", "SUBCATCHMENTS NONE", "NODES NONE",
            "LINKS NONE", "", "[MAP]", "UNITS Meters", "", "[COORDINATES]"]
    for n in sorted(reached):
        out.append(f"{n} {nodes_xy[n][0]:.2f} {nodes_xy[n][1]:.2f}")
    out += [f"{n} {x:.2f} {y:.2f}" for n, (x, y) in coords.items()]
    out += ["", "[Polygons]"]
    for b, poly in blocks.geometry.items():
        for x, y in list(poly.exterior.coords)[:-1]:
            out.append(f"B{b} {x:.2f} {y:.2f}")
    out += ["", "[SYMBOLS]", f"RG1 {city.intersections.geometry.x.mean():.2f} "
                             f"{city.intersections.geometry.y.mean():.2f}", ""]
    return "\n".join(out)
