"""Cascade rules: load-time checks, the cascade layer on small twins, the scenario section."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Point

from twin.cascade import (LAYER_TABLES, RuleFileSpec, cause_chains, compile_rule, event_fields,
                          load_rules)
from twin.cascade_engine import CascadeLayer
from twin.city.generator import generate_city
from twin.events import EVENT_TYPES, CitizenAlert, StreetClosed, StreetFlooded, StreetReopened
from twin.run import build_twin, run
from twin.scenario import load_scenario
from twin.scenario_fields import ScenarioError
from twin.twin import Twin

ROOT = Path(__file__).resolve().parents[1]
CITY_RULES = ROOT / "scenarios" / "cascades" / "city_rules.yaml"
H = 3600.0


@pytest.fixture(scope="module")
def city():
    return generate_city(population=5000, seed=0)


def _rules(*rules: dict, max_depth: int = 8):
    return RuleFileSpec.model_validate({"rules": list(rules), "max_depth": max_depth}).rules


CLOSE = {"name": "deep_closes", "when": "StreetFlooded", "if": {"depth_m": {"ge": 0.1}},
         "then": "StreetClosed", "target": {"layer": "city", "table": "streets", "within_m": 30},
         "set": {"reason": "flooded"}, "delay": "10min", "lasts": "2h"}


def _flood_twin(city, rules, seed=0, **options) -> tuple[Twin, CascadeLayer]:
    twin = Twin(city=city, start=dt.datetime(2026, 6, 15, 6), seed=seed)
    layer = twin.add_layer(CascadeLayer(rules, **options))
    return twin, layer


def _street_mid(city, k: int = 40) -> tuple[str, Point]:
    """A street and a point on it 10 m from its start (an intersection: more streets near)."""
    street = city.streets.index[k]
    return street, city.streets.geometry.iloc[k].interpolate(10.0)


def _flood(at_s: float, point: Point, depth_m: float, streets=()) -> StreetFlooded:
    return StreetFlooded(time_s=at_s, source="storm", x=point.x, y=point.y, radius_m=30.0,
                         street_ids=tuple(streets), depth_m=depth_m)


# --- the rules file ----------------------------------------------------------------------
def test_the_default_rules_load_and_every_rule_checks():
    spec = load_rules(CITY_RULES)
    names = [r.name for r in spec.rules]
    assert len(names) == len(set(names)) >= 8
    for r in spec.rules:
        rule = compile_rule(r)
        assert rule.when.__name__ in EVENT_TYPES and rule.then.__name__ in EVENT_TYPES
        assert {c.field for c in rule.conditions} <= set(event_fields(rule.when))
        assert set(rule.constants) | set(rule.derived) <= set(event_fields(rule.then))
        assert rule.layers() <= set(LAYER_TABLES)
    by_name = {r.name: compile_rule(r) for r in spec.rules}
    # the issue's links: sewer -> flooded street -> closure; cabinets; alerts; heat
    assert by_name["sewer_surcharge_floods_street"].then is EVENT_TYPES["StreetFlooded"]
    assert by_name["deep_flood_closes_street"].then is StreetClosed
    assert by_name["flooded_cabinet_trips"].target_field == "cabinet_id"
    assert {n for n, r in by_name.items() if "alerts" in r.tags} == {
        "closure_alert", "water_cut_alert", "collection_postponed_alert"}
    # the heat complaints name services of the catalogue
    from twin.agents.services import default_catalogue

    codes = set(default_catalogue())
    assert set(by_name["heat_raises_complaints"].constants["service_codes"]) <= codes


BAD_RULES = [
    ("    when: StreetFlood\n", 4, "rules[0].when", "unknown event type 'StreetFlood' (did you "
                                                   "mean 'StreetFlooded'?) in rule 'r1'"),
    ("    from: sewers\n", 5, "rules[0].from", "unknown layer 'sewers' (did you mean 'sewer'?)"),
    ("    target: {layer: lights, table: cabinets, within_m: 9}\n", 5, "rules[0].target.layer",
     "unknown layer 'lights'"),
    ("    target: {layer: lighting, table: cabinet, within_m: 9}\n", 5, "rules[0].target.table",
     "unknown table 'cabinet' (did you mean 'cabinets'?)"),
    ("    if: {deep_m: {gt: 1}}\n", 5, "rules[0].if.deep_m",
     "unknown field 'deep_m' (did you mean 'depth_m'?) in rule 'r1'"),
    ("    if: {depth_m: {over: 1}}\n", 5, "rules[0].if.depth_m.over", "unknown comparison"),
    ("    if: {source_id: {gt: 1}}\n", 5, "rules[0].if.source_id", "unknown field"),
    ("    set: {reasons: flooded}\n", 5, "rules[0].set.reasons",
     "unknown field 'reasons' (did you mean 'reason'?) in rule 'r1'"),
    ("    set: {reason: {from: depth}}\n", 5, "rules[0].set.reason.from", "unknown field 'depth'"),
    ("    set: {reason: {from: depth_m}}\n", 5, "rules[0].set.reason.from", "(a number)"),
    ("    set: {cause_id: 3}\n", 5, "rules[0].set.cause_id", "may set"),
    ("    delay: -5min\n", 5, "rules[0].delay", "a duration >= 0"),
    ("    delay: {mean: -1h}\n", 5, "rules[0].delay.mean", "a duration >= 0"),
    ("    probability: 1.5\n", 5, "rules[0].probability", "a number in 0..1"),
    ("    hours: ['06:00', '25:00']\n", 5, "rules[0].hours[1]", "two times of day"),
    # a target must fill an id field of the caused event
    ("    target: {layer: waste, table: sites, within_m: 9}\n", 5, "rules[0].target",
     "expected an id field of StreetClosed for the waste sites to fill"),
    ("  - name: r1\n    when: StreetClosed\n    then: CitizenAlert\n", 5, "rules[1].name",
     "'r1' again (first as rules[0])"),
]


@pytest.mark.parametrize("extra, line, field, message", BAD_RULES)
def test_bad_rules_are_located_errors_at_load_time(tmp_path, extra, line, field, message):
    text = "rules:\n  - name: r1\n    then: StreetClosed\n    when: StreetFlooded\n" + extra
    if "when: StreetFlood\n" in extra:
        text = "rules:\n  - name: r1\n    then: StreetClosed\n" + extra
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_rules(path)
    assert err.value.path == path and err.value.line == line and err.value.field == field
    assert message in str(err.value)
    assert str(err.value).startswith(f"{path}:{line}: {field}: ")


# --- the layer on small twins --------------------------------------------------------------
def test_a_deep_flood_closes_the_streets_within_r_and_a_shallow_one_does_not(city):
    twin, layer = _flood_twin(city, _rules(CLOSE))
    street, point = _street_mid(city)
    twin.schedule([_flood(H, point, 0.3, [street]), _flood(2 * H, point, 0.05, [street])])
    twin.run(5 * H)
    ev = twin.bus.to_frame()
    deep_id = int(ev.loc[(ev["kind"] == "StreetFlooded") & (ev["time_s"] == H), "event_id"].iloc[0])
    closed = [e for e in twin.bus.log if isinstance(e, StreetClosed)]
    assert len(closed) == 1                                  # the shallow flood closes nothing
    (c,) = closed
    within = city.streets.index[city.streets.distance(point) <= 30.0]
    assert set(c.street_ids) == set(within) and street in c.street_ids and len(within) >= 2
    assert c.cause_id == deep_id and c.source == "cascade:deep_closes"
    assert c.time_s == pytest.approx(H + 600.0) and c.reason == "flooded"
    reopened = [e for e in twin.bus.log if e.kind == "StreetReopened"]
    assert [(r.time_s, r.cause_id, set(r.street_ids)) for r in reopened] == [
        (pytest.approx(H + 600.0 + 2 * H), c.event_id, set(within))]
    k = layer.kpis()
    assert k["caused_by_deep_closes"] == 1 and k["triggers"] == 1 and k["rules_active"] == 1
    chains = cause_chains(ev).set_index("event_id")
    assert chains.loc[c.event_id, "rule"] == "deep_closes"
    assert chains.loc[c.event_id, "root_id"] == deep_id and chains.loc[c.event_id, "depth"] == 1
    assert chains.loc[reopened[0].event_id, "depth"] == 2


def _caused(city, rule: dict, seed: int) -> list[tuple]:
    twin, _ = _flood_twin(city, _rules(rule), seed=seed)
    street, point = _street_mid(city)
    twin.schedule([_flood(H, point, 0.3, [street])])
    twin.run(6 * H)
    return [(e.kind, e.time_s, e.street_ids) for e in twin.bus.log
            if e.source.startswith("cascade")]


def test_same_seed_same_cascade_and_probability_zero_causes_nothing(city):
    rule = {**CLOSE, "target": {"layer": "city", "table": "streets", "within_m": 120},
            "probability": 0.5, "delay": {"mean": "30min"}, "lasts": None}
    rule = {k: v for k, v in rule.items() if v is not None}
    first, again, other = (_caused(city, rule, s) for s in (7, 7, 8))
    assert first == again and len(first) == 1
    assert first != other
    streets_near = (city.streets.distance(_street_mid(city)[1]) <= 120.0).sum()
    assert 0 < len(first[0][2]) < streets_near            # about half of them
    twin, layer = _flood_twin(city, _rules({**rule, "probability": 0.0}))
    street, point = _street_mid(city)
    twin.schedule([_flood(H, point, 0.3, [street])])
    twin.run(3 * H)
    assert not [e for e in twin.bus.log if e.source.startswith("cascade")]
    assert layer.kpis()["triggers"] == 1 and layer.kpis()["events_caused"] == 0


def test_loops_stop_at_the_max_depth_and_repeats_wait_for_the_effect_to_end(city):
    ping = {"name": "ping", "when": "StreetFlooded", "then": "StreetClosed",
            "set": {"street_ids": {"from": "street_ids"}}, "delay": "1min"}
    pong = {"name": "pong", "when": "StreetClosed", "then": "StreetFlooded",
            "set": {"street_ids": {"from": "street_ids"}, "depth_m": 0.2}, "delay": "1min"}
    twin, layer = _flood_twin(city, _rules(ping, pong), max_depth=4)
    street, point = _street_mid(city)
    twin.schedule([_flood(H, point, 0.3, [street])])
    twin.run(3 * H)
    caused = [e for e in twin.bus.log if e.source.startswith("cascade")]
    assert [e.kind for e in caused] == ["StreetClosed", "StreetFlooded"] * 2
    assert layer.kpis()["stopped_at_max_depth"] == 1
    # a rule feeding itself: the same street is not flooded again while the flood lasts
    again = {"name": "again", "when": "StreetFlooded", "then": "StreetFlooded",
             "set": {"street_ids": {"from": "street_ids"}}, "delay": "10min", "lasts": "1h"}
    twin, layer = _flood_twin(city, _rules(again))
    twin.schedule([_flood(H, point, 0.3, [street])])
    twin.run(4 * H)
    times = [e.time_s for e in twin.bus.log if e.source == "cascade:again"]
    assert times == [H + 600.0]                  # the caused flood starts it no more
    assert layer.kpis()["repeats_skipped"] == 1


def test_a_flooded_cabinet_trips_its_lamps_through_the_lighting_layer(city):
    from twin.networks.lighting import LightingLayer

    twin = Twin(city=city, start=dt.datetime(2026, 12, 1, 18), seed=1)
    lighting = twin.add_layer(LightingLayer(random_failures=False, noise=False))
    rule = {"name": "cabinet_trips", "when": "StreetFlooded", "then": "LightingFault",
            "target": {"layer": "lighting", "table": "cabinets", "within_m": 25},
            "set": {"reason": "flooded"}, "delay": "5min"}
    near = {"name": "warn_near_cabinets", "when": "StreetFlooded", "then": "CitizenAlert",
            "near": {"layer": "lighting", "table": "cabinets", "within_m": 25},
            "set": {"kind": "flood_warning", "radius_m": 100}}
    cascade = twin.add_layer(CascadeLayer(_rules(rule, near)))
    tables = {name: set(layer.elements()) for name, layer in twin.layers.items()}
    assert tables == {"lighting": set(LAYER_TABLES["lighting"]), "cascade": {"rules"}}
    cabinet = lighting.net.cabinets.iloc[2]
    cabinets = lighting.net.cabinets.geometry
    far = next(p for p in city.intersections.geometry if cabinets.distance(p).min() > 100)
    twin.schedule([_flood(H, cabinet.geometry, 0.2), _flood(H + 60, far, 0.2)])
    twin.run(2 * H)
    (warned,) = [e for e in twin.bus.log if isinstance(e, CitizenAlert)]
    assert (warned.x, warned.y) == (cabinet.geometry.x, cabinet.geometry.y)   # not `far`
    fault = next(e for e in twin.bus.log if e.kind == "LightingFault")
    assert fault.source == "cascade:cabinet_trips" and fault.cabinet_id == cabinet.name
    trip = next(e for e in twin.bus.log if e.kind == "CabinetFault")
    assert trip.cause_id == fault.event_id and trip.cabinet_id == cabinet.name
    dark = lighting.lamps_out()
    assert len(dark) and set(dark["cabinet_id"]) == {cabinet.name}
    assert len(dark) == int((lighting.net.lamps["cabinet_id"] == cabinet.name).sum())
    assert cascade.kpis()["caused_by_cabinet_trips"] == 1


def test_a_rule_naming_an_absent_layer_is_inactive_not_an_error(city):
    rule = {"name": "cabinet_trips", "when": "StreetFlooded", "then": "LightingFault",
            "target": {"layer": "lighting", "table": "cabinets", "within_m": 25}}
    twin, layer = _flood_twin(city, _rules(rule, CLOSE), off=())
    street, point = _street_mid(city)
    twin.schedule([_flood(H, point, 0.3, [street])])
    twin.run(2 * H)
    table = layer.elements()["rules"].set_index("rule")
    assert table.loc["cabinet_trips", "status"] == "inactive: no lighting layer"
    assert table.loc["deep_closes", "status"] == "active"
    assert table.loc["deep_closes", "caused"] == 1
    assert layer.kpis()["rules_inactive"] == 1


def test_pending_caused_events_survive_a_fork(city):
    twin, layer = _flood_twin(city, _rules({**CLOSE, "delay": "1h"}))
    street, point = _street_mid(city)
    twin.schedule([_flood(H, point, 0.3, [street])])
    twin.run(H + 1800.0)
    state = layer.snapshot()
    assert [(round(left), e.kind) for left, e, _, _ in state["pending"]] == [(1800, "StreetClosed")]
    fork, forked = _flood_twin(city, _rules({**CLOSE, "delay": "1h"}))
    forked.restore(state)
    fork.run(H)
    closed = [e for e in fork.bus.log if isinstance(e, StreetClosed)]
    assert [e.time_s for e in closed] == [1800.0]
    reopened = [e for e in fork.bus.log if e.kind == "StreetReopened"]
    assert reopened == []                         # 2 h after the closure, past this run
    fork.run(1800.0 + 2 * H)
    assert [e.cause_id for e in fork.bus.log if e.kind == "StreetReopened"] == [closed[0].event_id]


# --- scenarios -------------------------------------------------------------------------
SCENARIO = """name: casc
city: {demo: {population: 5000, seed: 0}}
start: 2026-06-15T06:00
horizon: 3h
step: 30min
"""


def _scenario(tmp_path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO + text)
    return path


def test_the_section_reads_a_rules_file_relative_to_the_scenario(tmp_path):
    (tmp_path / "cascades").mkdir()
    (tmp_path / "cascades" / "rules.yaml").write_text(CITY_RULES.read_text())
    spec = load_scenario(_scenario(tmp_path, "cascade:\n  rules: cascades/rules.yaml\n"
                                             "  off: [alerts, heat_raises_complaints]\n"))
    assert len(spec.cascade.rules) == len(load_rules(CITY_RULES).rules)
    assert spec.cascade.max_depth == 8
    (tmp_path / "cascades" / "rules.yaml").write_text("rules:\n  - name: x\n    when: Flood\n"
                                                     "    then: StreetClosed\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path / "s.yaml")
    assert err.value.path == tmp_path / "cascades" / "rules.yaml" and err.value.line == 3
    assert "rules[0].when" in str(err.value) and "in rule 'x'" in str(err.value)


@pytest.mark.parametrize("section, field, message", [
    ("cascade:\n  rules: [{name: a, when: Heatwave, then: DemandSurge}]\n  off: [hot]\n",
     "cascade.off[0]", "unknown rule or tag 'hot'"),
    ("cascade:\n  rules:\n    - {name: a, when: Heatwave, then: DemandSurge}\n"
     "    - {name: a, when: Heatwave, then: ServiceSurge}\n", "cascade.rules[1].name",
     "'a' again"),
    ("cascade:\n  rules:\n    - {name: a, when: Heatwave, then: DemandSurge, from: cloud}\n",
     "cascade.rules[0].from", "unknown layer 'cloud'"),
    ("cascade:\n  off: [alerts]\n", "cascade.rules", "a rules file"),
    ("cascade:\n  rules: nowhere.yaml\n", None, "no such file"),
])
def test_bad_cascade_sections(tmp_path, section, field, message):
    with pytest.raises(ScenarioError) as err:
        load_scenario(_scenario(tmp_path, section))
    assert message in str(err.value)
    if field is not None:
        assert err.value.field == field and err.value.line is not None


def test_a_heatwave_raises_demand_through_the_rules_and_off_switches_them(tmp_path):
    text = (f"cascade:\n  rules: {CITY_RULES}\n"
            "events:\n  - {at: 1h, type: heatwave, temperature_c: 36, duration: 2d}\n")
    results = run(load_scenario(_scenario(tmp_path, text)))
    ev = results.events
    heat = ev[ev["kind"] == "Heatwave"]
    surge = ev[ev["kind"] == "DemandSurge"]
    assert len(heat) == 1 and len(surge) == 1
    assert surge["cause_id"].iloc[0] == heat["event_id"].iloc[0]
    assert surge["source"].iloc[0] == "cascade:heat_raises_water_demand"
    details = surge["details"].iloc[0]
    assert "'factor': 1.22" in details and "'duration_s': 172800.0" in details
    assert results.kpis["cascade"]["caused_by_heat_raises_complaints"] == 1
    rules = results.elements["cascade"]["rules"].set_index("rule")
    assert rules.loc["collection_postponed_alert", "status"] == "inactive: no waste layer"
    nodes = results.elements["water"]["nodes"]
    consumers = set(nodes.index[nodes["base_demand_lps"] > 0])

    def consumption(res):
        s = res.series
        s = s[(s["layer"] == "water") & (s["quantity"] == "demand")
              & s["element"].isin(consumers)]
        return s.groupby("time_s")["value"].sum()

    total = consumption(results)
    off = run(load_scenario(_scenario(tmp_path, text.replace(
        f"{CITY_RULES}\n", f"{CITY_RULES}\n  off: [heat]\n"))))
    assert not (off.events["source"].str.startswith("cascade")).any()
    total_off = consumption(off)
    after = total.index >= H          # the surge is published before the step at 1 h
    ratio = (total[after] / total_off[after]).to_numpy()
    assert np.allclose(ratio, 1.22, rtol=0.02)
    assert np.allclose((total[~after] / total_off[~after]).to_numpy(), 1.0)


def test_with_a_cascade_the_traffic_layer_leaves_flood_closures_to_the_rules(tmp_path):
    base = _scenario(tmp_path, "traffic: {}\n")
    assert build_twin(load_scenario(base)).layers["traffic"].flood_close_lps == 50.0
    twin = build_twin(load_scenario(_scenario(tmp_path, f"traffic: {{}}\ncascade:\n"
                                                        f"  rules: {CITY_RULES}\n")))
    assert twin.layers["traffic"].flood_close_lps is None and "cascade" in twin.layers


def test_a_trigger_without_coordinates_is_placed_at_the_element_it_names(tmp_path):
    text = ("events:\n  - {at: 1h, type: pipe_burst, pipe: s12, leak_area_m2: 0.001}\n"
            "cascade:\n  rules:\n"
            "    - {name: cut, when: PipeBurst, then: CitizenAlert, delay: 20min,\n"
            "       set: {kind: water_cut, radius_m: 300}}\n")
    results = run(load_scenario(_scenario(tmp_path, text)))
    ev = results.events
    (alert,) = ev[ev["kind"] == "CitizenAlert"].itertuples()
    burst = ev[ev["kind"] == "PipeBurst"].iloc[0]
    assert alert.cause_id == burst["event_id"] and alert.time_s == H + 1200.0
    pipe = results.elements["water"]["links"].geometry.loc["s12"].centroid
    assert f"'x': {pipe.x}" in alert.details and f"'y': {pipe.y}" in alert.details


def test_the_end_of_a_closure_leaves_a_later_closure_of_the_street_alone(city):
    twin, _ = _flood_twin(city, _rules({**CLOSE, "delay": 0}))
    street, point = _street_mid(city)
    twin.schedule([_flood(H, point, 0.3, [street])])
    twin.run(H)
    (ours,) = [e for e in twin.bus.log if isinstance(e, StreetClosed)]
    others = tuple(s for s in ours.street_ids if s != street)
    assert others
    # a crew reopens every street at 1h30; roadworks close one of them again at 2h
    twin.schedule([StreetReopened(time_s=1.5 * H, source="citizens", street_ids=ours.street_ids),
                   StreetClosed(time_s=2 * H, source="roadworks", street_ids=(street,))])
    twin.run(4 * H)
    ends = [e for e in twin.bus.log if e.source == "cascade:deep_closes"
            and isinstance(e, StreetReopened)]
    assert ends == []            # all reopened already: nothing of ours is left to end
    twin2, _ = _flood_twin(city, _rules({**CLOSE, "delay": 0}))
    twin2.schedule([_flood(H, point, 0.3, [street]),
                    StreetClosed(time_s=2 * H, source="roadworks", street_ids=(street,))])
    twin2.run(4 * H)
    (end,) = [e for e in twin2.bus.log if e.source == "cascade:deep_closes"
              and isinstance(e, StreetReopened)]
    assert end.time_s == 3 * H and set(end.street_ids) == set(others)   # roadworks stay


def test_a_rule_with_hours_fires_for_triggers_at_those_times_of_day_only(city):
    morning = {**CLOSE, "hours": ["22:00", "08:00"]}        # the twin starts at 06:00
    twin, layer = _flood_twin(city, _rules(morning))
    street, point = _street_mid(city)
    twin.schedule([_flood(H, point, 0.3, [street]), _flood(5 * H, point, 0.3, [street])])
    twin.run(7 * H)
    closed = [e for e in twin.bus.log if isinstance(e, StreetClosed)]
    assert [c.time_s for c in closed] == [H + 600.0]      # 07:00 yes, 11:00 no
    assert layer.kpis()["triggers"] == 1


def test_only_events_the_hydraulic_engines_react_to_cut_their_steps(city):
    alert = {"name": "warn", "when": "StreetFlooded", "then": "CitizenAlert", "delay": "7min",
             "set": {"kind": "flood_warning"}}
    surge = {"name": "surge", "when": "StreetFlooded", "then": "DemandSurge", "delay": "9min",
             "set": {"factor": 1.1}}
    twin, layer = _flood_twin(city, _rules(alert, surge))
    street, point = _street_mid(city)
    twin.schedule([_flood(H, point, 0.3, [street])])
    twin.run(2 * H)
    assert layer.kpis()["events_caused"] == 2
    # the alert is published at its time without making the water or sewer layer stop there
    assert twin.next_expected_after(H) == H + 540.0               # the surge's time only
    assert twin.next_expected_after(H + 540.0) is None
    alert_time = next(e.time_s for e in twin.bus.log if isinstance(e, CitizenAlert))
    assert alert_time == H + 420.0
