"""Sensor-fault detection on hydraulically consistent pressures.

L-Town (BattLeDIM) is stepped for 12 days by the water layer; its 33 BattLeDIM pressure
sensors read the simulated pressure plus white noise (σ = 0.02 m). The first week (a
whole weekly demand cycle: trained on weekdays only, the weekend looks like a fault)
trains the peer models. Injected: n105 stuck from day 8 10:00, n458 drifting
+0.3 m/day from day 8 14:00, n679 biased +0.25 m from day 9 06:00.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from live_bridge.sensor_faults import (FaultDetectorSettings, SensorDataError, cusum,
                                       detect_sensor_faults, find_stuck)

H, D = 3600.0, 86400.0
NOISE_M = 0.02
SENSORS = ("n1 n4 n31 n54 n105 n114 n163 n188 n215 n229 n288 n296 n332 n342 n410 n415 n429 "
           "n458 n469 n495 n506 n516 n519 n549 n613 n636 n644 n679 n722 n726 n740 n752 "
           "n769").split()
DAYS = 12
STUCK = ("n105", 8 * D + 10 * H)
DRIFT = ("n458", 8 * D + 14 * H, 0.3)        # m/day
BIAS = ("n679", 9 * D + 6 * H, 0.25)         # m
SETTINGS = FaultDetectorSettings(train_s=7 * D)


@pytest.fixture(scope="module")
def pressures(request) -> pd.DataFrame:
    """Noiseless simulated pressures (m) at the sensors, every 5 min for 12 days."""
    from tests.conftest import shared_file
    from twin.networks.water import WaterLayer
    from twin.twin import Twin

    inp = shared_file("battledim", "L-TOWN.inp")
    twin = Twin(seed=0)
    twin.add_layer(WaterLayer(inp, horizon_s=DAYS * D, record=("pressure",)))
    twin.run(DAYS * D)
    frame = twin.recorder.wide("water", "pressure")[SENSORS]
    twin.close()
    return frame


def _noisy(clean: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return clean + rng.normal(0.0, NOISE_M, clean.shape)


def _inject(readings: pd.DataFrame) -> pd.DataFrame:
    out = readings.copy()
    t = out.index.to_numpy()
    sensor, start = STUCK
    out.loc[t >= start, sensor] = out.loc[t >= start, sensor].iloc[0]
    sensor, start, per_day = DRIFT
    out.loc[t >= start, sensor] += per_day * (t[t >= start] - start) / D
    sensor, start, step = BIAS
    out.loc[t >= start, sensor] += step
    return out


@pytest.fixture(scope="module")
def found(pressures):
    return {f.sensor_id: f for f in detect_sensor_faults(_inject(_noisy(pressures, 1)),
                                                         settings=SETTINGS)}


def test_each_injected_fault_is_found_on_its_sensor_with_its_kind(found):
    assert set(found) == {STUCK[0], DRIFT[0], BIAS[0]}          # and no other sensor
    assert [found[s[0]].kind for s in (STUCK, DRIFT, BIAS)] == ["stuck", "drift", "bias"]


def test_stuck_latency(found):
    f = found[STUCK[0]]
    assert f.start_time == STUCK[1]
    # one stuck window (1 h of 5-min samples, the first of them the held value itself)
    assert f.detection_time - STUCK[1] == pytest.approx(55 * 60)
    assert "held at" in f.detail and f.unit == "m"


def test_drift_latency_and_slope(found):
    f = found[DRIFT[0]]
    assert STUCK[1] < f.alarm_time <= f.detection_time
    # over 20 noise draws: alarm 2.8-4.6 h (median 3.4), kind named 4.2-7.2 h (median 5.5)
    assert DRIFT[1] < f.alarm_time < DRIFT[1] + 5 * H
    assert f.detection_time < DRIFT[1] + 8 * H
    assert abs(f.start_time - DRIFT[1]) < 2 * H
    # true 0.3 m/day, estimated from the hours before detection: 0.19-0.59 over 20 draws
    assert f.unit == "m/day" and 0.15 < f.magnitude < 0.65


def test_bias_latency_and_step(found):
    f = found[BIAS[0]]
    assert BIAS[1] <= f.alarm_time < BIAS[1] + 15 * 60              # measured: 5 min
    assert f.detection_time <= BIAS[1] + 1 * H                      # measured: 55 min
    assert abs(f.start_time - BIAS[1]) <= 10 * 60
    assert f.unit == "m" and f.magnitude == pytest.approx(BIAS[2], abs=0.015)


def test_no_false_alarm_on_clean_sensors(pressures):
    """3 noise draws × 33 sensors × 5 days after training = 495 sensor-days, no alarm."""
    for seed in (2, 3, 4):
        assert detect_sensor_faults(_noisy(pressures, seed), settings=SETTINGS) == []


def test_with_the_model_as_reference(pressures):
    """Residual = reading − simulated (the twin's own run), then peers: same faults."""
    readings = _inject(_noisy(pressures, 5))
    faults = detect_sensor_faults(readings, simulated=pressures, settings=SETTINGS)
    assert {(f.sensor_id, f.kind) for f in faults} == {(STUCK[0], "stuck"), (DRIFT[0], "drift"),
                                                       (BIAS[0], "bias")}


def test_datetime_index(pressures):
    readings = _inject(_noisy(pressures, 1))
    readings.index = pd.Timestamp("2026-06-15") + pd.to_timedelta(readings.index, unit="s")
    faults = {f.sensor_id: f for f in detect_sensor_faults(readings, settings=SETTINGS)}
    assert faults[BIAS[0]].start_time == pd.Timestamp("2026-06-15") + pd.Timedelta(seconds=BIAS[1])


def test_stuck_needs_varying_peers():
    idx = np.arange(100) * 300.0
    flat = pd.DataFrame({"a": np.ones(100), "b": np.ones(100), "c": np.ones(100)}, index=idx)
    assert find_stuck(flat, 12) == {}                  # all flat: nothing to compare with
    varying = flat.assign(b=np.sin(idx / 3000), c=np.cos(idx / 3000))
    assert find_stuck(varying, 12) == {"a": (0, 11)}


def test_cusum_two_sided():
    up, low = cusum(np.array([0.0, 2.0, 2.0, -3.0, -3.0]), k=1.0)
    assert up.tolist() == [0.0, 1.0, 2.0, 0.0, 0.0] and low.tolist() == [0.0, 0.0, 0.0, 2.0, 4.0]


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0]}), "at least 3 sensors"),
    (pd.DataFrame({"a": [1.0, np.nan], "b": [1.0, 2.0], "c": [3.0, 4.0]}), r"missing values in \['a'\]"),
    (pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0], "c": [3.0, 4.0]}, index=[5.0, 1.0]),
     "strictly increasing"),
])
def test_bad_readings_are_refused(frame, message):
    with pytest.raises(SensorDataError, match=message):
        detect_sensor_faults(frame)
