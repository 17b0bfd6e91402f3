"""How the crews move: drives rerouted around closures, pre-positioning at a staging point.

Functions of the citizens layer (:class:`twin.agents.service_layer.CitizenServices`), kept
here so that module stays about requests. :func:`drive` takes a crew to an intersection; a
``StreetClosed`` (:func:`close_streets`) turns a crew whose route uses the closed streets
where it is (estimated by the time it has driven: the intersection it passed last, or the
next one unless the street it is on closed) onto the new fastest route, and any route made
longer by a closure in force publishes ``CrewRerouted`` with that closure as its cause.
:func:`preposition` moves crews to a staging point; :func:`to_staging` drives one back
there, available on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import simpy

from twin.agents.crews import Crew, Preposition, staged_crews
from twin.agents.dispatch import WorkOrder
from twin.events import CrewRerouted, StreetClosed

if TYPE_CHECKING:
    from twin.agents.service_layer import CitizenServices


@dataclass(slots=True)
class _Trip:
    """A crew's drive once rerouted: the current leg (from ``start``, leaving at
    ``depart_s``) to ``to``; ``before_m`` metres driven on earlier legs."""
    start: int
    to: int
    depart_s: float
    arrive_s: float
    leg_m: float
    order: int
    before_m: float = 0.0


def _trip(crew: Crew) -> _Trip:
    """The crew's drive as a :class:`_Trip` (made from its plain tuple the first time)."""
    if not isinstance(crew.driving, _Trip):
        crew.driving = _Trip(*crew.driving)
    return crew.driving


def preposition(layer: "CitizenServices", plan: Preposition) -> None:
    """Move ``plan.crews`` crews to the staging point: it becomes their depot; an idle
    crew on shift drives there now, the others when their next shift starts."""
    x, y = plan.point(layer.twin.city)
    node = int(layer.router.nearest_node(x, y)[0])
    for crew in staged_crews(layer.crews, plan.skill, plan.crews,
                             *layer.calendar.weekday_hour(layer.env.now)):
        crew.depot, crew.staged = node, True
        if crew.wake is not None and not crew.wake.triggered:
            crew.wake.succeed()


def to_staging(layer: "CitizenServices", crew: Crew, shift_left_s: float):
    """A pre-positioned crew drives back to its staging point, available on the way: a
    job handed to it stops it where it is (estimated by the time it has driven)."""
    env, disp = layer.env, layer.dispatcher
    start, t0 = crew.node, env.now
    secs, metres = layer.router.travel(start, crew.depot)
    crew.wake = env.event()
    disp.crew_idle(crew)
    yield crew.wake | env.timeout(min(secs, shift_left_s))
    disp.crew_busy(crew)
    crew.wake = None
    if env.now >= t0 + secs:
        node, driven_m = crew.depot, metres
    else:                                   # the last intersection passed
        nodes, cum_s, cum_m = layer.router.route(start, crew.depot)
        k = max(int(np.searchsorted(cum_s, (env.now - t0) * cum_s[-1] / secs,
                                    side="right")) - 1, 0) if secs > 0 else 0
        node, driven_m = int(nodes[k]), float(cum_m[k])
    layer.trips.append((crew.crew_id, -1, start, node, t0, env.now, driven_m))
    crew.driven_m += driven_m
    crew.node = node


def drive(layer: "CitizenServices", crew: Crew, order: WorkOrder | None, to: int):
    """Drive ``crew`` to ``to``; a closure on its way reroutes it (see :func:`_reroute`)."""
    env, t0, start = layer.env, layer.env.now, crew.node
    secs, metres = layer.router.travel(start, to)
    if layer.router.closed and secs > 0:
        _detour_at_start(layer, crew, order, to, secs)
    order_id = -1 if order is None else order.order_id
    # a plain tuple while nothing happens (a year drives 130,000 times); a _Trip once
    # a closure reroutes it
    crew.driving = (start, to, t0, t0 + secs, metres, order_id)
    try:
        yield env.timeout(secs)
    except simpy.Interrupt:              # rerouted: the trip's leg and arrival changed
        while env.now < crew.driving.arrive_s:
            try:
                yield env.timeout(crew.driving.arrive_s - env.now)
            except simpy.Interrupt:
                continue
    trip, crew.driving = crew.driving, None
    if isinstance(trip, _Trip):
        metres = trip.before_m + trip.leg_m
    layer.trips.append((crew.crew_id, order_id, start, to, t0, env.now, metres))
    crew.driven_m += metres
    crew.node = to


