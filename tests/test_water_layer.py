"""Water layer events and KPIs on Net3 (WNTR's bundled example network)."""

from __future__ import annotations


import numpy as np
import pytest

from twin.events import (DemandSurge, FireFlow, LeakStopped, PipeBurst, PumpOutage,
                         StreetFlooded, ValveClosed, ValveOpened)
from twin.networks.water import InpError, WaterLayer, leak_coefficient_si, load_inp
from twin.twin import Twin

H = 3600


def _twin(net3_inp, horizon=24 * H, **kw):
    twin = Twin(seed=0)
    layer = twin.add_layer(WaterLayer(load_inp(net3_inp), horizon_s=horizon,
                                      record=("pressure", "demand", "flow", "tank_level", "energy"),
                                      **kw))
    return twin, layer


@pytest.mark.parametrize("engine", ["owa", "wntr"])
def test_burst_leak_flow_volume_and_flood_event(net3_inp, engine):
    twin, layer = _twin(net3_inp, planned_bursts=[("123", 0.4)], engine=engine)
    floods = []
    twin.bus.subscribe(StreetFlooded, floods.append)
    twin.schedule([PipeBurst(time_s=6 * H, pipe_id="123", leak_area_m2=0.004, position=0.4),
                   LeakStopped(time_s=10 * H, pipe_id="123")])
    twin.run(24 * H)
    p = twin.recorder.wide("water", "pressure")
    leak_node = layer.leak_node_ids()["123"]
    leak_p = p[leak_node]
    c = leak_coefficient_si(0.004)
    expected_lps = c * np.sqrt(leak_p.loc[6 * H:9 * H].clip(lower=0)) * 1000
    # hourly steps: volume = sum of step flows x 1 h (the leak runs 6 h..10 h)
    assert layer.kpis()["leak_volume_m3"] == pytest.approx(
        float(expected_lps.sum()) * 3.6, rel=1e-6)
    assert len(floods) == 1 and floods[0].time_s == 6 * H
    assert floods[0].cause_id == twin.bus.log[0].event_id
    assert floods[0].flow_lps == pytest.approx(float(expected_lps.iloc[0]), rel=1e-6)
    # the leak node's outflow shows in the recorded demand only while the leak is open
    d = twin.recorder.wide("water", "demand")[leak_node]
    assert d.loc[7 * H] > 1 and d.loc[12 * H] == pytest.approx(0, abs=1e-6)


def test_unplanned_burst_goes_to_nearer_end_node(net3_inp):
    twin, layer = _twin(net3_inp)
    wn = load_inp(net3_inp)
    start = wn.get_link("123").start_node_name
    twin.schedule([PipeBurst(time_s=2 * H, pipe_id="123", leak_area_m2=0.002, position=0.1)])
    twin.run(4 * H)
    d = twin.recorder.wide("water", "demand")[start]
    assert d.loc[3 * H] > d.loc[1 * H] + 5      # the end node now also discharges the leak
    assert layer.kpis()["leak_volume_m3"] > 0


@pytest.mark.parametrize("engine", ["owa", "wntr"])
def test_valve_closure_throttle_and_reopening(net3_inp, engine):
    def flows(events):
        twin, _ = _twin(net3_inp, engine=engine)
        twin.schedule(events)
        twin.run(6 * H)
        return twin.recorder.wide("water", "flow")["101"].abs()

    q0 = flows([])
    closed = flows([ValveClosed(time_s=2 * H, link_id="101", setting=0.0),
                    ValveOpened(time_s=4 * H, link_id="101")])
    throttled = flows([ValveClosed(time_s=2 * H, link_id="101", setting=0.05),
                       ValveOpened(time_s=4 * H, link_id="101")])
    assert q0.loc[3 * H] > 10
    assert closed.loc[3 * H] == pytest.approx(0.0, abs=1e-6)
    assert closed.loc[5 * H] > 10                              # open again
    assert 0 < throttled.loc[3 * H] < 0.9 * q0.loc[3 * H]      # throttled: less flow, not none
    assert throttled.loc[5 * H] == pytest.approx(q0.loc[5 * H], rel=0.05)   # fully open again


@pytest.mark.parametrize("engine", ["owa", "wntr"])
def test_pump_outage_overrides_controls_then_recovers(net3_inp, engine):
    twin, layer = _twin(net3_inp, engine=engine)
    twin.schedule([PumpOutage(time_s=1 * H, pump_id="10", duration_s=5 * H)])
    twin.run(12 * H)
    q = twin.recorder.wide("water", "flow")["10"]
    assert (q.loc[1 * H:5 * H].abs() < 1e-6).all()
    ref_twin, _ = _twin(net3_inp, engine=engine)
    ref_twin.run(12 * H)
    q_ref = ref_twin.recorder.wide("water", "flow")["10"]
    assert q_ref.loc[1 * H:5 * H].abs().min() > 1       # the pump runs in the baseline
    assert q.loc[6 * H:].abs().max() > 1                 # and runs again after the outage


