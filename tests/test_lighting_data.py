"""Cabinet recordings: the reader's errors, and the detector on the real SLightliMon cabinet."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import shared_file
from twin.cli import main
from twin.errors import BadInput
from twin.networks.lighting_data import detect_recording, nights, read_recording


@pytest.fixture
def cabinet_power():
    return shared_file("streetlight", "slightlimon_cabinet", "w-data-test.txt")


def test_malformed_recording_names_the_line(tmp_path):
    bad = tmp_path / "w.txt"
    bad.write_text("0\n5000.5\nnan\n12,3\n")
    with pytest.raises(BadInput, match=r"w.txt:4: expected one power reading in W .*'12,3'"):
        read_recording(bad)
    bad.write_text("0\n-40\n")
    with pytest.raises(BadInput, match=r"w.txt:2: expected a power between 0 and"):
        read_recording(bad)
    bad.write_text("\n\n")
    with pytest.raises(BadInput, match="empty recording"):
        read_recording(bad)
    assert main(["lighting", "detect", str(tmp_path / "missing.txt")]) == 2


def test_real_cabinet_nights_and_the_interruption(cabinet_power):
    power = read_recording(cabinet_power)
    assert len(power) == 8640 and int(np.isnan(power).sum()) == 59
    days = nights(power)
    assert len(days) == 6
    assert all(69.5 < d.energy_kwh < 71.0 for i, d in enumerate(days) if i != 2)
    assert days[2].energy_kwh < 67.0                     # the interrupted night
    found = detect_recording(power)
    # the README's 38-minute gap on day index 2 (index clock 19:49-20:27, lines 4070-4107),
    # then a reading at ~15 W and a re-strike: one supply interruption, nothing else
    assert found["kind"].tolist() == ["supply_interruption"]
    event = found.iloc[0]
    assert event["start_line"] == 2880 + 19 * 60 + 49 + 1
    assert event["detected_line"] == 4108
    assert 4500 < event["size_w"] < 5600


def test_cli_detect_json(cabinet_power, capsys):
    assert main(["lighting", "detect", str(cabinet_power), "--start", "2015-03-01T00:00",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["events"] == 1
    event = out["files"][0]["events"][0]
    assert event["kind"] == "supply_interruption"
    assert event["start_time"] == "2015-03-03T19:49:00"
    # a smaller threshold reports the cabinet's slow drift too: more candidate steps
    assert main(["lighting", "detect", str(cabinet_power), "--min-step-w", "100",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["events"] > 1
