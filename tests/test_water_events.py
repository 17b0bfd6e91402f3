"""Event handling that a review found wrong once: overlapping and repeated events, controls
that fire while a link is held, valves that must regulate again, units of pump power."""

from __future__ import annotations

import numpy as np
import pytest
import wntr

from twin.events import (Alert, DemandSurge, FireFlow, LeakStopped, PipeBurst, PumpOutage,
                         ValveClosed, ValveOpened)
from twin.networks.water import WaterLayer, load_inp
from twin.twin import Twin

H = 3600


def _run(inp, events=(), horizon=12 * H, **kw):
    twin = Twin(seed=0)
    layer = twin.add_layer(WaterLayer(load_inp(inp), horizon_s=horizon,
                                      record=("pressure", "demand", "flow", "head", "tank_level",
                                              "energy"), **kw))
    twin.schedule(list(events))
    twin.run(horizon)
    return twin, layer


def test_pump_power_is_kw_in_us_units(net3_inp):
    """EN_ENERGY is kW in every unit system: check P = rho g Q H / eta on Net3 (GPM, 75 %)."""
    twin, _ = _run(net3_inp, horizon=6 * H)
    wn = load_inp(net3_inp)
    q = twin.recorder.wide("water", "flow")
    h = twin.recorder.wide("water", "head")
    power = twin.recorder.wide("water", "pump_power")
    t = 3 * H
    for pump in ("10", "335"):
        link = wn.get_link(pump)
        if abs(q.loc[t, pump]) < 1:
            continue
        lift = h.loc[t, link.end_node_name] - h.loc[t, link.start_node_name]
        expected_kw = 9.81 * q.loc[t, pump] / 1000 * lift / 0.75
        assert power.loc[t, pump] == pytest.approx(expected_kw, rel=1e-3)


def test_control_valve_regulates_again_after_reopening(ltown_inp):
    base, _ = _run(ltown_inp, horizon=6 * H)
    twin, _ = _run(ltown_inp, [ValveClosed(time_s=H, link_id="PRV-1"),
                               ValveOpened(time_s=2 * H, link_id="PRV-1")], horizon=6 * H)
    p0, p = base.recorder.wide("water", "pressure"), twin.recorder.wide("water", "pressure")
    assert (p0.loc[1.5 * H] - p.loc[1.5 * H]).abs().max() > 1          # closing mattered
    assert (p.loc[5 * H] - p0.loc[5 * H]).abs().max() < 0.05           # regulating again


def test_two_leaks_on_one_node_are_repaired_one_by_one(net3_inp):
    # pipes 105 and 117 share node 105; unplanned bursts near it land on that node
    wn = load_inp(net3_inp)
    assert "105" in (wn.get_link("117").start_node_name, wn.get_link("117").end_node_name)
    both = [PipeBurst(time_s=H, pipe_id="105", leak_area_m2=0.003, position=0.0 if
                      wn.get_link("105").start_node_name == "105" else 1.0),
            PipeBurst(time_s=H, pipe_id="117", leak_area_m2=0.003, position=0.0 if
                      wn.get_link("117").start_node_name == "105" else 1.0)]
    only_117, _ = _run(net3_inp, both[1:], horizon=4 * H)
    twin, layer = _run(net3_inp, both + [LeakStopped(time_s=2 * H, pipe_id="105")],
                       horizon=4 * H)
    d, d117 = (t.recorder.wide("water", "demand")["105"] for t in (twin, only_117))
    assert d.loc[3 * H] == pytest.approx(d117.loc[3 * H], rel=0.02)   # 117's leak goes on
    assert d.loc[H] > d117.loc[H] + 5                                  # both leaked before
    assert len(layer.leaks) == 1


