"""A synthetic, deterministic city district: streets, terrain, blocks.

The district is a jittered, gently warped and rotated grid around Dijon
(Lambert-93): arterials every ~700 m, local streets between them, a few local
segments removed, a smooth terrain falling towards a river on one side, and
blocks whose population is denser near the centre and sums exactly to the
requested figure. The same ``seed`` always gives the same city.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from twin.city.model import City
from twin.randomness import RandomStreams

CRS = "EPSG:2154"
CENTRE_XY = (853_000.0, 6_690_000.0)        # Dijon, Lambert-93 metres
CENTRE_LONLAT = (5.0247, 47.2927)           # CENTRE_XY in WGS84
DENSITY_PER_KM2 = 7_000.0                   # gross density of the district
ARTERIAL_SPACING_M = 700.0
BLOCK_SIZE_M = 165.0
PERSONS_PER_HOUSEHOLD = 2.2
LOCAL_DROP_SHARE = 0.07                     # local segments removed for irregularity
PARK_SHARE = 0.04                           # blocks without residents
RIVER_ELEVATION_M = 232.0                   # water surface of the river
RIVER_OFFSET_M = 120.0                      # river axis outside the low edge


@dataclass
class _Grid:
    """Street grid in the local (unrotated) frame before warping."""

    xs_m: np.ndarray          # column line positions
    ys_m: np.ndarray          # row line positions
    x_arterial: np.ndarray    # bool per column line
    y_arterial: np.ndarray    # bool per row line


def generate_city(population: int = 50_000, seed: int = 0, name: str = "demo") -> City:
    """Generate a plausible mid-size city district of ``population`` inhabitants.

    Deterministic: the same ``(population, seed)`` gives identical tables.
    """
    if population < 1_000:
        raise ValueError(f"generate_city: population must be >= 1000, got {population}")
    streams = RandomStreams(seed)
    area_km2 = population / DENSITY_PER_KM2
    grid = _make_grid(area_km2, streams.stream("city.grid"))
    layout_rng = streams.stream("city.layout")
    rotation_rad = float(layout_rng.uniform(-0.3, 0.3))
    river_side = int(layout_rng.integers(4))           # 0 south, 1 east, 2 north, 3 west

    ncol, nrow = len(grid.xs_m), len(grid.ys_m)
    gx, gy = np.meshgrid(grid.xs_m, grid.ys_m)          # (nrow, ncol)
    jitter = streams.stream("city.jitter").normal(0.0, 5.0, size=(2, nrow, ncol))
    local_x, local_y = _warp(gx + jitter[0], gy + jitter[1], layout_rng)
    width_m, height_m = float(grid.xs_m[-1]), float(grid.ys_m[-1])

    terrain = _Terrain(width_m, height_m, river_side, area_km2, streams.stream("city.terrain"))
    elevation_m = terrain.elevation_m(local_x, local_y).ravel()

    world_x, world_y = _to_world(local_x.ravel(), local_y.ravel(), width_m, height_m, rotation_rad)
    node_ids = np.array([f"n{i}" for i in range(nrow * ncol)], dtype=object)

    edges = _grid_edges(grid, nrow, ncol)
    keep = _drop_local_segments(edges, nrow * ncol, streams.stream("city.drop"))
    streets, graph = _streets_and_graph(edges, keep, node_ids, world_x, world_y, elevation_m)
    intersections = gpd.GeoDataFrame(
        {"elevation_m": elevation_m},
        geometry=shapely.points(world_x, world_y),
        index=pd.Index(node_ids, name="node_id"),
        crs=CRS,
    )
    blocks = _blocks(edges, keep, nrow, ncol, world_x, world_y, node_ids, population,
                     streams.stream("city.population"))

    river_local = terrain.river_line()
    rx, ry = _to_world(river_local[:, 0], river_local[:, 1], width_m, height_m, rotation_rad)
    downhill_local = np.array([(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)][river_side])
    c, s = np.cos(rotation_rad), np.sin(rotation_rad)
    downhill = (float(c * downhill_local[0] - s * downhill_local[1]),
                float(s * downhill_local[0] + c * downhill_local[1]))
    low, high = int(np.argmin(elevation_m)), int(np.argmax(elevation_m))
    meta = {
        "seed": int(seed),
        "population_target": int(population),
        "area_km2": float(blocks["area_m2"].sum() / 1e6),
        "density_per_km2": DENSITY_PER_KM2,
        "arterial_spacing_m": ARTERIAL_SPACING_M,
        "block_size_m": BLOCK_SIZE_M,
        "rotation_deg": float(np.degrees(rotation_rad)),
        "centre": CENTRE_XY,
        "river": shapely.LineString(np.column_stack([rx, ry])),
        "river_side": ("south", "east", "north", "west")[river_side],
        "river_elevation_m": RIVER_ELEVATION_M,
        "downhill_unit": downhill,                    # points from the high side to the river
        "low_point": (float(world_x[low]), float(world_y[low])),
        "high_point": (float(world_x[high]), float(world_y[high])),
        "low_node": str(node_ids[low]),
        "high_node": str(node_ids[high]),
    }
    return City(name=name, crs=CRS, intersections=intersections, streets=streets,
                blocks=blocks, graph=graph, lonlat=CENTRE_LONLAT, meta=meta)


def _make_grid(area_km2: float, rng: np.random.Generator) -> _Grid:
    """Column and row line positions: arterial lines subdivided by jittered local lines."""
    aspect = float(rng.uniform(1.0, 1.35))
    width_m = np.sqrt(area_km2 * 1e6 * aspect)
    height_m = area_km2 * 1e6 / width_m
    lines = []
    for extent_m in (width_m, height_m):
        n_art = max(1, int(round(extent_m / ARTERIAL_SPACING_M)))
        art_spacing = extent_m / n_art
        n_sub = max(2, int(round(art_spacing / BLOCK_SIZE_M)))
        step = art_spacing / n_sub
        pos = np.arange(n_art * n_sub + 1) * step
        arterial = np.arange(len(pos)) % n_sub == 0
        shift = rng.uniform(-0.12, 0.12, size=len(pos)) * step
        pos = pos + np.where(arterial, 0.0, shift)
        lines.append((pos, arterial))
    (xs, xa), (ys, ya) = lines
    return _Grid(xs_m=xs, ys_m=ys, x_arterial=xa, y_arterial=ya)


def _warp(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bend the grid gently so streets are not ruler-straight over kilometres."""
    amp_m = rng.uniform(15.0, 30.0, size=2)
    wavelength_m = rng.uniform(1_800.0, 3_000.0, size=2)
    phase = rng.uniform(0.0, 2 * np.pi, size=2)
    wx = x + amp_m[0] * np.sin(2 * np.pi * y / wavelength_m[0] + phase[0])
    wy = y + amp_m[1] * np.sin(2 * np.pi * x / wavelength_m[1] + phase[1])
    return wx, wy


