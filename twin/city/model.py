"""The city shared by every layer.

All geometry is in one projected CRS (metres). Layers attach their elements to
the same street graph, so an incident at a point can be related to the pipes,
sewers, lamps, bins and roads around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import networkx as nx


@dataclass
class City:
    """A city district.

    intersections: index ``node_id``; columns ``elevation_m``, geometry (Point).
    streets: index ``street_id``; columns ``u``, ``v`` (intersection ids), ``street_class``
        ('arterial' or 'local'), ``length_m``, ``lanes``, ``speed_kph``, geometry (LineString).
    blocks: index ``block_id``; columns ``population``, ``households``, ``area_m2``,
        ``node_id`` (nearest intersection), geometry (Polygon).
    graph: undirected street graph; nodes are intersection ids with ``x``, ``y``,
        ``elevation_m``; edges carry ``street_id``, ``length_m``, ``street_class``.
    """

    name: str
    crs: str
    intersections: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    blocks: gpd.GeoDataFrame
    graph: nx.Graph
    lonlat: tuple[float, float] = (5.04, 47.32)   # city centre, for sun times etc.
    meta: dict = field(default_factory=dict)

    @property
    def population(self) -> int:
        return int(self.blocks["population"].sum()) if len(self.blocks) else 0

    @property
    def households(self) -> int:
        return int(self.blocks["households"].sum()) if len(self.blocks) else 0

    def bounds(self) -> tuple[float, float, float, float]:
        return tuple(self.intersections.total_bounds)  # type: ignore[return-value]
