"""OpenStreetMap XML (``.osm`` or ``.osm.gz``) -> :class:`~twin.networks.road.RoadNetwork`.

The file is read offline with ``osmnx.graph_from_xml`` (which takes an uncompressed path:
a ``.gz`` is decompressed to a temporary file first). Only drivable ways are kept
(:data:`DRIVABLE`, not ``access=no/private``, not areas), the graph is simplified to
intersections, dead ends and changes of street class, cut to its largest strongly connected
part (every zone can reach every other; ways running on to nodes a clipped extract does not
hold are cut there) and projected to a metric CRS (UTM by default). Missing ``lanes`` and
``maxspeed`` tags take the defaults of the way's ``highway`` class
(:data:`twin.networks.road_city.ROAD_CLASSES`). Zones are squares of ``zone_size_m``
whose centroid nodes connect to the ``connectors_per_zone`` intersections nearest the
centre of the intersections in the square; they carry no through traffic.
"""

from __future__ import annotations

import gzip
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.errors import BadInput
from twin.networks.road import RoadNetwork
from twin.networks.road_city import ROAD_CLASSES, network_with_zones

DRIVABLE = ("motorway", "trunk", "primary", "secondary", "tertiary", "unclassified",
            "residential", "living_street", "service", "road")
_MPH = 1.609344


@dataclass
class OsmNetwork:
    """What an OSM file gives: the road network, its streets (one row per street, both
    directions of a two-way street share it) and zones, in ``crs``."""

    network: RoadNetwork
    streets: gpd.GeoDataFrame
    zones: gpd.GeoDataFrame
    crs: Any


def read_osm_graph(path: str | Path):
    """The drivable street graph of an OSM XML file (osmnx MultiDiGraph, WGS84, simplified,
    largest strongly connected part). Raises :class:`BadInput` for a missing file, a file
    that is not OSM XML, or one without drivable streets."""
    import osmnx as ox

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such OpenStreetMap file")
    with tempfile.TemporaryDirectory(prefix="twin-osm-") as tmp:
        xml = Path(tmp) / "map.osm"
        opener = gzip.open if _is_gzip(path) else open
        try:
            with opener(path, "rb") as src, open(xml, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, EOFError) as exc:
            raise BadInput(f"{path}: cannot read the file ({exc}); expected OpenStreetMap "
                           "XML, plain or gzip-compressed") from None
        head = xml.read_bytes()[:4096].lstrip()
        if b"<osm" not in head:
            raise BadInput(f"{path}: not OpenStreetMap XML (expected an <osm> root element "
                           f"at the start of the file, got {head[:40]!r})")
        try:
            try:
                full = ox.graph_from_xml(xml, simplify=False, retain_all=True)
            except ValueError as exc:
                if "missing nodes" not in str(exc):
                    raise
                # an extract clipped to a box: ways run on to nodes it does not hold
                _drop_missing_node_refs(xml)
                full = ox.graph_from_xml(xml, simplify=False, retain_all=True)
        except Exception as exc:                       # XML syntax, empty file...
            raise BadInput(f"{path}: osmnx cannot read this OpenStreetMap XML: "
                           f"{type(exc).__name__}: {exc}") from None
    drop = [(u, v, k) for u, v, k, d in full.edges(keys=True, data=True) if not _drivable(d)]
    full.remove_edges_from(drop)
    full.remove_nodes_from([n for n in list(full.nodes) if full.degree(n) == 0])
    if full.number_of_edges() == 0:
        raise BadInput(f"{path}: no drivable streets (ways tagged highway="
                       f"{'/'.join(DRIVABLE)} or their _link variants, not access=no/private); "
                       "a road network needs at least one")
    # a change of street class is a node: a street is one class from end to end
    graph = ox.simplify_graph(full, edge_attrs_differ=["highway"])
    if graph.number_of_nodes():
        graph = ox.truncate.largest_component(graph, strongly=True)
    if graph.number_of_edges() == 0:
        raise BadInput(f"{path}: its drivable streets hold no part where a car can get from "
                       "every intersection to every other (no strongly connected street "
                       "network: one-way streets only lead away?)")
    return graph


def _drop_missing_node_refs(xml: Path) -> None:
    """Rewrite ``xml`` without the way members that name nodes the file does not hold;
    a way left with fewer than two nodes goes."""
    import xml.etree.ElementTree as ET

    tree = ET.parse(xml)
    root = tree.getroot()
    held = {n.get("id") for n in root.iter("node")}
    for way in list(root.iter("way")):
        for nd in [nd for nd in way.findall("nd") if nd.get("ref") not in held]:
            way.remove(nd)
        if len(way.findall("nd")) < 2:
            root.remove(way)
    tree.write(xml, encoding="utf-8", xml_declaration=True)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _highway(d: dict) -> str:
    """The way's highway class without ``_link`` (a list after simplification: the first
    drivable one)."""
    values = d.get("highway")
    for value in (values if isinstance(values, list) else [values]):
        base = str(value).removesuffix("_link")
        if base in DRIVABLE:
            return base
    return ""


def _drivable(d: dict) -> bool:
    if not _highway(d):
        return False
    if str(_first(d.get("access", ""))) in ("no", "private"):
        return False
    return str(_first(d.get("area", "no"))) != "yes"


def parse_maxspeed_kph(value: Any) -> float:
    """km/h from an OSM ``maxspeed`` tag ('50', '30 mph', '50;70', ['50', '30']); NaN when
    there is no number (e.g. 'FR:urban', 'signals')."""
    values = value if isinstance(value, list) else [value]
    speeds = []
    for item in values:
        for part in str(item).split(";"):
            m = re.match(r"\s*(\d+(?:\.\d+)?)\s*(mph)?", part)
            if m:
                speeds.append(float(m[1]) * (_MPH if m[2] else 1.0))
    return float(min(speeds)) if speeds else float("nan")


