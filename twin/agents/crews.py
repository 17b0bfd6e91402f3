"""Field crews and the streets they drive on.

:class:`StreetRouter` answers travel times (s), distances (m) and paths between
intersections of the city's street graph (shortest by travel time; one Dijkstra
per source, cached) and routes (:meth:`StreetRouter.route`, the street of each hop,
the same as if nothing were closed). :class:`Shift` says when a crew works; :class:`Crew`
holds a crew's skill, depot, vehicle and its running totals. :func:`make_crews` splits a
number of crews over skills in proportion to their expected workload; a
:class:`Preposition` moves some of them to a staging point (:func:`staged_crews`).
Crews move by themselves on the twin's clock: see :mod:`twin.agents.service_layer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    from twin.city.model import City

DRIVING_SPEED_SHARE = 0.6     # a van drives at 60 % of the posted speed (stops, parking)
STRAIGHT_LINE_SPEED_MPS = 5.0  # only where the city has no street graph
DETOUR_FACTOR = 1.3            # straight line -> street distance, without a graph


class StreetRouter:
    """Travel on the city's street graph, shortest by travel time.

    Times in seconds, distances in metres. ``node`` arguments are row numbers of
    ``node_ids`` (see :meth:`nearest_node`). One Dijkstra per source node, cached;
    a small graph (<= ``full_matrix_nodes`` nodes) is solved all at once.
    """

    def __init__(self, city: "City", speed_share: float = DRIVING_SPEED_SHARE,
                 full_matrix_nodes: int = 3000) -> None:
        g = city.graph
        self.node_ids = np.array(list(g.nodes), dtype=object)
        self.xy_m = np.array([(g.nodes[n]["x"], g.nodes[n]["y"]) for n in self.node_ids])
        self._tree = cKDTree(self.xy_m)
        index = {n: i for i, n in enumerate(self.node_ids)}
        n = len(self.node_ids)
        self.has_graph = g.number_of_edges() > 0
        rows, cols, secs, lengths, streets = [], [], [], [], []
        for a, b, d in g.edges(data=True):
            length = float(d["length_m"])
            t = length / (float(d.get("speed_kph", 30.0)) / 3.6 * speed_share)
            for u, v in ((index[a], index[b]), (index[b], index[a])):
                rows.append(u), cols.append(v), secs.append(t), lengths.append(length)
                streets.append(str(d.get("street_id", "")))
        self._n = n
        self._edges = (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64),
                       np.asarray(secs, dtype=float))
        self._edge_street = np.asarray(streets, dtype=object)
        self._street_edges: dict[str, list[int]] = {}     # street id -> its edges (closures)
        for k, sid in enumerate(streets):
            self._street_edges.setdefault(sid, []).append(k)
        self._time = csr_matrix((secs, (rows, cols)), shape=(n, n))
        self._length = csr_matrix((lengths, (rows, cols)), shape=(n, n))
        self._free_secs = self._edges[2].copy()
        self.speed_share = speed_share
        self.closed: set[str] = set()        # street ids closed to the crews
        self.closure_passes = 0              # travels that had to pass a closure: no open route
        self._passed_closure = False
        self._hop_street: dict[tuple[int, int], str] | None = None
        self._rows: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._rows_all = self._rows          # the same cache while nothing is closed
        self._time_all = self._time
        if self.has_graph and n <= full_matrix_nodes:
            self._solve(np.arange(n))

    def set_street_times(self, street_times_s) -> int:
        """Drive at the traffic layer's travel times (a Series of seconds by street_id, as
        in ``Twin.street_times_s``); streets it does not name keep their free-flow time,
        and ``None`` goes back to free flow. A van takes ``1 / speed_share`` times a car's
        time on the same street (stops, parking). Routes are recomputed on demand.
        Returns the number of edges whose time changed."""
        secs = self._free_secs.copy()
        if street_times_s is not None and len(street_times_s):
            lookup = {str(k): float(v) for k, v in street_times_s.items()}
            traffic = np.array([lookup.get(sid, np.nan) for sid in self._edge_street])
            ok = np.isfinite(traffic) & (traffic > 0)
            secs[ok] = traffic[ok] / self.speed_share
        changed = int(np.count_nonzero(~np.isclose(secs, self._edges[2])))
        if not changed:
            return 0
        rows, cols = self._edges[0], self._edges[1]
        self._edges = (rows, cols, secs)
        self._time_all = csr_matrix((secs, (rows, cols)), shape=(self._n, self._n))
        self._rows_all = {}
        closed, self.closed = self.closed, set()
        self._time, self._rows = self._time_all, self._rows_all
        self._set_closed(closed)
        return changed

    def close(self, street_ids) -> bool:
        """Close streets to the crews; routes are recomputed. True if the graph changed."""
        return self._set_closed(self.closed | {str(s) for s in street_ids})

    def reopen(self, street_ids) -> bool:
        """Reopen closed streets; routes are recomputed. True if the graph changed."""
        return self._set_closed(self.closed - {str(s) for s in street_ids})

    def _set_closed(self, closed: set[str]) -> bool:
        if closed == self.closed:
            return False
        self.closed = closed
        if not closed:                       # back to the full graph and its cache
            self._time, self._rows = self._time_all, self._rows_all
            return True
        keep = np.ones(len(self._edge_street), dtype=bool)
        for sid in closed:                   # (np.isin on the ids cost a storm 14 s at 250k)
            keep[self._street_edges.get(sid, [])] = False
        rows, cols, secs = (e[keep] for e in self._edges)
        self._time = csr_matrix((secs, (rows, cols)), shape=(self._n, self._n))
        self._rows = {}                      # every cached route may have used a closed street
        return True

    def nearest_node(self, x_m: np.ndarray | float, y_m: np.ndarray | float) -> np.ndarray:
        """Row numbers of the intersections nearest to the points (x_m, y_m)."""
        _, idx = self._tree.query(np.column_stack([np.atleast_1d(x_m), np.atleast_1d(y_m)]))
        return np.asarray(idx, dtype=np.int64)

    def _solve(self, sources: np.ndarray, full_graph: bool = False) -> None:
        graph, cache = ((self._time_all, self._rows_all) if full_graph
                        else (self._time, self._rows))
        times, pred = dijkstra(graph, directed=True, indices=sources,
                               return_predecessors=True)
        times, pred = np.atleast_2d(times), np.atleast_2d(pred)
        metres = _path_lengths(pred, self._length)
        for k, s in enumerate(sources):
            cache[int(s)] = (times[k], metres[k], pred[k])

    def _row(self, a: int, b: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Routes from ``a`` avoiding closed streets; on the full graph when ``b`` cannot
        be reached otherwise (a crew passes the closure rather than never arriving)."""
        row = self._rows.get(a)
        if row is None:
            self._solve(np.array([a]))
            row = self._rows[a]
        if b is not None and not np.isfinite(row[0][b]) and self._rows is not self._rows_all:
            full = self._rows_all.get(a)
            if full is None:
                self._solve(np.array([a]), full_graph=True)
                full = self._rows_all[a]
            if np.isfinite(full[0][b]):
                self._passed_closure = True
                return full
        self._passed_closure = False
        return row

    def travel(self, a: int, b: int) -> tuple[float, float]:
        """(seconds, metres) from intersection ``a`` to ``b``."""
        if a == b:
            return 0.0, 0.0
        if not self.has_graph:
            d = float(np.hypot(*(self.xy_m[a] - self.xy_m[b]))) * DETOUR_FACTOR
            return d / STRAIGHT_LINE_SPEED_MPS, d
        times, metres, _ = self._row(a, b)
        self.closure_passes += self._passed_closure
        return float(times[b]), float(metres[b])

    def times_from(self, a: int) -> np.ndarray:
        """Travel seconds from ``a`` to every intersection."""
        if not self.has_graph:
            return np.hypot(*(self.xy_m - self.xy_m[a]).T) * DETOUR_FACTOR / STRAIGHT_LINE_SPEED_MPS
        return self._row(a)[0]

    def route(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The fastest route from ``a`` to ``b`` now: intersection rows, and the seconds and
        metres from ``a`` at each of them (on the full graph when closures leave none)."""
        if a == b or not self.has_graph:
            secs, metres = self.travel(a, b)
            nodes = np.array([a] if a == b else [a, b], dtype=np.int64)
            return nodes, np.array([0.0, secs][: len(nodes)]), np.array([0.0, metres][: len(nodes)])
        times, metres, pred = self._row(a, b)
        out, k = [b], b
        while k != a:
            k = int(pred[k])
            if k < 0:
                raise ValueError(f"no street route from {self.node_ids[a]} to {self.node_ids[b]}")
            out.append(k)
        nodes = np.array(out[::-1], dtype=np.int64)
        return nodes, times[nodes], metres[nodes]

    def streets_on(self, nodes: np.ndarray) -> list[str]:
        """The street id of each hop of a route (``nodes`` as :meth:`route` gives them)."""
        if self._hop_street is None:
            rows, cols = self._edges[0], self._edges[1]
            self._hop_street = dict(zip(zip(rows.tolist(), cols.tolist()),
                                        self._edge_street.tolist()))
        return [self._hop_street.get((int(u), int(v)), "") for u, v in zip(nodes[:-1], nodes[1:])]

    def open_travel_s(self, a: int, b: int) -> float:
        """Seconds from ``a`` to ``b`` as if no street were closed."""
        if a == b or not self.has_graph:
            return self.travel(a, b)[0] if a != b else 0.0
        full = self._rows_all.get(a)
        if full is None:
            self._solve(np.array([a]), full_graph=True)
            full = self._rows_all[a]
        return float(full[0][b])

    def open_route(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`route` as if no street were closed."""
        closed, self.closed = self.closed, set()
        saved = self._time, self._rows
        self._time, self._rows = self._time_all, self._rows_all
        try:
            return self.route(a, b)
        finally:
            self.closed = closed
            self._time, self._rows = saved

    def path(self, a: int, b: int) -> list[str]:
        """Intersection ids from ``a`` to ``b`` along the fastest route."""
        return [self.node_ids[i] for i in self.route(a, b)[0]]


def _path_lengths(pred: np.ndarray, length: csr_matrix) -> np.ndarray:
    """Metres along each shortest-path tree (rows of ``pred``), by pointer jumping."""
    n = pred.shape[1]
    dense = length.toarray() if n <= 4000 else None
    has = pred >= 0
    cols = np.broadcast_to(np.arange(n), pred.shape)
    step = np.zeros(pred.shape)
    parent = np.where(has, pred, cols)
    if dense is not None:
        step[has] = dense[parent[has], cols[has]]
    else:
        step[has] = np.asarray(length[parent[has], cols[has]]).ravel()
    total = step.copy()
    # after k rounds, total[v] covers 2**k hops towards the source
    for _ in range(int(math.ceil(math.log2(max(n, 2)))) + 1):
        if np.all(parent == np.take_along_axis(parent, parent, axis=1)):
            break
        total = total + np.take_along_axis(total, parent, axis=1) * (parent != cols)
        parent = np.take_along_axis(parent, parent, axis=1)
    return total


@dataclass(frozen=True)
class Shift:
    """Working windows ``(start_h, end_h)`` (0..24, end > start) on ``days`` (0 = Monday)."""

    name: str
    windows: tuple[tuple[float, float], ...]
    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)

    def __post_init__(self) -> None:
        for lo, hi in self.windows:
            if not 0 <= lo < hi <= 24:
                raise ValueError(f"shift {self.name!r}: window ({lo}, {hi}): expected "
                                 "0 <= start_h < end_h <= 24")

    def window_end_s(self, day_index: int, hour: float) -> float | None:
        """Hours to the end of the window containing ``hour`` on weekday ``day_index``."""
        if day_index % 7 in self.days:
            for lo, hi in self.windows:
                if lo <= hour < hi:
                    return (hi - hour) * 3600.0
        return None

    def next_start_s(self, day_index: int, hour: float) -> float:
        """Seconds from (weekday ``day_index``, ``hour``) to the next window start."""
        for ahead in range(8):
            if (day_index + ahead) % 7 not in self.days:
                continue
            for lo, _ in sorted(self.windows):
                wait_h = ahead * 24 + lo - hour
                if wait_h > 0:
                    return wait_h * 3600.0
        raise ValueError(f"shift {self.name!r} never starts")


