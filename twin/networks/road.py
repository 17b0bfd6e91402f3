"""The road network that traffic assignment runs on: directed links and nodes as tables.

A :class:`RoadNetwork` holds

* ``links``: one row per directed link, positional index ``0..m-1`` (the *link index* every
  solver array uses). Columns: ``init_node``, ``term_node`` (node ids), ``capacity_veh_h``,
  ``free_flow_time_min``, ``alpha``, ``beta`` (BPR: ``t = fft * (1 + alpha * (v/c)^beta)``),
  ``fixed_cost_min`` (a generalised cost added to the time, e.g. ``0.02 * toll + 0.04 * length``
  on Chicago Sketch; 0 by default), ``length`` (as the source gives it, unit in
  ``RoadNetwork.length_unit``) and ``length_m`` (NaN when the unit is unknown), ``lanes``,
  ``toll``, ``link_type``, ``open`` (False once closed) and ``street_id`` (the city street a
  link runs along, or None).
* ``nodes``: index ``node_id`` (any hashable: TNTP uses 1..n, the city ``"n12"``); columns
  ``x``, ``y`` (NaN when unknown) and ``through`` (False: traffic may start or end at the node
  but not pass through it, as TNTP zones below ``<FIRST THRU NODE>``).
* ``zone_nodes``: the node of each zone, in the order of the demand matrix's rows/columns.

Times are in minutes (the TNTP convention, so objectives compare with published values);
``link_times_s`` converts. Networks are values: :meth:`close`, :meth:`reopen` and
:meth:`set_lanes` return modified copies, so an incident run keeps the network it started from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Hashable, Iterable, Sequence

import networkx as nx
import numpy as np
import pandas as pd

from twin.errors import BadInput

LINK_COLUMNS = ("init_node", "term_node", "capacity_veh_h", "free_flow_time_min", "alpha",
                "beta", "fixed_cost_min", "length", "length_m", "lanes", "toll", "link_type",
                "open", "street_id")
LINK_DEFAULTS: dict[str, Any] = {"alpha": 0.15, "beta": 4.0, "fixed_cost_min": 0.0,
                                 "length": np.nan, "length_m": np.nan, "lanes": 1.0, "toll": 0.0,
                                 "link_type": 1, "open": True, "street_id": None}
REQUIRED_LINK_COLUMNS = ("init_node", "term_node", "capacity_veh_h", "free_flow_time_min")


@dataclass
class RoadNetwork:
    """Directed road links with BPR travel-time functions, nodes and zones (see module doc)."""

    links: pd.DataFrame
    nodes: pd.DataFrame
    zone_nodes: list[Hashable]
    name: str = ""
    length_unit: str = ""
    first_thru_node: int | None = None      # as a TNTP file gave it (information only)
    meta: dict = field(default_factory=dict)

    # --- building --------------------------------------------------------------------
    @classmethod
    def from_links(cls, links: pd.DataFrame, zone_nodes: Sequence[Hashable],
                   nodes: pd.DataFrame | None = None, *, name: str = "",
                   length_unit: str = "", first_thru_node: int | None = None,
                   source: str = "links") -> "RoadNetwork":
        """A network from a links table with at least the required columns; optional
        columns get their defaults, a missing nodes table is made from the link ends (all
        nodes through nodes except none). Raises :class:`BadInput` naming ``source``."""
        missing = [c for c in REQUIRED_LINK_COLUMNS if c not in links.columns]
        if missing:
            raise BadInput(f"{source}: missing link column(s) {missing}; "
                           f"expected at least {list(REQUIRED_LINK_COLUMNS)}")
        table = links.reset_index(drop=True).copy()
        for column, default in LINK_DEFAULTS.items():
            if column not in table.columns:
                table[column] = default
        ordered = list(LINK_COLUMNS) + [c for c in table.columns if c not in LINK_COLUMNS]
        table = table[ordered]
        for column in ("capacity_veh_h", "free_flow_time_min", "alpha", "beta",
                       "fixed_cost_min", "lanes"):
            table[column] = table[column].astype(float)
        table["open"] = table["open"].astype(bool)
        if nodes is None:
            ids = pd.unique(pd.concat([table["init_node"], table["term_node"]], ignore_index=True))
            nodes = pd.DataFrame({"x": np.nan, "y": np.nan, "through": True},
                                 index=pd.Index(ids, name="node_id"))
        else:
            nodes = nodes.copy()
            for column, default in (("x", np.nan), ("y", np.nan), ("through", True)):
                if column not in nodes.columns:
                    nodes[column] = default
            nodes.index.name = "node_id"
        net = cls(table, nodes, list(zone_nodes), name=name, length_unit=length_unit,
                  first_thru_node=first_thru_node)
        net.validate(source)
        return net

    def validate(self, source: str = "network") -> None:
        """Raise :class:`BadInput` naming the first bad link or node."""
        links = self.links
        known = self.nodes.index
        for end in ("init_node", "term_node"):
            bad = ~links[end].isin(known)
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise BadInput(f"{source}: link {i} ({links['init_node'].iat[i]}->"
                               f"{links['term_node'].iat[i]}) has {end} "
                               f"{links[end].iat[i]!r} that is not a node")
        checks = (
            ("capacity_veh_h", links["capacity_veh_h"] < 0, "a capacity >= 0"),
            ("capacity_veh_h", (links["capacity_veh_h"] == 0) & (links["alpha"] != 0),
             "a capacity > 0 (BPR divides by it)"),
            ("free_flow_time_min", links["free_flow_time_min"] < 0, "a free-flow time >= 0"),
            ("alpha", links["alpha"] < 0, "a BPR alpha >= 0"),
            ("beta", links["beta"] < 0, "a BPR beta >= 0"),
            ("fixed_cost_min", links["fixed_cost_min"] < 0, "a fixed cost >= 0"),
            ("lanes", links["lanes"] < 0, "a number of lanes >= 0"),
        )
        for column, bad, expected in checks:
            bad = bad.to_numpy() | ~np.isfinite(links[column].to_numpy(dtype=float))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise BadInput(f"{source}: link {i} ({links['init_node'].iat[i]}->"
                               f"{links['term_node'].iat[i]}) has {column} = "
                               f"{links[column].iat[i]}; expected {expected}")
        if not self.zone_nodes:
            raise BadInput(f"{source}: the network has no zones")
        absent = [z for z in self.zone_nodes if z not in known]
        if absent:
            raise BadInput(f"{source}: zone node {absent[0]!r} is not a node of the network")
        if len(set(self.zone_nodes)) != len(self.zone_nodes):
            raise BadInput(f"{source}: a node is given as the centroid of two zones")

    # --- sizes and lookups -----------------------------------------------------------
    @property
    def zones(self) -> int:
        """Number of zones (rows and columns of the demand matrix)."""
        return len(self.zone_nodes)

    @property
    def n_links(self) -> int:
        return len(self.links)

    def node_positions(self) -> pd.Series:
        """Position (0..n-1) of each node id in the nodes table."""
        return pd.Series(np.arange(len(self.nodes)), index=self.nodes.index)

    def links_on_streets(self, street_ids: Iterable[Hashable]) -> np.ndarray:
        """Link indices of the links that run along the given city streets (both ways)."""
        wanted = set(street_ids)
        return np.flatnonzero(self.links["street_id"].isin(wanted).to_numpy())

    def link_index(self, init_node: Hashable, term_node: Hashable) -> int:
        """The index of the (first) link from ``init_node`` to ``term_node``."""
        hit = np.flatnonzero(((self.links["init_node"] == init_node)
                              & (self.links["term_node"] == term_node)).to_numpy())
        if not len(hit):
            raise KeyError(f"no link {init_node}->{term_node} in {self.name or 'the network'}")
        return int(hit[0])

    # --- travel-time functions ---------------------------------------------------------
    def link_times_min(self, flow_veh_h: np.ndarray) -> np.ndarray:
        """Generalised link cost (min) at the given flows: BPR time + fixed cost."""
        links = self.links
        fft = links["free_flow_time_min"].to_numpy(float)
        cap = links["capacity_veh_h"].to_numpy(float)
        alpha = links["alpha"].to_numpy(float)
        beta = links["beta"].to_numpy(float)
        ratio = np.divide(flow_veh_h, cap, out=np.zeros(len(cap)), where=cap > 0)
        return fft * (1.0 + alpha * ratio ** beta) + links["fixed_cost_min"].to_numpy(float)

    def link_times_s(self, flow_veh_h: np.ndarray) -> np.ndarray:
        """:meth:`link_times_min` in seconds."""
        return 60.0 * self.link_times_min(flow_veh_h)

    def beckmann(self, flow_veh_h: np.ndarray) -> float:
        """Beckmann objective: the sum over links of the integral of the cost from 0 to the
        flow (veh*min per hour of demand); the equilibrium minimises it."""
        links = self.links
        fft = links["free_flow_time_min"].to_numpy(float)
        cap = links["capacity_veh_h"].to_numpy(float)
        alpha = links["alpha"].to_numpy(float)
        beta = links["beta"].to_numpy(float)
        x = np.asarray(flow_veh_h, float)
        ratio = np.divide(x, cap, out=np.zeros(len(cap)), where=cap > 0)
        integral = fft * x * (1.0 + alpha * ratio ** beta / (beta + 1.0))
        return float(np.sum(integral + links["fixed_cost_min"].to_numpy(float) * x))

    # --- incidents: modified copies ------------------------------------------------------
    def close(self, link_indices: Iterable[int]) -> "RoadNetwork":
        """A copy with the given links closed (no flow may use them)."""
        links = self.links.copy()
        links.loc[self._checked(link_indices), "open"] = False
        return replace(self, links=links)

    def reopen(self, link_indices: Iterable[int]) -> "RoadNetwork":
        """A copy with the given links open again."""
        links = self.links.copy()
        links.loc[self._checked(link_indices), "open"] = True
        return replace(self, links=links)

    def set_lanes(self, link_indices: Iterable[int], lanes: float) -> "RoadNetwork":
        """A copy where the given links have ``lanes`` lanes; capacity scales in proportion
        (a lost lane on a 2-lane link halves it). ``lanes = 0`` closes the links."""
        index = self._checked(link_indices)
        links = self.links.copy()
        if lanes <= 0:
            links.loc[index, "open"] = False
            return replace(self, links=links)
        old = links.loc[index, "lanes"].to_numpy(float)
        if (old <= 0).any():
            raise ValueError("cannot scale the capacity of a link with no lanes recorded")
        links.loc[index, "capacity_veh_h"] = links.loc[index, "capacity_veh_h"] * (lanes / old)
        links.loc[index, "lanes"] = float(lanes)
        return replace(self, links=links)

    def _checked(self, link_indices: Iterable[int]) -> np.ndarray:
        index = np.asarray(list(link_indices), dtype=np.int64)
        if len(index) and (index.min() < 0 or index.max() >= self.n_links):
            raise IndexError(f"link index out of range 0..{self.n_links - 1}")
        return index

    # --- views -------------------------------------------------------------------------
    def to_networkx(self) -> nx.DiGraph:
        """Open links as a DiGraph (node attributes x, y, through; edge attributes are the
        link columns plus ``link``, its index). Of parallel links the fastest is kept."""
        graph = nx.DiGraph(name=self.name)
        for node, row in self.nodes.iterrows():
            graph.add_node(node, **row.to_dict())
        open_links = self.links[self.links["open"]].sort_values("free_flow_time_min",
                                                                ascending=False)
        for index, row in open_links.iterrows():
            graph.add_edge(row["init_node"], row["term_node"], link=int(index), **row.to_dict())
        return graph

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "zones": self.zones, "nodes": len(self.nodes),
                "links": self.n_links, "closed_links": int((~self.links["open"]).sum()),
                "first_thru_node": self.first_thru_node}
