"""Snapshot and restore: a fork built from the same model continues where the original was."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import wntr

from twin.city.generator import generate_city
from twin.city.water_network import build_water_network
from twin.events import PipeBurst, PumpOutage, ValveClosed
from twin.networks.water import WaterLayer, load_inp
from twin.twin import Twin

H = 3600


def _straight_and_forked(inp, at_s, horizon_s, events=(), planned=()):
    straight = Twin(seed=0)
    straight.add_layer(WaterLayer(load_inp(inp), horizon_s=horizon_s, planned_bursts=planned))
    straight.schedule(list(events))
    straight.run(horizon_s)

    first = Twin(seed=0)
    layer = first.add_layer(WaterLayer(load_inp(inp), horizon_s=horizon_s, planned_bursts=planned))
    first.schedule(list(events))
    first.run(at_s)
    state = pickle.loads(pickle.dumps(layer.snapshot()))      # it can cross a process boundary
    fork = Twin(seed=0)
    fork_layer = fork.add_layer(WaterLayer(load_inp(inp), horizon_s=horizon_s - at_s,
                                           planned_bursts=planned))
    fork_layer.restore(state)
    fork.run(horizon_s - at_s)
    ours = fork.recorder.wide("water", "pressure")
    ref = straight.recorder.wide("water", "pressure")
    ref = ref.loc[at_s:].set_axis(ref.loc[at_s:].index - at_s)
    return ref, ours[ref.columns], fork_layer


def test_fork_continues_ltown_with_level_controls(ltown_inp):
    ref, ours, _ = _straight_and_forked(ltown_inp, 30 * H, 48 * H)
    assert ours.shape == ref.shape
    assert np.abs(ours.to_numpy() - ref.to_numpy()).max() < 1e-3


def test_fork_continues_net3_with_timer_controls_and_a_leak(net3_inp):
    burst = PipeBurst(time_s=5 * H, pipe_id="123", leak_area_m2=0.004, position=0.5)
    ref, ours, fork_layer = _straight_and_forked(net3_inp, 8 * H, 24 * H, events=[burst],
                                                 planned=[("123", 0.5)])
    assert np.abs(ours.to_numpy() - ref.to_numpy()).max() < 1e-3
    assert fork_layer.kpis()["leak_volume_m3"] > 0               # the leak goes on in the fork


def test_fork_keeps_closures_and_outages(net3_inp):
    events = [ValveClosed(time_s=2 * H, link_id="101"), PumpOutage(time_s=3 * H, pump_id="10")]
    ref, ours, _ = _straight_and_forked(net3_inp, 6 * H, 20 * H, events=events)
    assert np.abs(ours.to_numpy() - ref.to_numpy()).max() < 1e-3


def test_restore_after_start_is_refused(net3_inp):
    twin = Twin()
    layer = twin.add_layer(WaterLayer(load_inp(net3_inp), horizon_s=4 * H))
    twin.run(2 * H)
    with pytest.raises(RuntimeError, match="between build and the start"):
        layer.restore(layer.snapshot())


def test_fork_continues_the_demo_network_with_pump_rules(tmp_path):
    city = generate_city(population=20_000, seed=2)
    inp = tmp_path / "demo.inp"
    wntr.network.write_inpfile(build_water_network(city), str(inp))
    ref, ours, _ = _straight_and_forked(inp, 13 * H, 36 * H)
    assert np.abs(ours.to_numpy() - ref.to_numpy()).max() < 1e-3


def test_fork_carries_undo_actions_still_due(net3_inp):
    """Snapshot during a pump outage and a fire flow: in the fork both end when they were due."""
    from twin.events import FireFlow

    events = [PumpOutage(time_s=2 * H, pump_id="335", duration_s=2 * H),
              FireFlow(time_s=2 * H, node_id="123", flow_lps=50, duration_s=4 * H)]
    ref, ours, fork_layer = _straight_and_forked(net3_inp, 3 * H, 10 * H, events=events)
    assert np.abs(ours.to_numpy() - ref.to_numpy()).max() < 1e-3
    assert not fork_layer._pending and not fork_layer._holds       # all ended in the fork
