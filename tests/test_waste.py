"""The waste layer: network, street times, fill and sensors, tours on the clock, bad input."""

from __future__ import annotations

import datetime as dt

import networkx as nx
import numpy as np
import pytest

from twin.city.generator import generate_city
from twin.errors import BadInput
from twin.events import Alert, ContainerOverflow, Reading, StreetClosed
from twin.networks.waste import WasteLayer
from twin.networks.waste_build import L_PER_INHABITANT_DAY, WasteConfig, build_waste_network
from twin.networks.waste_fill import (HOURLY_SHARE, WEEKDAY_FACTOR, FillModel, SensorBank,
                                      SensorFaults, seasonal_factor)
from twin.networks.waste_strategies import FillEstimator, fixed_weekdays
from twin.networks.waste_streets import StreetRouter
from twin.twin import Twin

MONDAY = dt.datetime(2026, 6, 15)


@pytest.fixture(scope="module")
def city():
    return generate_city(population=10_000, seed=0)


def _twin(city, strategy="fixed", seed=1, **options) -> tuple[Twin, WasteLayer]:
    twin = Twin(city=city, start=MONDAY, seed=seed)
    layer = twin.add_layer(WasteLayer(strategy=strategy, solver_iterations=300, **options))
    return twin, layer


def test_network_serves_every_household_from_the_streets(city) -> None:
    net = build_waste_network(city, WasteConfig(), np.random.default_rng(0))
    c = net.containers
    assert c["households"].sum() == city.households
    assert c["population"].sum() == city.population
    assert np.isclose(c["nominal_l_per_day"].sum(), city.population * L_PER_INHABITANT_DAY)
    assert 5.5 < L_PER_INHABITANT_DAY < 5.9          # 250 kg/yr at 0.12 kg/L
    # each container lies on its street, at its offset from the street's u end
    streets = city.streets.loc[c["street_id"]]
    assert np.allclose(streets.geometry.distance(c.geometry, align=False), 0.0, atol=1e-6)
    assert ((c["offset_m"] >= 0) & (c["offset_m"] <= streets["length_m"].to_numpy() + 1e-6)).all()
    # sized to hold design_days of nominal waste at design_fill
    by_block = c.groupby("block_id")[["capacity_l", "nominal_l_per_day"]].sum()
    assert (by_block["capacity_l"] * 0.8 >= by_block["nominal_l_per_day"] * 3.5 - 1e-6).all()
    assert set(net.sites.index) == {"garage", "transfer"} and len(net.trucks) >= 1


def test_street_times_match_networkx_and_closures_lengthen_them(city) -> None:
    nodes = list(city.intersections.index[:6])
    router = StreetRouter(city, street_id=np.array([""] * 6), offset_m=np.zeros(6),
                          node_id=np.array(nodes), access_m=np.zeros(6), access_s=np.zeros(6))
    travel_s, distance_m = router.matrices()
    g = nx.Graph()
    for sid, row in city.streets.iterrows():
        g.add_edge(row["u"], row["v"], t=row["length_m"] / (row["speed_kph"] / 3.6),
                   m=row["length_m"])
    for i, a in enumerate(nodes):
        for j, b in enumerate(nodes):
            expected = nx.shortest_path_length(g, a, b, weight="t")
            assert travel_s[i, j] == pytest.approx(expected, rel=1e-9)
            path = nx.shortest_path(g, a, b, weight="t")
            metres = sum(g[p][q]["m"] for p, q in zip(path[:-1], path[1:]))
            assert distance_m[i, j] == pytest.approx(metres, rel=1e-9)
    # close the first street of the fastest path from node 0 to node 1: a detour
    first_hop = nx.shortest_path(g, nodes[0], nodes[1], weight="t")[1]
    street = g.edges[nodes[0], first_hop]
    closed = [sid for sid, row in city.streets.iterrows()
              if {row["u"], row["v"]} == {nodes[0], first_hop}]
    router.set_closed(closed, True)
    closed_s, _ = router.matrices()
    g.remove_edge(nodes[0], first_hop)
    assert closed_s[0, 1] == pytest.approx(nx.shortest_path_length(g, nodes[0], nodes[1],
                                                                   weight="t"))
    assert closed_s[0, 1] > travel_s[0, 1] + 1.0 and street["t"] > 0
    assert (closed_s[0, 1:] >= travel_s[0, 1:] - 1e-9).all()
    # traffic reports a closed street as an infinite time: the same detour
    router.set_closed(closed, False)
    free = city.streets["length_m"] / (city.streets["speed_kph"] / 3.6)
    router.set_times(free.where(~free.index.isin(closed), np.inf))
    assert np.allclose(router.matrices()[0], closed_s)
    # traffic's times, when present, replace the free-flow ones
    router.set_times(city.streets["length_m"] / (10 / 3.6))        # 10 km/h everywhere
    slow_s, slow_m = router.matrices()
    assert np.allclose(slow_s[0, 1:], slow_m[0, 1:] / (10 / 3.6))


