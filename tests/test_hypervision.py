"""The hypervision showcase: the 50-year storm through every network, its cascade report and
the city's response options, run as a planner would: ``twin run scenarios/storm_50yr.yaml
--out DIR`` (48 simulated hours, the scenario and its three response options, same seed).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from twin.cli import main as twin_main
from twin.responses import response_specs
from twin.results import Results
from twin.scenario import ScenarioError, load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CHAIN = ("Rainfall", "SewerFlooding", "StreetFlooded", "StreetClosed", "CrewRerouted")
OPTIONS = ("no_alerts", "crews_prepositioned", "sewer_strategy_b")


@pytest.fixture(scope="module")
def storm_runs(tmp_path_factory) -> tuple[Path, dict[str, Results]]:
    """The storm and its response options through the command line: report and results."""
    out = tmp_path_factory.mktemp("storm") / "out"
    code = twin_main(["run", str(SCENARIOS / "storm_50yr.yaml"), "--out", str(out),
                      "--no-progress"])
    assert code == 0
    names = ["storm_50yr", *(f"storm_50yr-{o}" for o in OPTIONS)]
    return out, {name: Results.load(out / "results", name) for name in names}


@pytest.fixture(scope="module")
def storm_run(storm_runs) -> tuple[Path, Results]:
    out, runs = storm_runs
    return out, runs["storm_50yr"]


def test_storm_report_has_the_cascade_report(storm_run):
    out, result = storm_run
    page = (out / "report.html").read_text(encoding="utf-8")
    for heading in ("Incident chain", "Timeline", "The city at each phase",
                    "Every network side by side", "Response options"):
        assert heading in page
    assert (out / "storm_50yr_cascade_timeline.png").stat().st_size > 10_000
    assert (out / "storm_50yr_cascade_phases.png").stat().st_size > 10_000
    for option in OPTIONS:                     # the comparison of the response options
        assert f"<b>{option}</b>" in page
    # every network and the request service ran on the one clock
    assert {"water", "sewer", "traffic", "lighting", "waste", "parking", "citizens",
            "cascade"} <= set(result.kpis)
    assert result.kpis["sewer"]["flooding_volume_m3"] > 0


def test_every_caused_event_follows_its_cause(storm_run):
    _, result = storm_run
    ev = result.events.set_index("event_id")
    caused = ev[ev["cause_id"].notna()]
    assert len(caused) > 100
    causes = caused["cause_id"].astype(int)
    assert causes.isin(ev.index).all()                       # every cause was recorded
    assert (causes.to_numpy() < caused.index.to_numpy()).all()   # ... and published first
    assert (caused["time_s"].to_numpy() >= ev.loc[causes, "time_s"].to_numpy() - 1e-6).all()


def _ancestors(ev: pd.DataFrame, event_id: int) -> list[int]:
    chain = [event_id]
    while pd.notna(ev.at[chain[-1], "cause_id"]):
        chain.append(int(ev.at[chain[-1], "cause_id"]))
    return chain[::-1]


def test_storm_chain_from_rain_to_rerouted_crews_and_reports(storm_run):
    _, result = storm_run
    ev = result.events.set_index("event_id")
    chains = [_ancestors(ev, i) for i in ev.index[ev["kind"] == "CrewRerouted"]]
    full = [c for c in chains if tuple(ev.loc[c, "kind"]) == CHAIN]
    assert full, "no rerouted crew traces back through closure, flood and surcharge to the rain"
    rain, surcharge, flood, closure, reroute = full[0]
    times = ev.loc[full[0], "time_s"].to_numpy()
    assert (times[1:] >= times[:-1]).all()
    assert ev.at[rain, "source"] == "scenario" and ev.at[surcharge, "source"] == "sewer"
    assert ev.at[flood, "source"] == "cascade:sewer_surcharge_floods_street"
    assert ev.at[closure, "source"] == "cascade:deep_flood_closes_street"
    assert ev.at[reroute, "source"] == "citizens"
    # residents report the floods of the chain, after them
    reports = ev[(ev["kind"] == "RequestFiled") & ev["cause_id"].isin([surcharge, flood])]
    assert len(reports) > 0
    assert (reports["time_s"] >= ev.loc[reports["cause_id"].astype(int), "time_s"].to_numpy()
            ).all()
    # the storm's reports outnumber a day's background requests (50,000 inhabitants)
    storm_reports = ev[(ev["kind"] == "RequestFiled") & ev["cause_id"].notna()]
    assert len(storm_reports) > 500


def test_alerts_reduce_duplicate_reports_and_calls(storm_runs):
    """The storm's `no_alerts` response option, same seed: without the SMS / app alerts the
    residents file more duplicate reports and call the phone centre more."""
    _, runs = storm_runs
    with_alerts, without = runs["storm_50yr"], runs["storm_50yr-no_alerts"]
    assert without.meta["response"] == "no_alerts"
    assert without.meta["seed"] == with_alerts.meta["seed"]
    on, off = with_alerts.kpis["citizens"], without.kpis["citizens"]
    assert on["alerts_sent"] > 0 and off["alerts_sent"] == 0
    assert on["reports_avoided_by_alerts"] > 0
    assert on["duplicates"] < off["duplicates"]
    assert on["phone_calls"] < off["phone_calls"]
    assert on["incident_info_calls"] < off["incident_info_calls"]
    # the storm itself is the same: same rain, same surcharges, same flooded streets
    assert with_alerts.kpis["sewer"]["flooding_volume_m3"] == pytest.approx(
        without.kpis["sewer"]["flooding_volume_m3"])
    floods = [(r.events["kind"] == "StreetFlooded").sum() for r in (with_alerts, without)]
    assert floods[0] == floods[1] > 0


def test_storm_responses_are_the_scenario_with_one_change():
    spec = load_scenario(SCENARIOS / "storm_50yr.yaml")
    options = {r.option: r.spec for r in response_specs(spec)}
    assert set(options) == {"no_alerts", "crews_prepositioned", "sewer_strategy_b"}
    assert options["sewer_strategy_b"].sewer.strategy == "equal_filling"
    assert spec.sewer.strategy == "rule_based"
    assert options["crews_prepositioned"].citizens.preposition.crews == 4
    assert spec.citizens.preposition is None
    for option in options.values():
        assert option.seed == spec.seed and option.horizon_s == spec.horizon_s == 48 * 3600
        assert option.sewer.storm == spec.sewer.storm


def test_a_response_option_with_a_wrong_path_is_located(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(f"""\
        extends: {SCENARIOS / 'storm_50yr.yaml'}
        name: bad
        responses:
          gates:
            set: {{sewer.stratgy: equal_filling}}
        """))
    spec = load_scenario(path)
    with pytest.raises(ScenarioError) as err:
        response_specs(spec)
    assert err.value.field == "responses.gates.set.sewer.stratgy"
    assert err.value.path == path and err.value.line == 5      # the `set:` line
    path.write_text(textwrap.dedent(f"""\
        extends: {SCENARIOS / 'storm_50yr.yaml'}
        name: bad
        responses:
          gates:
            set: {{name: other}}
        """))
    with pytest.raises(ScenarioError, match="responses.gates.set.name"):
        load_scenario(path)
