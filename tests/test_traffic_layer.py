"""Traffic layer on the demo city: a day of hourly equilibria, a closure at the morning peak,
floods, lane losses, warm starts, forks, and the scenario's report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin.city.generator import generate_city
from twin.engines.assignment import assign
from twin.events import (LanesClosed, StreetClosed, StreetFlooded, StreetReopened,
                         TravelTimesUpdated)
from twin.networks.traffic import TrafficLayer
from twin.twin import Twin

CLOSED = "s324"                 # an arterial near the centre (the main break's street)
CLOSE_AT_S, REOPEN_AT_S = 7.5 * 3600, 12 * 3600


@pytest.fixture(scope="module")
def city():
    return generate_city(50_000, seed=0)


@pytest.fixture(scope="module")
def day(city):
    """A whole day with s324 closed 07:30-12:00; travel times seen at every update."""
    twin = Twin(city=city, seed=42)
    layer = twin.add_layer(TrafficLayer())
    twin.schedule([StreetClosed(time_s=CLOSE_AT_S, source="test", street_ids=(CLOSED,)),
                   StreetReopened(time_s=REOPEN_AT_S, source="test", street_ids=(CLOSED,))])
    seen: list[tuple[TravelTimesUpdated, pd.Series, pd.Series]] = []
    twin.bus.subscribe(TravelTimesUpdated, lambda e: seen.append(
        (e, twin.street_times_s.copy(), twin.street_flows_veh_h.copy())))
    twin.run(24 * 3600)
    return twin, layer, seen


def _at(seen, time_s: float, cause: bool):
    return [s for s in seen if s[0].time_s == time_s and (s[0].cause_id is not None) == cause]


def test_a_day_of_hourly_equilibria(day):
    twin, layer, seen = day
    k = layer.kpis()
    tstt = twin.recorder.wide("traffic", "tstt")["all"]
    hourly = tstt[tstt.index % 3600 == 0]
    assert len(hourly) == 25                            # 00:00 ... 24:00
    assert hourly.loc[8 * 3600] > 10 * hourly.loc[3 * 3600]      # peak vs night
    assert hourly.loc[17 * 3600] > 1.5 * hourly.loc[12 * 3600]
    assert 15.0 < k["mean_speed_kph"] < 50.0
    assert k["delay_veh_h"] > 0
    assert k["total_travel_time_veh_h"] == pytest.approx(     # the recorded steps, integrated
        sum(tstt.iloc[i] * (tstt.index[i + 1] - tstt.index[i]) / 3600
            for i in range(len(tstt) - 1)), rel=1e-9)
    assert k["unserved_trips_veh"] == 0
    # every period converged: the last gap of each assignment is recorded by the solver
    assert layer.result.relative_gap <= layer.gap
    tidy = twin.recorder.tidy()
    traffic = tidy[tidy["layer"] == "traffic"]
    assert {"flow", "travel_time", "speed", "tstt", "time_change"} <= set(traffic["quantity"])
    assert set(traffic.loc[traffic["quantity"] == "flow", "unit"]) == {"veh/h"}


def test_closure_raises_total_travel_time_and_reroutes_onto_parallel_streets(day, city):
    twin, layer, seen = day
    (period, times_b, flows_b), = _at(seen, 7 * 3600, cause=False)
    (closure, times_a, flows_a), = _at(seen, CLOSE_AT_S, cause=True)
    assert closure.tstt_change_veh_h > 1.0            # the same demand now takes longer
    incident = layer.incidents[0]
    assert incident["streets"] == (CLOSED,) and incident["kinds"] == ("StreetClosed",)
    assert incident["tstt_after_veh_h"] > incident["tstt_before_veh_h"]
    assert layer.kpis()["incident_extra_veh_h"] > 2 * incident["extra_veh_h_per_h"] > 0
    assert flows_b[CLOSED] > 500 and flows_a[CLOSED] == 0
    # the closed street's traffic goes to the streets parallel to it
    geo = city.streets.geometry
    def direction(g):
        (x0, y0), (x1, y1) = g.coords[0], g.coords[-1]
        v = np.array([x1 - x0, y1 - y0])
        return v / np.linalg.norm(v)
    d0 = direction(geo[CLOSED])
    parallel = pd.Series({s: abs(float(direction(g) @ d0)) > 0.95 for s, g in geo.items()})
    away = geo.distance(geo[CLOSED]) > 50
    gain = (flows_a - flows_b).reindex(geo.index)
    assert gain[parallel & away].clip(lower=0).sum() > 0.5 * flows_b[CLOSED]
    top = gain.drop(CLOSED).nlargest(5).index
    assert parallel[top].mean() >= 0.6


def test_street_times_change_for_the_closed_and_affected_streets(day):
    twin, layer, seen = day
    (_, times_b, _), = _at(seen, 7 * 3600, cause=False)
    (closure, times_a, _), = _at(seen, CLOSE_AT_S, cause=True)
    assert np.isfinite(times_b[CLOSED]) and np.isinf(times_a[CLOSED])
    assert closure.street_ids[0] == CLOSED
    assert closure.cause_id == next(e.event_id for e in twin.bus.log
                                    if isinstance(e, StreetClosed))
    affected = list(closure.street_ids[1:])
    assert len(affected) >= 5
    assert (times_a[affected] - times_b[affected]).abs().min() > 0.01
    # the mean of both directions, in seconds, at least the free-flow time
    free = layer.elements()["links"].groupby("street_id")["free_flow_time_s"].mean()
    assert (twin.street_times_s >= free.reindex(twin.street_times_s.index) - 1e-9).all()
    (reopened, times_r, _), = _at(seen, REOPEN_AT_S, cause=True)
    assert np.isfinite(times_r[CLOSED])
    assert np.isfinite(twin.street_times_s).all()


def test_warm_start_re_equilibrates_in_fewer_iterations(day):
    twin, layer, seen = day
    closure = layer.incidents[0]
    network = layer.base_network.close(layer.base_network.links_on_streets([CLOSED]))
    demand = layer.demand.hour(7)
    before = assign(layer.base_network, demand, gap=layer.gap)
    warm = assign(network, demand, gap=layer.gap, warm_start=before)
    cold = assign(network, demand, gap=layer.gap)
    assert warm.relative_gap <= layer.gap and cold.relative_gap <= layer.gap
    assert warm.iterations < cold.iterations
    assert warm.tstt_veh_h == pytest.approx(cold.tstt_veh_h, rel=1e-3)
    assert closure["iterations"] < cold.iterations


def test_flood_above_threshold_closes_the_street_under_the_water(city):
    twin = Twin(city=city, seed=1)
    layer = twin.add_layer(TrafficLayer(flood_close_lps=50, flood_close_within_m=30,
                                        flood_closure_s=3600))
    twin.run(8 * 3600 + 60)
    mid = city.streets.geometry[CLOSED].interpolate(0.5, normalized=True)
    near = tuple(city.streets.index[city.streets.distance(mid) <= 150])
    assert CLOSED in near and len(near) > 1
    small = twin.publish(StreetFlooded(time_s=twin.clock.now_s, source="test", x=mid.x,
                                       y=mid.y, radius_m=150, flow_lps=10, street_ids=near))
    assert not any(isinstance(e, StreetClosed) for e in twin.bus.log)
    flood = twin.publish(StreetFlooded(time_s=twin.clock.now_s, source="test", x=mid.x,
                                       y=mid.y, radius_m=150, flow_lps=200, street_ids=near))
    twin.run(8 * 3600 + 120)
    closed = [e for e in twin.bus.log if isinstance(e, StreetClosed)]
    assert len(closed) == 1 and closed[0].cause_id == flood.event_id != small.event_id
    assert closed[0].street_ids == (CLOSED,)
    assert np.isinf(twin.street_times_s[CLOSED])
    twin.run(9 * 3600 + 120)                          # reopened after flood_closure_s
    reopened = [e for e in twin.bus.log if isinstance(e, StreetReopened)]
    assert reopened and reopened[0].cause_id == closed[0].event_id
    assert np.isfinite(twin.street_times_s[CLOSED])


def test_lost_lanes_cost_less_than_a_closure(city):
    results = {}
    for name, event in (("none", None),
                        ("lane", LanesClosed(time_s=8 * 3600 + 60, street_ids=(CLOSED, "s308"))),
                        ("closed", StreetClosed(time_s=8 * 3600 + 60,
                                                street_ids=(CLOSED, "s308")))):
        twin = Twin(city=city, seed=3)
        layer = twin.add_layer(TrafficLayer())
        if event is not None:
            twin.schedule([event])
        twin.run(8 * 3600 + 120)
        results[name] = (layer.result.tstt_veh_h, layer.street_flows()[CLOSED])
    assert results["none"][0] < results["lane"][0] < results["closed"][0]
    assert results["closed"][1] == 0 < results["lane"][1] < results["none"][1]


def test_fork_continues_with_the_closure_in_force(city):
    original = Twin(city=city, seed=5)
    layer = original.add_layer(TrafficLayer())
    original.schedule([StreetClosed(time_s=CLOSE_AT_S, street_ids=(CLOSED,))])
    original.run(9 * 3600 + 600)
    state = layer.snapshot()
    fork = Twin(city=city, seed=5)
    forked = fork.add_layer(TrafficLayer())
    forked.restore(state)
    fork.run(2 * 3600)                        # 09:10 -> 11:10
    original.run(11 * 3600 + 600)
    a = original.recorder.wide("traffic", "tstt")["all"]
    b = fork.recorder.wide("traffic", "tstt")["all"]
    assert b.loc[3000.0] == pytest.approx(a.loc[10 * 3600], rel=2e-3)    # 10:00 in both
    assert np.isinf(fork.street_times_s[CLOSED])
    assert forked.kpis()["incident_extra_veh_h"] == pytest.approx(
        layer.kpis()["incident_extra_veh_h"], rel=0.02)


def test_unknown_streets_are_named(city):
    twin = Twin(city=city, seed=0)
    layer = twin.add_layer(TrafficLayer())
    problems = layer.check_event(StreetClosed(time_s=0, street_ids=("s324", "nope")))
    assert problems == ["unknown street 'nope' in the road network"]
    links = layer.elements()["links"]
    assert links.crs == city.crs and len(links) == 2 * len(city.streets)
    assert {"s324/ab", "s324/ba"} <= set(links.index)


def test_main_break_scenario_report_shows_the_travel_time_change_and_map(tmp_path):
    from pathlib import Path

    from twin.report import write_report
    from twin.run import run
    from twin.scenario import load_scenario

    path = Path(__file__).resolve().parents[1] / "scenarios" / "main_break_traffic.yaml"
    spec = load_scenario(path)
    assert spec.traffic is not None and spec.traffic.flood_closure_s == 6 * 3600
    result = run(spec)
    ev = result.events.set_index("event_id")
    closed = ev[ev["kind"] == "StreetClosed"]
    assert len(closed) == 1 and "'s324'" in closed["details"].iat[0]
    flood = ev.loc[int(closed["cause_id"].iat[0])]
    assert flood["kind"] == "StreetFlooded"
    assert ev.loc[int(flood["cause_id"]), "kind"] == "PipeBurst"
    assert closed.index[0] < ev.index[(ev["kind"] == "StreetReopened")][0]
    reopened_at = ev.loc[ev["kind"] == "StreetReopened", "time_s"].iat[0]
    assert reopened_at == closed["time_s"].iat[0] + 6 * 3600
    k = result.kpis["traffic"]
    assert k["incident_extra_veh_h"] > 5.0
    out = write_report([result], tmp_path, title="main break and traffic")
    page = out.read_text()
    assert "traffic_tstt.png" in page and "traffic_closure_main_break_traffic.png" in page
    assert "traffic.incident_extra_veh_h" in page
    for name in ("traffic_tstt.png", "traffic_closure_main_break_traffic.png"):
        assert (tmp_path / name).stat().st_size > 20_000


def test_day_command_json(capsys):
    import json

    from twin.cli import main

    assert main(["traffic", "day", "--hours", "9", "--close", "s324@7:30+1h", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["assignments"] >= 10 and out["kpis"]["incident_extra_veh_h"] > 0
    first = out["incidents"][0]
    assert first["kinds"] == ["StreetClosed"] and first["time_s"] == 7.5 * 3600
    closed = [r for r in out["most_affected_first_incident"] if r["street_id"] == "s324"]
    assert closed and all(r["time_change_s"] is None for r in closed)
    assert main(["traffic", "day", "--hours", "1", "--close", "nowhere@7:30"]) == 2
    assert "unknown street 'nowhere'" in capsys.readouterr().err


def test_city_streets_become_two_links_with_class_capacity_and_junction_delays(city):
    from twin.networks.road_city import JUNCTION_DELAY_S

    layer = Twin(city=city, seed=0).add_layer(TrafficLayer())
    links = layer.base_network.links
    streets = links[links["street_id"].notna()]
    assert len(streets) == 2 * len(city.streets)
    arterial = streets[streets["street_class"] == "arterial"]
    local = streets[streets["street_class"] == "local"]
    assert (arterial["capacity_veh_h"] == 900.0).all() and (local["capacity_veh_h"] == 600.0).all()
    run_s = streets["length_m"] / (streets["speed_kph"] / 3.6)
    delay_s = streets["free_flow_time_min"] * 60 - run_s
    np.testing.assert_allclose(delay_s, streets["junction_delay_s"], atol=1e-9)
    # an arterial ending where arterials cross waits at the signals; local streets at a
    # crossing of local streets give priority to the right
    cls = pd.concat([city.streets.set_index("u")["street_class"],
                     city.streets.set_index("v")["street_class"]])
    majors = (cls == "arterial").groupby(level=0).sum()
    at_signals = arterial[arterial["term_node"].map(majors) >= 3]
    assert len(at_signals) > 20
    assert (at_signals["junction_delay_s"] == JUNCTION_DELAY_S["signals"]).all()
    degree = cls.groupby(level=0).size()
    minor = local[(local["term_node"].map(majors) == 0) & (local["term_node"].map(degree) >= 3)]
    assert len(minor) > 20 and (minor["junction_delay_s"] == JUNCTION_DELAY_S["minor"]).all()
    # zones carry no through traffic
    zones = layer.base_network.zone_nodes
    assert not layer.base_network.nodes.loc[zones, "through"].any()


def test_scenario_street_closures_checked_and_turned_into_events(tmp_path):
    from pathlib import Path

    from twin.events import LanesReopened
    from twin.run import build_twin
    from twin.scenario import load_scenario
    from twin.scenario_fields import ScenarioError

    scenarios = Path(__file__).resolve().parents[1] / "scenarios"
    good = tmp_path / "works.yaml"
    good.write_text(f"extends: {scenarios / 'main_break_traffic.yaml'}\nname: works\nevents:\n"
                    "  - {at: 17h, type: street_closure, streets: [s85], lanes: 1, duration: 2h}\n"
                    "  - {at: 18h, type: street_closure, streets: [s86, s87]}\n")
    spec = load_scenario(good)
    events = [e for e in spec.to_events() if e.source == "scenario"]
    kinds = [(e.kind, e.time_s) for e in events]
    assert ("LanesClosed", 17 * 3600) in kinds and ("LanesReopened", 19 * 3600) in kinds
    assert ("StreetClosed", 18 * 3600) in kinds
    assert not any(e.kind == "StreetReopened" for e in events)
    assert next(e for e in events if isinstance(e, LanesReopened)).street_ids == ("s85",)
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {scenarios / 'main_break_traffic.yaml'}\nname: bad\nevents:\n"
                   "  - {at: 17h, type: street_closure, streets: [s85, s9999]}\n")
    with pytest.raises(ScenarioError) as err:
        build_twin(load_scenario(bad)).close()
    assert err.value.line == 4 and err.value.field == "events[1].streets[1]"
    assert "unknown street 's9999'" in str(err.value)
    typo = tmp_path / "typo.yaml"
    typo.write_text(f"extends: {scenarios / 'main_break_traffic.yaml'}\nname: typo\n"
                    "traffic: {flood_close_lsp: 20}\n")
    with pytest.raises(ScenarioError, match="did you mean 'flood_close_lps'"):
        load_scenario(typo)


def test_layer_on_a_tntp_network_with_a_day_from_its_trips_file():
    from tests.conftest import shared_file
    from twin.networks.od_demand import OdDemand
    from twin.networks.tntp import read_folder

    network, trips = read_folder(shared_file("tntp", "SiouxFalls"))
    demand = OdDemand.from_peak_matrix(trips, network.zone_nodes, peak_hour=8)
    np.testing.assert_allclose(demand.hour(8), trips)
    assert demand.hour(3).sum() < 0.01 * trips.sum()
    twin = Twin(seed=0)
    layer = twin.add_layer(TrafficLayer(network=network, demand=demand))
    assert len(layer.known_streets) == 38            # 76 links, both directions of 38 pairs
    twin.schedule([StreetClosed(time_s=8.5 * 3600, street_ids=("10-16",))])
    twin.run(9 * 3600 + 60)
    peak = assign(network, trips, gap=layer.gap)
    tstt = twin.recorder.wide("traffic", "tstt")["all"]
    assert tstt.loc[8 * 3600] == pytest.approx(peak.tstt_veh_h, rel=1e-3)
    closure = layer.incidents[0]
    assert closure["tstt_after_veh_h"] > closure["tstt_before_veh_h"]
    assert np.isinf(twin.street_times_s["10-16"]) and np.isfinite(twin.street_times_s["1-2"])
    links = layer.elements()["links"]            # drawn between the node file's coordinates
    assert len(links) == 76 and links.geometry.notna().all()


def test_a_zone_cut_off_by_closures_counts_its_trips_as_unserved(city):
    twin = Twin(city=city, seed=0)
    layer = twin.add_layer(TrafficLayer())
    gate = layer.zones[layer.zones["kind"] == "gateway"].iloc[0]
    node = gate["nodes"][0]
    around = tuple(city.streets.index[(city.streets["u"] == node) | (city.streets["v"] == node)])
    twin.schedule([StreetClosed(time_s=8 * 3600 + 60, street_ids=around),
                   StreetReopened(time_s=8 * 3600 + 1260, street_ids=around)])
    twin.run(8 * 3600 + 600)
    cut = layer.result.unserved
    assert len(cut) and set(cut["origin"]) | set(cut["destination"]) >= {gate.name}
    twin.run(9 * 3600)
    k = layer.kpis()
    lost = float(cut["demand_veh_h"].sum()) * 1200 / 3600        # 20 minutes of it
    assert k["unserved_trips_veh"] == pytest.approx(lost, rel=1e-6)
    assert layer.result.unserved.empty


def test_fork_reopens_a_flooded_street_when_the_original_would(city):
    original = Twin(city=city, seed=6)
    layer = original.add_layer(TrafficLayer(flood_close_within_m=30, flood_closure_s=3 * 3600))
    mid = city.streets.geometry[CLOSED].interpolate(0.5, normalized=True)
    original.schedule([StreetFlooded(time_s=8 * 3600, x=mid.x, y=mid.y, radius_m=60,
                                     flow_lps=300, street_ids=(CLOSED,))])
    original.run(9 * 3600)
    fork = Twin(city=city, seed=6)
    forked = fork.add_layer(TrafficLayer(flood_close_within_m=30, flood_closure_s=3 * 3600))
    forked.restore(layer.snapshot())
    fork.run(1.5 * 3600)                                   # 10:30: still closed
    assert np.isinf(fork.street_times_s[CLOSED])
    fork.run(2.5 * 3600)                                   # 11:30: reopened at 11:00
    reopened = [e for e in fork.bus.log if isinstance(e, StreetReopened)]
    assert [e.time_s for e in reopened] == [2 * 3600]
    assert np.isfinite(fork.street_times_s[CLOSED])
