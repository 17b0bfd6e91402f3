"""``twin waste simulate``: JSON output, a report, readings files checked line by line."""

from __future__ import annotations

import json
from pathlib import Path

from twin.cli import main

KEYS = ("km_driven", "collections", "container_overflows", "mean_fill_at_collection", "co2_kg")


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_simulate_json_report_and_readings(tmp_path: Path, capsys) -> None:
    readings = tmp_path / "readings.csv"
    readings.write_text("time_s,container_id,fill_fraction\n3600,c1,0.95\n7200,c2,0.4\n")
    out = tmp_path / "report"
    args = ["waste", "simulate", "--days", "2", "--population", "5000", "--strategy", "sensor",
            "--seed", "3", "--json", "--no-progress"]
    assert main(args + ["--readings", str(readings), "--out", str(out)]) == 0
    payload = _json(capsys)
    assert all(payload[k] == payload["kpis"][k] for k in KEYS)
    assert payload["collections"] > 0 and payload["km_driven"] > 0
    assert payload["readings_fed"] == 2 and payload["strategy"] == "sensor"
    assert (out / "report.html").is_file() and (out / "waste_kpis.png").is_file()
    # the same seed gives the same run
    assert main(args + ["--readings", str(readings)]) == 0
    again = _json(capsys)
    assert {k: again[k] for k in KEYS} == {k: payload[k] for k in KEYS}


def test_bad_readings_are_bad_input(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    args = ["waste", "simulate", "--days", "1", "--population", "5000", "--json",
            "--readings", str(bad)]
    bad.write_text("time_s,container_id,fill_fraction\n0,c1,0.5\n60,c77777,0.5\n")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{bad}, line 3: unknown container 'c77777'" in err
    bad.write_text("time_s,container_id,fill_fraction\n0,c1,-0.1\n")
    assert main(args) == 2
    assert f"{bad}, line 2: expected a fill_fraction >= 0" in capsys.readouterr().err
    bad.write_text("when,container,fill\n0,c1,0.5\n")
    assert main(args) == 2
    assert "expected the columns time_s, container_id, fill_fraction" in capsys.readouterr().err
