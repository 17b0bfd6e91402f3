"""Clarke-Wright savings (parallel version): the classic CVRP construction heuristic.

A baseline for the routing benchmark and a fallback that needs no solver: start
with one route per customer, then merge route ends in decreasing order of the
saving ``d(0,i) + d(0,j) - d(i,j)`` while the merged load fits the capacity.
Typically 5-10 % above the best-known cost on CVRPLIB instances.
"""

from __future__ import annotations

import numpy as np


def clarke_wright(distance: np.ndarray, demand: np.ndarray, capacity: float,
                  depot: int = 0) -> list[list[int]]:
    """Routes (lists of node positions, depot implied at both ends) by savings merges."""
    n = len(demand)
    customers = [i for i in range(n) if i != depot]
    route_of = {c: [c] for c in customers}           # customer -> its route (shared list)
    load = {id(route_of[c]): float(demand[c]) for c in customers}
    d = np.asarray(distance, dtype=float)
    ii, jj = np.triu_indices(n, k=1)
    keep = (ii != depot) & (jj != depot)
    ii, jj = ii[keep], jj[keep]
    saving = d[depot, ii] + d[depot, jj] - d[ii, jj]
    order = np.lexsort((jj, ii, -saving))             # deterministic ties
    for k in order:
        if saving[k] <= 0:
            break
        i, j = int(ii[k]), int(jj[k])
        ri, rj = route_of[i], route_of[j]
        if ri is rj or load[id(ri)] + load[id(rj)] > capacity:
            continue
        # i and j must be ends of their routes; orient so that i ends ri and j starts rj
        if ri[-1] != i:
            if ri[0] != i:
                continue
            ri.reverse()
        if rj[0] != j:
            if rj[-1] != j:
                continue
            rj.reverse()
        total = load.pop(id(ri)) + load.pop(id(rj))
        ri.extend(rj)
        for c in rj:
            route_of[c] = ri
        load[id(ri)] = total
    seen: dict[int, list[int]] = {}
    for c in customers:
        seen.setdefault(id(route_of[c]), route_of[c])
    return list(seen.values())
