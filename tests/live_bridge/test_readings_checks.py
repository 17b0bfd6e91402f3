"""Decoding and checking: every bad input is quarantined with its reason, nothing raises."""

from __future__ import annotations

import json

import pytest

from live_bridge.checks import Checker
from live_bridge.readings import (Quarantined, Reading, Reason, decode_payload, encode_readings,
                                  format_time, parse_time)
from live_bridge.registry import RegistryError, SensorRegistry

T0 = 1514764800.0          # 2018-01-01T00:00:00Z


def registry() -> SensorRegistry:
    return SensorRegistry.from_records([
        {"sensor_id": "n54", "layer": "water", "element": "n54", "quantity": "pressure",
         "unit": "m", "min": 0, "max": 120, "period_s": 300},
        {"sensor_id": "p227", "layer": "water", "element": "p227", "quantity": "flow",
         "unit": "m3/h", "min": -500, "max": 500},
    ])


def item(sensor="n54", ts="2018-01-01T00:05:00Z", value=51.2, unit="m") -> dict:
    return {"sensor_id": sensor, "timestamp": ts, "value": value, "unit": unit}


def test_timestamps_iso_naive_offset_and_epoch():
    assert parse_time("2018-01-01T00:05:00Z") == T0 + 300
    assert parse_time("2018-01-01T00:05:00") == T0 + 300                 # naive = UTC
    assert parse_time("2018-01-01T01:05:00+01:00") == T0 + 300
    assert parse_time(T0 + 300) == T0 + 300
    assert format_time(T0 + 300) == "2018-01-01T00:05:00Z"
    assert format_time(T0 + 0.25) == "2018-01-01T00:00:00.250000Z"


def test_batch_round_trip():
    readings = [Reading("n54", T0 + 300 * i, 50.0 + i, "m") for i in range(3)]
    assert decode_payload(encode_readings(readings)) == readings


@pytest.mark.parametrize("payload, reason", [
    (b"{not json", Reason.MALFORMED),
    (b"\xff\xfe", Reason.MALFORMED),
    (b"42", Reason.MALFORMED),
    (json.dumps({"sensor_id": "n54", "value": 1.0, "unit": "m"}), Reason.MALFORMED),
    (json.dumps(item(ts="yesterday")), Reason.MALFORMED),
    (json.dumps(item(sensor="")), Reason.MALFORMED),
    (json.dumps(item(value="51.2")), Reason.NOT_NUMERIC),
    (json.dumps(item(value=None)), Reason.NOT_NUMERIC),
    (json.dumps(item(value=True)), Reason.NOT_NUMERIC),
    ('{"sensor_id": "n54", "timestamp": 1514765100, "value": NaN, "unit": "m"}', Reason.NAN),
    ('{"sensor_id": "n54", "timestamp": 1514765100, "value": Infinity, "unit": "m"}', Reason.NAN),
])
def test_decoding_refuses_with_reason(payload, reason):
    [out] = decode_payload(payload, topic="twin/readings/n54")
    assert isinstance(out, Quarantined) and out.reason is reason
    assert out.topic == "twin/readings/n54" and out.detail and out.raw