def test_demand_surge_scales_all_demands(net3_inp):
    twin, layer = _twin(net3_inp)
    twin.schedule([DemandSurge(time_s=2 * H, factor=1.5, duration_s=2 * H)])
    twin.run(6 * H)
    ref, _ = _twin(net3_inp)
    ref.run(6 * H)
    d, d0 = (t.recorder.wide("water", "demand") for t in (twin, ref))
    junctions = [n for n in d.columns if n in load_inp(net3_inp).junction_name_list]
    ratio = d.loc[3 * H, junctions].sum() / d0.loc[3 * H, junctions].sum()
    assert ratio == pytest.approx(1.5, rel=1e-6)
    after = d.loc[5 * H, junctions].sum() / d0.loc[5 * H, junctions].sum()
    assert after == pytest.approx(1.0, rel=1e-6)


def test_fire_flow_adds_demand_for_its_duration(net3_inp):
    twin, layer = _twin(net3_inp)
    twin.schedule([FireFlow(time_s=2 * H, node_id="163", flow_lps=40.0, duration_s=2 * H)])
    twin.run(6 * H)
    ref, _ = _twin(net3_inp)
    ref.run(6 * H)
    d, d0 = (t.recorder.wide("water", "demand")["163"] for t in (twin, ref))
    assert d.loc[3 * H] - d0.loc[3 * H] == pytest.approx(40.0, rel=1e-6)
    assert d.loc[5 * H] == pytest.approx(d0.loc[5 * H], abs=1e-9)


def test_kpis_are_consistent_with_recorded_series(net3_inp):
    twin, layer = _twin(net3_inp, service_pressure_m=30.0)
    twin.run(24 * H)
    k = layer.kpis()
    p = twin.recorder.wide("water", "pressure")
    wn = load_inp(net3_inp)
    assert k["min_pressure_m"] == pytest.approx(p[wn.junction_name_list].min().min(), abs=1e-9)
    levels = twin.recorder.wide("water", "tank_level")
    assert k["tank_1_max_level_m"] == pytest.approx(levels["1"].max(), abs=1e-6)
    power = twin.recorder.wide("water", "pump_power")
    assert k["pump_energy_kwh"] == pytest.approx(power.iloc[:-1].sum().sum(), rel=0.05)
    assert 0 < k["water_service_availability"] <= 1


def test_unknown_element_in_event_is_refused(net3_inp):
    twin, layer = _twin(net3_inp)
    problems = twin.check_events([PipeBurst(time_s=0, pipe_id="nope"),
                                  PumpOutage(time_s=0, pump_id="123"),
                                  PipeBurst(time_s=0, pipe_id="10")])   # 10 is a pump
    assert problems == ["unknown pipe 'nope' in the water network",
                        "unknown pump '123' in the water network",
                        "unknown pipe '10' in the water network"]


def test_malformed_inp_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.inp"
    bad.write_text("[JUNCTIONS]\n J1  ten  5\n[END]\n")
    with pytest.raises(InpError, match="bad.inp"):
        load_inp(bad)
    with pytest.raises(InpError, match="not found"):
        load_inp(tmp_path / "missing.inp")


@pytest.mark.parametrize("engine", ["owa", "wntr"])
def test_pump_outage_overrides_rules_on_the_demo_network(engine):
    """The demo network switches its pumps by rules on tank levels: an outage beats them."""
    from twin.city.generator import generate_city

    def flows(events):
        twin = Twin(city=generate_city(population=20_000, seed=1), seed=0)
        twin.add_layer(WaterLayer(None, horizon_s=24 * H, hydraulic_step_s=900, engine=engine,
                                  record=("flow", "tank_level")))
        twin.schedule(events)
        twin.run(24 * H)
        return twin.recorder.wide("water", "flow"), twin.recorder.wide("water", "tank_level")

    q0, lvl0 = flows([])
    q, lvl = flows([PumpOutage(time_s=0, pump_id="pump1", duration_s=12 * H),
                    PumpOutage(time_s=0, pump_id="pump2", duration_s=12 * H)])
    assert q0[["pump1", "pump2"]].loc[:12 * H].abs().max().max() > 1    # pumps run normally
    assert q[["pump1", "pump2"]].loc[:12 * H - 900].abs().max().max() < 1e-6
    assert lvl.iloc[:, 0].loc[12 * H] < lvl0.iloc[:, 0].loc[12 * H]     # the tower drains
    assert q[["pump1", "pump2"]].loc[12 * H:].abs().max().max() > 1     # and they run again


def test_event_on_an_unknown_element_is_refused_on_the_record(net3_inp):
    from twin.events import Alert

    twin, layer = _twin(net3_inp)
    alerts = []
    twin.bus.subscribe(Alert, alerts.append)
    twin.schedule([PipeBurst(time_s=H, pipe_id="no-such-pipe", leak_area_m2=0.01)])
    twin.run(3 * H)                                     # the run goes on
    assert len(alerts) == 1 and alerts[0].severity == "error"
    assert "unknown pipe 'no-such-pipe'" in alerts[0].message
    assert alerts[0].cause_id == twin.bus.log[0].event_id
    assert layer.kpis()["leak_volume_m3"] == 0


def test_the_callers_model_is_left_unchanged(net3_inp):
    wn = load_inp(net3_inp)
    before = (wn.options.time.duration, wn.options.time.hydraulic_timestep)
    twin = Twin()
    twin.add_layer(WaterLayer(wn, horizon_s=2 * H, hydraulic_step_s=900, record=("pressure",)))
    twin.run(2 * H)
    assert (wn.options.time.duration, wn.options.time.hydraulic_timestep) == before
    assert len(twin.recorder.wide("water", "pressure")) == 9      # every 15 min for 2 h
