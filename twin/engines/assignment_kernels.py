"""Numba kernels of traffic assignment: BPR costs, shortest paths, loading, line search.

The graph is a forward star over *open* links: ``fs_start[u]..fs_start[u+1]`` index
``fs_link``, the link indices leaving node position ``u``; ``head[l]`` / ``tail[l]`` are the
node positions of link ``l``. A node with ``through[u] == 0`` is never expanded unless it is
the origin (TNTP zones below ``<FIRST THRU NODE>``). Everything is compiled with
``cache=True`` so a second process does not compile again.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INF = np.inf


@njit(cache=True, inline="always")
def bpr_cost(x, fft, cap, alpha, beta, fixed):
    """Generalised cost of one link at flow ``x``."""
    if x <= 0.0 or alpha == 0.0:
        return fft + fixed
    return fft * (1.0 + alpha * (x / cap) ** beta) + fixed


@njit(cache=True, inline="always")
def bpr_derivative(x, fft, cap, alpha, beta):
    """d cost / d flow of one link at flow ``x``."""
    if alpha == 0.0 or fft == 0.0:
        return 0.0
    if x <= 0.0:
        return fft * alpha / cap if beta == 1.0 else 0.0
    return fft * alpha * beta * (x / cap) ** (beta - 1.0) / cap


@njit(cache=True)
def link_costs(x, fft, cap, alpha, beta, fixed, cost, deriv):
    """Fill ``cost`` and ``deriv`` for every link at flows ``x``."""
    for a in range(len(x)):
        cost[a] = bpr_cost(x[a], fft[a], cap[a], alpha[a], beta[a], fixed[a])
        deriv[a] = bpr_derivative(x[a], fft[a], cap[a], alpha[a], beta[a])


@njit(cache=True)
def tree_buffers(n_nodes, n_links):
    """Work arrays of :func:`shortest_tree`: dist, pred, order, heap position, heap keys,
    heap items."""
    return (np.empty(n_nodes), np.empty(n_nodes, np.int64), np.empty(n_nodes, np.int64),
            np.empty(n_nodes, np.int64), np.empty(n_nodes + 1), np.empty(n_nodes + 1, np.int64))


@njit(cache=True, inline="always")
def _heap_move(hkey, hitem, position, source, target):
    hkey[target] = hkey[source]
    hitem[target] = hitem[source]
    position[hitem[target]] = target


@njit(cache=True)
def shortest_tree(origin, fs_start, fs_link, head, through, cost, dist, pred, order,
                  position, hkey, hitem):
    """Dijkstra from node position ``origin`` with an indexed binary heap (decrease-key):
    fills ``dist``, ``pred`` (the link into each node, -1 if none) and ``order`` (settled
    nodes, nearest first); returns how many nodes were settled. ``position`` is the node's
    place in the heap, -1 before it enters, -2 once settled."""
    n = len(dist)
    for u in range(n):
        dist[u] = INF
        pred[u] = -1
        position[u] = -1
    dist[origin] = 0.0
    hkey[0] = 0.0
    hitem[0] = origin
    position[origin] = 0
    size = 1
    count = 0
    while size > 0:
        u = hitem[0]
        d = hkey[0]
        position[u] = -2
        size -= 1
        if size > 0:                       # the last item sinks from the root
            i = 0
            while True:
                child = 2 * i + 1
                if child >= size:
                    break
                if child + 1 < size and hkey[child + 1] < hkey[child]:
                    child += 1
                if hkey[child] >= hkey[size]:
                    break
                _heap_move(hkey, hitem, position, child, i)
                i = child
            _heap_move(hkey, hitem, position, size, i)
        order[count] = u
        count += 1
        if u != origin and not through[u]:
            continue
        for e in range(fs_start[u], fs_start[u + 1]):
            a = fs_link[e]
            v = head[a]
            nd = d + cost[a]
            if nd < dist[v]:
                p = position[v]
                if p == -2:
                    continue
                dist[v] = nd
                pred[v] = a
                if p == -1:
                    p = size
                    size += 1
                while p > 0:                # the improved node rises
                    parent = (p - 1) >> 1
                    if hkey[parent] <= nd:
                        break
                    _heap_move(hkey, hitem, position, parent, p)
                    p = parent
                hkey[p] = nd
                hitem[p] = v
                position[v] = p
    return count


@njit(cache=True)
def zone_costs(zone_pos, fs_start, fs_link, head, through, cost):
    """Shortest-path cost between every pair of zones (inf where there is no path)."""
    n = len(fs_start) - 1
    z = len(zone_pos)
    out = np.empty((z, z))
    for o in range(z):
        dist, pred, order, position, hkey, hitem = tree_buffers(n, len(fs_link))
        shortest_tree(zone_pos[o], fs_start, fs_link, head, through, cost, dist, pred, order,
                      position, hkey, hitem)
        for d in range(z):
            out[o, d] = dist[zone_pos[d]]
    return out


@njit(cache=True)
def all_or_nothing(zone_pos, demand, fs_start, fs_link, head, tail, through, cost, n_links):
    """Load every OD flow on its shortest path; returns (link flows, SPTT)."""
    n = len(fs_start) - 1
    z = len(zone_pos)
    dist, pred, order, position, hkey, hitem = tree_buffers(n, len(fs_link))
    load = np.zeros(n)
    y = np.zeros(n_links)
    sptt = 0.0
    for o in range(z):
        count = shortest_tree(zone_pos[o], fs_start, fs_link, head, through, cost, dist, pred,
                              order, position, hkey, hitem)
        any_demand = False
        for d in range(z):
            q = demand[o, d]
            if q > 0.0 and d != o:
                load[zone_pos[d]] += q
                sptt += q * dist[zone_pos[d]]
                any_demand = True
        if not any_demand:
            continue
        for i in range(count - 1, 0, -1):
            u = order[i]
            if load[u] != 0.0:
                a = pred[u]
                y[a] += load[u]
                load[tail[a]] += load[u]
                load[u] = 0.0
        load[zone_pos[o]] = 0.0
    return y, sptt


@njit(cache=True)
def line_search(x, d, fft, cap, alpha, beta, fixed, iterations=60):
    """The step in [0, 1] along ``d`` from ``x`` that minimises the Beckmann objective
    (bisection on its derivative)."""
    def slope(step):
        g = 0.0
        for a in range(len(x)):
            if d[a] != 0.0:
                g += d[a] * bpr_cost(x[a] + step * d[a], fft[a], cap[a], alpha[a], beta[a],
                                     fixed[a])
        return g

    if slope(1.0) <= 0.0:
        return 1.0
    if slope(0.0) >= 0.0:
        return 0.0
    low, high = 0.0, 1.0
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        if slope(mid) < 0.0:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
