"""Crews do not drive through closed streets: StreetClosed / StreetReopened change the
router's graph and every route is recomputed."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import networkx as nx
import pytest

from twin.agents.crews import StreetRouter
from twin.agents.service_layer import CitizenServices, ServicePolicy
from twin.city.generator import generate_city
from twin.events import StreetClosed, StreetReopened
from twin.twin import Twin

H = 3600.0


def _toy_city():
    """a -short- b, and a detour a - d - e - b; c hangs off b by a single street."""
    g = nx.Graph()
    xy = {"a": (0, 0), "b": (100, 0), "c": (200, 0), "d": (0, 300), "e": (100, 300)}
    for n, (x, y) in xy.items():
        g.add_node(n, x=float(x), y=float(y))
    for sid, u, v, length in (("short", "a", "b", 100.0), ("d1", "a", "d", 300.0),
                              ("d2", "d", "e", 100.0), ("d3", "e", "b", 300.0),
                              ("spur", "b", "c", 100.0)):
        g.add_edge(u, v, street_id=sid, length_m=length, speed_kph=36.0)
    return SimpleNamespace(graph=g)


def _streets(router: StreetRouter, graph, a: int, b: int) -> set[str]:
    path = router.path(a, b)
    return {graph.edges[u, v]["street_id"] for u, v in zip(path[:-1], path[1:])}


def test_closure_on_the_only_short_path_sends_crews_round_and_reopening_restores_it():
    city = _toy_city()
    router = StreetRouter(city, speed_share=1.0)          # 10 m/s
    a, b, c = (list(router.node_ids).index(n) for n in "abc")
    assert router.travel(a, b) == pytest.approx((10.0, 100.0))
    assert _streets(router, city.graph, a, b) == {"short"}

    assert router.close(["short"])
    assert router.travel(a, b) == pytest.approx((70.0, 700.0))
    assert _streets(router, city.graph, a, b) == {"d1", "d2", "d3"}
    assert router.travel(a, c) == pytest.approx((80.0, 800.0))
    assert router.closure_passes == 0
    assert not router.close(["short"])                    # closing it twice changes nothing

    assert router.reopen(["short"])
    assert router.travel(a, b) == pytest.approx((10.0, 100.0))
    assert _streets(router, city.graph, a, c) == {"short", "spur"}


def test_a_job_beyond_a_closure_with_no_way_round_is_reached_through_it_and_counted():
    city = _toy_city()
    router = StreetRouter(city, speed_share=1.0)
    a, c = (list(router.node_ids).index(n) for n in "ac")
    router.close(["spur"])
    assert router.travel(a, c) == pytest.approx((20.0, 200.0))
    assert router.closure_passes == 1


def test_the_layer_follows_closures_published_on_the_bus():
    city = generate_city(population=20_000, seed=0)
    twin = Twin(city=city, start=dt.datetime(2026, 3, 10), seed=5)      # a Tuesday
    services = twin.add_layer(CitizenServices(ServicePolicy(crews=14)))
    router, graph = services.router, city.graph
    # the fastest route from the first depot to the farthest intersection, closed mid-way
    depot = services.crews[0].depot
    far = int(router.times_from(depot).argmax())
    before_s, _ = router.travel(depot, far)
    route = sorted(_streets(router, graph, depot, far))
    closed = tuple(route[len(route) // 3: 2 * len(route) // 3 + 1])
    twin.schedule([StreetClosed(time_s=H, source="roadworks", street_ids=closed),
                   StreetReopened(time_s=30 * H, source="roadworks", street_ids=closed)])
    twin.run(29 * H)
    assert router.closed == set(closed)
    assert not _streets(router, graph, depot, far) & set(closed)
    assert router.travel(depot, far)[0] > before_s
    # every trip of the closure's time took a route without the closed streets
    during = [t for t in services.trips if t[4] >= H and t[2] != t[3]]
    assert during
    for _, _, u, v, _, _, metres in during:
        assert not _streets(router, graph, u, v) & set(closed)
        assert metres == pytest.approx(router.travel(u, v)[1])
    twin.run(31 * H)
    assert router.closed == set()
    assert router.travel(depot, far)[0] == pytest.approx(before_s)
    assert services.kpis()["travels_through_closures"] >= 0
