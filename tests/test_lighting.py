"""The lighting layer: network, faults and repairs on the bus, energy by program, detector."""

from __future__ import annotations

import datetime as dt

import networkx as nx
import numpy as np
import pytest

from twin.city.generator import generate_city
from twin.errors import BadInput
from twin.events import CabinetFault, LampFailed, LightingFault, RepairDone
from twin.networks.lighting import LightingLayer
from twin.networks.lighting_strategies import DimmingProgram
from twin.sun import sun_times
from twin.twin import Twin

START = dt.datetime(2026, 12, 1, 12, 0)


@pytest.fixture(scope="module")
def city():
    return generate_city(population=20_000, seed=0)


def _twin(city, program="full", **options):
    twin = Twin(city=city, start=START, seed=5)
    layer = LightingLayer(DimmingProgram(program), **options)
    twin.add_layer(layer)
    return twin, layer


def test_network_is_a_tree_with_lamps_along_streets(city):
    twin, layer = _twin(city)
    lamps = layer.net.lamps
    for col in ("x", "y", "street_id", "cabinet_id", "feeder_id", "phase", "lamp_type",
                "power_w", "age_years", "state", "geometry"):
        assert col in lamps.columns
    assert nx.is_tree(layer.net.tree)
    assert set(lamps["phase"]) == {1, 2, 3}
    assert set(lamps["lamp_type"]) == {"LED-100", "LED-40", "HPS-250", "HPS-100"}
    # spacing by class: about one lamp per 30 m of arterial, per 40 m of local street
    streets = city.streets
    per_class = lamps.groupby("street_class").size()
    length = streets.groupby("street_class")["length_m"].sum()
    assert abs(length["arterial"] / per_class["arterial"] - 30.0) < 3.0
    assert abs(length["local"] / per_class["local"] - 40.0) < 4.0
    # every lamp stands within 10 m of its street
    d = lamps.geometry.distance(streets.geometry.reindex(lamps["street_id"]).set_axis(lamps.index))
    assert d.max() < 10.0


def test_failure_published_repair_relights(city):
    twin, layer = _twin(city, random_failures=False, noise=False)
    seen = []
    twin.bus.subscribe(LampFailed, seen.append)
    twin.bus.subscribe(CabinetFault, seen.append)
    lamp = layer.lamp_ids[10]
    twin.run(8 * 3600)                                      # 20:00, lights on
    assert layer.lamp_is_lit(lamp)
    layer.fail_lamp(lamp)
    assert not layer.lamp_is_lit(lamp) and lamp in layer.lamps_out().index
    assert layer.lamps.at[lamp, "state"] == "failed"
    ev = seen[-1]
    assert isinstance(ev, LampFailed) and ev.lamp_id == lamp
    assert (ev.x, ev.y) == tuple(layer.net.lamps.loc[lamp, ["x", "y"]])
    twin.publish(RepairDone(time_s=twin.clock.now_s, layer="lighting", element_id=lamp))
    assert layer.lamp_is_lit(lamp) and lamp not in layer.lamps_out().index
    # a cabinet fault: one CabinetFault, its lamps dark, no LampFailed per lamp
    cab = layer.cabinet_ids[0]
    n_before = len(seen)
    layer.fail_feeder(cab)
    assert [type(e) for e in seen[n_before:]] == [CabinetFault]
    out = layer.lamps_out()
    assert set(out.index) == set(layer.net.lamps.index[layer.net.lamps["cabinet_id"] == cab])
    assert (out["reason"] == "supply").all()
    twin.publish(RepairDone(time_s=twin.clock.now_s, layer="lighting", element_id=cab))
    assert len(layer.lamps_out()) == 0
    twin.run(20 * 3600)                                     # 08:00: healthy but off
    assert not layer.lamp_is_lit(lamp) and layer.lamps.at[lamp, "state"] == "off"


