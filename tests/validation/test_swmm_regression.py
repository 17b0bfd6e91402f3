"""The sewer layer against SWMM's regression models and their reference outputs.

The references (../shared/data/swmm, see PROVENANCE.md there) were produced by SWMM
5.1.12; the layer runs SWMM 5.2.4 (pinned swmm-toolkit 0.17.0). Total outfall volumes
are compared with the reference report's Outfall Loading Summary within 0.5 %.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import shared_file
from twin.engines.swmm import parse_report
from twin.sewer_run import simulate_sewer_inp

MODELS = ["user1", "user2", "user3", "user4", "user5"]


def reference(name: str):
    text = shared_file("swmm", name, f"{name}.ref-swmm5112.rpt").read_text(errors="replace")
    return parse_report(text, label=name)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_outfall_volumes_agree_with_reference(name):
    inp = shared_file("swmm", name, f"{name}.inp")
    ref = reference(name)
    out = simulate_sewer_inp(inp, control_step_s=300.0)
    assert out["volume_unit"] == ref.volume_unit
    assert set(out["total_outfall_volume"]) == set(ref.total_outfall_volume)
    assert ref.total_outfall_volume, "the reference report lists no outfall"
    for outfall, vol in ref.total_outfall_volume.items():
        ours = out["total_outfall_volume"][outfall]
        assert ours == pytest.approx(vol, rel=5e-3, abs=2e-3), outfall
    total = sum(out["total_outfall_volume"].values())
    assert total == pytest.approx(sum(ref.total_outfall_volume.values()), rel=5e-3)
    # continuity errors are reported, and stay as small as the reference's (a few %)
    assert out["flow_routing_continuity_error_pct"] is not None
    assert abs(out["flow_routing_continuity_error_pct"]) < max(
        3.0, 2 * abs(ref.flow_routing_continuity_error_pct))
    if ref.runoff_continuity_error_pct is not None:
        assert abs(out["runoff_continuity_error_pct"]) < 1.0


def test_reference_units_are_read():
    ref = reference("user2")
    assert ref.volume_unit == "10^6 gal"
    assert ref.total_outfall_volume == {"TW01010": 186.623}
    assert ref.flow_routing_continuity_error_pct == pytest.approx(0.286)
    ref1 = reference("user1")
    assert ref1.volume_unit == "10^6 ltr" and ref1.total_outfall_volume == {"Cierre": 31.373}
    assert ref1.runoff_continuity_error_pct == pytest.approx(-0.411)
    assert re.search("Outfall Loading Summary", ref1.report_text)
