"""Water network files and tables: reading EPANET files, element tables, the reference run."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import wntr
from shapely.geometry import LineString, Point

from twin.errors import InpError


def load_inp(path: str | Path) -> wntr.network.WaterNetworkModel:
    """Read an EPANET file with WNTR; a missing or malformed file raises ``InpError``."""
    path = Path(path)
    if not path.is_file():
        raise InpError(f"{path}: EPANET input file not found")
    try:
        return wntr.network.WaterNetworkModel(str(path))
    except Exception as exc:   # WNTR raises many types (ENKeyError, ValueError, KeyError...)
        raise InpError(f"{path}: not a valid EPANET input file: {exc}") from exc


def network_frames(wn: wntr.network.WaterNetworkModel, crs: str | None) -> dict[str, gpd.GeoDataFrame]:
    """Nodes and links of ``wn`` as GeoDataFrames with unit-suffixed columns."""
    rows = []
    for name, node in wn.nodes():
        x, y = node.coordinates
        rows.append({"node_id": name, "node_type": node.node_type,
                     "elevation_m": float(getattr(node, "elevation", np.nan) or 0.0)
                     if node.node_type != "Reservoir" else float(node.base_head),
                     "base_demand_lps": float(sum(d.base_value for d in node.demand_timeseries_list)
                                              * 1000.0) if node.node_type == "Junction" else 0.0,
                     "geometry": Point(x, y)})
    nodes = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).set_index("node_id")
    rows = []
    for name, link in wn.links():
        a, b = link.start_node.coordinates, link.end_node.coordinates
        coords = [a, *getattr(link, "vertices", []), b]
        rows.append({"link_id": name, "link_type": link.link_type,
                     "start_node": link.start_node_name, "end_node": link.end_node_name,
                     "length_m": float(getattr(link, "length", 0.0) or 0.0),
                     "diameter_mm": float(getattr(link, "diameter", 0.0) or 0.0) * 1000.0,
                     "roughness": float(getattr(link, "roughness", np.nan) or np.nan),
                     "geometry": LineString(coords)})
    links = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).set_index("link_id")
    return {"nodes": nodes, "links": links}


def epanet_pressures(wn: wntr.network.WaterNetworkModel) -> pd.DataFrame:
    """Reference pressures (m) from WNTR's file-based EpanetSimulator, time x node."""
    tmp = Path(tempfile.mkdtemp(prefix="twin-eps-"))
    try:
        res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp / "ref"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res.node["pressure"]
