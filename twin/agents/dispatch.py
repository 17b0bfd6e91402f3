"""Which crew does which work order next: the dispatch policies.

Open work orders wait in a backlog per skill (a heap and a table, never a SimPy
queue, so a long backlog costs no more than its size). A policy answers two
questions: a new order arrived, which idle crew (if any) takes it now
(:meth:`Dispatcher.add`); a crew is free, which order does it take
(:meth:`Dispatcher.next_for`).

* ``fcfs``: oldest order first; a new order goes to the crew idle longest.
* ``priority``: most urgent priority first (1 urgent .. 3 routine), then oldest.
* ``nearest``: most urgent priority first, then the order nearest (in travel
  time) to the crew; a new order goes to the nearest idle crew.
* ``batched``: each crew gets a route at the start of its shift (the most
  urgent and oldest orders, as many as the shift holds, visited nearest
  neighbour first); urgent (priority 1) orders are still sent at once to the
  nearest idle crew, others wait for the next route.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from twin.agents.crews import Crew, StreetRouter

POLICIES = ("fcfs", "priority", "nearest", "batched")
URGENT = 1
MIN_SHIFT_LEFT_S = 1200.0     # a crew takes no new job in the last 20 minutes of its shift


@dataclass(slots=True, eq=False)
class WorkOrder:
    """A job for a crew. Times in simulated seconds; ``work_s`` on site."""

    order_id: int
    request: int             # row of the request that made it
    skill: str
    priority: int
    node: int                # intersection row in the router
    received_s: float
    due_s: float
    work_s: float
    incident_id: str = ""
    crew_id: str = ""
    taken: bool = False
    queued: bool = False     # waited in the backlog (counted in :meth:`Dispatcher.backlog`)


class Dispatcher:
    """Backlog and policy. ``router`` gives travel times for the location-aware policies."""

    def __init__(self, policy: str, router: "StreetRouter") -> None:
        if policy not in POLICIES:
            raise ValueError(f"dispatch policy {policy!r}: expected one of {POLICIES}")
        self.policy = policy
        self.router = router
        self._heaps: dict[str, list] = {}
        self._open: dict[str, dict[int, WorkOrder]] = {}
        self._idle: dict[str, dict[str, "Crew"]] = {}     # insertion order = idle since
        self._waiting: dict[str, int] = {}

    # ------------------------------------------------------------ backlog
    def _key(self, order: WorkOrder) -> tuple:
        if self.policy == "fcfs":
            return (order.received_s, order.order_id)
        return (order.priority, order.received_s, order.order_id)

    def backlog(self, skill: str | None = None) -> int:
        """Orders waiting for a crew (of ``skill``, or all)."""
        if skill is not None:
            return self._waiting.get(skill, 0)
        return sum(self._waiting.values())

    def _push(self, order: WorkOrder) -> None:
        self._open.setdefault(order.skill, {})[order.order_id] = order
        heapq.heappush(self._heaps.setdefault(order.skill, []), (self._key(order), order))

    def _take(self, order: WorkOrder, crew: "Crew") -> WorkOrder:
        order.taken = True
        if order.queued:
            self._waiting[order.skill] -= 1
        order.crew_id = crew.crew_id
        self._open[order.skill].pop(order.order_id, None)
        return order

    def _first(self, skill: str) -> WorkOrder | None:
        heap = self._heaps.get(skill, [])
        while heap and heap[0][1].taken:
            heapq.heappop(heap)
        return heap[0][1] if heap else None

    def _nearest(self, crew: "Crew", orders: list[WorkOrder]) -> WorkOrder:
        times = self.router.times_from(crew.node)
        nodes = np.fromiter((o.node for o in orders), dtype=np.int64, count=len(orders))
        return orders[int(np.argmin(times[nodes]))]

    # ------------------------------------------------------------ crews
    def crew_idle(self, crew: "Crew") -> None:
        self._idle.setdefault(crew.skill, {})[crew.crew_id] = crew

    def crew_busy(self, crew: "Crew") -> None:
        self._idle.get(crew.skill, {}).pop(crew.crew_id, None)

    # ------------------------------------------------------------ decisions
    def add(self, order: WorkOrder) -> "Crew | None":
        """Put ``order`` in the backlog, or hand it to an idle crew (returned, to be woken)."""
        idle_by_id = self._idle.get(order.skill, {})
        send_now = self.policy != "batched" or order.priority == URGENT
        if not idle_by_id or not send_now:
            order.queued = True
            self._waiting[order.skill] = self._waiting.get(order.skill, 0) + 1
            self._push(order)
            return None
        if self.policy in ("nearest", "batched"):
            idle = list(idle_by_id.values())
            times = np.array([self.router.travel(c.node, order.node)[0] for c in idle])
            crew = idle[int(np.argmin(times))]
        else:                                  # the crew idle longest
            crew = next(iter(idle_by_id.values()))
        self.crew_busy(crew)
        self._open.setdefault(order.skill, {})
        crew.assigned = self._take(order, crew)
        return crew

    def next_for(self, crew: "Crew") -> WorkOrder | None:
        """The order ``crew`` takes now that it is free, or None."""
        skill = crew.skill
        if self.policy in ("fcfs", "priority"):
            order = self._first(skill)
            return None if order is None else self._take(order, crew)
        pool = self._open.get(skill, {})
        if self.policy == "nearest" and pool:
            top = min(o.priority for o in pool.values())
            return self._take(self._nearest(crew, [o for o in pool.values()
                                                   if o.priority == top]), crew)
        if self.policy == "batched":
            urgent = [o for o in pool.values() if o.priority == URGENT]
            if urgent:
                return self._take(self._nearest(crew, urgent), crew)
            while crew.route:
                order = crew.route.pop(0)
                if not order.taken:
                    return self._take(order, crew)
        return None

    def plan_route(self, crew: "Crew", shift_left_s: float) -> int:
        """Batched policy: today's route for ``crew`` (reserved orders); returns its length.

        The pool is the most urgent and oldest orders that fill about 1.5 shifts of work;
        the route visits them nearest neighbour first while the shift lasts.
        """
        if self.policy != "batched":
            return 0
        for order in crew.route:              # yesterday's leftovers go back to the pool
            if not order.taken:
                self._push(order)
        crew.route = []
        pool = sorted(self._open.get(crew.skill, {}).values(), key=self._key)
        chosen, work = [], 0.0
        for order in pool:
            if work > 1.5 * shift_left_s:
                break
            chosen.append(order)
            work += order.work_s
        node, left = crew.node, shift_left_s
        while chosen and left > 0:
            times = self.router.times_from(node)[[o.node for o in chosen]]
            k = int(np.argmin(times))
            order = chosen.pop(k)
            left -= times[k] + order.work_s
            self._open[crew.skill].pop(order.order_id, None)   # reserved for this crew
            crew.route.append(order)
            node = order.node
        return len(crew.route)
