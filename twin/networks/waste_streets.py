"""Travel times and distances between points on the city's streets, for trucks.

A point lies on a street at ``offset_m`` from the street's ``u`` end (a container),
or on an intersection with an off-street access (a site). Streets are driven both
ways at the per-street time of ``Twin.street_times_s`` when a traffic layer sets it,
else ``length_m / speed_kph``; closed streets are left out of the graph. Node to
node fastest paths come from one all-pairs Dijkstra (the demo city has a few
hundred intersections); a point-to-point time is the best of the four ways out of
and into the two streets, and its distance is the length of that fastest path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from numba import njit
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from twin.city.model import City


@njit(cache=True)
def _path_lengths(pred: np.ndarray, edge_m: np.ndarray) -> np.ndarray:
    """Length (m) of every fastest path from its predecessor trees: each node's length is
    its predecessor's plus the edge, filled along each tree once (O(n^2) for n nodes)."""
    n = pred.shape[0]
    length = np.zeros((n, n))
    known = np.zeros(n, np.bool_)
    stack = np.empty(n, np.int64)
    for s in range(n):
        known[:] = False
        known[s] = True
        for v in range(n):
            if known[v] or pred[s, v] < 0:
                continue
            top = 0
            w = v
            while not known[w] and pred[s, w] >= 0:     # up the tree to a known node
                stack[top] = w
                top += 1
                w = pred[s, w]
            while top > 0:                              # and back down, adding the edges
                top -= 1
                w = stack[top]
                p = pred[s, w]
                length[s, w] = length[s, p] + edge_m[p, w]
                known[w] = True
    return length


@njit(cache=True)
def _best_of_ends(ends_a, ends_b, off_s_a, off_s_b, off_m_a, off_m_b, node_s, node_m):
    """Point-to-point time and distance: the fastest of the four ways out of the first
    point's street ends and into the second's."""
    k = len(ends_a)
    best_s = np.full((k, k), np.inf)
    best_m = np.zeros((k, k))
    for i in range(k):
        for a in range(2):
            ei = ends_a[i] if a == 0 else ends_b[i]
            si = off_s_a[i] if a == 0 else off_s_b[i]
            mi = off_m_a[i] if a == 0 else off_m_b[i]
            for j in range(k):
                for b in range(2):
                    ej = ends_a[j] if b == 0 else ends_b[j]
                    t = si + node_s[ei, ej] + (off_s_a[j] if b == 0 else off_s_b[j])
                    if t < best_s[i, j]:
                        best_s[i, j] = t
                        best_m[i, j] = mi + node_m[ei, ej] + (off_m_a[j] if b == 0
                                                              else off_m_b[j])
    return best_s, best_m


