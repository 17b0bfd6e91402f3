"""The city's alert service: who receives an alert, and what it changes.

A storm floods 40 streets in a day; the same run (same seeds) is made without and with an
alert sent ten minutes after each flood to its area. With alerts, residents who were told
mostly do not report the flood again nor call to ask about it: fewer duplicate reports and
fewer phone calls, on each of three seeds and by a margin well above the seed-to-seed noise.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import shapely

from twin.agents.alerts import AlertPolicy
from twin.agents.service_layer import CitizenServices, ServicePolicy
from twin.city.generator import generate_city
from twin.events import CitizenAlert, StreetClosed, StreetFlooded
from twin.twin import Twin

H = 3600.0


@pytest.fixture(scope="module")
def city():
    return generate_city(population=40_000, seed=1)


def _storm(city, seed: int, alerts: bool) -> CitizenServices:
    twin = Twin(city=city, start=dt.datetime(2026, 10, 6), seed=seed)
    layer = twin.add_layer(CitizenServices(ServicePolicy(crews=14)))
    rng = np.random.default_rng(7)
    streets = city.streets.sample(40, random_state=2)
    mid = streets.geometry.interpolate(0.5, normalized=True)
    times = 8 * H + np.sort(rng.uniform(0, 24 * H, len(streets)))
    events = [StreetFlooded(time_s=float(t), source="storm", x=p.x, y=p.y, radius_m=40.0,
                            street_ids=(sid,)) for t, p, sid in zip(times, mid, streets.index)]
    if alerts:
        events += [CitizenAlert(time_s=float(t) + 600.0, source="city", kind="flood_warning",
                                x=p.x, y=p.y, radius_m=250.0, street_ids=(sid,))
                   for t, p, sid in zip(times, mid, streets.index)]
    twin.schedule(events)
    twin.run(3 * 24 * H)
    return layer


@pytest.fixture(scope="module")
def storm_runs(city):
    return {seed: (_storm(city, seed, False).kpis(), _storm(city, seed, True).kpis())
            for seed in (0, 1, 2)}


def test_alerts_reduce_duplicate_reports_and_phone_calls(storm_runs):
    dup_drop, call_drop, dup_without = [], [], []
    for seed, (without, with_alerts) in storm_runs.items():
        assert without["alerts_sent"] == 0 and with_alerts["alerts_sent"] == 40
        assert with_alerts["alert_recipients"] > 1000
        assert with_alerts["reports_avoided_by_alerts"] > 0
        assert with_alerts["incident_info_calls_avoided_by_alerts"] > 0
        assert with_alerts["duplicates"] < without["duplicates"]
        assert with_alerts["phone_calls"] < without["phone_calls"]
        assert with_alerts["incident_info_calls"] < without["incident_info_calls"]
        dup_drop.append(without["duplicates"] - with_alerts["duplicates"])
        call_drop.append(without["phone_calls"] - with_alerts["phone_calls"])
        dup_without.append(without["duplicates"])
    # the drop is far larger than how much the counts vary between seeds without alerts
    assert np.mean(dup_drop) > 2 * np.std(dup_without)
    assert np.mean(dup_drop) > 0.15 * np.mean(dup_without)
    assert min(call_drop) > 20


def test_recipients_are_the_subscribed_households_of_the_area(city):
    twin = Twin(city=city, start=dt.datetime(2026, 10, 6), seed=5)
    policy = ServicePolicy(crews=14, alerts=AlertPolicy(subscribed_share=0.4,
                                                        street_buffer_m=50.0))
    layer = twin.add_layer(CitizenServices(policy))
    street = city.streets.index[30]
    x, y = 0.5 * np.add(*city.streets.total_bounds.reshape(2, 2))
    twin.schedule([CitizenAlert(time_s=H, source="city", kind="street_closed", x=float(x),
                                y=float(y), radius_m=300.0, street_ids=(street,))])
    twin.run(2 * H)
    hh = layer.households
    in_disc = np.hypot(hh.x_m - x, hh.y_m - y) <= 300.0
    line = city.streets.geometry.loc[street]
    along = shapely.distance(line, shapely.points(hh.x_m, hh.y_m)) <= 50.0
    subscribed = layer.alerts.subscribed
    assert 0.3 < subscribed.mean() < 0.5                 # drawn once at the stated share
    expected = np.flatnonzero((in_disc | along) & subscribed)
    received = np.flatnonzero(layer.alerts.latest == 0)
    assert np.array_equal(received, expected) and len(expected) > 50
    table = layer.alert_table()
    assert table["recipients"].tolist() == [len(expected)]
    assert table["households_in_area"].tolist() == [int((in_disc | along).sum())]
    series = twin.recorder.wide("citizens", "alert_recipients")
    assert series.index.tolist() == [H] and series["all"].tolist() == [len(expected)]


def test_closed_street_raises_information_calls(city):
    def calls(close: bool) -> dict:
        twin = Twin(city=city, start=dt.datetime(2026, 10, 6), seed=5)
        layer = twin.add_layer(CitizenServices(ServicePolicy(
            crews=14, incident_info_call_probability=0.2)))
        if close:
            twin.schedule([StreetClosed(time_s=9 * H, source="test",
                                        street_ids=tuple(city.streets.index[20:26]))])
        twin.run(24 * H)
        return layer.kpis()

    quiet, closed = calls(False), calls(True)
    assert quiet["incident_info_calls"] == 0
    assert closed["incident_info_calls"] > 5
    assert closed["phone_calls_information"] - quiet["phone_calls_information"] == (
        closed["incident_info_calls"])


RULES = Path(__file__).resolve().parents[1] / "scenarios" / "cascades" / "city_rules.yaml"
BURSTS = """\
name: six_bursts
city: {{demo: {{population: 50000, seed: 0}}}}
start: 2026-09-15T00:00
horizon: 36h
step: 15min
seed: {seed}
outputs: {{quantities: [pressure], report: false, maps: false}}
citizens: {{crews: 30}}
cascade: {{rules: {rules}, off: {off}}}
events:
"""
EVENTS = "".join(f"  - {{at: {8 + i}h, type: pipe_burst, pipe: s{40 + 80 * i}, leak_area_m2: 0.01, "
              "duration: 10h}\n" for i in range(6))


@pytest.mark.skipif(not RULES.is_file(), reason=f"no cascade rules file at {RULES}")
def test_cascade_alerts_switched_off_means_more_calls(tmp_path):
    """Six main breaks; the cascade rules warn the residents (water cut, street closed) or,
    with `off: [alerts]`, do not: with alerts, fewer residents call to ask."""
    from twin.run import run
    from twin.scenario import load_scenario

    for seed in (1, 2):
        kpis = {}
        for off in ("[]", "[alerts]"):
            path = tmp_path / f"bursts_{seed}_{len(off)}.yaml"
            path.write_text(BURSTS.format(seed=seed, rules=RULES, off=off) + EVENTS)
            kpis[off] = run(load_scenario(path)).kpis["citizens"]
        warned, silent = kpis["[]"], kpis["[alerts]"]
        assert silent["alerts_sent"] == 0 and warned["alerts_sent"] >= 6
        assert warned["alert_recipients"] > 1000
        assert warned["incident_info_calls_avoided_by_alerts"] > 5
        assert warned["incident_info_calls"] < silent["incident_info_calls"]
        assert warned["phone_calls"] < silent["phone_calls"]
        assert warned["incidents"] == silent["incidents"] == 6