def parse_lanes(value: Any) -> float:
    """Lanes from an OSM ``lanes`` tag ('2', '2;3', ['1', '2']): the smallest; NaN if none."""
    values = value if isinstance(value, list) else [value]
    lanes = []
    for item in values:
        for part in str(item).split(";"):
            m = re.match(r"\s*(\d+(?:\.\d+)?)", part)
            if m and float(m[1]) > 0:
                lanes.append(float(m[1]))
    return float(min(lanes)) if lanes else float("nan")


def osm_streets(graph, crs: Any = None) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.Series]:
    """(streets, node coordinates, oneway flags) of a graph from :func:`read_osm_graph`,
    projected to ``crs`` (default: the UTM zone of the graph). A two-way street is one row
    (``u`` < ``v`` by node id order) with ``lanes`` per direction (the tag's total halved,
    at least 1); a one-way street keeps its direction and all its lanes."""
    import osmnx as ox

    projected = ox.project_graph(graph, to_crs=crs)
    nodes = pd.DataFrame({"x": [d["x"] for _, d in projected.nodes(data=True)],
                          "y": [d["y"] for _, d in projected.nodes(data=True)]},
                         index=pd.Index(list(projected.nodes), name="node_id"))
    rows: dict[tuple, dict] = {}
    taken: set[str] = set()
    for u, v, k, d in projected.edges(keys=True, data=True):
        flags = d.get("oneway", False)
        oneway = all(bool(f) for f in flags) if isinstance(flags, list) else bool(flags)
        a, b = (u, v) if oneway or str(u) <= str(v) else (v, u)
        way = d.get("osmid", "")
        way = tuple(way) if isinstance(way, list) else (way,)
        key = (a, b, oneway, way, round(float(d.get("length", 0.0)), 1))
        if key in rows:
            continue                 # the other direction of a two-way street
        cls = _highway(d)
        defaults = ROAD_CLASSES[cls]
        lanes = parse_lanes(d.get("lanes"))
        lanes = defaults.lanes if not np.isfinite(lanes) else lanes if oneway \
            else max(1.0, np.floor(lanes / 2))
        speed = parse_maxspeed_kph(d.get("maxspeed"))
        geom = d.get("geometry")
        if geom is None:
            geom = shapely.LineString([(nodes.at[a, "x"], nodes.at[a, "y"]),
                                       (nodes.at[b, "x"], nodes.at[b, "y"])])
        elif (a, b) != (u, v):
            geom = shapely.reverse(geom)
        street_id, n = f"osm{a}-{b}", 1
        while street_id in taken:            # parallel streets between the same nodes
            n += 1
            street_id = f"osm{a}-{b}-{n}"
        taken.add(street_id)
        rows[key] = {"street_id": street_id, "u": a, "v": b,
                     "street_class": cls, "length_m": float(d.get("length", geom.length)),
                     "lanes": float(lanes),
                     "speed_kph": speed if np.isfinite(speed) else defaults.speed_kph,
                     "oneway": oneway, "name": str(_first(d.get("name", ""))),
                     "osm_way": str(_first(d.get("osmid", ""))), "geometry": geom}
    frame = pd.DataFrame(list(rows.values())).set_index("street_id")
    frame["length_m"] = frame["length_m"].clip(lower=1.0)
    streets = gpd.GeoDataFrame(frame.drop(columns=["geometry"]), geometry=list(frame["geometry"]),
                               crs=projected.graph["crs"])
    return streets, nodes, streets["oneway"]


def grid_zones(nodes: pd.DataFrame, zone_size_m: float = 500.0,
               connectors_per_zone: int = 3, crs: Any = None) -> gpd.GeoDataFrame:
    """Zones on squares of ``zone_size_m`` holding intersections; each attached to its
    ``connectors_per_zone`` intersections nearest the mean point of the square's ones."""
    xy = nodes[["x", "y"]].to_numpy(float)
    cell = np.floor((xy - xy.min(axis=0)) / zone_size_m).astype(np.int64)
    _, group = np.unique(cell[:, 0] * 1_000_003 + cell[:, 1], return_inverse=True)
    ids, centres, attached = [], [], []
    for g in range(group.max() + 1):
        members = np.flatnonzero(group == g)
        centre = xy[members].mean(axis=0)
        near = members[np.argsort(np.hypot(*(xy[members] - centre).T), kind="stable")]
        ids.append(f"z{g + 1}")
        centres.append(centre)
        attached.append(tuple(nodes.index[near[:connectors_per_zone]]))
    centres = np.asarray(centres)
    return gpd.GeoDataFrame({"kind": "internal", "nodes": attached},
                            geometry=shapely.points(centres[:, 0], centres[:, 1]),
                            index=pd.Index(ids, name="zone_id"), crs=crs)


def load_osm(path: str | Path, crs: Any = None, zone_size_m: float = 500.0,
             connectors_per_zone: int = 3) -> OsmNetwork:
    """Read an OpenStreetMap file into a road network with zones (see module doc)."""
    graph = read_osm_graph(path)
    streets, nodes, oneway = osm_streets(graph, crs)
    zones = grid_zones(nodes, zone_size_m, connectors_per_zone, crs=streets.crs)
    network = network_with_zones(streets, nodes, zones, name=Path(path).name,
                                 oneway=oneway, source=str(path))
    return OsmNetwork(network=network, streets=streets, zones=zones, crs=streets.crs)
