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

from twin.engines.assignment_kernels import all_or_nothing, line_search, link_costs, zone_costs
from twin.engines.assignment_paths import compact, flows_from_paths, sweep, transfer
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
    _load_kernels()
    started = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if unreachable not in ("error", "drop"):
        raise ValueError(f"unreachable must be 'error' or 'drop', got {unreachable!r}")
    graph = _Graph(network)
    matrix = _checked_demand(network, demand)
    free_costs = graph.costs(np.zeros(graph.n_links))[0]
    od_costs = zone_costs(graph.zone_pos, graph.fs_start, graph.fs_link, graph.head,
                          graph.through, free_costs)
    unserved = _unreachable(network, matrix, od_costs, unreachable)
    if warm_start is not None and warm_start.network.n_links != network.n_links:
        raise ValueError("warm_start comes from a network with other links")
    chosen = "path" if method == "auto" else method
    solve = _solve_paths if chosen == "path" else _solve_bfw
    history, flows, state, converged = solve(
        graph, matrix, gap, max_iterations, warm_start, progress, time_limit_s, inner_sweeps,
        started)
    cost, _ = graph.costs(flows)
    return AssignmentResult(network, flows, cost, history, chosen, converged, unserved,
                            demand=matrix, state=state)


_KERNELS_LOADED = False


def _load_kernels() -> None:
    """Compile (or load from numba's cache) every kernel once per process, on a two-node
    network, so that ``seconds`` measures solving, not compiling."""
    global _KERNELS_LOADED
    if _KERNELS_LOADED:
        return
    _KERNELS_LOADED = True
    links = pd.DataFrame({"init_node": [1, 2], "term_node": [2, 1], "capacity_veh_h": [1.0, 1.0],
                          "free_flow_time_min": [1.0, 1.0]})
    tiny = RoadNetwork.from_links(links, [1, 2])
    demand = np.array([[0.0, 1.0], [1.0, 0.0]])
    first = assign(tiny, demand, max_iterations=2, method="path")
    assign(tiny.close([0]), demand, max_iterations=2, method="path", warm_start=first,
           unreachable="drop")
    assign(tiny, demand, max_iterations=3, method="bfw")


class _Graph:
    """The solver's arrays of a network: forward star of open links, BPR parameters."""

    def __init__(self, network: RoadNetwork) -> None:
        links = network.links
        position = network.node_positions()
        self.n_nodes = len(position)
        self.n_links = len(links)
        self.tail = position.loc[links["init_node"]].to_numpy(np.int64)
        self.head = position.loc[links["term_node"]].to_numpy(np.int64)
        self.link_open = links["open"].to_numpy(bool)
        open_links = np.flatnonzero(self.link_open)
        by_tail = open_links[np.argsort(self.tail[open_links], kind="stable")]
        self.fs_link = by_tail.astype(np.int64)
        self.fs_start = np.searchsorted(self.tail[by_tail], np.arange(self.n_nodes + 1)).astype(np.int64)
        self.through = network.nodes["through"].to_numpy(bool)
        self.zone_pos = position.loc[network.zone_nodes].to_numpy(np.int64)
        self.fft = links["free_flow_time_min"].to_numpy(float)
        self.cap = links["capacity_veh_h"].to_numpy(float)
        self.alpha = links["alpha"].to_numpy(float)
        self.beta = links["beta"].to_numpy(float)
        self.fixed = links["fixed_cost_min"].to_numpy(float)

    def bpr(self) -> tuple[np.ndarray, ...]:
        return self.fft, self.cap, self.alpha, self.beta, self.fixed

    def costs(self, flows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cost, deriv = np.empty(self.n_links), np.empty(self.n_links)
        link_costs(flows, *self.bpr(), cost, deriv)
        return cost, deriv

    def beckmann(self, flows: np.ndarray) -> float:
        ratio = np.divide(flows, self.cap, out=np.zeros(self.n_links), where=self.cap > 0)
        return float(np.sum(self.fft * flows * (1.0 + self.alpha * ratio ** self.beta
                                                / (self.beta + 1.0)) + self.fixed * flows))

    def shortest_costs(self, cost: np.ndarray) -> np.ndarray:
        return zone_costs(self.zone_pos, self.fs_start, self.fs_link, self.head, self.through,
                          cost)


def _checked_demand(network: RoadNetwork, demand: np.ndarray) -> np.ndarray:
    matrix = np.array(demand, dtype=float)
    z = network.zones
    if matrix.shape != (z, z):
        raise BadInput(f"demand: expected a {z} x {z} matrix (the zones of "
                       f"{network.name or 'the network'}), got shape {matrix.shape}")
    bad = ~np.isfinite(matrix) | (matrix < 0)
    if bad.any():
        o, d = np.argwhere(bad)[0]
        raise BadInput(f"demand: zone {network.zone_nodes[o]} -> {network.zone_nodes[d]} has "
                       f"{matrix[o, d]} veh/h; expected a finite number >= 0")
    np.fill_diagonal(matrix, 0.0)          # trips inside a zone use no link
    return matrix


def _unreachable(network: RoadNetwork, matrix: np.ndarray, od_costs: np.ndarray,
                 policy: str) -> pd.DataFrame:
    """Demand with no path: raise, or take it out of ``matrix`` and return it as a table."""
    lost = (matrix > 0) & ~np.isfinite(od_costs)
    o, d = np.nonzero(lost)
    zones = network.zone_nodes
    if len(o) and policy == "error":
        closed = int((~network.links["open"]).sum())
        raise BadInput(f"{network.name or 'network'}: no path from zone {zones[o[0]]} to zone "
                       f"{zones[d[0]]} (demand {matrix[o[0], d[0]]:g} veh/h"
                       f"{f', {closed} links closed' if closed else ''}); {len(o)} OD pair(s) "
                       f"unreachable. Pass unreachable='drop' to report them as unserved")
    table = pd.DataFrame({"origin": [zones[i] for i in o], "destination": [zones[j] for j in d],
                          "demand_veh_h": matrix[o, d]})
    matrix[lost] = 0.0
    return table


class _History:
    """Per-iteration record and the stop test."""

    def __init__(self, started: float, gap: float, max_iterations: int,
                 time_limit_s: float | None, progress: bool) -> None:
        self.rows: list[tuple[int, float, float, float, float]] = []
        self.started, self.target, self.max_iterations = started, gap, max_iterations
        self.time_limit_s = time_limit_s
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=max_iterations, desc="assignment", unit="it", leave=False,
                            disable=None)

    def record(self, graph: _Graph, matrix: np.ndarray, flows: np.ndarray,
               cost: np.ndarray, sptt: float | None = None) -> bool:
        """Add the current iteration; True when the run should stop."""
        if sptt is None:
            sptt = float(np.sum(matrix * np.where(matrix > 0, graph.shortest_costs(cost), 0.0)))
        tstt = float(np.dot(flows, cost))
        gap = (tstt - sptt) / tstt if tstt > 0 else 0.0
        seconds = time.perf_counter() - self.started
        self.rows.append((len(self.rows) + 1, gap, graph.beckmann(flows), tstt, seconds))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(gap=f"{gap:.2e}")
        return (gap <= self.target or len(self.rows) >= self.max_iterations
                or (self.time_limit_s is not None and seconds >= self.time_limit_s))

    @property
    def converged(self) -> bool:
        return bool(self.rows) and self.rows[-1][1] <= self.target

    def frame(self) -> pd.DataFrame:
        if self.bar is not None:
            self.bar.close()
        return pd.DataFrame(self.rows, columns=["iteration", "relative_gap", "beckmann", "tstt",
                                                "seconds"])