def test_fill_follows_weekday_season_and_hourly_shares() -> None:
    n = 2000
    model = FillModel(np.full(n, 1e9), np.full(n, 100.0), np.random.default_rng(3),
                      initial_fraction=np.zeros(n))
    for hour in range(24):                          # a Monday in mid-June, day of year 166
        model.advance_hour(0, 0, 166.0, hour)
    expected = 100.0 * model.container_factor * WEEKDAY_FACTOR[0] * seasonal_factor(166.0)
    ratio = model.fill_l / expected                  # the daily noise, mean 1
    assert ratio.mean() == pytest.approx(1.0, abs=0.02)
    assert ratio.std() == pytest.approx(0.2, abs=0.02)
    assert model.container_factor.std() == pytest.approx(0.25, abs=0.03)
    assert HOURLY_SHARE.sum() == pytest.approx(1.0) and WEEKDAY_FACTOR.mean() == pytest.approx(1.0)
    assert seasonal_factor(358) == pytest.approx(1.08) and seasonal_factor(175) < 0.93


def test_overflow_and_collection() -> None:
    model = FillModel(np.array([100.0, 100.0]), np.array([240.0, 24.0]),
                      np.random.default_rng(0), initial_fraction=np.array([0.9, 0.0]))
    started = [k for h in range(24) for k in model.advance_hour(0, 2, 100.0, h)]
    assert started == [0]                            # once, when it starts
    assert model.overflowing.tolist() == [True, False]
    assert model.fill_l[0] == 100.0 and model.overflow_l[0] > 0
    total = model.fill_l[0] + model.overflow_l[0]
    assert model.empty(0) == pytest.approx(total)
    assert model.fill_l[0] == 0 and model.overflow_l[0] == 0 and not model.overflowing[0]


def test_sensor_faults_at_their_rates() -> None:
    n = 4000
    faults = SensorFaults(stuck_per_week=0.05, drift_per_week=0.05)
    bank = SensorBank(np.ones(n, dtype=bool), 6.0, faults, np.random.default_rng(7))
    truth = np.full(n, 0.4)
    rounds = [bank.read(truth) for _ in range(4 * 7 * 4)]        # four weeks, every 6 h
    assert bank.lost / bank.sent == pytest.approx(0.05, abs=0.005)
    assert bank.stuck_episodes / n == pytest.approx(1 - (1 - 0.05 / 28) ** 112, rel=0.12)
    assert bank.drift_onsets / n == pytest.approx(1 - (1 - 0.05 / 28) ** 112, rel=0.12)
    healthy = ~bank.stuck & (bank.drift_rate == 0)
    last = rounds[-1]
    ok = healthy & np.isfinite(last)
    assert np.nanstd(last[ok]) == pytest.approx(0.03, abs=0.005)
    # a stuck sensor repeats its value; a drifting one wanders off the truth
    stuck = np.flatnonzero(bank.stuck)
    again = bank.read(np.full(n, 0.9))[stuck]
    both = np.isfinite(again) & np.isfinite(last[stuck])
    assert both.sum() > 0.8 * len(stuck) and np.allclose(again[both], last[stuck][both])
    # drifting: |N(0, 0.02)| a day over about half the four weeks on average
    drifting = bank.drift_rate != 0
    assert 0.1 < np.abs(bank.drift_bias[drifting]).mean() < 0.35


def test_estimator_distrusts_a_stuck_sensor_and_rezeroes_after_collection() -> None:
    est = FillEstimator(np.array([1000.0, 1000.0]), np.array([100.0, 100.0]))  # 0.1 per day
    est.collected(0, 0.0, 0.0)
    est.collected(1, 0.0, 0.0)
    for h in range(0, 73, 6):
        t = h * 3600.0
        est.ingest(t, np.array([0, 1]), np.array([0.30 + 0.2 * h / 24, 0.25]))   # 1: stuck
    fill, rate = est.estimate(72 * 3600.0)
    # sensor 0 reads 0.3 too high from the start: re-zeroed, its slope (0.2/day) learnt
    assert fill[0] == pytest.approx(0.6, abs=0.01) and rate[0] * 24 == pytest.approx(0.2)
    # sensor 1 repeats 0.25: the estimate falls back to the prior rate since collection
    assert fill[1] == pytest.approx(0.3, abs=1e-9)


def test_fixed_weekdays_spread_and_balance() -> None:
    nominal = np.array([100.0, 400.0, 900.0, 3000.0])
    days = fixed_weekdays(nominal, np.full(4, 1000.0), (0, 1, 2, 3, 4, 5), target_fill=0.75)
    per_week = [len(d) for d in days]
    assert per_week == [1, 4, 6, 6]                  # ceil(7 * fill / 0.75), at most 6
    assert all(set(d) <= {0, 1, 2, 3, 4, 5} for d in days)


