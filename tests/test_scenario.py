"""Scenario files: loading, extends, durations, events, and located errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from twin.events import DemandSurge, FireFlow, LeakStopped, PipeBurst, PumpOutage, ValveClosed, \
    ValveOpened
from twin.scenario import (ScenarioError, check_elements, format_duration, load_scenario,
                           main_validate, parse_duration)

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
BAD = Path(__file__).resolve().parent / "data" / "bad_scenarios"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- durations -----------------------------------------------------------------------------
@pytest.mark.parametrize("text, seconds", [
    ("24h", 86400), ("7d", 604800), ("90min", 5400), ("5min", 300), ("300s", 300),
    ("1h30min", 5400), ("1h30m", 5400), ("7h30min", 27000), ("1.5h", 5400), ("1d 6h", 108000),
    ("PT24H", 86400), ("P1DT2H", 93600), ("PT90M", 5400), ("pt30s", 30), ("P1W", 604800),
    (300, 300), (2.5, 2.5), ("600", 600), (0, 0),
])
def test_parse_duration_accepts(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["7:30", "-5", "P", "PT", "P1M", "P1Y", "1x", "h", "", True,
                                  None, [1], float("inf")])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="expected"):
        parse_duration(text)


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (300, "5min"), (5400, "1h30min"),
                                           (86400, "1d"), (108030, "1d6h30s")])
def test_format_duration_round_trips(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


# --- the shipped scenarios --------------------------------------------------------------
def test_baseline_day_loads():
    spec = load_scenario(SCENARIOS / "baseline_day.yaml")
    assert spec.name == "baseline_day"
    assert spec.city.demo is not None and spec.city.demo.population == 50_000
    assert spec.city.demo.seed == 0 and spec.city.inp is None
    assert spec.start == dt.datetime(2026, 6, 15, 0, 0)
    assert spec.horizon_s == 86400.0 and spec.step_s == 300.0
    assert spec.seed == 42
    assert spec.events == [] and spec.to_events() == []
    assert spec.outputs.quantities == ("pressure", "flow", "tank_level")
    assert spec.outputs.report and spec.outputs.maps
    assert spec.source_path == SCENARIOS / "baseline_day.yaml" and spec.based_on == ()


def test_main_break_peak_extends_baseline():
    spec = load_scenario(SCENARIOS / "main_break_peak.yaml")
    assert spec.name == "main_break_peak"
    assert spec.based_on == (SCENARIOS / "baseline_day.yaml",)
    # inherited from the baseline
    assert spec.horizon_s == 86400.0 and spec.seed == 42 and spec.city.demo.population == 50_000
    events = spec.to_events()
    assert [type(e) for e in events] == [PipeBurst, LeakStopped]
    burst, stopped = events
    assert burst.time_s == 7.5 * 3600 and stopped.time_s == 11.5 * 3600
    assert burst.pipe_id == stopped.pipe_id == "s324"
    assert burst.leak_area_m2 == 0.015 and burst.position == 0.5
    assert {e.source for e in events} == {"scenario"}
    assert spec.element_refs() == [("events[0].pipe", 11, "pipe", "s324")]


def test_heatwave_week_loads():
    spec = load_scenario(SCENARIOS / "heatwave_week.yaml")
    assert spec.horizon_s == 7 * 86400 and spec.step_s == 300.0
    (surge,) = spec.to_events()
    assert isinstance(surge, DemandSurge)
    assert surge.factor == 1.35 and surge.time_s == 86400.0 and surge.duration_s == 6 * 86400
    assert surge.nodes == ()


@pytest.mark.parametrize("name", ["baseline_day", "main_break_peak", "heatwave_week"])
def test_main_validate_ok(name, capsys):
    assert main_validate(SCENARIOS / f"{name}.yaml") == 0
    out = capsys.readouterr()
    assert f"'{name}'" in out.out and out.err == ""


def test_spec_is_frozen():
    spec = load_scenario(SCENARIOS / "baseline_day.yaml")
    with pytest.raises(Exception):
        spec.horizon_s = 3600.0


# --- extends ------------------------------------------------------------------------------
def test_extends_deep_merges_and_concatenates_events(tmp_path):
    write(tmp_path, "base.yaml", """\