SHIFTS: dict[str, Shift] = {
    "early": Shift("early", ((6.0, 14.0),)),
    "day": Shift("day", ((8.0, 16.0),), days=(0, 1, 2, 3, 4)),
    "late": Shift("late", ((14.0, 22.0),)),
    "night": Shift("night", ((0.0, 6.0), (22.0, 24.0))),
}
URGENT_SKILLS = ("water", "sewer")   # on call around the clock when they have >= 4 crews


@dataclass
class Crew:
    """A crew: one vehicle, one skill, one depot (an intersection row), one shift.

    Totals: ``busy_s`` (travelling to and working on jobs), ``on_shift_s``,
    ``driven_m``, ``jobs``.
    """

    crew_id: str
    skill: str
    depot: int
    shift: Shift
    vehicle: str = "van"
    node: int = -1
    busy_s: float = 0.0
    on_shift_s: float = 0.0
    driven_m: float = 0.0
    jobs: int = 0
    idle: bool = False
    wake: object = None          # the SimPy event that wakes the crew when it is idle
    assigned: object = None      # a job handed over while idle
    route: list = field(default_factory=list)   # batched policy: jobs of today's route
    staged: bool = False         # pre-positioned: waits at its depot (the staging point)
    driving: object = None       # while driving: its trip (see service_layer._drive)
    process: object = None       # its SimPy process (interrupted to reroute)

    def __post_init__(self) -> None:
        if self.node < 0:
            self.node = self.depot


