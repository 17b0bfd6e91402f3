"""The four-week scenarios: fixed schedule vs sensor-driven collection, and their report."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.report import write_report
from twin.run import run
from twin.scenario import ScenarioError, load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture(scope="module")
def four_weeks():
    specs = [load_scenario(SCENARIOS / name)
             for name in ("waste_fixed_4w.yaml", "waste_sensor_4w.yaml")]
    return [run(spec) for spec in specs]


@pytest.mark.slow
def test_sensor_driven_drives_less_and_overflows_less_over_four_weeks(four_weeks) -> None:
    fixed, sensor = (r.kpis["waste"] for r in four_weeks)
    assert [r.meta["horizon_s"] for r in four_weeks] == [28 * 86400.0] * 2
    assert fixed["containers"] == sensor["containers"] and fixed["trucks"] == sensor["trucks"]
    # measured (seed 42, 20,000 inhabitants): about 1,230 km vs 980, 19 overflows vs 2
    assert sensor["km_driven"] < 0.9 * fixed["km_driven"]
    assert sensor["container_overflows"] < fixed["container_overflows"]
    assert sensor["co2_kg"] < fixed["co2_kg"]
    assert sensor["collections"] < fixed["collections"]
    assert sensor["mean_fill_at_collection"] > fixed["mean_fill_at_collection"] + 0.05
    # the same households produce the same waste: both collect about as much
    assert sensor["collected_t"] == pytest.approx(fixed["collected_t"], rel=0.05)
    # overflows are on the bus as ContainerOverflow events, one per episode
    for r in four_weeks:
        n = int((r.events["kind"] == "ContainerOverflow").sum())
        assert n == r.kpis["waste"]["container_overflows"]


@pytest.mark.slow
def test_report_shows_both_strategies(four_weeks, tmp_path: Path) -> None:
    report = write_report(four_weeks, tmp_path, title="waste: fixed vs sensor")
    html = report.read_text()
    for name in ("waste.km_driven", "waste.container_overflows", "waste_fixed_4w",
                 "waste_sensor_4w", "waste_kpis.png", "waste_fill_at_collection.png",
                 "waste_overflowing.png", "waste_map_waste_sensor_4w.png"):
        assert name in html
    for png in ("waste_kpis.png", "waste_fill_at_collection.png", "waste_overflowing.png",
                "waste_map_waste_fixed_4w.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    tours = four_weeks[1].elements["waste"]["tours"]
    assert len(tours) >= 1 and (tours["stops"] > 0).all()


def test_waste_section_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nhorizon: 1d\nwaste:\n  strategy: weekly\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad)
    assert "bad.yaml:4: waste.strategy: expected one of 'fixed', 'sensor'" in str(err.value)
    bad.write_text("name: bad\nhorizon: 1d\nwaste:\n  trucks: 2\n  faults:\n"
                   "    missing_p: 1.5\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml:6: waste.faults.missing_p: expected a "
                                            r"number in 0..1, got 1.5"):
        load_scenario(bad)