def _to_world(x: np.ndarray, y: np.ndarray, width_m: float, height_m: float,
              rotation_rad: float) -> tuple[np.ndarray, np.ndarray]:
    """Local frame -> Lambert-93, centred on ``CENTRE_XY`` and rotated."""
    dx, dy = x - width_m / 2, y - height_m / 2
    c, s = np.cos(rotation_rad), np.sin(rotation_rad)
    return CENTRE_XY[0] + c * dx - s * dy, CENTRE_XY[1] + s * dx + c * dy


class _Terrain:
    """Smooth elevation: a river valley, a regional slope, a few hills and ripples."""

    def __init__(self, width_m: float, height_m: float, river_side: int, area_km2: float,
                 rng: np.random.Generator) -> None:
        self.width_m, self.height_m, self.river_side = width_m, height_m, river_side
        self.relief_m = float(np.clip(18.0 + 3.5 * np.sqrt(area_km2), 22.0, 38.0) * rng.uniform(0.92, 1.05))
        self.base_m = RIVER_ELEVATION_M + float(rng.uniform(3.0, 6.0))
        n_hills = int(rng.integers(2, 5))
        self.hill_xy = rng.uniform(0.1, 0.9, size=(n_hills, 2)) * [width_m, height_m]
        self.hill_sigma_m = rng.uniform(350.0, 900.0, size=n_hills)
        self.hill_amp = rng.uniform(-0.12, 0.22, size=n_hills)
        self.ripple_k = rng.uniform(1 / 3_000.0, 1 / 1_500.0, size=(2, 2)) * 2 * np.pi
        self.ripple_phase = rng.uniform(0, 2 * np.pi, size=2)
        self.meander_phase = float(rng.uniform(0, 2 * np.pi))

    def _distance_from_river_side_m(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return [y, self.width_m - x, self.height_m - y, x][self.river_side] + RIVER_OFFSET_M

    def _raw(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        d_km = self._distance_from_river_side_m(x, y) / 1_000.0
        depth_km = (self.height_m if self.river_side in (0, 2) else self.width_m) / 1_000.0
        raw = 0.55 * (1 - np.exp(-d_km / 0.7)) + 0.45 * d_km / depth_km
        for (hx, hy), sigma, amp in zip(self.hill_xy, self.hill_sigma_m, self.hill_amp):
            raw = raw + amp * np.exp(-((x - hx) ** 2 + (y - hy) ** 2) / (2 * sigma**2))
        for (kx, ky), phase in zip(self.ripple_k, self.ripple_phase):
            raw = raw + 0.04 * np.sin(kx * x + ky * y + phase)
        return raw

    def elevation_m(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Elevation scaled so the given points span exactly ``relief_m``."""
        raw = self._raw(x, y)
        lo, hi = float(raw.min()), float(raw.max())
        return self.base_m + (raw - lo) / (hi - lo) * self.relief_m

    def river_line(self) -> np.ndarray:
        """Meandering river axis just outside the low edge, local frame."""
        along_len = self.width_m if self.river_side in (0, 2) else self.height_m
        t = np.linspace(-0.1, 1.1, 60) * along_len
        off = -RIVER_OFFSET_M + 40.0 * np.sin(2 * np.pi * t / 1_700.0 + self.meander_phase)
        if self.river_side == 0:
            return np.column_stack([t, off])
        if self.river_side == 1:
            return np.column_stack([self.width_m - off, t])
        if self.river_side == 2:
            return np.column_stack([t, self.height_m - off])
        return np.column_stack([off, t])


def _grid_edges(grid: _Grid, nrow: int, ncol: int) -> pd.DataFrame:
    """All grid segments with their end nodes, class and the cells on either side."""
    idx = np.arange(nrow * ncol).reshape(nrow, ncol)
    # horizontal segments: along row r between columns c and c+1
    hr, hc = np.meshgrid(np.arange(nrow), np.arange(ncol - 1), indexing="ij")
    # vertical segments: along column c between rows r and r+1
    vr, vc = np.meshgrid(np.arange(nrow - 1), np.arange(ncol), indexing="ij")
    ncx = ncol - 1

    def cell(r: np.ndarray, c: np.ndarray, exists: np.ndarray) -> np.ndarray:
        return np.where(exists, r * ncx + c, -1)

    h = pd.DataFrame({
        "u": idx[hr, hc].ravel(), "v": idx[hr, hc + 1].ravel(),
        "arterial": grid.y_arterial[hr].ravel(),
        "cell_a": cell(hr - 1, hc, hr > 0).ravel(),
        "cell_b": cell(hr, hc, hr < nrow - 1).ravel(),
    })
    v = pd.DataFrame({
        "u": idx[vr, vc].ravel(), "v": idx[vr + 1, vc].ravel(),
        "arterial": grid.x_arterial[vc].ravel(),
        "cell_a": cell(vr, vc - 1, vc > 0).ravel(),
        "cell_b": cell(vr, vc, vc < ncol - 1).ravel(),
    })
    return pd.concat([h, v], ignore_index=True)


def _drop_local_segments(edges: pd.DataFrame, n_nodes: int, rng: np.random.Generator) -> np.ndarray:
    """Mask of kept segments: a few local ones go, every node keeps degree >= 3."""
    keep = np.ones(len(edges), dtype=bool)
    degree = np.bincount(np.concatenate([edges["u"], edges["v"]]), minlength=n_nodes)
    u, v = edges["u"].to_numpy(), edges["v"].to_numpy()
    candidates = np.flatnonzero(~edges["arterial"].to_numpy())
    for e in rng.permutation(candidates)[: int(LOCAL_DROP_SHARE * len(candidates))]:
        if degree[u[e]] >= 4 and degree[v[e]] >= 4:
            keep[e] = False
            degree[u[e]] -= 1
            degree[v[e]] -= 1
    g = nx.Graph()
    g.add_edges_from(zip(u[keep], v[keep]))
    if g.number_of_nodes() != n_nodes or not nx.is_connected(g):   # never seen; be safe
        keep[:] = True
    return keep


def _streets_and_graph(edges: pd.DataFrame, keep: np.ndarray, node_ids: np.ndarray,
                       x: np.ndarray, y: np.ndarray, elevation_m: np.ndarray
                       ) -> tuple[gpd.GeoDataFrame, nx.Graph]:
    """Streets table and street graph from the kept grid segments."""
    kept = edges[keep].reset_index(drop=True)
    u, v = kept["u"].to_numpy(), kept["v"].to_numpy()
    coords = np.stack([np.column_stack([x[u], y[u]]), np.column_stack([x[v], y[v]])], axis=1)
    geometry = shapely.linestrings(coords)
    arterial = kept["arterial"].to_numpy()
    street_ids = np.array([f"s{i}" for i in range(len(kept))], dtype=object)
    streets = gpd.GeoDataFrame(
        {
            "u": node_ids[u],
            "v": node_ids[v],
            "street_class": np.where(arterial, "arterial", "local").astype(object),
            "length_m": shapely.length(geometry),
            "lanes": np.where(arterial, 2, 1).astype(np.int64),
            "speed_kph": np.where(arterial, 50.0, 30.0),
        },
        geometry=geometry,
        index=pd.Index(street_ids, name="street_id"),
        crs=CRS,
    )
    graph = nx.Graph()
    graph.add_nodes_from(
        (nid, {"x": float(xi), "y": float(yi), "elevation_m": float(ei)})
        for nid, xi, yi, ei in zip(node_ids, x, y, elevation_m)
    )
    graph.add_edges_from(
        (a, b, {"street_id": sid, "length_m": float(length), "street_class": cls,
                "lanes": int(lanes), "speed_kph": float(speed)})
        for a, b, sid, length, cls, lanes, speed in zip(
            streets["u"], streets["v"], street_ids, streets["length_m"],
            streets["street_class"], streets["lanes"], streets["speed_kph"])
    )
    return streets, graph


def _blocks(edges: pd.DataFrame, keep: np.ndarray, nrow: int, ncol: int, x: np.ndarray,
            y: np.ndarray, node_ids: np.ndarray, population: int,
            rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Grid cells merged across removed segments, with residents and households."""
    ncx, ncy = ncol - 1, nrow - 1
    idx = np.arange(nrow * ncol).reshape(nrow, ncol)
    corners = np.stack([idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]], axis=-1).reshape(-1, 4)
    cells = shapely.polygons(np.stack([x[corners], y[corners]], axis=-1))

    parent = np.arange(ncx * ncy)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges.loc[~keep, ["cell_a", "cell_b"]].itertuples(index=False):
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(len(parent))])
    _, group = np.unique(roots, return_inverse=True)
    geometry = np.array(
        [cells[m[0]] if len(m) == 1 else shapely.union_all(cells[m])
         for m in pd.Series(np.arange(len(roots))).groupby(group).apply(np.asarray)],
        dtype=object,
    )

    area_m2 = shapely.area(geometry)
    centroid = shapely.centroid(geometry)
    cx, cy = shapely.get_x(centroid), shapely.get_y(centroid)
    _, nearest = cKDTree(np.column_stack([x, y])).query(np.column_stack([cx, cy]))

    r_m = np.hypot(cx - CENTRE_XY[0], cy - CENTRE_XY[1])
    r_scale_m = 0.45 * np.sqrt(area_m2.sum())
    density = 0.5 + np.exp(-(r_m / r_scale_m) ** 2)
    weight = area_m2 * density * rng.lognormal(0.0, 0.3, size=len(geometry))
    weight[rng.random(len(geometry)) < PARK_SHARE] = 0.0
    people = _allocate(population, weight)
    size = np.clip(rng.normal(PERSONS_PER_HOUSEHOLD, 0.15, size=len(geometry)), 1.7, 2.8)
    households = np.where(people > 0, np.maximum(1, np.rint(people / size)), 0).astype(np.int64)

    return gpd.GeoDataFrame(
        {
            "population": people,
            "households": households,
            "area_m2": area_m2,
            "node_id": node_ids[nearest],
        },
        geometry=geometry,
        index=pd.Index([f"b{i}" for i in range(len(geometry))], name="block_id"),
        crs=CRS,
    )


def _allocate(total: int, weight: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weight`` summing exactly to ``total`` (largest remainder)."""
    share = total * weight / weight.sum()
    counts = np.floor(share).astype(np.int64)
    remainder = int(total - counts.sum())
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts
