"""The SWMM adapter and the sewer layer on any .inp: same results as plain pyswmm, errors."""

from __future__ import annotations

import numpy as np
import pytest
from swmm.toolkit import shared_enum as se

from tests.conftest import shared_file
from twin.engines.swmm import OneSimulationPerProcess, SwmmRun, run_isolated, run_plain
from twin.errors import BadInput, InpError
from twin.networks.sewer import SewerLayer
from twin.networks.sewer_graph import catchments_draining_to, upstream
from twin.sewer_run import simulate_sewer_inp
from twin.twin import Twin


@pytest.fixture
def user1():
    return shared_file("swmm", "user1", "user1.inp")


def _plain_depths(inp, step_s):
    rows = []
    summary = run_plain(inp, step_s=step_s,
                        on_step=lambda run: rows.append(
                            (run.elapsed_s, run.node_values(se.NodeResult.DEPTH))))
    return summary, rows


def test_layer_steps_like_a_plain_pyswmm_run(user1):
    summary, rows = _plain_depths(user1, 300.0)
    twin = Twin(seed=0)
    layer = twin.add_layer(SewerLayer(user1, control_step_s=300.0, record=("depth",)))
    twin.run(7 * 3600 + 300)
    ours = layer.finish()
    depth = twin.recorder.wide("sewer", "depth")
    twin.close()
    assert list(depth.index) == [t for t, _ in rows]
    np.testing.assert_allclose(depth.to_numpy(), np.vstack([d for _, d in rows]), atol=1e-9)
    assert ours.total_outfall_volume == summary.total_outfall_volume
    assert ours.flow_routing_continuity_error_pct == summary.flow_routing_continuity_error_pct
    # and the same totals as SWMM run alone (swmm_run, no Python between steps)
    alone = run_plain(user1)
    assert ours.total_outfall_volume == alone.total_outfall_volume == {"Cierre": 31.381}
    assert ours.runoff_continuity_error_pct == alone.runoff_continuity_error_pct == -0.411
    assert ours.flooding_volume == alone.flooding_volume


def test_run_command_figures(user1):
    out = simulate_sewer_inp(user1)
    assert (out["nodes"], out["links"], out["subcatchments"]) == (60, 59, 58)
    assert out["volume_unit"] == "10^6 ltr"
    assert out["total_outfall_volume"]["Cierre"] == pytest.approx(31.373, rel=5e-3)
    # the layer's own running totals agree with SWMM's report
    assert out["kpis"]["outfall_volume_m3"] / 1000 == pytest.approx(31.381, rel=1e-3)
    assert out["kpis"]["flooding_volume_m3"] / 1000 == pytest.approx(out["flooding_volume"],
                                                                      rel=1e-2)


def test_one_simulation_per_process_and_child_processes(user1):
    run = SwmmRun(user1)
    try:
        with pytest.raises(OneSimulationPerProcess, match="one simulation per process"):
            SwmmRun(user1)
        # a second one runs in a child process while this one is open
        other = run_isolated(run_plain, str(user1))
        assert other.total_outfall_volume == {"Cierre": 31.381}
    finally:
        run.close()
    assert not run.tmp.exists()          # temporary files removed with the run


def test_hotstart_fork_continues_the_run(user1):
    twin = Twin(seed=0)
    layer = twin.add_layer(SewerLayer(user1, control_step_s=300.0, record=()))
    try:
        twin.run(3 * 3600)
        # SWMM has routed the step that starts at the clock's time: it leads by one step
        state = layer.snapshot()
        twin.run(7 * 3600 + 300)
        full = layer.finish()
    finally:
        twin.close()
    assert state["hotstart"][:4] == b"SWMM" and state["time_s"] == 3 * 3600 + 300

    fork = Twin(seed=0)
    forked = fork.add_layer(SewerLayer(user1, control_step_s=300.0, record=()))
    try:
        forked.restore(state)
        fork.run(7 * 3600 - state["time_s"] + 300)
        rest = forked.finish()
    finally:
        fork.close()
    # the fork routes the last 4 hours from the saved state: it releases less than the
    # full run and only what was still in or still coming into the network
    vol_full, vol_rest = full.total_outfall_volume["Cierre"], rest.total_outfall_volume["Cierre"]
    assert 0 < vol_rest < vol_full
    assert rest.flow_routing_continuity_error_pct is not None


def test_bad_models_are_named(tmp_path, user1):
    with pytest.raises(InpError, match="no such SWMM input file"):
        SwmmRun(tmp_path / "missing.inp")
    junk = tmp_path / "junk.inp"
    junk.write_text("hello\n")
    with pytest.raises(InpError, match="not a SWMM input file"):
        SwmmRun(junk)
    broken = tmp_path / "broken.inp"
    broken.write_text("[JUNCTIONS]\nJ1 10 2 0 0 0\n[CONDUITS]\nC1 J1 NOPE 100 0.013 0 0 0 0\n")
    with pytest.raises(InpError, match=r"broken.inp.*ERROR 209.*NOPE.*line 4"):
        SwmmRun(broken)
    assert list(tmp_path.iterdir()) == [junk, broken] or set(tmp_path.iterdir()) == {junk, broken}
    twin = Twin(seed=0)
    with pytest.raises(BadInput, match="unknown actuator '1'.*conduit"):
        from twin.networks.sewer_control import Strategy

        class OpensConduit:
            name = "opens_conduit"

            def actuators(self):
                return ["1"]

            def act(self, state):
                return {"1": 1.0}

        twin.add_layer(SewerLayer(user1, strategy=OpensConduit()))


def test_tracing_upstream(user1):
    twin = Twin(seed=0)
    layer = twin.add_layer(SewerLayer(user1, record=()))
    g = layer.graph
    outfall = "Cierre"
    subs = catchments_draining_to(g, outfall)
    assert len(subs) == 58                      # every subcatchment ends at the one outfall
    assert len(upstream(g, outfall) - set(subs)) == 59   # and every other node
    twin.close()