def test_unknown_ids_are_refused(city):
    twin, layer = _twin(city)
    with pytest.raises(BadInput, match="unknown lamp 'SL99999'"):
        layer.fail_lamp("SL99999")
    with pytest.raises(BadInput, match="unknown lamp"):
        layer.lamp_is_lit("nope")
    bad = RepairDone(time_s=0, layer="lighting", element_id="CAB999")
    assert layer.check_event(bad) == ["unknown lamp, feeder or cabinet 'CAB999' in the "
                                      "lighting network"]
    assert twin.check_events([LightingFault(time_s=0, lamp_ids=("SL00001", "XX"))])
    twin.start()
    with pytest.raises(BadInput, match="CAB999"):
        twin.publish(bad)


def _expected_ratio(program: DimmingProgram, hours: float) -> float:
    """Dimmed / full energy, minute by minute with datetimes (not the layer's machinery):
    lamps burn from 10 min after sunset to 10 min before sunrise; every lamp's gear dims to
    0.5 (LED to 0.1, HPS to 0.5), so in the window a lamp draws half its power."""
    lon, lat = 5.0247, 47.2927
    on = dim = 0
    for k in range(int(hours * 60)):
        t = START + dt.timedelta(minutes=k, seconds=30)
        today = sun_times(lon, lat, t.date(), "Europe/Paris")
        rise = today.sunrise.replace(tzinfo=None) - dt.timedelta(minutes=10)
        set_ = today.sunset.replace(tzinfo=None) + dt.timedelta(minutes=10)
        if t >= set_ or t < rise:
            on += 1
            dim += t.hour >= 23 or t.hour < 5
    return 1.0 - (1.0 - program.dim_level) * dim / on


def test_dimming_saves_what_the_program_says(city):
    energy = {}
    for program in ("full", "dimming"):
        twin, layer = _twin(city, program, random_failures=False, noise=False, detect=False)
        twin.run(48 * 3600)
        energy[program] = layer.kpis()["energy_kwh"]
        assert layer.kpis()["energy_full_night_kwh"] == pytest.approx(energy["full"], rel=1e-9)
    expected = _expected_ratio(DimmingProgram("dimming"), 48)
    assert 0.78 < expected < 0.82                     # 12 of ~31 burning hours at half power
    assert energy["dimming"] / energy["full"] == pytest.approx(expected, abs=2e-3)


def test_adaptive_dims_more_on_quiet_streets(city):
    energy = {}
    for program in ("dimming", "adaptive"):
        twin, layer = _twin(city, program, random_failures=False, noise=False, detect=False)
        twin.run(24 * 3600)
        energy[program] = layer.kpis()["energy_kwh"]
    twin, layer = _twin(city, "adaptive", random_failures=False, noise=False, detect=False)
    import pandas as pd

    twin.street_flows_veh_h = pd.Series(2000.0, index=city.streets.index)   # busy all night
    twin.run(24 * 3600)
    assert layer.kpis()["energy_kwh"] == pytest.approx(layer.kpis()["energy_full_night_kwh"])
    assert energy["adaptive"] < energy["dimming"]


def test_detector_finds_injected_failures(city):
    twin, layer = _twin(city, "dimming", random_failures=False, repair_after_h=30.0)
    faults = [LightingFault(time_s=3600 * h, source="scenario", random_lamps=4)
              for h in (9.5, 14.25, 23.0, 33.5, 40.0)]            # 21:30, 02:15, 11:00 ...
    faults.append(LightingFault(time_s=3600 * 11.7, source="scenario",
                                feeder_id=layer.feeder_ids[5]))
    twin.schedule(faults)
    twin.run(60 * 3600)
    k = layer.kpis()
    assert k["lamp_failures"] == 20 and k["feeder_faults"] == 1
    assert k["detector_true_faults"] == 21
    assert k["detector_detected"] >= 19
    assert k["detector_false_alarms"] <= 1
    assert k["detector_delay_median_min"] <= 10.0
    found = layer.detections()
    assert "supply_loss" in set(found["kind"])
    outages = found[found["kind"] == "lamp_outage"]
    assert (outages["n_lamps"] == 1).mean() > 0.8
