"""Crews and street closures: a crew on its way is rerouted from where it is, and a route
made longer by a closure in force publishes CrewRerouted with the closure as its cause."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from twin.agents.service_layer import CitizenServices, ServicePolicy
from twin.city.generator import generate_city
from twin.events import CrewRerouted, StreetClosed, StreetFlooded
from twin.twin import Twin

H = 3600.0


@pytest.fixture(scope="module")
def city():
    return generate_city(population=20_000, seed=0)


def _run(city, extra=(), until_h: float = 16.0):
    """A flood at 10:00 on a Tuesday at the intersection farthest from the single depot."""
    twin = Twin(city=city, start=dt.datetime(2026, 3, 10), seed=3)
    layer = twin.add_layer(CitizenServices(ServicePolicy(crews=14, depots=1)))
    depot = layer.crews[0].depot
    far = int(np.argmax(np.hypot(*(layer.router.xy_m - layer.router.xy_m[depot]).T)))
    x, y = layer.router.xy_m[far]
    twin.schedule([StreetFlooded(time_s=10 * H, source="test", x=float(x), y=float(y),
                                 radius_m=40.0), *extra])
    twin.run(until_h * H)
    orders = layer.work_orders()
    order = orders[orders["incident_id"] != ""].iloc[0]
    trip = next(t for t in layer.trips if t[1] == int(order["order_id"]))
    return twin, layer, order, trip


def _worst_closure(router, start: int, to: int, streets: list[str]) -> str:
    """The street of ``streets`` whose closure lengthens the route start -> to most."""
    def detour_s(sid: str) -> float:
        router.close([sid])
        secs = router.travel(start, to)[0]
        router.reopen([sid])
        return secs
    return max(streets, key=detour_s)


def test_crew_on_its_way_is_rerouted_from_where_it_is(city):
    _, free_layer, free_order, trip = _run(city)
    crew_id, _, start, to, depart_s, arrive_s, _ = trip
    nodes, cum_s, _ = free_layer.router.route(start, to)
    streets = free_layer.router.streets_on(nodes)
    assert cum_s[-1] == pytest.approx(arrive_s - depart_s)
    # close a street in the second half of its route while it drives the first half
    k = int(np.searchsorted(cum_s, 0.6 * cum_s[-1]))
    closed = _worst_closure(free_layer.router, start, to, streets[k:])
    close_at = depart_s + 0.3 * cum_s[-1]
    twin, layer, order, trip2 = _run(city, [StreetClosed(time_s=close_at, source="test",
                                                         street_ids=(closed,))])
    closure = next(e for e in twin.bus.log if isinstance(e, StreetClosed))
    rerouted = [e for e in twin.bus.log if isinstance(e, CrewRerouted)]
    assert len(rerouted) == 1
    ev = rerouted[0]
    assert ev.cause_id == closure.event_id and ev.time_s == pytest.approx(close_at)
    assert ev.crew_id == crew_id and ev.order_id == f"wo{int(order['order_id']) + 1}"
    assert ev.street_ids == (closed,)
    assert ev.extra_s > 0
    # same seed, same departure: it arrives later by the extra time the event states
    assert trip2[4] == pytest.approx(depart_s)
    assert order["arrived_s"] - free_order["arrived_s"] == pytest.approx(ev.extra_s, abs=1e-6)
    assert layer.router.closure_passes == 0                 # an open route existed
    k = layer.kpis()
    assert k["crews_rerouted"] == 1 and k["reroute_extra_hours"] == pytest.approx(ev.extra_s / H)


def test_route_longer_because_of_a_closure_in_force_says_so(city):
    _, free_layer, _, trip = _run(city)
    _, _, start, to, _, _, _ = trip
    nodes, cum_s, _ = free_layer.router.route(start, to)
    closed = _worst_closure(free_layer.router, start, to, free_layer.router.streets_on(nodes))
    twin, layer, order, trip2 = _run(city, [StreetClosed(time_s=9 * H, source="test",
                                                         street_ids=(closed,))])
    closure = next(e for e in twin.bus.log if isinstance(e, StreetClosed))
    label = f"wo{int(order['order_id']) + 1}"          # other crews may detour too
    ev = next(e for e in twin.bus.log if isinstance(e, CrewRerouted) and e.order_id == label)
    assert ev.cause_id == closure.event_id and closed in ev.street_ids
    assert ev.time_s == pytest.approx(trip2[4])              # at departure
    detour_s = trip2[5] - trip2[4]
    assert ev.extra_s == pytest.approx(detour_s - cum_s[-1], abs=1e-6) and ev.extra_s > 0
    assert closed not in layer.router.streets_on(layer.router.route(start, to)[0])


def test_crew_on_the_street_that_closes_turns_back(city):
    _, free_layer, free_order, trip = _run(city)
    _, _, start, to, depart_s, _, _ = trip
    router = free_layer.router
    nodes, cum_s, _ = router.route(start, to)
    streets = router.streets_on(nodes)
    closed = _worst_closure(router, start, to, streets[1:-1])
    k = streets.index(closed)
    close_at = depart_s + 0.5 * (cum_s[k] + cum_s[k + 1])       # halfway along that street
    router.close([closed])
    back_s = router.travel(int(nodes[k]), to)[0]           # from where it entered the street
    router.reopen([closed])
    twin, layer, order, _ = _run(city, [StreetClosed(time_s=close_at, source="test",
                                                     street_ids=(closed,))])
    ev = next(e for e in twin.bus.log if isinstance(e, CrewRerouted))
    # half the street back, then the fastest open route from its first intersection
    expected_s = close_at + 0.5 * (cum_s[k + 1] - cum_s[k]) + back_s
    assert order["arrived_s"] == pytest.approx(expected_s, abs=1e-6)
    assert ev.extra_s == pytest.approx(expected_s - free_order["arrived_s"], abs=1e-6)
    assert ev.street_ids == (closed,)