def test_second_burst_on_a_pipe_keeps_its_own_repair_time(net3_inp):
    first = PipeBurst(time_s=H, pipe_id="123", leak_area_m2=0.002)
    second = PipeBurst(time_s=1.5 * H, pipe_id="123", leak_area_m2=0.002)
    twin, layer = _run(net3_inp, [first, second, LeakStopped(time_s=2 * H, pipe_id="123",
                                                             started_at_s=H)],
                       horizon=6 * H, hydraulic_step_s=900, planned_bursts=[("123", 0.5)])
    node = layer.leak_node_ids()["123"]
    d = twin.recorder.wide("water", "demand")[node]
    assert d.loc[1.75 * H] > 1.6 * d.loc[1.25 * H]      # two holes
    assert d.loc[5 * H] > 0.3 * d.loc[1.25 * H]         # the second still leaks after 2 h
    assert len(layer.leaks) == 1 and len(layer.closed_leaks) == 1
    twin, layer = _run(net3_inp, [first, second, LeakStopped(time_s=2 * H, pipe_id="123")],
                       horizon=6 * H, planned_bursts=[("123", 0.5)])
    assert not layer.leaks                               # a repair without a start: every hole


def test_pump_outage_ends_in_the_state_its_controls_prescribe(net3_inp):
    # Net3's pump 10 closes at 15 h by a timer control that falls inside the outage
    base, _ = _run(net3_inp, horizon=20 * H)
    twin, _ = _run(net3_inp, [PumpOutage(time_s=14 * H, pump_id="10", duration_s=2 * H)],
                   horizon=20 * H)
    q0, q = (t.recorder.wide("water", "flow")["10"].abs() for t in (base, twin))
    assert q0.loc[17 * H:].max() < 1e-6 and q.loc[17 * H:].max() < 1e-6


def test_overlapping_outages_and_closures_last_until_the_last_one_ends(net3_inp):
    twin, _ = _run(net3_inp, [PumpOutage(time_s=2 * H, pump_id="10", duration_s=4 * H),
                              PumpOutage(time_s=4 * H, pump_id="10", duration_s=6 * H),
                              ValveClosed(time_s=H, link_id="123"),
                              ValveClosed(time_s=2 * H, link_id="123"),
                              ValveOpened(time_s=3 * H, link_id="123"),
                              ValveOpened(time_s=5 * H, link_id="123")], horizon=14 * H)
    q = twin.recorder.wide("water", "flow")
    assert q.loc[2 * H:9 * H, "10"].abs().max() < 1e-6        # held until 10 h
    assert q.loc[11 * H:, "10"].abs().max() > 1                # then the controls run it
    assert q.loc[H:4 * H, "123"].abs().max() < 1e-6            # closed until the second opening
    assert q.loc[5 * H:, "123"].abs().min() > 1


def test_a_closure_holds_against_the_files_controls(net3_inp):
    twin, _ = _run(net3_inp, [ValveClosed(time_s=0, link_id="10")], horizon=4 * H)
    assert twin.recorder.wide("water", "flow")["10"].abs().max() < 1e-6


def test_closing_a_pipe_with_a_leak_isolates_the_leak(net3_inp):
    twin, layer = _run(net3_inp, [PipeBurst(time_s=H, pipe_id="123", leak_area_m2=0.004),
                                  ValveClosed(time_s=2 * H, link_id="123")],
                       horizon=4 * H, planned_bursts=[("123", 0.5)])
    d = twin.recorder.wide("water", "demand")[layer.leak_node_ids()["123"]]
    assert d.loc[H] > 10
    assert d.loc[3 * H] == pytest.approx(0.0, abs=1e-3)        # both halves closed


def test_fire_flows_overlap_and_survive_a_surge(net3_inp):
    base, _ = _run(net3_inp, horizon=7 * H)
    twin, _ = _run(net3_inp, [FireFlow(time_s=H, node_id="123", flow_lps=30, duration_s=3 * H),
                              FireFlow(time_s=2 * H, node_id="123", flow_lps=20, duration_s=H),
                              DemandSurge(time_s=H, factor=2.0, duration_s=2 * H,
                                          nodes=("123",)),
                              FireFlow(time_s=5 * H, node_id="123", flow_lps=25, duration_s=H)],
                   horizon=7 * H)
    d0, d = (t.recorder.wide("water", "demand")["123"] for t in (base, twin))
    extra = d - d0
    assert extra.loc[2 * H] == pytest.approx(30 + 20 + d0.loc[2 * H], rel=1e-6)   # x2 + fires
    assert extra.loc[3 * H] == pytest.approx(30, rel=1e-6)     # surge and short fire over
    assert extra.loc[4 * H] == pytest.approx(0, abs=1e-6)
    assert extra.loc[5 * H] == pytest.approx(25, rel=1e-6)