class StreetRouter:
    """Fastest paths between fixed points on a city's streets, refreshed on demand."""

    def __init__(self, city: City, street_id: np.ndarray, offset_m: np.ndarray,
                 node_id: np.ndarray, access_m: np.ndarray, access_s: np.ndarray) -> None:
        """Points: on street ``street_id[k]`` at ``offset_m[k]``, or (street '' ) at
        intersection ``node_id[k]`` plus an off-street access of ``access_m``/``access_s``."""
        self.city = city
        streets = city.streets
        self.node_index = {n: i for i, n in enumerate(city.intersections.index)}
        self.street_pos = {s: i for i, s in enumerate(streets.index)}
        self.u = np.array([self.node_index[n] for n in streets["u"]])
        self.v = np.array([self.node_index[n] for n in streets["v"]])
        self.length_m = streets["length_m"].to_numpy(float)
        self.free_s = self.length_m / (streets["speed_kph"].to_numpy(float) / 3.6)
        self.xy = np.column_stack([city.intersections.geometry.x, city.intersections.geometry.y])
        on_street = np.array([bool(s) for s in street_id])
        self.on_street = on_street
        pos = np.array([self.street_pos[s] if s else -1 for s in street_id])
        self.point_street = pos
        node = np.array([self.node_index[n] if not s else -1 for s, n in zip(street_id, node_id)])
        k = np.where(on_street, pos, 0)
        # the two ways out of a point: (end node, metres to it along its street)
        self.end_a = np.where(on_street, self.u[k], node)
        self.end_b = np.where(on_street, self.v[k], node)
        self.off_a_m = np.where(on_street, offset_m, access_m)
        self.off_b_m = np.where(on_street, self.length_m[k] - offset_m, access_m)
        self.access_s = np.where(on_street, 0.0, access_s)
        self.closed: set[str] = set()
        self.street_times_s: pd.Series | None = None
        self.version = 0
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    # ---------------------------------------------------------------- state
    def set_closed(self, street_ids, closed: bool) -> None:
        before = set(self.closed)
        if closed:
            self.closed |= {s for s in street_ids if s in self.street_pos}
        else:
            self.closed -= set(street_ids)
        if self.closed != before:
            self._invalidate()

    def set_times(self, street_times_s: pd.Series | None) -> None:
        self.street_times_s = street_times_s
        self._invalidate()

    def _invalidate(self) -> None:
        self._cache = None
        self.version += 1

    def street_seconds(self) -> tuple[np.ndarray, np.ndarray]:
        """Current per-street time (s), traffic's where known, else free flow; and which
        streets are open (traffic reports a closed street as an infinite time: it is left
        out of the graph, and a container on it is reached at free-flow time)."""
        open_ = np.array([s not in self.closed for s in self.city.streets.index])
        if self.street_times_s is None:
            return self.free_s.copy(), open_
        known = self.street_times_s.reindex(self.city.streets.index).to_numpy(float)
        finite = np.isfinite(known)
        return np.where(finite, known, self.free_s), open_ & (finite | np.isnan(known))

    # ---------------------------------------------------------------- paths
    def _all_pairs(self):
        sec, open_ = self.street_seconds()
        n = len(self.node_index)
        u, v, w = self.u[open_], self.v[open_], np.maximum(sec[open_], 1e-3)
        graph = csr_matrix((np.concatenate([w, w]), (np.concatenate([u, v]), np.concatenate([v, u]))),
                           shape=(n, n))
        time_s, pred = dijkstra(graph, directed=True, return_predecessors=True)
        # length of each fastest path, along the predecessor trees
        edge_m = np.zeros((n, n))
        edge_m[u, v] = self.length_m[open_]
        edge_m[v, u] = self.length_m[open_]
        length = _path_lengths(pred.astype(np.int64), edge_m)
        self.pred = pred
        return time_s, length, sec

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """(travel time s, distance m) between every pair of points, at current conditions."""
        if self._cache is not None:
            return self._cache
        node_s, node_m, sec = self._all_pairs()
        k = np.where(self.on_street, self.point_street, 0)
        per_m = np.where(self.on_street, sec[k] / np.maximum(self.length_m[k], 1e-9), 0.0)
        best_s, best_m = _best_of_ends(
            self.end_a.astype(np.int64), self.end_b.astype(np.int64),
            self.off_a_m * per_m + self.access_s, self.off_b_m * per_m + self.access_s,
            self.off_a_m.astype(float), self.off_b_m.astype(float), node_s, node_m)
        same = self.on_street[:, None] & (self.point_street[:, None] == self.point_street[None, :])
        gap_m = np.abs(self.off_a_m[:, None] - self.off_a_m[None, :])
        direct_s = gap_m * per_m[:, None]
        use = same & (direct_s < best_s)
        best_s[use], best_m[use] = direct_s[use], gap_m[use]
        np.fill_diagonal(best_s, 0.0)
        np.fill_diagonal(best_m, 0.0)
        unreachable = ~np.isfinite(best_s)
        if unreachable.any():       # cut off by closures: through the closure, slowly
            best_s[unreachable] = 3 * 3600.0
        self._cache = (best_s, best_m)
        return self._cache

    def leg_line(self, a: int, b: int, xy: np.ndarray) -> shapely.LineString:
        """The drawn path of a leg from point ``a`` to point ``b`` (``xy``: points' coords)."""
        if self._cache is None:
            self.matrices()
        best, path = np.inf, []
        for ea, oa in ((self.end_a[a], self.off_a_m[a]), (self.end_b[a], self.off_b_m[a])):
            for eb, ob in ((self.end_a[b], self.off_a_m[b]), (self.end_b[b], self.off_b_m[b])):
                nodes = self._node_path(ea, eb)
                if nodes is None:
                    continue
                hops = sum(np.hypot(*(self.xy[p] - self.xy[q])) for p, q in zip(nodes, nodes[1:]))
                total = oa + hops + ob
                if total < best:
                    best, path = total, nodes
        coords = [tuple(xy[a]), *[tuple(self.xy[n]) for n in path], tuple(xy[b])]
        return shapely.LineString(coords if len(coords) > 1 else coords * 2)

    def _node_path(self, src: int, dst: int) -> list[int] | None:
        path = [dst]
        while path[-1] != src:
            prev = self.pred[src, path[-1]]
            if prev < 0:
                return None
            path.append(int(prev))
        return path[::-1]