def _solve_bfw(graph: _Graph, matrix: np.ndarray, gap: float, max_iterations: int,
               warm_start: AssignmentResult | None, progress: bool,
               time_limit_s: float | None, inner_sweeps: int, started: float):
    """Bi-conjugate Frank-Wolfe; starts from a warm start's flows when they are still
    feasible (same demand, nothing on a closed link), else from all-or-nothing."""
    history = _History(started, gap, max_iterations, time_limit_s, progress)
    flows = None
    if (warm_start is not None and warm_start.demand is not None
            and np.array_equal(warm_start.demand, matrix)
            and not np.any(warm_start.link_flow_veh_h[~graph.link_open] > 0)):
        flows = warm_start.link_flow_veh_h.copy()
    if flows is None:
        flows, _ = _aon(graph, matrix, graph.costs(np.zeros(graph.n_links))[0])
    s1 = s2 = None
    last_step = 1.0
    while True:
        cost, deriv = graph.costs(flows)
        target, sptt = _aon(graph, matrix, cost)
        if history.record(graph, matrix, flows, cost, sptt):
            break
        direction_point = _conjugate_point(flows, target, s1, s2, deriv, last_step)
        direction = direction_point - flows
        last_step = line_search(flows, direction, *graph.bpr())
        flows = flows + last_step * direction
        s2, s1 = s1, direction_point
    return history.frame(), flows, None, history.converged


def _aon(graph: _Graph, matrix: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, float]:
    return all_or_nothing(graph.zone_pos, matrix, graph.fs_start, graph.fs_link, graph.head,
                          graph.tail, graph.through, cost, graph.n_links)


def _conjugate_point(x: np.ndarray, y: np.ndarray, s1: np.ndarray | None,
                     s2: np.ndarray | None, hessian: np.ndarray, last_step: float) -> np.ndarray:
    """The point the next step heads to: the all-or-nothing flows ``y`` made conjugate to the
    previous one or two directions (Mitradjieva and Lindberg 2013); plain ``y`` after a full
    step or when the weights come out negative."""
    if s1 is None or last_step >= 1.0 - 1e-12:
        return y
    a = s1 - x
    if s2 is None:
        denominator = np.dot(a * hessian, y - s1)
        if denominator == 0.0:
            return y
        weight = np.dot(a * hessian, y - x) / denominator
        weight = min(max(weight, 0.0), 1.0 - 1e-6)
        return weight * s1 + (1.0 - weight) * y
    b = last_step * s1 - x + (1.0 - last_step) * s2
    denominator_mu = np.dot(b * hessian, s2 - s1)
    mu = -np.dot(b * hessian, y - x) / denominator_mu if denominator_mu != 0.0 else 0.0
    mu = max(mu, 0.0)
    denominator_nu = np.dot(a * hessian, a)
    nu = (-np.dot(a * hessian, y - x) / denominator_nu if denominator_nu != 0.0 else 0.0)
    nu = max(nu + mu * last_step / (1.0 - last_step), 0.0)
    beta0 = 1.0 / (1.0 + mu + nu)
    return beta0 * y + nu * beta0 * s1 + mu * beta0 * s2