def test_tours_collect_overflows_publish_and_kpis_add_up(city) -> None:
    twin, layer = _twin(city, "fixed")
    overflows = []
    twin.bus.subscribe(ContainerOverflow, overflows.append)
    twin.run(7 * 86400.0)
    k = layer.kpis()
    log = layer.collections()
    assert k["collections"] == len(log) > 0
    # on a fixed schedule each container is collected on (and only on) its weekdays
    weekday = ((log["time_s"] // 86400) % 7).astype(int)
    for cid, day in zip(log["container_id"], weekday):
        assert str(day) in layer.elements()["containers"].loc[cid, "fixed_weekdays"]
    assert k["container_overflows"] == len(overflows)
    for ev in overflows:
        point = layer.network.containers.geometry[ev.container_id]
        assert (ev.x, ev.y) == (point.x, point.y) and ev.fill_fraction >= 1.0
    assert k["co2_kg"] == pytest.approx(1.61 * k["km_driven"])
    assert 0.2 < k["mean_fill_at_collection"] < 1.0
    assert k["unload_trips"] >= k["tours"]             # every tour ends at the transfer site
    assert k["km_driven"] > 0 and k["truck_hours"] > 0
    tours = layer.elements()["tours"]
    assert len(tours) >= 1 and tours.geometry.length.sum() > 0


def test_closed_streets_delay_the_trucks(city) -> None:
    base, base_layer = _twin(city, "fixed")
    base.run(86400.0)
    twin, layer = _twin(city, "fixed")
    arterials = tuple(city.streets.index[city.streets["street_class"] == "arterial"])
    # closed at 07:00, an hour into the shift: tours were planned on the open streets
    twin.schedule([StreetClosed(time_s=7 * 3600.0, source="test", street_ids=arterials)])
    twin.run(86400.0)
    assert base_layer.kpis()["delay_h"] == 0.0
    assert layer.kpis()["delay_h"] > 0.05
    assert layer.kpis()["truck_hours"] > base_layer.kpis()["truck_hours"]
    assert layer.kpis()["collections"] == base_layer.kpis()["collections"]


def test_readings_api_refuses_unknown_ids_and_negative_fills(city) -> None:
    twin, layer = _twin(city, "sensor")
    with pytest.raises(BadInput, match=r"unknown container 'c99999'"):
        layer.ingest_reading("c99999", 0.5, 0.0)
    with pytest.raises(BadInput, match=r"fill fraction >= 0 .* got -0.2"):
        layer.ingest_reading("c3", -0.2, 0.0)
    layer.ingest_reading("c3", 0.7, 0.0)
    assert layer.estimator.last_v[layer.index_of["c3"]] == 0.7
    # on the bus, a bad reading is refused on the record and the run goes on
    alerts = []
    twin.bus.subscribe(Alert, alerts.append)
    twin.schedule([Reading(time_s=3600.0, source="feed", sensor_id="c3", value=-1.0,
                           unit="fill_fraction"),
                   Reading(time_s=3600.0, source="feed", sensor_id="c4", value=0.95,
                           unit="fill_fraction")])
    twin.run(2 * 3600.0)
    assert len(alerts) == 1 and "c3" in alerts[0].message and alerts[0].severity == "error"
    assert layer.estimator.last_v[layer.index_of["c4"]] == 0.95


def test_strategy_name_is_checked() -> None:
    with pytest.raises(BadInput, match="fixed, sensor"):
        WasteLayer(strategy="weekly")


def test_sensor_faults_matter_to_the_sensor_strategy(city) -> None:
    perfect = SensorFaults(noise_sigma=0.0, missing_p=0.0, stuck_per_week=0.0, drift_per_week=0.0)
    heavy = SensorFaults(noise_sigma=0.08, missing_p=0.3, stuck_per_week=0.2, drift_per_week=0.2,
                         drift_sigma_per_day=0.04)
    kpis = {}
    for name, faults in (("perfect", perfect), ("heavy", heavy)):
        twin, layer = _twin(city, "sensor", faults=faults)
        twin.run(14 * 86400.0)
        kpis[name] = layer.kpis()
    assert kpis["perfect"]["container_overflows"] == 0
    assert kpis["heavy"]["sensor_stuck_episodes"] > 10
    assert kpis["heavy"]["container_overflows"] > 3
    assert kpis["heavy"]["overflow_container_hours"] > 20


def test_snapshot_restore_continues_the_fill(city) -> None:
    twin, layer = _twin(city, "fixed")
    twin.run(2 * 86400.0)
    state = layer.snapshot()
    fork, forked = _twin(city, "fixed")
    forked.restore(state)
    assert np.array_equal(forked.fill.fill_l, layer.fill.fill_l)
    assert np.array_equal(forked.estimator.collected_s, layer.estimator.collected_s)
    assert forked.fill.fill_l.sum() != _twin(city, "fixed")[1].fill.fill_l.sum()
