"""Lighting in scenario files: the section, lamp_failure events, unknown ids, a short run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twin.cli import main
from twin.run import build_twin
from twin.scenario import load_scenario
from twin.scenario_fields import ScenarioError

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

BASE = """name: lt
city: {demo: {population: 5000, seed: 0}}
start: 2026-12-01T12:00
horizon: 12h
step: 1h
lighting:
  strategy: dimming
"""


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_unknown_lamp_is_a_located_error(tmp_path):
    path = _write(tmp_path, BASE + "events:\n  - at: 9h\n    type: lamp_failure\n"
                                   "    lamp: SL99999\n")
    spec = load_scenario(path)
    with pytest.raises(ScenarioError, match=r"s.yaml:11: events\[0\].lamp: unknown lamp "
                                            r"'SL99999'"):
        build_twin(spec)


@pytest.mark.parametrize("event, message", [
    ("    lamp: SL00001\n    random: 3\n", "exactly one of lamp:, lamps:, random: or cabinet:"),
    ("    random: 0\n", "events[0].random"),
    ("    cabinet: CAB001\n    phase: 4\n", "events[0].phase"),
])
def test_bad_lamp_failure_events(tmp_path, event, message):
    path = _write(tmp_path, BASE + "events:\n  - at: 9h\n    type: lamp_failure\n" + event)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert message in str(err.value)


def test_bad_lighting_section(tmp_path):
    with pytest.raises(ScenarioError, match="lighting.strategy: expected one of"):
        load_scenario(_write(tmp_path, BASE.replace("dimming", "disco")))
    with pytest.raises(ScenarioError, match="lighting.dim_from"):
        load_scenario(_write(tmp_path, BASE + "  dim_from: '25:00'\n"))


def test_injected_failures_run_and_are_found(tmp_path):
    path = _write(tmp_path, BASE.replace("12h", "14h") + "  random_failures: false\n"
                  "events:\n  - at: 9h\n    type: lamp_failure\n    random: 3\n"
                  "  - at: 10h\n    type: lamp_failure\n    lamps: [SL00010, SL00011]\n")
    spec = load_scenario(path)
    twin = build_twin(spec)
    twin.run(spec.horizon_s)
    k = twin.layers["lighting"].kpis()
    assert k["lamp_failures"] == 5 and k["detector_detected"] >= 4
    assert k["detector_false_alarms"] == 0
    twin.close()


def test_shipped_scenarios_validate():
    for name in ("lighting_failures.yaml", "lighting_full_week.yaml", "lighting_dimming_week.yaml"):
        assert main(["validate", str(SCENARIOS / name)]) == 0


def test_cli_simulate_json(capsys):
    assert main(["lighting", "simulate", "--days", "1", "--strategy", "adaptive",
                 "--population", "5000", "--inject-per-day", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["strategy"] == "adaptive" and out["lamps"] > 100
    assert out["kpis"]["energy_kwh"] < out["kpis"]["energy_full_night_kwh"]
    assert out["kpis"]["lamp_failures"] >= 3