def test_fire_flow_on_a_tank_is_refused(net3_inp):
    twin, layer = _run(net3_inp, [FireFlow(time_s=H, node_id="1", flow_lps=30)], horizon=2 * H)
    alerts = [e for e in twin.bus.log if isinstance(e, Alert)]
    assert len(alerts) == 1 and "unknown junction '1'" in alerts[0].message


def test_events_between_hydraulic_steps_take_effect_on_time(net3_inp):
    """Net3 steps hourly; a 20-minute leak at 1:30 still happens, at 1:30."""
    twin, layer = _run(net3_inp, [PipeBurst(time_s=1.5 * H, pipe_id="123", leak_area_m2=0.004),
                                  LeakStopped(time_s=1.5 * H + 1200, pipe_id="123")],
                       horizon=4 * H, planned_bursts=[("123", 0.5)])
    k = layer.kpis()
    assert k["leak_peak_lps"] > 10
    expected = k["leak_peak_lps"] * 1200 / 1000
    assert k["leak_volume_m3"] == pytest.approx(expected, rel=0.1)
    flood = [e for e in twin.bus.log if e.kind == "StreetFlooded"]
    assert flood and flood[0].time_s == 1.5 * H


def test_long_pipe_ids_and_a_burst_on_a_pump(tmp_path, net3_inp):
    long_id = "P" * 31
    inp = tmp_path / "long.inp"
    inp.write_text(f"""[JUNCTIONS]
 J1 10 5
 J2 10 5
[RESERVOIRS]
 R1 60
[PIPES]
 {long_id} R1 J1 500 200 100 0 Open
 {"Q" * 29}A J1 J2 500 150 100 0 Open
 {"Q" * 29}B J1 J2 500 150 100 0 Open
[OPTIONS]
 Units LPS
[TIMES]
 Duration 2:00
[COORDINATES]
 J1 0 0
 J2 100 0
 R1 -100 0
[END]
""")
    pipes = [long_id, "Q" * 29 + "A", "Q" * 29 + "B"]
    twin, layer = _run(inp, [PipeBurst(time_s=H, pipe_id=p, leak_area_m2=0.001) for p in pipes],
                       horizon=2 * H, planned_bursts=[(p, 0.5) for p in pipes])
    assert len(set(layer.leak_node_ids().values())) == 3          # three distinct leak nodes
    assert layer.kpis()["leak_volume_m3"] > 0
    twin, layer = _run(net3_inp, [PipeBurst(time_s=H, pipe_id="10")], horizon=2 * H,
                       planned_bursts=[("10", 0.5)])              # 10 is a pump: never split
    assert not layer.leak_node_ids()
    assert any(isinstance(e, Alert) for e in twin.bus.log)


def test_tank_kpis_include_the_last_step(net3_inp):
    twin, layer = _run(net3_inp, horizon=3 * H)
    levels = twin.recorder.wide("water", "tank_level")
    assert layer.kpis()["tank_1_max_level_m"] == pytest.approx(levels["1"].max(), abs=1e-9)


def test_bursts_need_an_orifice_emitter_exponent(tmp_path, net3_inp):
    wn = load_inp(net3_inp)
    wn.options.hydraulic.emitter_exponent = 1.0
    path = tmp_path / "exp1.inp"
    wntr.network.write_inpfile(wn, str(path))
    twin, layer = _run(path, [PipeBurst(time_s=H, pipe_id="123")], horizon=2 * H)
    alerts = [e for e in twin.bus.log if isinstance(e, Alert)]
    assert alerts and "emitter exponent" in alerts[0].message
    assert layer.kpis()["leak_volume_m3"] == 0
    assert np.isfinite(layer.kpis()["min_pressure_m"])


