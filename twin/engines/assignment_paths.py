"""Numba kernels of path-based gradient projection: the path store and its sweeps.

Paths are kept per OD pair (ODs sorted by origin, ``od_start[o]..od_start[o+1]``) as linked
lists: ``od_head[k]`` is the first path of OD ``k``, ``p_next[p]`` the next; path ``p`` has
``p_len[p]`` link indices at ``buf[p_off[p]:]`` and flow ``p_flow[p]``. Removed paths leave
their links in ``buf`` until :func:`compact` copies the live ones. ``counts`` holds
(paths, links used in buf, dead links in buf, stamp token).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from twin.engines.assignment_kernels import (INF, bpr_cost, bpr_derivative, shortest_tree,
                                              tree_buffers)

N_PATHS, N_BUF, N_DEAD, TOKEN = 0, 1, 2, 3


@njit(cache=True)
def _grown(a, size):
    out = np.empty(size, a.dtype)
    out[:len(a)] = a
    return out


@njit(cache=True, inline="always")
def _path_cost(p, p_off, p_len, buf, cost):
    c = 0.0
    for i in range(p_off[p], p_off[p] + p_len[p]):
        c += cost[buf[i]]
    return c


@njit(cache=True)
def _cheapest(first, p_off, p_len, p_next, buf, cost):
    s = -1
    best = INF
    p = first
    while p >= 0:
        c = _path_cost(p, p_off, p_len, buf, cost)
        if c < best:
            best = c
            s = p
        p = p_next[p]
    return s


@njit(cache=True, inline="always")
def _move(a, delta, x, cost, deriv, fft, cap, alpha, beta, fixed):
    v = x[a] + delta
    if v < 0.0:
        v = 0.0
    x[a] = v
    b = beta[a]
    if v == 0.0 or alpha[a] == 0.0 or fft[a] == 0.0 or b < 1.0:
        cost[a] = bpr_cost(v, fft[a], cap[a], alpha[a], b, fixed[a])
        deriv[a] = bpr_derivative(v, fft[a], cap[a], alpha[a], b)
        return
    r = v / cap[a]
    if b == 4.0:
        rb = r * r * r                  # (v/c)^(beta-1) without pow for the usual BPR
    else:
        rb = r ** (b - 1.0)
    scale = fft[a] * alpha[a] * rb
    cost[a] = fft[a] + scale * r + fixed[a]
    deriv[a] = scale * b / cap[a]


@njit(cache=True)
def _add_to_path(p, delta, p_off, p_len, buf, x, cost, deriv, fft, cap, alpha, beta, fixed):
    for i in range(p_off[p], p_off[p] + p_len[p]):
        _move(buf[i], delta, x, cost, deriv, fft, cap, alpha, beta, fixed)


@njit(cache=True)
def equilibrate_od(k, od_head, p_off, p_len, p_next, p_flow, buf, counts, stamp_s, stamp_p,
                   x, cost, deriv, fft, cap, alpha, beta, fixed):
    """Move flow of OD ``k`` from its costlier paths to its cheapest (projected Newton step
    on the links the two paths do not share); drop paths left without flow."""
    first = od_head[k]
    if first < 0 or p_next[first] < 0:
        return
    s = _cheapest(first, p_off, p_len, p_next, buf, cost)
    counts[TOKEN] += 1
    tok_s = counts[TOKEN]
    for i in range(p_off[s], p_off[s] + p_len[s]):
        stamp_s[buf[i]] = tok_s
    prev = -1
    p = first
    while p >= 0:
        nxt = p_next[p]
        if p != s:
            counts[TOKEN] += 1
            tok_p = counts[TOKEN]
            cp = 0.0
            denom = 0.0
            for i in range(p_off[p], p_off[p] + p_len[p]):
                a = buf[i]
                stamp_p[a] = tok_p
                if stamp_s[a] != tok_s:
                    cp += cost[a]
                    denom += deriv[a]
            cs = 0.0
            for i in range(p_off[s], p_off[s] + p_len[s]):
                a = buf[i]
                if stamp_p[a] != tok_p:
                    cs += cost[a]
                    denom += deriv[a]
            dc = cp - cs
            if dc > 0.0:
                fp = p_flow[p]
                delta = fp if denom <= 0.0 else min(fp, dc / denom)
                if delta >= fp * (1.0 - 1e-12):
                    delta = fp
                if delta > 0.0:
                    for i in range(p_off[p], p_off[p] + p_len[p]):
                        a = buf[i]
                        if stamp_s[a] != tok_s:
                            _move(a, -delta, x, cost, deriv, fft, cap, alpha, beta, fixed)
                    for i in range(p_off[s], p_off[s] + p_len[s]):
                        a = buf[i]
                        if stamp_p[a] != tok_p:
                            _move(a, delta, x, cost, deriv, fft, cap, alpha, beta, fixed)
                    p_flow[p] = fp - delta
                    p_flow[s] += delta
            if p_flow[p] <= 0.0:
                if prev < 0:
                    od_head[k] = nxt
                else:
                    p_next[prev] = nxt
                counts[N_DEAD] += p_len[p]
                p = nxt
                continue
        prev = p
        p = nxt


@njit(cache=True)
def _origin_paths(origin, k0, k1, zone_pos, od_dest, od_demand, od_head, p_off, p_len, p_next,
                  p_flow, buf, counts, dist, pred, tail, fft, cap, alpha, beta, fixed, x, cost,
                  deriv):
    """The shortest-path work of one origin (its tree in ``dist``/``pred``), on arrays with
    room enough: add each OD's shortest path when it is new, put missing demand on the
    cheapest path (or scale the paths down). Returns (first OD with no path or -1, SPTT of
    the origin, whether demand moved)."""
    sptt = 0.0
    moved = False
    for k in range(k0, k1):
        dn = zone_pos[od_dest[k]]
        if dist[dn] == INF:
            return k, sptt, moved
        sptt += od_demand[k] * dist[dn]
        best = INF
        total = 0.0
        p = od_head[k]
        while p >= 0:
            best = min(best, _path_cost(p, p_off, p_len, buf, cost))
            total += p_flow[p]
            p = p_next[p]
        sp_cost = 0.0
        length = 0
        u = dn
        while u != origin:
            a = pred[u]
            sp_cost += cost[a]
            length += 1
            u = tail[a]
        if best == INF or sp_cost < best - 1e-13 * best:
            new = counts[N_PATHS]
            counts[N_PATHS] += 1
            p_off[new] = counts[N_BUF]
            p_len[new] = length
            i = counts[N_BUF] + length - 1
            u = dn
            while u != origin:
                a = pred[u]
                buf[i] = a
                i -= 1
                u = tail[a]
            counts[N_BUF] += length
            p_flow[new] = 0.0
            p_next[new] = od_head[k]
            od_head[k] = new
        demand = od_demand[k]
        deficit = demand - total
        if deficit > 1e-12 * demand:
            moved = True
            p = _cheapest(od_head[k], p_off, p_len, p_next, buf, cost)
            p_flow[p] += deficit       # the cheapest path takes the missing demand
            _add_to_path(p, deficit, p_off, p_len, buf, x, cost, deriv, fft, cap, alpha, beta,
                         fixed)
        elif deficit < -1e-12 * demand:
            moved = True
            ratio = demand / total
            p = od_head[k]
            while p >= 0:
                cut = p_flow[p] * (ratio - 1.0)
                p_flow[p] += cut
                _add_to_path(p, cut, p_off, p_len, buf, x, cost, deriv, fft, cap, alpha, beta,
                             fixed)
                p = p_next[p]
    return -1, sptt, moved


@njit(cache=True)
def sweep(with_paths, balance, zone_pos, od_start, od_dest, od_demand, od_head, p_off, p_len,
          p_next, p_flow, buf, counts, stamp_s, stamp_p, fs_start, fs_link, head, tail, through,
          fft, cap, alpha, beta, fixed, x, cost, deriv):
    """One pass over the origins. With ``with_paths``, each origin's shortest-path tree (at
    the costs of the moment) adds the new shortest paths, gives them any demand not yet on a
    path (or takes away demand no longer there) and adds demand x shortest cost to the SPTT.
    With ``balance``, every OD with several paths is then equilibrated. Returns the (possibly
    grown) path arrays, the first OD with no path (or -1), the SPTT and whether demand was
    moved onto or off paths (then the SPTT is not that of one flow state)."""
    n = len(fs_start) - 1
    dist, pred, order, position, hkey, hitem = tree_buffers(n, len(fs_link))
    depth = np.zeros(n, np.int64)
    sptt = 0.0
    moved = False
    for o in range(len(zone_pos)):
        k0, k1 = od_start[o], od_start[o + 1]
        if k0 == k1:
            continue
        origin = zone_pos[o]
        if with_paths:
            settled = shortest_tree(origin, fs_start, fs_link, head, through, cost, dist, pred,
                                    order, position, hkey, hitem)
            depth[origin] = 0
            for i in range(1, settled):          # links on each tree path, for the room needed
                u = order[i]
                depth[u] = depth[tail[pred[u]]] + 1
            room = 0
            for k in range(k0, k1):
                dn = zone_pos[od_dest[k]]
                if dist[dn] < INF:
                    room += depth[dn]
            if counts[N_PATHS] + (k1 - k0) > len(p_off):
                size = max(2 * len(p_off), counts[N_PATHS] + (k1 - k0)) + 16
                p_off, p_len = _grown(p_off, size), _grown(p_len, size)
                p_next, p_flow = _grown(p_next, size), _grown(p_flow, size)
            if counts[N_BUF] + room > len(buf):
                buf = _grown(buf, max(2 * len(buf), counts[N_BUF] + room) + 16)
            bad, origin_sptt, origin_moved = _origin_paths(
                origin, k0, k1, zone_pos, od_dest, od_demand, od_head, p_off, p_len, p_next,
                p_flow, buf, counts, dist, pred, tail, fft, cap, alpha, beta, fixed, x, cost,
                deriv)
            if bad >= 0:
                return p_off, p_len, p_next, p_flow, buf, bad, sptt, moved
            sptt += origin_sptt
            moved = moved or origin_moved
        if balance:
            _balance_origin(k0, k1, od_head, p_off, p_len, p_next, p_flow, buf, counts, stamp_s,
                            stamp_p, x, cost, deriv, fft, cap, alpha, beta, fixed)
    return p_off, p_len, p_next, p_flow, buf, -1, sptt, moved


@njit(cache=True)
def _balance_origin(k0, k1, od_head, p_off, p_len, p_next, p_flow, buf, counts, stamp_s,
                    stamp_p, x, cost, deriv, fft, cap, alpha, beta, fixed):
    for k in range(k0, k1):
        if od_head[k] >= 0 and p_next[od_head[k]] >= 0:
            equilibrate_od(k, od_head, p_off, p_len, p_next, p_flow, buf, counts, stamp_s,
                           stamp_p, x, cost, deriv, fft, cap, alpha, beta, fixed)


@njit(cache=True)
def flows_from_paths(od_head, p_off, p_len, p_next, p_flow, buf, n_links):
    """Link flows summed from the path flows (removes the drift of incremental updates)."""
    x = np.zeros(n_links)
    for k in range(len(od_head)):
        p = od_head[k]
        while p >= 0:
            f = p_flow[p]
            for i in range(p_off[p], p_off[p] + p_len[p]):
                x[buf[i]] += f
            p = p_next[p]
    return x


@njit(cache=True)
def compact(od_head, p_off, p_len, p_next, p_flow, buf, counts):
    """Copy the live paths to fresh arrays (after many were dropped)."""
    live = counts[N_PATHS]
    used = counts[N_BUF] - counts[N_DEAD]
    n_off = np.empty(live + 16, np.int64)
    n_len = np.empty(live + 16, np.int64)
    n_next = np.empty(live + 16, np.int64)
    n_flow = np.empty(live + 16)
    n_buf = np.empty(used + 16, buf.dtype)
    paths = 0
    pos = 0
    for k in range(len(od_head)):
        p = od_head[k]
        last = -1
        while p >= 0:
            n_off[paths] = pos
            n_len[paths] = p_len[p]
            n_flow[paths] = p_flow[p]
            n_next[paths] = -1
            for i in range(p_len[p]):
                n_buf[pos + i] = buf[p_off[p] + i]
            pos += p_len[p]
            if last < 0:
                od_head[k] = paths
            else:
                n_next[last] = paths
            last = paths
            paths += 1
            p = p_next[p]
    counts[N_PATHS] = paths
    counts[N_BUF] = pos
    counts[N_DEAD] = 0
    return n_off, n_len, n_next, n_flow, n_buf


@njit(cache=True)
def transfer(old_orig, old_dest, old_head, p_off, p_len, p_next, p_flow, buf, link_open,
             new_index, n_new_ods, counts):
    """Carry the paths of a previous solution to a new OD list (``new_index[o, d]`` is the
    new OD of zones o, d, or -1), keeping only paths whose links are all open."""
    head = np.full(n_new_ods, -1, np.int64)
    n_off = np.empty(len(p_off) + 16, np.int64)
    n_len = np.empty(len(p_off) + 16, np.int64)
    n_next = np.empty(len(p_off) + 16, np.int64)
    n_flow = np.empty(len(p_off) + 16)
    n_buf = np.empty(len(buf) + 16, buf.dtype)
    paths = 0
    pos = 0
    for k in range(len(old_head)):
        k_new = new_index[old_orig[k], old_dest[k]]
        if k_new < 0:
            continue
        p = old_head[k]
        while p >= 0:
            usable = True
            for i in range(p_off[p], p_off[p] + p_len[p]):
                if not link_open[buf[i]]:
                    usable = False
                    break
            if usable and p_flow[p] > 0.0:
                n_off[paths] = pos
                n_len[paths] = p_len[p]
                n_flow[paths] = p_flow[p]
                for i in range(p_len[p]):
                    n_buf[pos + i] = buf[p_off[p] + i]
                pos += p_len[p]
                n_next[paths] = head[k_new]
                head[k_new] = paths
                paths += 1
            p = p_next[p]
    counts[N_PATHS] = paths
    counts[N_BUF] = pos
    counts[N_DEAD] = 0
    return head, n_off, n_len, n_next, n_flow, n_buf