def test_every_bad_input_quarantined_with_its_reason_and_counted():
    now = T0 + 3600
    checker = Checker(registry(), lateness_s=1800, future_tolerance_s=300, now=lambda: now)
    good = [item(ts=format_time(now - 600)), item(ts=format_time(now - 300)),
            item("p227", format_time(now - 300), 88.1, "m³/h")]               # unit alias
    bad = {
        Reason.MALFORMED: {"sensor_id": "n54", "timestamp": "2018-01-01T00:05:00Z"},
        Reason.UNKNOWN_SENSOR: item(sensor="n999", ts=format_time(now)),
        Reason.NOT_NUMERIC: item(value="high", ts=format_time(now)),
        Reason.NAN: item(value=float("nan"), ts=format_time(now)),
        Reason.OUT_OF_RANGE: item(value=500.0, ts=format_time(now)),
        Reason.WRONG_UNIT: item(unit="bar", ts=format_time(now)),
        Reason.FUTURE: item(ts=format_time(now + 3600)),
        Reason.LATE: item(ts=format_time(now - 7200)),
        Reason.OUT_OF_ORDER: item(ts=format_time(now - 900)),                 # after now - 300
        Reason.DUPLICATE: item(ts=format_time(now - 300), value=60.0),       # another value
    }
    payload = json.dumps(good + list(bad.values()))
    accepted, refused = checker.check_many(decode_payload(payload))
    assert [r.value for r in accepted] == [51.2, 51.2, 88.1]
    assert [q.reason for q in refused] == list(bad)
    assert all(q.detail for q in refused)
    counts = checker.counts()
    assert counts["accepted"] == 3 and counts["quarantined"] == len(bad)
    assert all(counts[r.value] == 1 for r in bad)
    assert refused[1].sensor_id == "n999" and "not in the registry" in refused[1].detail
    assert "outside [0, 120]" in refused[4].detail


def test_identical_repeat_is_accepted_for_the_store_to_absorb():
    checker = Checker(registry(), now=None)
    first = decode_payload(json.dumps(item()))
    assert isinstance(checker.check(first[0]), Reading)
    assert isinstance(checker.check(decode_payload(json.dumps(item()))[0]), Reading)
    assert checker.counts()["quarantined"] == 0


def test_replay_clock_follows_newest_accepted_timestamp():
    checker = Checker(registry(), lateness_s=600, future_tolerance_s=3600, now=None)
    for k in range(1, 5):                                   # advance the clock to T0 + 4 h
        assert isinstance(checker.check(Reading("n54", T0 + 3600 * k, 50.0, "m")), Reading)
    assert checker.replay_clock_s == T0 + 4 * 3600
    late = checker.check(Reading("p227", T0 + 3 * 3600, 1.0, "m3/h"))       # another sensor
    future = checker.check(Reading("p227", T0 + 6 * 3600, 1.0, "m3/h"))
    assert (late.reason, future.reason) == (Reason.LATE, Reason.FUTURE)


HEADER = "sensor_id,layer,element,quantity,unit,min,max\n"
YAML_A = "{sensor_id: a, layer: water, element: a, quantity: pressure, unit: m, min: 0, max: 1"


@pytest.mark.parametrize("name, text, message", [
    ("s.csv", HEADER + "n54,water,n54,pressure,m,0,120\nn55,water,n55,pressure,m,zero,120\n",
     r"s.csv:3: min: expected a number, got 'zero'"),
    ("s.csv", HEADER + "n54,water,n54,pressure,m,0,1\nn54,water,n54,pressure,m,0,1\n",
     r"s.csv:3: sensor_id: 'n54' appears twice \(first at line 2\)"),
    ("s.csv", "sensor_id,layer,element,quantity,unit,min\n", r"s.csv:1: max: column missing"),
    ("s.csv", HEADER + "n54,water,,pressure,m,0,1\n", r"s.csv:2: element: expected a non-empty"),
    ("s.yaml", f"sensors:\n  - {YAML_A}}}\n  - {YAML_A.replace('a,', 'b,')}, min: 5}}\n",
     r"s.yaml:3: min: min 5 is above max 1"),
    ("s.yaml", f"- {YAML_A}, colour: red}}\n", r"s.yaml:1: colour: unknown field"),
    ("s.yaml", "- [unclosed\n", r"s.yaml:2: malformed YAML"),
    ("s.txt", "", r"s.txt: expected a .csv, .yaml or .yml file"),
])
def test_registry_errors_name_file_line_and_field(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(RegistryError, match=message):
        SensorRegistry.load(path)


def test_registry_round_trip(tmp_path):
    reg = registry()
    for name in ("r.csv", "r.yaml"):
        again = SensorRegistry.load(reg.save(tmp_path / name))
        assert list(again) == list(reg)
    frame = reg.to_frame()
    assert frame.loc["p227", "unit"] == "m3/h" and frame.loc["n54", "period_s"] == 300
