"""Recorded readings: SCADA folders (sensor-id rule, registry), tidy files, pacing."""

from __future__ import annotations

import pandas as pd
import pytest

from live_bridge.checks import Checker
from live_bridge.replay import (ReplayError, ReplaySource, read_scada, read_tidy,
                                registry_from_scada, scada_sensor_id)
from tests.conftest import shared_file

T0 = 1546300800.0    # 2019-01-01T00:00:00Z


@pytest.fixture
def scada_dir(tmp_path):
    """A small BattLeDIM-style folder: n1 has a pressure sensor and an AMR meter."""
    (tmp_path / "2019_SCADA_Pressures.csv").write_text(
        "Timestamp;n1;n54\n2019-01-01 00:00:00;51,2;60,5\n2019-01-01 00:05:00;51,3;\n")
    (tmp_path / "2019_SCADA_Demands.csv").write_text(
        "Timestamp;n1\n2019-01-01 00:00:00;12,5\n2019-01-01 00:05:00;13\n")
    return tmp_path


def test_sensor_id_rule_and_tidy_readings(scada_dir):
    assert scada_sensor_id("pressure", "n1") == "n1"
    assert scada_sensor_id("demand", "n1") == "amr_n1"
    frame = read_scada(scada_dir)
    assert frame["time_s"].is_monotonic_increasing and len(frame) == 5   # the empty cell dropped
    first = list(ReplaySource(frame))[:3]
    assert [(r.sensor_id, r.value, r.unit) for r in first] == [
        ("n1", 51.2, "m"), ("n54", 60.5, "m"), ("amr_n1", 12.5, "L/h")]
    assert first[0].time_s == T0


def test_registry_from_scada(scada_dir):
    reg = registry_from_scada(scada_dir)
    assert sorted(reg.ids()) == ["amr_n1", "n1", "n54"]
    amr = reg["amr_n1"]
    assert (amr.element, amr.quantity, amr.unit, amr.period_s) == ("n1", "demand", "L/h", 300.0)
    assert reg["n54"].min < 0 < 120 < reg["n54"].max


def test_battledim_2019_folder():
    folder = shared_file("battledim", "scada_2019")
    reg = registry_from_scada(folder)
    assert {s.sensor_id: s.unit for s in reg} == {"p227": "m3/h", "p235": "m3/h",
                                                  "PUMP_1": "m3/h", "T1": "m"}
    source = ReplaySource.from_scada(folder)
    assert len(source) == 105120 * 4
    checker = Checker(reg, lateness_s=3600, future_tolerance_s=3600, now=None)
    accepted, refused = checker.check_many(source)            # a year of real SCADA: all plausible
    assert len(accepted) == len(source) and not refused
    assert checker.replay_clock_s == T0 + 365 * 86400 - 300


def test_tidy_csv_and_parquet(tmp_path):
    frame = pd.DataFrame({"time": ["2019-01-01T00:05:00Z", "2019-01-01T00:00:00"],
                          "sensor_id": ["a", "a"], "value": [2.0, 1.0], "unit": ["m", "m"]})
    frame.to_csv(tmp_path / "r.csv", index=False)
    frame.assign(time_s=[T0 + 300, T0]).drop(columns="time").to_parquet(tmp_path / "r.parquet")
    for name in ("r.csv", "r.parquet"):
        got = read_tidy(tmp_path / name)
        assert got["time_s"].tolist() == [T0, T0 + 300] and got["value"].tolist() == [1.0, 2.0]
    frame.drop(columns="unit").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ReplayError, match=r"bad.csv: column 'unit' missing"):
        read_tidy(tmp_path / "bad.csv")
    with pytest.raises(ReplayError, match="no SCADA file"):
        read_scada(tmp_path)


def test_speed_paces_by_timestamps():
    clock = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    frame = pd.DataFrame({"time_s": [T0, T0, T0 + 600, T0 + 1200], "sensor_id": list("abab"),
                          "value": [1.0] * 4, "unit": ["m"] * 4})
    out = list(ReplaySource(frame, speed=60, sleep=sleep, clock=lambda: clock[0]))
    assert len(out) == 4 and slept == [10.0, 10.0]          # 600 s of data = 10 s at 60x
    with pytest.raises(ReplayError, match="speed"):
        ReplaySource(frame, speed=0)
