"""The parking layer on the generated city: supply, a week of occupancy, cruising, pricing,
permit renewals with and without reminders, sensors, events, scenarios and the command."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pytest

from twin.city.generator import generate_city
from twin.errors import BadInput
from twin.events import Reading, StreetClosed, StreetReopened
from twin.networks.parking import ParkingLayer, PricingPolicy
from twin.networks.parking_supply import SupplyRules, build_supply, street_bays
from twin.networks.permits import RenewalBehaviour, make_permits, plan_renewals
from twin.twin import Twin

ROOT = Path(__file__).resolve().parents[1]
START = dt.datetime(2026, 6, 15)          # a Monday
WEEK_S = 7 * 86400.0


@pytest.fixture(scope="module")
def city():
    return generate_city(population=50_000, seed=0)


def run_week(city, days: float = 7.0, seed: int = 1, **options) -> ParkingLayer:
    twin = Twin(city=city, start=START, seed=seed)
    layer = twin.add_layer(ParkingLayer(horizon_s=days * 86400, **options))
    twin.run(days * 86400)
    return layer


@pytest.fixture(scope="module")
def fixed(city):
    return run_week(city)


@pytest.fixture(scope="module")
def responsive(city):
    return run_week(city, pricing=PricingPolicy(mode="responsive"))


@pytest.fixture(scope="module")
def no_reminders(city):
    return run_week(city, reminders=False)


def test_bays_follow_street_length_and_class(city):
    rules = SupplyRules()
    bays = street_bays(city, rules)
    s = city.streets.iloc[0]
    share = rules.kerb_share_arterial if s["street_class"] == "arterial" else rules.kerb_share_local
    assert bays.iloc[0] == int(2 * (s["length_m"] - 20) * share // 5.5)
    supply = build_supply(city, rules)
    assert supply.zones["capacity_bays"].sum() == bays.sum()
    assert set(supply.street_zone.unique()) <= set(supply.zones.index)
    assert supply.zones["households"].sum() == city.households
    # longer bays, fewer places
    assert build_supply(city, SupplyRules(bay_length_m=6.5)).zones["capacity_bays"].sum() < bays.sum()
    # car parks go to the busiest zones
    busiest = supply.zones["jobs"].idxmax()
    assert busiest in set(supply.car_parks["zone_id"])


def test_a_week_of_occupancy(fixed):
    k = fixed.kpis()
    hourly = fixed.occupancy_by_zone_hour()
    assert len(hourly) == 7 * 24
    assert ((hourly >= 0) & (hourly <= 1)).all().all()
    # the recorded sensors never see more cars than places
    occ = fixed.twin.recorder.wide("parking", "occupancy")
    assert (occ.to_numpy() <= fixed.cap[None, :]).all()
    assert len(occ) == 7 * 24 * 4 + 1 and list(occ.columns) == fixed.ids
    # busy zones (many jobs) fill more than quiet ones; weekday midday above night
    jobs = fixed.supply.zones["jobs"]
    busy, quiet = jobs.idxmax(), jobs.idxmin()
    assert k[f"{busy}_occupancy_mean_share"] > k[f"{quiet}_occupancy_mean_share"] + 0.15
    tuesday = hourly[busy][hourly.index.day == 16]
    assert tuesday.iloc[13] > tuesday.iloc[4] + 0.2
    assert k["occupancy_peak_share"] > k["occupancy_mean_share"] > 0.3
    assert k["zone_hours_above_85pct"] > 0 and k["cruising_veh_h"] > 0
    assert k["arrivals"] == pytest.approx(k["turned_away"] + fixed.tally.parked)
    assert k["revenue_eur"] == pytest.approx(k["revenue_on_street_eur"] + k["revenue_car_parks_eur"]
                                             + k["revenue_permits_eur"])
    assert k["revenue_on_street_eur"] > 0 and k["revenue_car_parks_eur"] > 0


def test_same_seed_same_week(city, fixed):
    again = run_week(city)
    assert again.kpis() == pytest.approx(fixed.kpis(), nan_ok=True)
    other = run_week(city, seed=2)
    assert other.kpis()["arrivals"] != fixed.kpis()["arrivals"]


def test_fewer_bays_more_cruising(city, fixed):
    busy = fixed.supply.zones["jobs"].sort_values().index[-3:]
    cut = run_week(city, capacities={z: int(fixed.base_cap[fixed.index[z]] // 2) for z in busy})
    assert cut.kpis()["cruising_veh_h"] > 1.5 * fixed.kpis()["cruising_veh_h"]
    assert cut.kpis()["spilled_to_car_park"] > fixed.kpis()["spilled_to_car_park"]


def test_responsive_prices_follow_occupancy(fixed, responsive):
    k, base = responsive.kpis(), fixed.kpis()
    prices = responsive.twin.recorder.wide("parking", "price")
    assert len(prices) == 1 + 6        # the start, then each night after a charged day
    assert (fixed.twin.recorder.wide("parking", "price").to_numpy() == 1.5).all()
    busy = fixed.supply.zones["jobs"].idxmax()
    quiet = fixed.supply.zones["jobs"].idxmin()
    assert prices[busy].iloc[-1] > 1.5 > prices[quiet].iloc[-1]
    assert np.all(np.abs(np.diff(prices.to_numpy(), axis=0)) <= 0.25 + 1e-9)
    # dearer busy zones, cheaper quiet ones: fewer saturated hours and less cruising
    assert k["zone_hours_above_85pct"] < base["zone_hours_above_85pct"]
    assert k["cruising_veh_h"] < base["cruising_veh_h"]


def test_reminders_raise_renewals_on_time(fixed, no_reminders):
    with_r, without = fixed.kpis(), no_reminders.kpis()
    assert with_r["permits_due"] == without["permits_due"] > 100
    assert with_r["permits_due_reminded"] == with_r["permits_due"]
    assert without["permits_due_reminded"] == 0
    assert with_r["permit_renewals_on_time_share"] > without["permit_renewals_on_time_share"] + 0.15
    assert with_r["permit_lapsed_days"] < without["permit_lapsed_days"]


def test_renewal_shares_match_the_stated_behaviour():
    rng = np.random.default_rng(0)
    b = RenewalBehaviour()
    households = np.full(40, 1500)
    import pandas as pd

    permits = make_permits(pd.Series(households, index=[f"z{i}" for i in range(40)]), b, rng)
    assert len(permits) == 40 * round(1500 * b.permits_per_household)
    plan = plan_renewals(permits, b, 365 * 86400.0, rng, reminders=True, reminder_share=0.5)
    k = plan.kpis(365 * 86400.0)
    assert k["permit_renewals_on_time_share_not_reminded"] == pytest.approx(
        b.expected_on_time(False, 3.0), abs=0.015)
    assert k["permit_renewals_on_time_share_reminded"] == pytest.approx(
        b.expected_on_time(True, 3.0), abs=0.015)
    # an early reminder is forgotten, a late one leaves no time
    assert b.reminder_effect(3.0) > b.reminder_effect(10.0) > 0
    assert b.reminder_effect(3.0) > b.reminder_effect(0.3) > b.reminder_effect(0.0) == 0
    on_time = plan.table[plan.table["on_time"]]
    assert (on_time["renewal_s"] <= on_time["expiry_s"]).all()
    late = plan.table[~plan.table["on_time"] & plan.table["renewal_s"].notna()]
    assert (late["renewal_s"] > late["expiry_s"]).all()


def test_closed_streets_lose_their_bays(city):
    twin = Twin(city=city, start=START, seed=1)
    layer = twin.add_layer(ParkingLayer(horizon_s=86400))
    street = layer.supply.bays.idxmax()
    zone = layer.index[layer.supply.street_zone[street]]
    before = int(layer.cap[zone])
    twin.schedule([StreetClosed(time_s=3600, street_ids=(street,)),
                   StreetReopened(time_s=7200, street_ids=(street,))])
    twin.run(5400)
    assert layer.cap[zone] == before - layer.supply.bays[street]
    twin.run(9000)
    assert layer.cap[zone] == before


def test_sensors_publish_readings_and_check_them(city):
    twin = Twin(city=city, start=START, seed=1)
    layer = twin.add_layer(ParkingLayer(horizon_s=3600, publish_readings=True))
    twin.run(3600)
    readings = [e for e in twin.bus.log if isinstance(e, Reading)]
    assert len(readings) == 5 * len(layer.ids)          # 0, 15, 30, 45, 60 min
    assert {r.sensor_id for r in readings} == {"parking:" + i for i in layer.ids}
    assert layer.check_event(Reading(time_s=0, sensor_id="parking:pz1", value=3)) == []
    problems = layer.check_event(Reading(time_s=0, sensor_id="parking:pz999", value=-2))
    assert any("unknown parking zone" in p for p in problems)
    assert any(">= 0" in p for p in problems)
    with pytest.raises(BadInput, match="pz999"):
        twin.publish(Reading(time_s=3600, source="bridge", sensor_id="parking:pz999", value=1))
    twin.publish(Reading(time_s=3600, source="bridge", sensor_id="parking:cp1", value=42))
    assert layer.observed["cp1"] == (3600, 42)


def test_capacity_overrides_are_checked(city):
    twin = Twin(city=city, start=START, seed=1)
    layer = twin.add_layer(ParkingLayer(horizon_s=3600))
    with pytest.raises(BadInput, match="unknown zone or car park 'nowhere'"):
        layer.set_capacities({"nowhere": 10})
    with pytest.raises(BadInput, match="capacity of 'cp1'"):
        layer.set_capacities({"cp1": -5})
    layer.set_capacities({"cp1": 7})
    assert layer.cap[layer.index["cp1"]] == 7


def test_a_fork_continues_from_the_snapshot(city):
    twin = Twin(city=city, start=START, seed=1)
    layer = twin.add_layer(ParkingLayer(horizon_s=86400, pricing=PricingPolicy(mode="responsive")))
    twin.run(36 * 3600)
    state = layer.snapshot()
    fork_twin = Twin(city=city, start=START + dt.timedelta(hours=36), seed=5)
    fork = fork_twin.add_layer(ParkingLayer(horizon_s=86400))
    fork.restore(state)
    assert (fork.occ == layer.occ).all()
    assert fork.price == pytest.approx(layer.price)
    fork_twin.run(3600)
    # no warm-up: an hour later the streets hold about as many cars as before
    assert abs(int(fork.occ.sum()) - int(layer.occ.sum())) < 0.1 * layer.occ.sum()


def test_scenarios_compare_reminders(tmp_path):
    from twin.scenario import ScenarioError, load_scenario
    from twin.run import build_twin

    spec = load_scenario(ROOT / "scenarios" / "parking_week.yaml")
    assert spec.parking.reminders and spec.parking.pricing == "responsive"
    assert spec.horizon_s == WEEK_S
    other = load_scenario(ROOT / "scenarios" / "parking_week_no_reminders.yaml")
    assert not other.parking.reminders and other.parking.pricing == "responsive"

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nhorizon: 1h\nparking:\n  capacities:\n    pz1: -4\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml:5: parking\.capacities\.pz1"):
        load_scenario(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("name: unknown\nhorizon: 1h\nstep: 1h\nparking:\n  capacities:\n"
                       "    pz1: 40\n    pz404: 10\n")
    with pytest.raises(ScenarioError, match=r"unknown\.yaml:7: parking\.capacities\.pz404: "
                                            r".*unknown id 'pz404'"):
        build_twin(load_scenario(unknown))


def twin_cli(*args: str) -> tuple[int, str, str]:
    from twin.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_cli_simulate_and_import(tmp_path):
    code, out, _ = twin_cli("parking", "simulate", "--days", "2", "--pricing", "responsive",
                            "--no-reminders", "--json")
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    for key in ("occupancy_mean_share", "cruising_veh_h", "permit_renewals_on_time_share",
                "revenue_eur", "seconds", "occupancy_by_zone_hour_of_day"):
        assert key in result
    assert result["reminders"] is False and result["kpis"]["permits_due_reminded"] == 0
    assert len(result["occupancy_by_zone_hour_of_day"]["pz1"]) == 24

    rec = tmp_path / "rec.csv"
    rec.write_text("SystemCodeNumber,Capacity,Occupancy,LastUpdated\n"
                   "A,100,10,2016-10-04 08:00:00\nA,100,-1,2016-10-04 08:30:00\n")
    code, out, err = twin_cli("parking", "import", str(rec), "--json")
    assert code == 2 and "1 of 2 rows are bad" in err
    rec.write_text("SystemCodeNumber,Capacity,Occupancy,LastUpdated\n"
                   + "".join(f"A,100,{20 + i},2016-10-04 {8 + i}:00:00\n" for i in range(9))
                   + "A,100,-1,2016-10-04 17:30:00\n")
    code, out, _ = twin_cli("parking", "import", str(rec), "--json", "--max-bad-share", "0.2")
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["good_rows"] == 9 and summary["bad_rows_listed"] == [
        "line 11: Occupancy: negative reading: -1 vehicles (car park 'A')"]
    code, out, err = twin_cli("parking", "import", str(rec), "--strict")
    assert code == 2 and "rec.csv:11: Occupancy: negative reading" in err
    rec.write_text("SystemCodeNumber,Capacity,Occupancy,LastUpdated\n"
                   "A,-100,20,2016-10-04 08:00:00\n")
    code, _, err = twin_cli("parking", "import", str(rec))
    assert code == 2 and "rec.csv:2: Capacity" in err
    with pytest.raises(SystemExit) as exit_info:          # argparse refuses it
        twin_cli("parking", "simulate", "--days", "-1")
    assert exit_info.value.code == 2


def test_arrivals_come_from_the_od_demand(city, fixed):
    import pandas as pd

    from twin.networks.parking_od import arrivals_from_od
    from twin.randomness import RandomStreams

    supply = build_supply(city)
    a = arrivals_from_od(city, supply, RandomStreams(1).stream("traffic.demand"))
    assert list(a.columns) == list(supply.zones.index) and len(a) == 24
    by_hour = a.sum(axis=1)
    assert by_hour.idxmax() in (7, 8) and by_hour[3] < 0.01 * by_hour.max()
    # the layer used exactly these (same stream as the traffic layer), less the car parks' share
    assert fixed.demand == "od"
    assert fixed.visitor_day.sum() == pytest.approx(a.to_numpy().sum())
    # zones with more jobs draw more trips
    jobs = supply.zones["jobs"]
    assert a.sum()[jobs.idxmax()] > 3 * a.sum()[jobs.idxmin()]
    twin = Twin(city=city, start=START, seed=1)
    with pytest.raises(BadInput, match="unknown zone 'zz'"):
        twin.add_layer(ParkingLayer(arrivals=pd.DataFrame({"zz": np.ones(24)})))
    jobs_based = run_week(city, days=1, demand="jobs")
    assert jobs_based.visitor_day.sum() == pytest.approx(jobs.sum() * 0.8)
