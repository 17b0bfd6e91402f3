"""The ensemble: section: validated like the rest of a scenario file, expanded into members."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twin.ensemble_members import expand_members
from twin.errors import BadInput
from twin.scenario import ScenarioError, load_scenario

BASE = """\
name: net3_breaks
city: {{inp: {inp}}}
horizon: 2h
events:
  - {{at: 1h, type: pipe_burst, pipe: '123', leak_area_m2: 0.004}}
ensemble:
{ensemble}
"""


def _write(tmp_path: Path, net3_inp: Path, ensemble: str) -> Path:
    path = tmp_path / "ens.yaml"
    path.write_text(BASE.format(inp=json.dumps(str(net3_inp)), ensemble=ensemble))
    return path


def _error(tmp_path, net3_inp, ensemble: str) -> ScenarioError:
    path = _write(tmp_path, net3_inp, ensemble)
    with pytest.raises(ScenarioError) as info:
        expand_members(load_scenario(path))
    return info.value


def test_grid_sweep_and_seeds_make_every_combination(tmp_path, net3_inp):
    path = _write(tmp_path, net3_inp, """\
  grid:
    events[0].leak_area_m2: [0.002, 0.004, 0.008]
    policies.water.service_pressure_m: [15, 20]
  sweep:
    - {type: valve_closure, at: 30min, link: {each: pipe, min_diameter_mm: 500}}
  seeds: [1, 2]""")
    spec = load_scenario(path)
    members = expand_members(spec)
    import wntr

    wn = wntr.network.WaterNetworkModel(str(net3_inp))
    big = {name for name, pipe in wn.pipes() if pipe.diameter * 1000 >= 500}
    swept = {m.element for m in members}
    assert swept == big and len(swept) >= 5           # Net3's mains of 500 mm and more
    assert len(members) == 3 * 2 * len(swept) * 2
    assert len({m.member_id for m in members}) == len(members)
    m = members[0]
    assert m.spec.events[0].leak_area_m2 == m.params["events[0].leak_area_m2"]
    assert m.spec.policies.water.service_pressure_m == m.params["policies.water.service_pressure_m"]
    assert m.spec.events[-1].link == m.element and m.spec.events[-1].at == 1800
    assert {m.seed for m in members} == {1, 2}
    assert not m.spec.outputs.report and not m.spec.outputs.maps and m.spec.outputs.quantities == ("pressure",)
    # ids depend on the parameters and seed only: the same file gives the same ids
    assert [x.member_id for x in expand_members(load_scenario(path))] == \
        [x.member_id for x in members]
    # members that differ only in the swept element are copies of a validated sibling:
    # each is the scenario it would be if validated on its own
    for x in members[::7]:
        alone = type(x.spec).model_validate(x.spec.model_dump(
            by_alias=True, exclude_none=True, exclude={"source_path", "based_on", "ensemble"}))
        assert alone.events == x.spec.events and alone.seed == x.seed
        assert alone.events[-1].link == x.element
        assert alone.policies == x.spec.policies


def test_samples_are_drawn_from_the_sample_seed(tmp_path, net3_inp):
    text = """\
  sweep:
    - {{type: pipe_burst, at: 0s, pipe: {{each: pipe, sample: 10}}}}
  sample_seed: {seed}"""
    first = {m.element for m in expand_members(load_scenario(_write(tmp_path, net3_inp,
                                                                    text.format(seed=1))))}
    again = {m.element for m in expand_members(load_scenario(_write(tmp_path, net3_inp,
                                                                    text.format(seed=1))))}
    other = {m.element for m in expand_members(load_scenario(_write(tmp_path, net3_inp,
                                                                    text.format(seed=2))))}
    assert len(first) == 10 and first == again and first != other


def test_zone_selects_pipes_whose_middle_is_inside(tmp_path, net3_inp):
    import wntr

    wn = wntr.network.WaterNetworkModel(str(net3_inp))
    box = (0.0, 0.0, 30.0, 30.0)
    inside = set()
    for name, pipe in wn.pipes():
        (x1, y1), (x2, y2) = pipe.start_node.coordinates, pipe.end_node.coordinates
        vertices = [pipe.start_node.coordinates, *pipe.vertices, pipe.end_node.coordinates]
        if len(vertices) == 2 and box[0] <= (x1 + x2) / 2 <= box[2] and \
                box[1] <= (y1 + y2) / 2 <= box[3]:
            inside.add(name)
    members = expand_members(load_scenario(_write(tmp_path, net3_inp, """\
  sweep:
    - {type: pipe_burst, at: 0s, pipe: {each: pipe, zone: [0, 0, 30, 30]}}""")))
    assert inside and inside <= {m.element for m in members}


@pytest.mark.parametrize("ensemble, field, expected", [
    ("  grid: {}", "ensemble.grid", "at least one parameter path"),
    ("  grid:\n    policies.water.service_pressure_m: []", "ensemble.grid.policies.water."
     "service_pressure_m", "at least one value"),
    ("  grid:\n    policies.water.service_presure_m: [15]", "ensemble.grid.policies.water."
     "service_presure_m", "a path that exists"),
    ("  grid:\n    events[4].leak_area_m2: [0.1]", "ensemble.grid.events[4].leak_area_m2",
     "a path that exists"),
    ("  grid:\n    events[0].leak_area_m2: [0.01, -1]", "ensemble.grid.events[0].leak_area_m2",
     "a number > 0"),
    ("  grid:\n    policies.water: [1]", "ensemble.grid.policies.water", "a path to a value"),
    ("  sweep:\n    - {type: pipe_burst, at: 0s, pipe: {each: pipes}}",
     "ensemble.sweep[0].pipe.each", "one of"),
    ("  sweep:\n    - {type: pipe_burst, at: 0s, leak_area_m2: 0, pipe: {each: pipe}}",
     "ensemble.sweep[0].leak_area_m2", "a number > 0"),
    ("  sweep:\n    - {type: pipe_burst, at: 0s, pipe: {each: pipe, ids: ['nope']}}",
     "ensemble.sweep[0].pipe", "a selection of elements"),
    ("  sweep:\n    - {type: pipe_burst, at: 0s, pipe: {each: pipe, min_diameter_mm: 5000}}",
     "ensemble.sweep[0].pipe", "a selection of elements"),
    ("  replications: 3\n  seeds: [1]", "ensemble.replications", "either `seeds:`"),
    ("  grid:\n    seed: [1, 2]\n  max_members: 1", "ensemble", "at most max_members"),
])
def test_bad_ensembles_are_located(tmp_path, net3_inp, ensemble, field, expected):
    err = _error(tmp_path, net3_inp, ensemble)
    assert err.field == field, str(err)
    assert expected in str(err)
    assert err.line is not None and err.line >= 6 and err.path.name == "ens.yaml"


def test_a_scenario_without_ensemble_is_bad_input(tmp_path, net3_inp):
    path = tmp_path / "plain.yaml"
    path.write_text(f"name: plain\ncity: {{inp: {json.dumps(str(net3_inp))}}}\nhorizon: 1h\n")
    with pytest.raises(BadInput, match="no `ensemble:` section"):
        expand_members(load_scenario(path))