def crew_counts(n_crews: int, workload_h: dict[str, float],
                minimum: dict[str, int] | None = None) -> dict[str, int]:
    """``n_crews`` split over skills in proportion to ``workload_h``, at least one each
    (or ``minimum[skill]``)."""
    skills = [s for s, w in workload_h.items() if w > 0]
    least = {s: max(1, (minimum or {}).get(s, 1)) for s in skills}
    if n_crews < sum(least.values()):
        raise ValueError(f"crews: {n_crews} crews cannot cover the skills {least}; "
                         f"expected at least {sum(least.values())}")
    total = sum(workload_h[s] for s in skills)
    spare = n_crews - sum(least.values())
    # workload beyond what the minimum crews already cover, shared in proportion
    share = {s: spare * workload_h[s] / total for s in skills}
    counts = {s: least[s] + int(math.floor(share[s])) for s in skills}
    rest = n_crews - sum(counts.values())
    for s in sorted(skills, key=lambda s: -(share[s] - math.floor(share[s])))[:rest]:
        counts[s] += 1
    return counts


def make_crews(n_crews: int, workload_h: dict[str, float], depots: list[int]) -> list[Crew]:
    """Crews split over skills by workload, spread over ``depots`` and shifts.

    Skills in :data:`URGENT_SKILLS` get three crews or more when there are crews enough,
    rotating over early, late and night shifts so one is out around the clock; the others
    rotate over day, early and late shifts.
    """
    if not depots:
        raise ValueError("crews: expected at least one depot")
    crews: list[Crew] = []
    urgent = [s for s in workload_h if s in URGENT_SKILLS and workload_h[s] > 0]
    others = sum(1 for s in workload_h if s not in URGENT_SKILLS and workload_h[s] > 0)
    minimum = {s: 3 for s in urgent} if n_crews >= 3 * len(urgent) + others else None
    for skill, count in crew_counts(n_crews, workload_h, minimum).items():
        rotation = (("early", "late", "night") if skill in URGENT_SKILLS
                    else ("day", "early", "late", "day", "early"))
        for k in range(count):
            shift = SHIFTS[rotation[k % len(rotation)]]
            n = len(crews)
            crews.append(Crew(f"{skill}-{k + 1:02d}", skill, depots[n % len(depots)], shift,
                              vehicle="tanker truck" if skill == "sewer" else "van"))
    return crews


