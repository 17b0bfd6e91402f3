"""The `twin` command end to end: exit codes, JSON output, reports on disk."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from twin.cli import main

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "data" / "bad_scenarios"


def twin_process(*args: str) -> subprocess.CompletedProcess:
    """The installed command in its own process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "twin.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def twin(*args: str) -> subprocess.CompletedProcess:
    """The same entry point in this process (saves the interpreter start-up per call)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_help_lists_every_command():
    out = twin_process("--help")
    assert out.returncode == 0
    for command in ("demo", "run", "validate", "water"):
        assert command in out.stdout
    assert "simulate" in twin_process("water", "--help").stdout


@pytest.mark.parametrize("name", ["baseline_day", "main_break_peak", "heatwave_week"])
def test_validate_shipped_scenarios(name):
    out = twin("validate", str(ROOT / "scenarios" / f"{name}.yaml"))
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("name, field", [
    ("unknown_field", "horizn"),
    ("wrong_type", "events[1].leak_area_m2"),
    ("event_outside_horizon", "events[1].at"),
    ("unknown_event_type", "events[0].type"),
    ("malformed", "malformed.yaml:"),
])
def test_bad_scenarios_exit_2_with_located_message(name, field):
    for command in ("validate", "run"):
        args = [command, str(BAD / f"{name}.yaml")] + (["--out", "unused"] if command == "run" else [])
        out = twin(*args)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert field in out.stderr
        assert f"{name}.yaml:" in out.stderr     # file and line


@pytest.mark.parametrize("text, where", [
    ("seed: -3\n", "s.yaml:2: seed: expected a whole number >= 0"),
    ("city: {demo: {seed: -1}}\n", "s.yaml:2: city.demo.seed: expected a whole number >= 0"),
    ("step: 0.5\n", "s.yaml:2: step: expected a step of at least 1 s in whole seconds"),
    ("name: ../x\n", "s.yaml:2: name: expected a name of letters"),
    ("city: {demo: {}, crs: 'EPSG:4326'}\n", "s.yaml:2: city.crs: expected crs only with inp:"),
    ("events:\n  - {at: 1h, type: demand_surge, factor: 2, nodes: [11, 11]}\n",
     "s.yaml:3: events[0].nodes[1]: expected each node once"),
])
def test_values_the_run_would_refuse_exit_2_before_running(tmp_path, text, where):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("horizon: 1d\n" + text)
    for command in ("validate", "run"):
        out_dir = ["--out", str(tmp_path / "o")] if command == "run" else []
        args = [command, str(scenario), *out_dir]
        out = twin(*args)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert where in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("hours", ["-1", "nan", "inf", "-inf", "ten"])
def test_water_simulate_rejects_bad_hours(hours, capsys):
    with pytest.raises(SystemExit) as info:
        main(["water", "simulate", "net.inp", f"--hours={hours}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert ("argument --hours: expected a number of hours >= 0 (0 = steady state), "
            f"got {hours!r}") in err


def test_water_simulate_accepts_zero_hours():
    from twin.cli import build_parser
    args = build_parser().parse_args(["water", "simulate", "net.inp", "--hours", "0"])
    assert args.hours == 0.0


def test_unknown_element_id_exits_2_when_the_network_is_built(tmp_path):
    out = twin("run", str(BAD / "unknown_element.yaml"), "--out", str(tmp_path))
    assert out.returncode == 2
    assert "unknown pipe" in out.stderr and "unknown_element.yaml:" in out.stderr
    assert not (tmp_path / "report.html").exists()


def test_malformed_inp_exits_2(tmp_path):
    bad = tmp_path / "broken.inp"
    bad.write_text("[PIPES]\n P1 J1 J2 not-a-length 100 100\n[END]\n")
    out = twin("water", "simulate", str(bad), "--json")
    assert out.returncode == 2
    assert "broken.inp" in out.stderr
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: s\ncity:\n  inp: {bad}\nhorizon: 1h\n")
    out = twin("run", str(scenario), "--out", str(tmp_path / "o"))
    assert out.returncode == 2 and "broken.inp" in out.stderr


def test_water_simulate_json_check_on_net3(net3_inp):
    out = twin_process("water", "simulate", str(net3_inp), "--hours", "48", "--check", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["nodes"] == 97 and result["links"] == 119
    assert result["steps"] == 49                       # hourly report steps over 48 h
    assert result["seconds"] > 0
    assert result["max_abs_pressure_diff_vs_epanet_m"] < 1e-3
    assert result["compared_steps"] == result["reference_steps"] == 49


def test_run_scenario_on_an_inp_file_with_compare(tmp_path, net3_inp):
    base = tmp_path / "net3_base.yaml"
    base.write_text(f"name: net3_base\ncity:\n  inp: {net3_inp}\nhorizon: 12h\nseed: 3\n")
    burst = tmp_path / "net3_burst.yaml"
    burst.write_text("extends: net3_base.yaml\nname: net3_burst\nevents:\n"
                     "  - at: 2h\n    type: pipe_burst\n    pipe: '123'\n    leak_area_m2: 0.01\n")
    out_dir = tmp_path / "out"
    out = twin("run", str(burst), "--compare", str(base), "--out", str(out_dir), "--no-progress")
    assert out.returncode == 0, out.stderr
    html = (out_dir / "report.html").read_text()
    assert "net3_base - " not in html or "net3_burst - net3_base" in html
    assert "water.leak_volume_m3" in html
    for png in ("pressure_over_time.png", "outflow_and_tank_levels.png", "map_net3_burst.png"):
        assert (out_dir / png).stat().st_size > 10_000
    series = pd.read_parquet(out_dir / "results" / "net3_burst_water.parquet")
    assert set(series["quantity"]) >= {"pressure", "flow", "tank_level"}
    kpis = json.loads((out_dir / "results" / "net3_burst_kpis.json").read_text())["kpis"]["water"]
    base_kpis = json.loads((out_dir / "results" / "net3_base_kpis.json").read_text())["kpis"]["water"]
    assert kpis["leak_volume_m3"] > 100 and base_kpis["leak_volume_m3"] == 0


def test_outputs_report_and_maps_flags_are_honoured(tmp_path, net3_inp):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: s\ncity:\n  inp: {net3_inp}\nhorizon: 2h\n"
                        "outputs: {quantities: [pressure], maps: false}\n")
    assert twin("run", str(scenario), "--out", str(tmp_path / "a")).returncode == 0
    assert (tmp_path / "a" / "report.html").exists()
    assert not list((tmp_path / "a").glob("map_*.png"))
    scenario.write_text(f"name: s\ncity:\n  inp: {net3_inp}\nhorizon: 2h\noutputs: {{report: false}}\n")
    assert twin("run", str(scenario), "--out", str(tmp_path / "b")).returncode == 0
    assert not (tmp_path / "b" / "report.html").exists()
    assert (tmp_path / "b" / "results" / "s_water.parquet").exists()