def _detour_at_start(layer: "CitizenServices", crew: Crew, order: WorkOrder | None,
                     to: int, secs: float) -> None:
    """A route longer than it would be without the closures in force: CrewRerouted."""
    open_s = layer.router.open_travel_s(crew.node, to)
    if secs <= open_s + 1.0:
        return
    nodes = layer.router.open_route(crew.node, to)[0]
    avoided = [sid for sid in layer.router.streets_on(nodes) if sid in layer.router.closed]
    _publish_reroute(layer, crew, order, avoided, secs - open_s)


def _publish_reroute(layer: "CitizenServices", crew: Crew, order: WorkOrder | int | None,
                     streets: list[str], extra_s: float) -> None:
    order_id = order.order_id if isinstance(order, WorkOrder) else order
    cause = next((layer._closed_by[s] for s in streets if s in layer._closed_by), None)
    label = "" if order_id is None or order_id < 0 else f"wo{order_id + 1}"
    layer.reroutes.append((crew.crew_id, label, cause, extra_s))
    layer.twin.publish(CrewRerouted(
        time_s=layer.env.now, source=layer.name, cause_id=cause, crew_id=crew.crew_id,
        order_id=label, street_ids=tuple(dict.fromkeys(streets)), extra_s=float(extra_s)))


def close_streets(layer: "CitizenServices", ev: StreetClosed) -> None:
    """Close the streets to the crews; a crew driving a route through them turns at its
    position (estimated by the time it has driven) and takes the new fastest route."""
    router, now = layer.router, layer.env.now
    driving = []
    for crew in layer.crews:
        if (crew.driving is None or _trip(crew).arrive_s <= now
                or crew.process is layer.env.active_process):
            continue
        try:
            driving.append((crew, router.route(crew.driving.start, crew.driving.to)))
        except ValueError:          # no street route (a graph in pieces): keeps going
            continue
    for sid in ev.street_ids:
        layer._closed_by[str(sid)] = ev.event_id
    if not router.close(ev.street_ids):
        return
    closed = {str(s) for s in ev.street_ids}
    for crew, (nodes, cum_s, cum_m) in driving:
        _reroute(layer, crew, nodes, cum_s, cum_m, closed)


def _reroute(layer: "CitizenServices", crew: Crew, nodes: np.ndarray, cum_s: np.ndarray,
             cum_m: np.ndarray, closed: set[str]) -> None:
    trip, now, router = crew.driving, layer.env.now, layer.router
    if len(nodes) < 2 or cum_s[-1] <= 0:
        return
    streets = router.streets_on(nodes)
    scale = (trip.arrive_s - trip.depart_s) / cum_s[-1]   # the leg's time when it left
    if now < trip.depart_s:                  # still reaching the leg's first intersection
        k, at_s = 0, 0.0
    else:
        at_s = (now - trip.depart_s) / scale                     # where it is on the leg
        k = int(np.searchsorted(cum_s, at_s, side="right")) - 1  # last intersection passed
    if k >= len(nodes) - 1 or not any(sid in closed for sid in streets[k:]):
        return
    if now < trip.depart_s:
        lead_s, node, along_m = trip.depart_s - now, int(nodes[0]), 0.0
    elif streets[k] in closed:                        # on the closed street: turn back
        lead_s, node, along_m = (at_s - cum_s[k]) * scale, int(nodes[k]), cum_m[k]
    else:                                             # finish the street it is on
        lead_s, node, along_m = (cum_s[k + 1] - at_s) * scale, int(nodes[k + 1]), cum_m[k + 1]
    secs, metres = router.travel(node, trip.to)
    old_left_s = trip.arrive_s - now
    trip.start, trip.depart_s, trip.arrive_s = node, now + lead_s, now + lead_s + secs
    trip.before_m += float(along_m)
    trip.leg_m = float(metres)
    _publish_reroute(layer, crew, trip.order, [s for s in streets[k:] if s in closed],
                     trip.arrive_s - now - old_left_s)
    crew.process.interrupt("rerouted")