@dataclass(frozen=True)
class Preposition:
    """A response option: from ``from_s`` (seconds of the run), ``crews`` crews of ``skill``
    wait at a staging point (``at``: (x, y) in the city's CRS, or a street id: its middle)
    instead of their depot, so they are near when the incidents come."""

    crews: int
    skill: str
    at: tuple[float, float] | str
    from_s: float = 0.0

    def __post_init__(self) -> None:
        if self.crews < 1:
            raise ValueError(f"preposition: crews: expected >= 1, got {self.crews}")

    def point(self, city: "City") -> tuple[float, float]:
        """The staging point (x, y) in the city's CRS."""
        if isinstance(self.at, str):
            if self.at not in city.streets.index:
                raise ValueError(f"preposition: at: unknown street id {self.at!r}")
            mid = city.streets.geometry.loc[self.at].interpolate(0.5, normalized=True)
            return float(mid.x), float(mid.y)
        return float(self.at[0]), float(self.at[1])


def staged_crews(crews: list[Crew], skill: str, n: int, weekday: int, hour: float) -> list[Crew]:
    """The ``n`` crews of ``skill`` to pre-position: one crew of each shift first (so the
    staging point is manned around the clock when the skill's crews rotate over shifts),
    those on shift now or starting soonest first."""
    mine = [c for c in crews if c.skill == skill]
    if not mine:
        raise ValueError(f"preposition: no crew of skill {skill!r}; the crews' skills are "
                         f"{sorted({c.skill for c in crews})}")

    def wait_s(crew: Crew) -> float:
        return 0.0 if crew.shift.window_end_s(weekday, hour) else crew.shift.next_start_s(
            weekday, hour)

    ordered = sorted(mine, key=wait_s)
    first_of_shift = list({c.shift.name: c for c in reversed(ordered)}.values())[::-1]
    first_of_shift.sort(key=wait_s)
    rest = [c for c in ordered if c not in first_of_shift]
    return (first_of_shift + rest)[:n]
