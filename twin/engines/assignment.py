"""Static user-equilibrium traffic assignment on a :class:`~twin.networks.road.RoadNetwork`.

``assign(network, demand)`` finds link flows where no driver can shorten their trip by
changing route (Wardrop's first principle), by minimising the Beckmann objective. Two
solvers, both compiled with numba (:mod:`twin.engines.assignment_kernels`):

* ``"path"`` (the default of ``"auto"``): path-based gradient projection (Jayakrishnan et
  al. 1994) with a Gauss-Seidel sweep over origins: each origin's shortest-path tree adds
  the new shortest paths, then flow moves from costlier paths to the cheapest with a Newton
  step; extra inner sweeps over the known paths need no shortest paths. It reaches gaps of
  1e-8 and keeps its path set for warm starts.
* ``"bfw"``: bi-conjugate Frank-Wolfe (Mitradjieva and Lindberg 2013) on link flows, the
  method of most packages, with an exact (bisection) line search.

The relative gap is ``(TSTT - SPTT) / TSTT``, TSTT the total generalised cost at the current
flows and SPTT the demand times the shortest-path costs at those flows; it is computed
exactly every iteration. Nodes with ``through == False`` (TNTP zones below
``<FIRST THRU NODE>``) start and end trips but are never passed through.

Warm starts (incidents): ``assign(changed_network, demand, warm_start=previous)`` starts from
the previous solution's paths: paths over a closed link are dropped and their flow goes to
the current shortest path, every other path keeps its flow, then the solver re-equilibrates.
A changed demand is absorbed the same way. An OD pair left with no path raises
:class:`~twin.errors.BadInput` naming the pair, unless ``unreachable="drop"``: then its demand
is reported in ``AssignmentResult.unserved`` and left out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from twin.errors import BadInput
from twin.networks.road import RoadNetwork

METHODS = ("auto", "path", "bfw")


@dataclass
class AssignmentResult:
    """Equilibrium link flows and costs, and how the solver got there.

    ``link_flow_veh_h`` and ``link_time_min`` are arrays over the network's link index
    (closed links carry 0 flow). ``history`` has one row per iteration: iteration,
    relative_gap, beckmann, tstt (veh*min per hour of demand), seconds (since start).
    """

    network: RoadNetwork
    link_flow_veh_h: np.ndarray
    link_time_min: np.ndarray
    history: pd.DataFrame
    method: str
    converged: bool
    unserved: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["origin", "destination", "demand_veh_h"]))
    demand: np.ndarray | None = None
    state: Any = None                 # solver state a warm start continues from (paths)

    @property
    def relative_gap(self) -> float:
        return float(self.history["relative_gap"].iat[-1]) if len(self.history) else np.nan

    @property
    def beckmann(self) -> float:
        """Beckmann objective at the final flows (veh*min)."""
        return self.network.beckmann(self.link_flow_veh_h)

    @property
    def tstt(self) -> float:
        """Total system travel cost, sum of flow x generalised cost (veh*min)."""
        return float(np.dot(self.link_flow_veh_h, self.link_time_min))

    @property
    def tstt_veh_h(self) -> float:
        return self.tstt / 60.0

    @property
    def iterations(self) -> int:
        return int(self.history["iteration"].iat[-1]) if len(self.history) else 0

    @property
    def seconds(self) -> float:
        return float(self.history["seconds"].iat[-1]) if len(self.history) else 0.0

    @property
    def link_time_s(self) -> np.ndarray:
        return 60.0 * self.link_time_min

    def links(self) -> pd.DataFrame:
        """The network's links with ``flow_veh_h``, ``time_min`` and ``voc`` (volume/capacity)."""
        table = self.network.links[["init_node", "term_node", "street_id", "open",
                                    "capacity_veh_h", "free_flow_time_min"]].copy()
        table["flow_veh_h"] = self.link_flow_veh_h
        table["time_min"] = self.link_time_min
        table["voc"] = self.link_flow_veh_h / table["capacity_veh_h"].where(
            table["capacity_veh_h"] > 0)
        return table

    def summary(self) -> dict[str, Any]:
        return {"method": self.method, "iterations": self.iterations,
                "relative_gap": self.relative_gap, "beckmann": self.beckmann,
                "tstt": self.tstt, "tstt_veh_h": self.tstt_veh_h, "seconds": self.seconds,
                "converged": self.converged,
                "unserved_demand_veh_h": float(self.unserved["demand_veh_h"].sum())}


@dataclass
class AssignmentChange:
    """What an incident did: total travel time before/after and the most affected links."""

    tstt_before: float
    tstt_after: float
    most_affected: pd.DataFrame

    @property
    def tstt_change(self) -> float:
        """Change of total system travel cost (veh*min)."""
        return self.tstt_after - self.tstt_before

    @property
    def tstt_change_veh_h(self) -> float:
        return self.tstt_change / 60.0

    @property
    def tstt_change_relative(self) -> float:
        return self.tstt_change / self.tstt_before if self.tstt_before else np.nan


def compare(before: AssignmentResult, after: AssignmentResult, top: int = 10) -> AssignmentChange:
    """Change of total travel time between two results on the same links, and the ``top``
    links whose flow changed most (by absolute change of flow x time)."""
    if before.network.n_links != after.network.n_links:
        raise ValueError("the two results are on networks with different links")
    a, b = before.links(), after.links()
    table = a[["init_node", "term_node", "street_id"]].copy()
    table["open_after"] = b["open"]
    table["flow_before_veh_h"] = a["flow_veh_h"]
    table["flow_after_veh_h"] = b["flow_veh_h"]
    table["time_before_min"] = a["time_min"]
    table["time_after_min"] = b["time_min"]
    table["flow_change_veh_h"] = b["flow_veh_h"] - a["flow_veh_h"]
    table["time_change_min"] = b["time_min"] - a["time_min"]
    table["cost_change_veh_min"] = b["flow_veh_h"] * b["time_min"] - a["flow_veh_h"] * a["time_min"]
    order = np.argsort(-np.abs(table["cost_change_veh_min"].to_numpy()), kind="stable")
    return AssignmentChange(before.tstt, after.tstt, table.iloc[order[:top]])


def assign(network: RoadNetwork, demand: np.ndarray, gap: float = 1e-4,
           max_iterations: int = 500, method: Literal["auto", "path", "bfw"] = "auto",
           warm_start: AssignmentResult | None = None, progress: bool = False,
           unreachable: Literal["error", "drop"] = "error",
           time_limit_s: float | None = None, inner_sweeps: int = 2) -> AssignmentResult:
    """User-equilibrium link flows for ``demand`` (zones x zones, veh/h, zone order of
    ``network.zone_nodes``) down to relative ``gap`` or ``max_iterations``.

    ``warm_start``: a previous result on the same links (possibly closed or narrowed since)
    to continue from. ``unreachable``: ``"error"`` raises :class:`BadInput` naming the first
    OD pair with demand and no path; ``"drop"`` leaves such demand out and lists it in
    ``result.unserved``.
    """
    raise NotImplementedError("assignment kernels land in the next commit")
