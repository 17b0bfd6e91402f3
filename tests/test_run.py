"""Scenarios run end to end on the demo city: reproducible, and the what-ifs do what they say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.cli import main
from twin.run import run
from twin.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture(scope="module")
def baseline():
    return run(load_scenario(SCENARIOS / "baseline_day.yaml"))


@pytest.fixture(scope="module")
def main_break():
    return run(load_scenario(SCENARIOS / "main_break_peak.yaml"))


def test_same_seed_same_results(baseline):
    again = run(load_scenario(SCENARIOS / "baseline_day.yaml"))
    pd.testing.assert_frame_equal(baseline.series, again.series)
    assert baseline.kpis == again.kpis


def test_baseline_day_is_healthy(baseline):
    k = baseline.kpis["water"]
    assert k["min_pressure_m"] > 20
    assert k["water_service_availability"] == pytest.approx(1.0)
    assert k["leak_volume_m3"] == 0
    # 50,000 inhabitants x 150 L/day (+6 % non-residential) ~ 7,950 m3 a day
    assert 7_000 < k["demand_required_m3"] < 9_000
    assert k["demand_delivered_m3"] == pytest.approx(k["demand_required_m3"])
    p = baseline.wide("water", "pressure")
    assert len(p) == 24 * 12 + 1          # every 5 minutes, both ends included


def test_main_break_hurts_and_floods_the_street(baseline, main_break):
    b, m = baseline.kpis["water"], main_break.kpis["water"]
    assert m["leak_volume_m3"] > 1_000
    assert m["min_pressure_m"] < b["min_pressure_m"] - 10
    assert m["pressure_deficit_node_hours"] > b["pressure_deficit_node_hours"]
    assert m["water_service_availability"] < b["water_service_availability"]
    # the leak is not counted as consumption; what consumers missed is the availability gap
    assert m["demand_required_m3"] == pytest.approx(b["demand_required_m3"], rel=0.01)
    assert m["demand_delivered_m3"] < b["demand_delivered_m3"]
    assert m["water_service_availability"] == pytest.approx(
        m["demand_delivered_m3"] / m["demand_required_m3"])
    ev = main_break.events
    burst = ev[ev["kind"] == "PipeBurst"].iloc[0]
    flood = ev[ev["kind"] == "StreetFlooded"].iloc[0]
    assert burst["time_s"] == 7.5 * 3600 and flood["time_s"] == burst["time_s"]
    assert flood["cause_id"] == burst["event_id"]
    assert "s324" in flood["details"]          # the street over the broken main is flooded
    assert (ev["kind"] == "LeakStopped").sum() == 1
    # before the break the two runs are identical, after the repair they recover
    pb, pm = baseline.wide("water", "pressure"), main_break.wide("water", "pressure")
    before = pb.index < 7.5 * 3600
    assert np.allclose(pb[before].to_numpy(), pm.loc[pb.index[before], pb.columns].to_numpy())
    assert (pb.loc[9 * 3600] - pm.loc[9 * 3600, pb.columns]).max() > 10


def test_heatwave_week_raises_demand_and_energy():
    spec = load_scenario(SCENARIOS / "heatwave_week.yaml")
    hot = run(spec)
    d = hot.wide("water", "demand")
    junctions = hot.elements["water"]["nodes"].query("node_type == 'Junction'").index
    daily = d[junctions].clip(lower=0).sum(axis=1).groupby(d.index // 86400).mean()
    surge = spec.to_events()[0]
    assert surge.factor == pytest.approx(1.35)
    first_hot_day = int(surge.time_s // 86400) + 1
    assert daily.loc[first_hot_day] / daily.loc[0] == pytest.approx(1.35, rel=0.02)
    assert hot.kpis["water"]["pump_energy_kwh"] > 6.5 * 24 * 5   # pumps work through the week


def test_demo_command_writes_report_results_and_plots(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--no-progress"]) == 0
    html = (tmp_path / "report.html").read_text()
    for needle in ("baseline_day", "main_break_peak", "water.leak_volume_m3", "PipeBurst",
                   "StreetFlooded", "map_main_break_peak.png"):
        assert needle in html
    for png in ("pressure_over_time.png", "outflow_and_tank_levels.png",
                "map_baseline_day.png", "map_main_break_peak.png"):
        assert (tmp_path / png).stat().st_size > 20_000
    water = pd.read_parquet(tmp_path / "results" / "main_break_peak_water.parquet")
    assert {"time_s", "element", "quantity", "value", "unit"} <= set(water.columns)
    assert water.query("quantity == 'pressure'")["unit"].unique().tolist() == ["m"]


def test_demo_patterns_follow_the_calendar(tmp_path):
    """A run starting at 06:00 sees at 01:30 of run time what a midnight run sees at 07:30."""
    base = SCENARIOS / "baseline_day.yaml"
    later = tmp_path / "six.yaml"
    later.write_text(f"extends: {base}\nname: six\nstart: 2026-06-15T06:00\nhorizon: 6h\n"
                     "outputs: {quantities: [pressure, demand]}\n")
    res = run(load_scenario(base))
    junctions = res.elements["water"]["nodes"].query("node_type == 'Junction'").index
    midnight = res.wide("water", "demand")[junctions]
    six = run(load_scenario(later)).wide("water", "demand")[junctions]
    total = lambda d, t: d.loc[t].sum()
    # (pressure-driven demand: tank levels differ a little between the two runs)
    assert total(six, 1.5 * 3600) == pytest.approx(total(midnight, 7.5 * 3600), rel=1e-3)
    assert total(six, 0) == pytest.approx(total(midnight, 6 * 3600), rel=1e-3)
    assert total(midnight, 7.5 * 3600) > 2 * total(midnight, 1.5 * 3600)   # peak vs night


def test_results_round_trip_through_parquet(tmp_path, main_break):
    from twin.report import write_report
    from twin.results import Results

    main_break.save(tmp_path)
    back = Results.load(tmp_path, main_break.name)
    pd.testing.assert_frame_equal(back.wide("water", "pressure"), main_break.wide("water", "pressure"))
    assert back.kpis == main_break.kpis
    assert list(back.events["kind"]) == list(main_break.events["kind"])
    nodes = back.elements["water"]["nodes"]
    assert nodes.crs == "EPSG:2154" and len(nodes) == len(main_break.elements["water"]["nodes"])
    assert "elevation_m" in nodes.columns and "diameter_mm" in back.elements["water"]["links"]
    # a report can be rebuilt from the files alone
    report = write_report([back], tmp_path / "again")
    assert (tmp_path / "again" / f"map_{back.name}.png").exists() and report.exists()
