"""The demo city's combined sewer: a valid SWMM model, storms, control strategies, events."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from twin.city.generator import generate_city
from twin.engines.swmm import SwmmRun
from twin.errors import BadInput
from twin.events import (ConduitBlocked, LeakStopped, PipeBurst, Rainfall, SewerPumpOutage,
                         StreetFlooded)
from twin.networks.rainfall import design_storm
from twin.networks.sewer import SewerLayer
from twin.networks.sewer_control import ControlLayout
from twin.networks.sewer_model import build_sewer_model
from twin.twin import Twin

START = dt.datetime(2026, 6, 15, 6)


@pytest.fixture(scope="module")
def city():
    return generate_city(50_000, 0)


def _storm_run(city, strategy, events=(), hours=10.0):
    twin = Twin(city=city, start=START)
    layer = twin.add_layer(SewerLayer(None, strategy=strategy, horizon_s=hours * 3600,
                                      record=("depth", "flow")))
    storm = design_storm(2, 7200, 300)
    twin.schedule([Rainfall(time_s=3600, source="test", intensities_mm_h=tuple(storm)), *events])
    try:
        twin.run(hours * 3600)
        kpis = layer.kpis()
        summary = layer.finish()
        flows = twin.recorder.wide("sewer", "flow")
        log = twin.bus.log
    finally:
        twin.close()
    return kpis, summary, flows, log


def test_demo_sewer_is_a_valid_swmm_model(city, tmp_path):
    model = build_sewer_model(city, start=START, horizon_s=3600)
    path = model.write(tmp_path / "city.inp")
    run = SwmmRun(path)
    try:
        types = dict(zip(run.link_ids, run.link_types))
        assert {"CSO_T1", "CSO_T2", "CSO_PS"} <= {l for l, t in types.items() if t == 3}  # weirs
        assert {"G1", "G2"} <= {l for l, t in types.items() if t == 2}                     # gates
        assert types["P1"] == 1                                                           # pump
        assert {"T1", "T2", "PS"} <= {run.node_ids[i] for i in np.flatnonzero(run.node_types == 2)}
        assert len(run.subcatch_ids) == len(city.blocks)
        while run.advance(900) > 0:
            pass
        summary = run.finish()
    finally:
        run.close()
    # an hour of dry weather: everything goes to the plant, nothing to the river
    assert summary.total_outfall_volume["WWTP"] > 0.005         # 10^6 ltr, wet well filling first
    assert all(summary.total_outfall_volume[o] == 0 for o in model.cso_outfalls)
    assert summary.flow_routing_continuity_error_pct is not None   # (a dry first hour from
    # empty pipes has a large relative error on tiny volumes; storms below stay under 2 %)
    # the sewer runs downhill: every street conduit ends lower than it starts
    inv = model.nodes["invert_m"]
    street = model.links[model.links.index.str.startswith("S")]
    assert (inv[street["from_node"]].to_numpy() > inv[street["to_node"]].to_numpy()).all()


def test_equal_filling_reduces_overflow_of_a_2_year_storm(city):
    base, base_sum, _, base_log = _storm_run(city, "uncontrolled")
    ef, ef_sum, flows, _ = _storm_run(city, "equal_filling")
    rb, _, _, _ = _storm_run(city, "rule_based")
    # measured here: 60,960 m3 uncontrolled, 49,476 m3 equal filling (-19 %)
    assert base["cso_volume_m3"] > 40_000
    assert ef["cso_volume_m3"] < 0.9 * base["cso_volume_m3"]
    # not by sending it to the streets instead: overflow + flooding is lower too
    assert ef["cso_volume_m3"] + ef["flooding_volume_m3"] < \
        base["cso_volume_m3"] + base["flooding_volume_m3"]
    assert rb["cso_volume_m3"] < base["cso_volume_m3"]
    for k in (base, ef, rb):
        assert abs(k["flow_routing_continuity_error_pct"]) < 2.0
        assert abs(k["runoff_continuity_error_pct"]) < 0.5
    # the plant takes its capacity in both; SWMM's own report agrees with the layer
    assert ef["treated_volume_m3"] == pytest.approx(base["treated_volume_m3"], rel=0.02)
    assert sum(base_sum.total_outfall_volume[o] for o in ("RIVER_T1", "RIVER_T2", "RIVER_PS")) \
        * 1000 == pytest.approx(base["cso_volume_m3"], rel=1e-3)
    # the gates were throttled during the storm
    assert flows["G1"].max() > 0 and (flows["G2"] < flows["G2"].max() * 0.1).any()
    spills = [e for e in base_log if e.kind == "OverflowSpill"]
    assert spills and spills[0].outfall_id == "RIVER_PS" and spills[0].time_s > 3600


def test_pump_outage_and_blocked_conduit(city):
    out, _, flows, _ = _storm_run(city, "uncontrolled", hours=4, events=[
        SewerPumpOutage(time_s=1800, source="test", pump_id="P1", duration_s=3600),
        ConduitBlocked(time_s=0, source="test", conduit_id="C_T1", capacity_fraction=0.2)])
    p1 = flows["P1"]
    assert (p1[(p1.index > 1800) & (p1.index <= 5400)] == 0).all()
    assert p1[p1.index > 6000].max() > 100          # back on after the hour
    base, _, base_flows, _ = _storm_run(city, "uncontrolled", hours=4)
    assert flows["C_T1"].max() < 0.5 * base_flows["C_T1"].max()
    assert out["treated_volume_m3"] < base["treated_volume_m3"]


def test_burst_water_goes_to_the_nearest_inlet(city):
    twin = Twin(city=city, start=START)
    layer = twin.add_layer(SewerLayer(None, horizon_s=3 * 3600, record=("flow",)))
    x, y = city.intersections.geometry.iloc[40].x, city.intersections.geometry.iloc[40].y
    burst = PipeBurst(time_s=600, source="test", pipe_id="s7")
    try:
        twin.start()
        twin.run(300)
        ev = twin.publish(burst)
        twin.publish(StreetFlooded(time_s=600, source="water", cause_id=ev.event_id, x=x, y=y,
                                   flow_lps=80.0))
        assert layer.burst_inflows_lps() == {city.intersections.index[40]: 80.0}
        twin.run(3600)
        twin.publish(LeakStopped(time_s=3600, source="test", pipe_id="s7"))
        assert layer.burst_inflows_lps() == {}
        twin.run(3 * 3600)
        treated = layer.kpis()["treated_volume_m3"]
    finally:
        twin.close()
    assert treated > 0


def test_unknown_actuators_are_refused(city):
    layout = ControlLayout(gates={"G9": "T1"}, downstream_node="PS", capacity=100.0)
    twin = Twin(city=city, start=START)
    with pytest.raises(BadInput, match="unknown actuator 'G9'"):
        twin.add_layer(SewerLayer(None, strategy="equal_filling", layout=layout, horizon_s=3600))
    with pytest.raises(BadInput, match="unknown sewer control strategy 'smart'"):
        Twin(city=city, start=START).add_layer(SewerLayer(None, strategy="smart", horizon_s=3600))
