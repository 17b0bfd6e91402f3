"""The stepped water layer against WNTR's file-based EpanetSimulator (the outside reference)."""

from __future__ import annotations

import numpy as np
import pytest
import wntr

from twin.networks.water import WaterLayer, epanet_pressures, leak_coefficient_si, load_inp
from twin.events import PipeBurst
from twin.twin import Twin


def _stepped_pressures(model, horizon_s, engine="owa", **kw):
    twin = Twin(seed=0)
    layer = twin.add_layer(WaterLayer(model, horizon_s=horizon_s, engine=engine, **kw))
    return twin, layer


@pytest.mark.parametrize("engine", ["owa", "wntr"])
def test_net3_pressures_equal_epanet_simulator(net3_inp, engine):
    wn = load_inp(net3_inp)
    ref = epanet_pressures(wn)
    twin, layer = _stepped_pressures(load_inp(net3_inp), wn.options.time.duration, engine)
    twin.run(wn.options.time.duration)
    ours = twin.recorder.wide("water", "pressure")
    assert list(ours.index) == list(ref.index)          # every report step, no more, no less
    diff = np.abs(ours[ref.columns].to_numpy() - ref.to_numpy())
    assert diff.max() < 1e-3
    assert ours.shape == (169, 97)                       # Net3: 7 days hourly, 97 nodes


def test_ltown_week_pressures_equal_epanet_simulator(ltown_inp):
    wn = load_inp(ltown_inp)
    assert wn.options.time.duration == 168 * 3600
    ref = epanet_pressures(wn)
    twin, layer = _stepped_pressures(load_inp(ltown_inp), 168 * 3600)
    twin.run(168 * 3600)
    ours = twin.recorder.wide("water", "pressure")
    assert ours.shape == (2017, 785)
    assert list(ours.index) == list(ref.index)
    diff = np.abs(ours[ref.columns].to_numpy() - ref.to_numpy())
    assert diff.max() < 1e-3
    # the pressures are not trivially equal: they vary over the week
    assert ours.std(axis=0).max() > 0.3


def test_leak_matches_wntr_emitter_model(net3_inp):
    """A leak from t=0 in our layer equals WNTR's split pipe + emitter run through EPANET."""
    area, cd, pipe, pos = 0.005, 0.75, "123", 0.5
    horizon = 12 * 3600
    ref_wn = load_inp(net3_inp)
    ref_wn.options.time.duration = horizon
    ref_wn = wntr.morph.split_pipe(ref_wn, pipe, f"{pipe}_B", "LK", split_at_point=pos)
    ref_wn.get_node("LK").emitter_coefficient = leak_coefficient_si(area, cd)
    ref = epanet_pressures(ref_wn)

    twin, layer = _stepped_pressures(load_inp(net3_inp), horizon, planned_bursts=[(pipe, pos)])
    twin.schedule([PipeBurst(time_s=0, pipe_id=pipe, leak_area_m2=area, position=pos,
                             discharge_coeff=cd)])
    twin.run(horizon)
    ours = twin.recorder.wide("water", "pressure")
    common = [c for c in ref.columns if c in ours.columns and c != "LK"]
    diff = np.abs(ours[common].to_numpy() - ref[common].to_numpy())
    assert diff.max() < 1e-2
    # and the leak pulled pressures down against the intact network
    intact = epanet_pressures(load_inp(net3_inp)).loc[: horizon]
    assert (intact[common].to_numpy() - ours[common].to_numpy()).max() > 0.5
    assert layer.kpis()["leak_volume_m3"] > 100


def _example_networks():
    import pathlib

    root = pathlib.Path(wntr.__file__).parent
    files = sorted((root / "library" / "networks").glob("*.inp"))
    files += sorted((root / "tests" / "networks_for_testing").glob("*.inp"))
    # files that are malformed on purpose, or that EPANET itself refuses (cv_controls: error 223)
    broken = {"bad_syntax.inp", "bad_times.inp", "bad_values.inp", "cv_controls.inp"}
    return [f for f in files if f.name not in broken]


@pytest.mark.parametrize("inp", _example_networks(), ids=lambda p: p.name)
def test_every_example_network_matches_epanet_simulator(inp):
    """Controls, rules, valves, PDA, emitters, unit systems, steady state: WNTR's example and
    test networks stepped by the layer (default engine) agree with EpanetSimulator."""
    from twin.water_run import simulate_inp

    result = simulate_inp(inp, hours=None if "Net6" not in inp.name else 24, check=True)
    assert result["compared_steps"] == result["reference_steps"] == result["steps"]
    assert result["max_abs_pressure_diff_vs_epanet_m"] < 1e-3