@dataclass
class _PathState:
    """Paths of a solution, kept for a warm start (arrays of :mod:`assignment_paths`)."""

    od_orig: np.ndarray
    od_dest: np.ndarray
    od_head: np.ndarray
    p_off: np.ndarray
    p_len: np.ndarray
    p_next: np.ndarray
    p_flow: np.ndarray
    buf: np.ndarray

    @property
    def n_paths(self) -> int:
        count = 0
        for k in range(len(self.od_head)):
            p = self.od_head[k]
            while p >= 0:
                count += 1
                p = self.p_next[p]
        return count


def _path_pass(graph: _Graph, common: tuple, arrays: tuple, counts: np.ndarray,
               stamps: tuple, flows: np.ndarray, cost: np.ndarray, deriv: np.ndarray,
               with_paths: bool, balance: bool) -> tuple:
    return sweep(with_paths, balance, graph.zone_pos, *common, *arrays, counts, *stamps,
                 graph.fs_start, graph.fs_link, graph.head, graph.tail, graph.through,
                 *graph.bpr(), flows, cost, deriv)


def _solve_paths(graph: _Graph, matrix: np.ndarray, gap: float, max_iterations: int,
                 warm_start: AssignmentResult | None, progress: bool,
                 time_limit_s: float | None, inner_sweeps: int, started: float):
    """Path-based gradient projection (see module doc)."""
    history = _History(started, gap, max_iterations, time_limit_s, progress)
    z = len(graph.zone_pos)
    od_orig, od_dest = np.nonzero(matrix)
    od_orig, od_dest = od_orig.astype(np.int64), od_dest.astype(np.int64)
    od_demand = matrix[od_orig, od_dest]
    od_start = np.searchsorted(od_orig, np.arange(z + 1)).astype(np.int64)
    counts = np.zeros(4, np.int64)
    previous = warm_start.state if warm_start is not None else None
    if isinstance(previous, _PathState):
        index = np.full((z, z), -1, np.int64)
        index[od_orig, od_dest] = np.arange(len(od_orig))
        od_head, p_off, p_len, p_next, p_flow, buf = transfer(
            previous.od_orig, previous.od_dest, previous.od_head, previous.p_off,
            previous.p_len, previous.p_next, previous.p_flow, previous.buf, graph.link_open,
            index, len(od_orig), counts)
    else:
        size = 2 * len(od_orig) + 16
        od_head = np.full(len(od_orig), -1, np.int64)
        p_off, p_len, p_next = (np.empty(size, np.int64) for _ in range(3))
        p_flow = np.empty(size)
        buf = np.empty(8 * size, np.int32)     # link indices: half the memory of int64
    flows = flows_from_paths(od_head, p_off, p_len, p_next, p_flow, buf, graph.n_links)
    cost, deriv = graph.costs(flows)
    stamps = (np.zeros(graph.n_links, np.int64), np.zeros(graph.n_links, np.int64))
    common = (od_start, od_dest, od_demand, od_head)
    arrays = (p_off, p_len, p_next, p_flow, buf)
    first = True
    first_pass = False
    while True:
        # measure the gap at the current flows while adding the new shortest paths
        *arrays, bad, sptt, moved = _path_pass(graph, common, arrays, counts, stamps, flows,
                                               cost, deriv, with_paths=True, balance=False)
        if bad >= 0:      # cannot happen after the reachability check; guard anyway
            raise RuntimeError(f"OD pair {bad} lost its path during the assignment")
        if moved:         # demand was put on paths (the first pass): the next pass measures
            flows = flows_from_paths(od_head, *arrays, graph.n_links)
            cost, deriv = graph.costs(flows)
            first_pass, first = first, False
            if first_pass and not isinstance(previous, _PathState):
                continue  # all-or-nothing start: one path per OD, nothing to balance yet
        if not (moved and first_pass) and history.record(
                graph, matrix, flows, cost, None if moved else sptt):
            break
        first = False
        for _ in range(max(inner_sweeps, 1)):
            *arrays, bad, sptt, moved = _path_pass(graph, common, arrays, counts, stamps, flows,
                                                   cost, deriv, with_paths=False, balance=True)
        flows = flows_from_paths(od_head, *arrays, graph.n_links)
        cost, deriv = graph.costs(flows)
        if counts[2] > counts[1] // 2:
            arrays = compact(od_head, *arrays, counts)
    p_off, p_len, p_next, p_flow, buf = arrays
    state = _PathState(od_orig, od_dest, od_head, p_off, p_len, p_next, p_flow, buf)
    return history.frame(), flows, state, history.converged