def test_scenario_repairs_end_their_own_burst(tmp_path, net3_inp):
    from twin.run import run
    from twin.scenario import load_scenario

    path = tmp_path / "two.yaml"
    path.write_text(f"""name: two
city: {{inp: {net3_inp}}}
horizon: 6h
step: 15min
events:
  - {{at: 1h, type: pipe_burst, pipe: '123', leak_area_m2: 0.002, duration: 1h}}
  - {{at: 1h30min, type: pipe_burst, pipe: '123', leak_area_m2: 0.002, duration: 3h30min}}
""")
    res = run(load_scenario(path))
    ev = res.events
    assert list(ev[ev["kind"] == "LeakStopped"]["time_s"]) == [2 * H, 5 * H]
    # leaking from 1 h to 5 h, twice the hole between 1.5 h and 2 h
    assert res.kpis["water"]["leak_volume_m3"] > 0
    p = res.wide("water", "demand")
    node = [c for c in p.columns if c.startswith("LK")][0]
    assert p.loc[4 * H, node] > 1 and p.loc[5.5 * H, node] == pytest.approx(0, abs=1e-6)


# --- second review -------------------------------------------------------------------------
def test_throttle_then_close_then_open_reopens(net3_inp):
    base, _ = _run(net3_inp, horizon=5 * H)
    twin, layer = _run(net3_inp, [ValveClosed(time_s=H, link_id="101", setting=0.5),
                                  ValveClosed(time_s=2 * H, link_id="101"),
                                  ValveOpened(time_s=3 * H, link_id="101")], horizon=5 * H)
    q0, q = (t.recorder.wide("water", "flow")["101"].abs() for t in (base, twin))
    assert q.loc[2 * H] == pytest.approx(0, abs=1e-6)
    assert q.loc[4 * H] == pytest.approx(q0.loc[4 * H], rel=0.05)
    assert not layer._holds and not layer._throttled


TCV_NET = """[JUNCTIONS]
 J1 0 0
 J2 0 5
[RESERVOIRS]
 R1 50
[PIPES]
 P1 R1 J1 100 200 100 0 Open
[VALVES]
 V1 J1 J2 200 TCV 5 0
[CONTROLS]
 LINK V1 20 AT TIME 2
[OPTIONS]
 Units LPS
[TIMES]
 Duration 4:00
[END]
"""


def test_a_held_valve_stays_closed_when_its_setting_control_fires(tmp_path):
    inp = tmp_path / "tcv.inp"
    inp.write_text(TCV_NET)
    twin, _ = _run(inp, [ValveClosed(time_s=H, link_id="V1")], horizon=4 * H)
    q = twin.recorder.wide("water", "flow")["V1"]
    assert q.loc[0] > 1 and q.loc[H:].abs().max() < 1e-6     # the 2 h control does not open it


def test_a_fixed_open_prv_is_open_again_after_a_closure(tmp_path, ltown_inp):
    from wntr.network import LinkStatus

    wn = load_inp(ltown_inp)
    wn.get_link("PRV-1").initial_status = LinkStatus.Open
    inp = tmp_path / "open_prv.inp"
    wntr.network.write_inpfile(wn, str(inp))
    base, _ = _run(inp, horizon=5 * H)
    twin, _ = _run(inp, [ValveClosed(time_s=H, link_id="PRV-1"),
                         ValveOpened(time_s=2 * H, link_id="PRV-1")], horizon=5 * H)
    p0, p = (t.recorder.wide("water", "pressure") for t in (base, twin))
    assert (p.loc[4 * H] - p0.loc[4 * H]).abs().max() < 0.05


def test_fork_during_an_outage_keeps_a_timer_control_that_fell_due(net3_inp):
    from tests.test_water_fork import _straight_and_forked

    events = [PumpOutage(time_s=0.5 * H, pump_id="10", duration_s=2.5 * H)]
    ref, ours, _ = _straight_and_forked(net3_inp, 2 * H, 8 * H, events=events)
    assert np.abs(ours.to_numpy() - ref.to_numpy()).max() < 1e-3


def test_refused_closures_and_throttles(tmp_path, ltown_inp, net3_inp):
    wn = load_inp(net3_inp)
    wn.get_link("101").check_valve = True
    cv_inp = tmp_path / "cv.inp"
    wntr.network.write_inpfile(wn, str(cv_inp))
    _, layer = _run(cv_inp, horizon=H)
    problems = layer.check_event(ValveClosed(time_s=0, link_id="101"))
    assert problems and "check valve" in problems[0]
    assert "only pipes can be throttled" in layer.check_event(
        ValveClosed(time_s=0, link_id="335", setting=0.1))[0]
    assert "factor > 0" in layer.check_event(DemandSurge(time_s=0, factor=0.0))[0]