name: base
city: {demo: {population: 20000, seed: 3}}
horizon: 2d
outputs: {quantities: [pressure], report: false}
policies: {water: {service_pressure_m: 25, engine: owa}}
events:
  - {at: 1h, type: fire_flow, node: n1, flow_lps: 30}
""")
    child = write(tmp_path, "child.yaml", """\
extends: base.yaml
city:
  demo: {seed: 4}
outputs: {maps: false}
policies: {water: {service_pressure_m: 30}}
events:
  - at: 3h
    type: valve_closure
    link: s7
    setting: 0.5
    duration: 2h
""")
    spec = load_scenario(child)
    assert spec.name == "child"                       # a file's name defaults to its stem
    assert spec.city.demo.population == 20_000 and spec.city.demo.seed == 4
    assert spec.horizon_s == 2 * 86400
    assert spec.outputs.quantities == ("pressure",)
    assert spec.outputs.report is False and spec.outputs.maps is False
    assert spec.policies.water.service_pressure_m == 30          # merged key by key
    assert spec.policies.water.engine == "owa"
    events = spec.to_events()
    assert [type(e) for e in events] == [FireFlow, ValveClosed, ValveOpened]
    assert [e.time_s for e in events] == [3600.0, 3 * 3600.0, 5 * 3600.0]
    assert events[1].setting == 0.5 and events[1].link_id == "s7"
    # lines follow each event back to the file that wrote it
    assert spec.locate("events[0].node") == (tmp_path / "base.yaml", 7)
    assert spec.locate("events[1].link") == (child, 9)
    assert [(r.field, r.line, r.kind, r.element_id) for r in spec.element_refs()] == [
        ("events[0].node", 7, "node", "n1"), ("events[1].link", 9, "link", "s7")]


def test_extends_switching_city_kind_and_relative_inp(tmp_path):
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "town.inp").write_text("[TITLE]\n", encoding="utf-8")
    write(tmp_path, "base.yaml", "horizon: 1d\ncity: {demo: {population: 20000}}\n")
    child = write(tmp_path, "child.yaml",
                  "extends: base.yaml\ncity: {inp: nets/town.inp, crs: 'EPSG:2154'}\n")
    spec = load_scenario(child)
    assert spec.city.demo is None
    assert spec.city.inp == tmp_path / "nets" / "town.inp" and spec.city.crs == "EPSG:2154"


def test_extends_missing_file(tmp_path):
    path = write(tmp_path, "child.yaml", "name: c\n\nextends: nowhere.yaml\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert (err.path, err.field, err.line) == (path, "extends", 3)
    assert "nowhere.yaml" in str(err) and "existing scenario file" in err.expected


def test_extends_cycle(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\nhorizon: 1d\n")
    write(tmp_path, "b.yaml", "horizon: 1d\nextends: a.yaml\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "a.yaml")
    err = info.value
    assert (err.path, err.field, err.line) == (tmp_path / "b.yaml", "extends", 2)
    assert err.got == "a.yaml -> b.yaml -> a.yaml"


# --- the deliberately bad files ------------------------------------------------------------
def load_bad(name: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(BAD / name)
    return info.value


def test_unknown_field():
    err = load_bad("unknown_field.yaml")
    assert (err.field, err.line) == ("horizn", 3)
    assert "known field" in err.expected and "horizon" in err.expected
    assert str(err).startswith(f"{BAD / 'unknown_field.yaml'}:3: horizn: expected a known field")
    assert "did you mean 'horizon'?" in str(err)


def test_wrong_type():
    err = load_bad("wrong_type.yaml")
    assert (err.field, err.line) == ("events[1].leak_area_m2", 13)
    assert err.expected == "a number > 0" and err.got == "'big'"
    assert str(err) == (f"{BAD / 'wrong_type.yaml'}:13: events[1].leak_area_m2: "
                        "expected a number > 0, got 'big'")


def test_event_outside_horizon():
    err = load_bad("event_outside_horizon.yaml")
    assert (err.field, err.line) == ("events[1].at", 11)
    assert "within the scenario" in err.expected and "1d" in err.expected
    assert err.got == "1d6h after the start"


def test_unknown_event_type():
    err = load_bad("unknown_event_type.yaml")
    assert (err.field, err.line) == ("events[0].type", 6)
    assert "pipe_burst" in err.expected and "fire_flow" in err.expected
    assert err.got == "'pipe_explosion'"


def test_malformed_yaml():
    err = load_bad("malformed.yaml")
    assert err.field is None and err.line == 7          # where the parser gave up
    assert err.expected == "valid YAML" and "']'" in err.got
    assert str(err).startswith(f"{BAD / 'malformed.yaml'}:7: expected valid YAML, got")


def test_unknown_element_id():
    spec = load_scenario(BAD / "unknown_element.yaml")   # valid until checked against a network
    known = {"pipe": {f"p{i}" for i in range(1, 910)}, "node": {"n1"}}
    with pytest.raises(ScenarioError) as info:
        check_elements(spec, known)
    err = info.value
    assert (err.path, err.field, err.line) == (BAD / "unknown_element.yaml", "events[0].pipe", 7)
    assert str(err).endswith("events[0].pipe: unknown pipe 'P999' "
                             "(the network has 909 pipes; e.g. 'p1', 'p2', 'p3', ...)")


def test_check_elements_passes_known_ids_and_suggests_close_ones():
    spec = load_scenario(SCENARIOS / "main_break_peak.yaml")
    check_elements(spec, {"pipe": {"s324", "s1"}})
    check_elements(spec, {"node": {"n1"}})                    # kinds not given are not checked
    with pytest.raises(ScenarioError, match=r"did you mean 'S324'\?"):
        check_elements(spec, {"pipe": {"S324", "s1"}})


@pytest.mark.parametrize("name, line", [("wrong_type.yaml", 13), ("malformed.yaml", 7),
                                        ("unknown_field.yaml", 3)])
def test_main_validate_reports_errors(name, line, capsys):
    assert main_validate(BAD / name) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{BAD / name}:{line}: ")


# --- more located errors ------------------------------------------------------------------
@pytest.mark.parametrize("text, field, line, expected", [
    ("horizon: 1d\nevents:\n  - {at: 1h, type: pipe_burst, pipe: s1, leak_area: 0.1}\n",
     "events[0].leak_area", 3, "a known field (type, at, pipe, leak_area_m2, position, duration)"),
    ("horizon: 1d\nevents:\n  - at: 1h\n    type: fire_flow\n    node: n1\n",
     "events[0].flow_lps", 3, "a value (this field is required)"),
    ("horizon: 1d\nevents:\n  - at: 1h\n    pipe: s1\n", "events[0].type", 3, "a `type:` key"),
    ("horizon: 1d\nhorizon: 2d\n", "horizon", 2, "each key once per mapping"),
    ("horizon: 1d\ncity:\n  demo:\n    population: 500\n", "city.demo.population", 4,
     "a whole number in 1000..300000"),
    ("horizon: 1d\nseed: 4.5\n", "seed", 2, "a whole number"),
    ("horizon: 1d\nstep: 2d\n", "step", 2, "a step no longer than the horizon (1d)"),
    ("horizon: 0\n", "horizon", 1, "a duration > 0"),
    ("horizon: 1d\nstart: soon\n", "start", 2, "an ISO datetime"),
    ("horizon: 1d\ncity: {demo: {}, inp: x.inp}\n", "city", 2, "exactly one of"),
    ("horizon: 1d\ncity:\n  inpt: x.inp\n", "city.inpt", 3, "a known field (demo, inp, crs)"),
    ("horizon: 1d\ncity: {inp: missing.inp}\n", "city.inp", 2,
     "the path of an existing EPANET .inp file"),
    ("horizon: 1d\npolicies: [a]\n", "policies", 2, "a mapping"),
    ("horizon: 1d\npolicies: {watr: {}}\n", "policies.watr", 2, "a known field (water)"),
    ("horizon: 1d\npolicies:\n  water: {service_presure_m: 25}\n",
     "policies.water.service_presure_m", 3, "a known field (service_pressure_m, engine)"),
    ("horizon: 1d\npolicies:\n  water: {engine: epanet3}\n", "policies.water.engine", 3,
     "one of 'wntr', 'owa'"),
    ("horizon: 1d\noutputs:\n  quantities: [pressure, presure]\n", "outputs.quantities[1]", 3,
     "a recordable quantity"),
    ("horizon: 1d\noutputs: {report: maybe}\n", "outputs.report", 2, "true or false"),
    ("horizon: 1d\noutputs:\n  quantities: [pressure, Flow]\n", "outputs.quantities[1]", 3,
     "a snake_case quantity name"),
    ("horizon: 1d\nevents:\n  - {at: '7:30', type: pump_outage, pump: pump1}\n",
     "events[0].at", 3, "an offset from the start such as '7h30min'"),
    ("horizon: 1d\nevents:\n\n  - {at: 2026-06-14T23:00, type: pump_outage, pump: pump1}\n",
     "events[0].at", 4, "a time within the scenario"),
    ("horizon: 1d\nevents:\n  - {at: 1h, type: valve_closure, link: v1, setting: 2}\n",
     "events[0].setting", 3, "a number in 0..1"),
    ("horizon: 1d\nevents:\n  - {at: 1h, type: demand_surge, factor: 2, nodes: [a, 1.5]}\n",
     "events[0].nodes[1]", 3, "an element id"),
    ("horizon: 1d\nsource_path: x.yaml\n", "source_path", 2, "a known field"),
    ("horizon: 1d\nseed: -3\n", "seed", 2, "a whole number >= 0"),
    ("horizon: 1d\ncity: {demo: {seed: -1}}\n", "city.demo.seed", 2, "a whole number >= 0"),
    ("horizon: 1d\nstep: 0.5\n", "step", 2, "a step of at least 1 s in whole seconds"),
    ("horizon: 1d\nstep: 90.5s\n", "step", 2, "a step of at least 1 s in whole seconds"),
    ("horizon: 1.5\n", "horizon", 1, "a duration in whole seconds"),
    ("horizon: 1d\nname: a/b\n", "name", 2, "a name of letters, digits"),
    ("horizon: 1d\nname: ../x\n", "name", 2, "a name of letters, digits"),
    ("horizon: 1d\ncity:\n  demo: {}\n  crs: 'EPSG:4326'\n", "city.crs", 4,
     "crs only with inp: (the demo city is in EPSG:2154)"),
    ("horizon: 1d\nevents:\n  - type: demand_surge\n    at: 1h\n    factor: 2\n"
     "    nodes:\n      - 11\n      - 12\n      - '11'\n", "events[0].nodes[2]", 9,
     "each node once"),
    ("horizon: 1d\n", None, None, None),
])
def test_located_errors(tmp_path, text, field, line, expected):
    path = write(tmp_path, "s.yaml", text)
    if field is None:
        assert load_scenario(path).horizon_s == 86400.0
        return
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert (err.path, err.field, err.line) == (path, field, line), str(err)
    assert err.expected.startswith(expected), str(err)
    assert str(err).startswith(f"{path}:{line}: {field}: ")


def test_absolute_event_times_and_defaults(tmp_path):
    path = write(tmp_path, "s.yaml", """\
