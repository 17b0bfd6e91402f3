"""OD demand of the demo city: activity places, zones, gravity distribution, hourly profiles."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from twin.city.generator import generate_city
from twin.networks.od_demand import (TripRates, activity_places, city_zones, furness,
                                     gateway_nodes, hourly_demand)
from twin.networks.road_city import city_road_network, zone_skim_min
from twin.randomness import RandomStreams


@pytest.fixture(scope="module")
def city():
    return generate_city(50_000, seed=0)


@pytest.fixture(scope="module")
def setup(city):
    places = activity_places(city, RandomStreams(42).stream("traffic.demand"))
    zones = city_zones(city, places)
    network = city_road_network(city, zones)
    skim = zone_skim_min(network)
    return places, zones, network, skim, hourly_demand(zones, skim)


def test_activity_places_totals_and_rule(city, setup):
    places = setup[0]
    assert places["population"].sum() == city.population == 50_000
    assert places["jobs"].sum() == pytest.approx(0.5 * 50_000)
    assert places["shops"].sum() == pytest.approx(1.0)
    # jobs are denser near the centre: jobs per km2 in the inner blocks vs the outer ones
    cxy = shapely.get_coordinates(shapely.centroid(city.blocks.geometry.values))
    r = np.hypot(*(cxy - np.asarray(city.meta["centre"])).T)
    inner, outer = r < np.quantile(r, 0.25), r > np.quantile(r, 0.75)
    density = places["jobs"].to_numpy() / city.blocks["area_m2"].to_numpy()
    assert density[inner].mean() > 2.0 * density[outer].mean()


def test_activity_places_deterministic_per_seed(city):
    a = activity_places(city, RandomStreams(1).stream("traffic.demand"))
    b = activity_places(city, RandomStreams(1).stream("traffic.demand"))
    c = activity_places(city, RandomStreams(2).stream("traffic.demand"))
    assert a.equals(b)
    assert not np.allclose(a["jobs"], c["jobs"])


def test_zones_keep_population_and_gateways_sit_on_the_edge(city, setup):
    zones = setup[1]
    internal = zones[zones["kind"] == "internal"]
    assert internal["population"].sum() == pytest.approx(50_000)
    assert sorted(b for ids in internal["block_ids"] for b in ids) == sorted(city.blocks.index)
    gates = gateway_nodes(city)
    assert 4 <= len(gates) == int((zones["kind"] == "gateway").sum())
    hull = shapely.boundary(shapely.convex_hull(shapely.union_all(city.intersections.geometry.values)))
    for node in gates:
        assert shapely.distance(city.intersections.geometry[node], hull) <= 30.0
        touching = city.streets[(city.streets["u"] == node) | (city.streets["v"] == node)]
        assert (touching["street_class"] == "arterial").any()


def test_daily_totals_follow_the_trip_rates(setup):
    _, zones, _, _, od = setup
    r = TripRates()
    pop = 50_000
    jobs = 0.5 * pop
    commute = 2 * (pop * r.workers_per_resident * r.attendance * r.car_share_work
                   + jobs * r.attendance * r.car_share_work * r.jobs_held_from_outside_share)
    n_gates = int((zones["kind"] == "gateway").sum())
    expected = {"commute": commute, "other_home_based": pop * r.other_trips_per_resident,
                "non_home_based": pop * r.non_home_trips_per_resident,
                "through": r.through_veh_per_gateway_day * n_gates}
    for purpose, value in expected.items():
        assert od.daily_by_purpose[purpose] == pytest.approx(value, rel=1e-9), purpose
    assert od.daily_trips == pytest.approx(sum(expected.values()), rel=1e-9)
    assert np.all(np.diagonal(od.veh_h, axis1=1, axis2=2) == 0)
    assert od.veh_h.min() >= 0


def test_hourly_profile_has_morning_and_evening_peaks(setup):
    od = setup[4]
    hourly = od.hourly_totals()
    assert hourly.argmax() in (7, 8, 16, 17)
    am, pm = hourly[7:9].max(), hourly[16:19].max()
    assert am > 1.4 * hourly[11] and pm > 1.4 * hourly[11]
    assert hourly[2] < 0.01 * am
    # mornings leave homes for jobs, evenings go back
    _, zones, _, _, _ = setup
    internal = (zones["kind"] == "internal").to_numpy()
    pop, jobs = zones["population"].to_numpy()[internal], zones["jobs"].to_numpy()[internal]
    out8 = od.hour(8).sum(axis=1)[internal]
    in8 = od.hour(8).sum(axis=0)[internal]
    out17 = od.hour(17).sum(axis=1)[internal]
    assert np.corrcoef(out8, pop)[0, 1] > np.corrcoef(out8, jobs)[0, 1]
    assert np.corrcoef(in8, jobs)[0, 1] > np.corrcoef(in8, pop)[0, 1]
    assert np.corrcoef(out17, jobs)[0, 1] > np.corrcoef(out8, jobs)[0, 1]


def test_gravity_deterrence_shortens_trips(setup):
    _, zones, _, skim, od = setup
    def mean_cost(matrix):
        finite = np.isfinite(skim)
        return float((matrix * np.where(finite, skim, 0)).sum() / matrix.sum())
    internal = (zones["kind"] == "internal").to_numpy()
    ii = np.outer(internal, internal)
    costs = [mean_cost(hourly_demand(zones, skim, TripRates(beta_per_min=b)).veh_h.sum(axis=0)
                       * ii) for b in (0.0, 0.15, 0.5)]
    assert costs[0] > costs[1] > costs[2] and costs[0] > 1.1 * costs[2]


def test_furness_meets_both_margins():
    rng = np.random.default_rng(0)
    seed = rng.random((6, 6)) + 0.1
    rows = np.array([10.0, 20, 5, 0, 40, 25])
    cols = np.array([30.0, 10, 20, 15, 5, 20])
    t = furness(seed, rows, cols)
    np.testing.assert_allclose(t.sum(axis=1), rows, rtol=1e-7)
    np.testing.assert_allclose(t.sum(axis=0), cols, rtol=1e-6)


def test_zone_skim_never_passes_through_a_zone(setup):
    _, zones, network, skim, _ = setup
    assert np.isfinite(skim).all() and skim.max() < 15.0
    # a shortcut through a zone centroid would need zone connectors both ways: forbidding it
    # can only lengthen the times (never shorten them) against a graph that allows it
    import networkx as nx
    g = nx.DiGraph()
    for a, b, t in network.links[["init_node", "term_node", "free_flow_time_min"]].itertuples(
            index=False):
        g.add_edge(a, b, t=t)
    z = list(zones.index)
    free = nx.single_source_dijkstra_path_length(g, z[0], weight="t")
    assert all(skim[0, j] >= free[z[j]] - 1e-9 for j in range(len(z)))