def test_burst_beside_a_tank_leaks_at_the_junction_end(net3_inp):
    wn = load_inp(net3_inp)
    tank_pipe = next(n for n, link in wn.pipes() if link.start_node_name == "1"
                     or link.end_node_name == "1")
    link = wn.get_link(tank_pipe)
    near_tank = 0.0 if link.start_node_name == "1" else 1.0
    junction = link.end_node_name if near_tank == 0.0 else link.start_node_name
    base, _ = _run(net3_inp, horizon=3 * H)
    twin, layer = _run(net3_inp, [PipeBurst(time_s=H, pipe_id=tank_pipe, leak_area_m2=0.002,
                                            position=near_tank)], horizon=3 * H)
    d0, d = (t.recorder.wide("water", "demand")[junction] for t in (base, twin))
    assert d.loc[2 * H] > d0.loc[2 * H] + 5                 # the junction end leaks
    assert layer.kpis()["leak_volume_m3"] > 0


def test_a_planned_split_changes_nothing_until_the_burst(net3_inp):
    wn = load_inp(net3_inp)
    wn.get_link("101").minor_loss = 50.0
    base = Twin()
    base.add_layer(WaterLayer(wn, horizon_s=4 * H, record=("pressure",)))
    base.run(4 * H)
    split = Twin()
    split.add_layer(WaterLayer(wn, horizon_s=4 * H, record=("pressure",),
                               planned_bursts=[("101", 0.5)]))
    split.run(4 * H)
    p0, p = (t.recorder.wide("water", "pressure") for t in (base, split))
    assert np.abs(p[p0.columns].to_numpy() - p0.to_numpy()).max() < 1e-3


def test_an_all_node_surge_leaves_fire_flows_alone(net3_inp):
    base, _ = _run(net3_inp, [DemandSurge(time_s=H, factor=2.0)], horizon=3 * H)
    twin, _ = _run(net3_inp, [DemandSurge(time_s=H, factor=2.0),
                              FireFlow(time_s=H, node_id="123", flow_lps=30, duration_s=H)],
                   horizon=3 * H)
    d0, d = (t.recorder.wide("water", "demand")["123"] for t in (base, twin))
    assert d.loc[H] - d0.loc[H] == pytest.approx(30, rel=1e-6)


def test_an_event_scheduled_during_the_run_is_applied_on_time(net3_inp):
    twin = Twin()
    twin.add_layer(WaterLayer(load_inp(net3_inp), horizon_s=4 * H, record=("flow",)))
    twin.run(H)
    twin.schedule([PumpOutage(time_s=2 * H, pump_id="335")])
    twin.run(4 * H)
    assert twin.recorder.wide("water", "flow").loc[2 * H, "335"] == pytest.approx(0, abs=1e-6)


def test_a_zero_duration_ends_at_once(net3_inp):
    base, _ = _run(net3_inp, horizon=3 * H)
    twin, _ = _run(net3_inp, [FireFlow(time_s=H, node_id="123", flow_lps=30, duration_s=0)],
                   horizon=3 * H)
    d0, d = (t.recorder.wide("water", "demand")["123"] for t in (base, twin))
    assert d.loc[2 * H] == pytest.approx(d0.loc[2 * H], abs=1e-6)


@pytest.mark.parametrize("engine", ["wntr", "owa"])
def test_an_unplanned_leak_stops_at_once_when_repaired(net3_inp, engine):
    def node_20(events):
        twin, _ = _run(net3_inp, events, horizon=5 * H, engine=engine, hydraulic_step_s=900)
        return twin.recorder.wide("water", "demand")["20"]

    d0 = node_20([])
    d = node_20([PipeBurst(time_s=1.5 * H, pipe_id="20", position=0.9, leak_area_m2=0.003),
                 LeakStopped(time_s=3.5 * H, pipe_id="20")])
    assert (d - d0).loc[3 * H] > 10
    assert (d - d0).loc[3.5 * H:].abs().max() < 1e-3