start: 2026-07-01 06:00:00
horizon: PT12H
events:
  - {at: 2026-07-01T08:15, type: pump_outage, pump: 7}
  - {at: 600, type: fire_flow, node: n3, flow_lps: 25.5}
""")
    spec = load_scenario(path)
    assert spec.start == dt.datetime(2026, 7, 1, 6, 0) and spec.step_s == 300.0
    assert spec.city.demo is not None and spec.city.demo.population == 50_000
    outage, fire = spec.events
    assert spec.event_time_s(outage) == 2.25 * 3600
    events = spec.to_events()
    assert [type(e) for e in events] == [FireFlow, PumpOutage]
    assert events[0].time_s == 600.0 and events[0].duration_s == 7200.0
    assert events[0].node_id == "n3" and events[0].flow_lps == 25.5
    assert events[1].pump_id == "7" and events[1].duration_s is None


def test_unreadable_and_empty_files(tmp_path):
    with pytest.raises(ScenarioError, match="existing scenario file"):
        load_scenario(tmp_path / "absent.yaml")
    with pytest.raises(ScenarioError, match="got an empty file"):
        load_scenario(write(tmp_path, "empty.yaml", "# nothing\n"))
    with pytest.raises(ScenarioError, match=r"s\.yaml:1: expected a mapping"):
        load_scenario(write(tmp_path, "s.yaml", "- 1\n- 2\n"))


def test_bad_crs_with_an_inp_file(tmp_path):
    (tmp_path / "town.inp").write_text("[TITLE]\n", encoding="utf-8")
    path = write(tmp_path, "s.yaml", "horizon: 1d\ncity:\n  inp: town.inp\n"
                                     "  crs: 'EPSG:99999999'\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert (err.path, err.field, err.line) == (path, "city.crs", 4)
    assert err.expected.startswith("a coordinate reference system such as 'EPSG:2154'")
    assert "EPSG:99999999" in err.got


def test_extends_switching_to_demo_drops_the_base_crs(tmp_path):
    (tmp_path / "town.inp").write_text("[TITLE]\n", encoding="utf-8")
    write(tmp_path, "base.yaml", "horizon: 1d\ncity: {inp: town.inp, crs: 'EPSG:32631'}\n")
    child = write(tmp_path, "child.yaml", "extends: base.yaml\ncity: {demo: {seed: 1}}\n")
    spec = load_scenario(child)
    assert spec.city.inp is None and spec.city.crs is None and spec.city.demo.seed == 1


def test_whole_second_durations_tolerate_float_noise(tmp_path):
    spec = load_scenario(write(tmp_path, "s.yaml", "horizon: 0.7h\nstep: 0.1h\n"))
    assert spec.horizon_s == 2520.0 and spec.step_s == 360.0
    spec = load_scenario(write(tmp_path, "s.yaml", "horizon: 1d\nstep: 1\n"))
    assert spec.step_s == 1.0


@pytest.mark.parametrize("stem, name", [
    ("baseline day", "baseline_day"), ("what-if (v2)", "what-if__v2_"), ("_draft", "draft"),
    ("main.break", "main.break"), ("été", "t_"), ("...", "scenario")])
def test_default_name_is_a_safe_file_stem(tmp_path, stem, name):
    spec = load_scenario(write(tmp_path, f"{stem}.yaml", "horizon: 1d\n"))
    assert spec.name == name


@pytest.mark.parametrize("text, value", [
    ("5e-3", 0.005), ("1E3", 1000.0), ("1.5", 1.5), (".5", 0.5), ("-2.5e+4", -25000.0),
    ("1e3", 1000.0), ("-.5", -0.5), ("1.", 1.0), ("12", 12), ("-3", -3), ("1_000", 1000),
    ("7:30", "7:30"), ("1e", "1e"), ("s1e3", "s1e3"),
])
def test_yaml_numbers_are_read_as_in_yaml_1_2(tmp_path, text, value):
    from twin.scenario import _parse_yaml
    data, _ = _parse_yaml(write(tmp_path, "s.yaml", f"x: {text}\n"))
    assert data["x"] == value and type(data["x"]) is type(value)


def test_leak_area_in_exponent_notation(tmp_path):
    spec = load_scenario(write(tmp_path, "s.yaml", "horizon: 1d\nevents:\n"
                               "  - {at: 1h, type: pipe_burst, pipe: s1, leak_area_m2: 5e-3}\n"))
    assert spec.events[0].leak_area_m2 == 0.005
