"""The ``citizens:`` section of a scenario: `twin run` with the request service, its
settings, its located errors, and an ensemble grid over its crews."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from twin.cli import main as cli_main
from twin.scenario import ScenarioError, load_scenario

SCENARIO = """\
name: citizens_two_days
city: {demo: {population: 20000}}
start: 2026-03-10T00:00
horizon: 48h
step: 1h
seed: 1
citizens:
  crews: 12
  phone_agents: 2
  report_radius: 120
  first_contact: {share: 0.6, level1_handle: {information: 2min}}
  alerts: {subscribed_share: {app: 0.6, phone: 0.2}}
  preposition: {crews: 2, skill: sewer, at: s10, from: 2h}
"""


def _write(tmp_path: Path, text: str, name: str = "citizens.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_twin_run_with_a_citizens_section_gives_requests_and_kpis(tmp_path: Path) -> None:
    path = _write(tmp_path, SCENARIO)
    spec = load_scenario(path)
    policy = spec.citizens.service_policy(spec.start)
    assert policy.crews == 12 and policy.report_radius_m == 120.0
    assert policy.first_contact.level1_s["information"] == 120.0
    assert policy.first_contact.share == {"request": 0.6, "information": 0.6, "status": 0.6}
    assert policy.alerts.subscribed_share == {"app": 0.6, "phone": 0.2}
    assert policy.preposition.at == "s10" and policy.preposition.from_s == 7200.0
    out = tmp_path / "out"
    assert cli_main(["run", str(path), "--out", str(out)]) == 0
    kpis = json.loads((out / "results" / "citizens_two_days_kpis.json").read_text())
    k = kpis["kpis"]["citizens"]
    assert k["requests"] > 10 and k["work_orders"] > 5 and k["phone_calls"] > 5
    assert 0 < k["phone_first_contact_share"] < 1
    assert k["requests"] == sum(v for key, v in k.items() if key.startswith("requests_channel_"))
    import geopandas as gpd

    crews = gpd.read_parquet(out / "results" / "elements" / "citizens_two_days" /
                             "citizens_crews.parquet")
    assert len(crews) == 12 and crews["staged"].sum() == 2      # the pre-positioned ones
    assert 0 < crews["jobs"].sum() <= k["work_orders"]
    report = (out / "report.html").read_text()
    assert "backlog.png" in report and "phone_first_contact_share" in report


@pytest.mark.parametrize("old, new, at_build, message", [
    ("report_radius: 120", "report_radus: 120", False,
     r"10: citizens.report_radus: .*did you mean 'report_radius'"),
    ("share: 0.6,", "share: 1.6,", False, r"11: citizens.first_contact.share: expected a number"),
    ("{app: 0.6", "{sms: 0.6", False,
     r"12: citizens.alerts.subscribed_share.sms: expected a channel"),
    ("at: s10", "at: s99999", True, r"13: citizens.preposition.at: expected a street id"),
    ("crews: 12", "crews: 3", True, r"8: citizens.crews: crews: 3 crews cannot"),
])
def test_citizens_section_errors_name_the_line(tmp_path: Path, old: str, new: str,
                                               at_build: bool, message: str) -> None:
    from twin.run import build_twin

    bad = _write(tmp_path, SCENARIO.replace(old, new), "bad.yaml")
    with pytest.raises(ScenarioError, match=r"bad.yaml:" + message):
        spec = load_scenario(bad)
        if at_build:                   # the street ids and crews are known once built
            build_twin(spec)


def test_an_ensemble_grid_sweeps_the_crews(tmp_path: Path) -> None:
    from twin.ensemble_members import expand_members

    path = _write(tmp_path, SCENARIO + "ensemble: {grid: {citizens.crews: [20, 40, 60]}}\n")
    members = expand_members(load_scenario(path))
    assert [m.spec.citizens.crews for m in members] == [20, 40, 60]
    assert all(m.spec.citizens.preposition.crews == 2 for m in members)
