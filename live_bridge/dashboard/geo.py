"""The networks and sensors as the map draws them (GeoJSON, in the networks' own CRS).

A :class:`NetworkMap` holds each layer's elements (``{layer: {kind: GeoDataFrame}}``, as
:meth:`twin.networks.base.Layer.elements` returns them) and answers a layer as a GeoJSON
FeatureCollection, where an element is, and which sensors are nearest to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import geopandas as gpd
import numpy as np
import pyproj
import shapely

TYPE_COLUMNS = ("node_type", "link_type", "street_class", "kind", "type")
DIGITS = {"metric": 2, "degrees": 6}     # a centimetre, or about 0.1 m


@dataclass
class NetworkMap:
    """Elements by layer and kind; ``crs`` of their coordinates (None: a local plan)."""

    layers: dict[str, dict[str, gpd.GeoDataFrame]]
    crs: Any = None
    _where: dict[tuple[str, str, str], tuple[float, float]] = field(default_factory=dict,
                                                                   repr=False)
    _geojson: dict[str, dict] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for layer, kinds in self.layers.items():
            for kind, frame in kinds.items():
                if not len(frame):
                    continue
                points = shapely.line_interpolate_point(frame.geometry.values, 0.5,
                                                        normalized=True) \
                    if frame.geom_type.iloc[0] in ("LineString", "MultiLineString") \
                    else frame.geometry.representative_point().values
                xy = shapely.get_coordinates(points)
                for eid, (x, y) in zip(frame.index.astype(str), xy):
                    self._where[(layer, kind, eid)] = (float(x), float(y))

    @classmethod
    def from_inp(cls, inp: str | Path, layer: str = "water") -> "NetworkMap":
        """The water network of an EPANET file."""
        from twin.networks.water_io import load_inp, network_frames

        return cls({layer: network_frames(load_inp(inp), None)})

    @classmethod
    def from_twin(cls, twin) -> "NetworkMap":
        """Every layer of a built :class:`twin.twin.Twin`, plus its city's streets as roads."""
        layers: dict[str, dict[str, gpd.GeoDataFrame]] = {}
        if twin.city is not None:
            layers["roads"] = {"streets": twin.city.streets}
        for name, layer in twin.layers.items():
            frames = {k: f for k, f in layer.elements().items() if len(f)}
            if frames:
                layers[name] = frames
        return cls(layers, twin.crs)

    def names(self) -> list[str]:
        return list(self.layers)

    def count(self) -> int:
        """Number of elements over every layer."""
        return sum(len(f) for kinds in self.layers.values() for f in kinds.values())

    def bounds(self) -> list[float] | None:
        """[xmin, ymin, xmax, ymax] over every layer."""
        boxes = [f.total_bounds for kinds in self.layers.values() for f in kinds.values()
                 if len(f)]
        if not boxes:
            return None
        b = np.array(boxes)
        return [float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()),
                float(b[:, 3].max())]

    def geojson(self, layer: str) -> dict:
        """One layer as a FeatureCollection (properties: id, kind, type); KeyError if unknown."""
        if layer not in self.layers:
            raise KeyError(layer)
        if layer not in self._geojson:
            geographic = self.crs is not None and pyproj.CRS.from_user_input(self.crs).is_geographic
            digits = DIGITS["degrees" if geographic else "metric"]
            features = []
            for kind, frame in self.layers[layer].items():
                type_col = next((c for c in TYPE_COLUMNS if c in frame.columns), None)
                types = frame[type_col].astype(str).tolist() if type_col else [kind] * len(frame)
                for eid, geom, typ in zip(frame.index.astype(str), frame.geometry.values, types):
                    features.append({"type": "Feature", "id": f"{layer}:{eid}",
                                     "geometry": _rounded(shapely.geometry.mapping(geom), digits),
                                     "properties": {"id": eid, "kind": kind, "type": typ}})
            self._geojson[layer] = {"type": "FeatureCollection", "layer": layer,
                                    "features": features}
        return self._geojson[layer]

    def position(self, element: str, layer: str | None = None,
                 kinds: tuple[str, ...] = ()) -> tuple[float, float] | None:
        """Where an element is drawn (a line's middle), or None if no layer has it. Ids are
        unique per kind only (a node and a pipe may share one): ``kinds`` are tried first."""
        found = [(k, xy) for (lay, k, eid), xy in self._where.items()
                 if eid == str(element) and (layer is None or lay == layer)]
        for kind in kinds:
            for k, xy in found:
                if k == kind:
                    return xy
        return found[0][1] if found else None


LINK_QUANTITIES = {"flow", "velocity", "status", "setting", "headloss"}


def sensor_positions(net: NetworkMap, sensors: Iterable[Mapping[str, Any]]
                     ) -> dict[str, tuple[float, float] | None]:
    """Sensor id -> the position of its element (in its layer, else any layer; a flow
    sensor's on a link, another's on a node first), or None."""
    out = {}
    for s in sensors:
        element, layer = str(s["element"]), str(s.get("layer") or "")
        kinds = (("links", "nodes") if str(s.get("quantity")) in LINK_QUANTITIES
                 else ("nodes", "links"))
        out[str(s["sensor_id"])] = (net.position(element, layer, kinds)
                                    or net.position(element, None, kinds))
    return out


def nearest(xy: tuple[float, float], positions: Mapping[str, tuple[float, float] | None],
            k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` ids nearest to ``xy`` with their distances, nearest first."""
    ids = [i for i, p in positions.items() if p is not None]
    if not ids:
        return []
    pts = np.array([positions[i] for i in ids])
    d = np.hypot(pts[:, 0] - xy[0], pts[:, 1] - xy[1])
    order = np.argsort(d, kind="stable")[:k]
    return [(ids[i], float(d[i])) for i in order]


def _rounded(geometry: dict, digits: int) -> dict:
    """A GeoJSON geometry with its coordinates rounded to ``digits`` decimals."""
    return {"type": geometry["type"], "coordinates": _round(geometry["coordinates"], digits)}


def _round(c, digits: int):
    if isinstance(c, (int, float)):
        return round(float(c), digits)
    return [_round(x, digits) for x in c]
