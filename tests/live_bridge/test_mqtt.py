"""The bridge over real Mosquitto brokers: exact counts, quarantine reasons, and no loss or
double storage when the broker and the bridge are killed mid-stream."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from live_bridge.bridge import Bridge
from live_bridge.checks import Checker
from live_bridge.mqtt import LocalMosquitto, MqttSettings, MqttSource, Publisher
from live_bridge.readings import Reading, Reason, encode_reading
from live_bridge.registry import SensorRegistry
from live_bridge.store import open_store

T0 = 1546300800.0          # 2019-01-01T00:00:00Z
SENSORS = [f"n{i}" for i in range(10)]


def registry(path: Path | None = None) -> SensorRegistry:
    reg = SensorRegistry.from_records([
        {"sensor_id": s, "layer": "water", "element": s, "quantity": "pressure", "unit": "m",
         "min": 0, "max": 150, "period_s": 60} for s in SENSORS])
    if path is not None:
        reg.save(path)
    return reg


def readings(steps: int) -> list[Reading]:
    return [Reading(s, T0 + 60 * k, 40.0 + (k % 50) + i / 10, "m")
            for k in range(steps) for i, s in enumerate(SENSORS)]


def unique_settings(port: int = 1883) -> MqttSettings:
    tag = uuid.uuid4().hex[:8]
    return MqttSettings(port=port, client_id=f"test-bridge-{tag}", prefix=f"test{tag}")


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def test_bridge_stores_exactly_accepted_and_quarantines_each_bad_reading(broker_1883, tmp_path):
    settings = unique_settings()
    good = readings(200)                                     # 2,000 readings
    late_step = [Reading(s, T0 + 60 * 500, 45.0, "m") for s in SENSORS]
    bad = {                                                  # topic suffix -> payload, reason
        "n1": (b'{"sensor_id": "n1", "timestamp": ', Reason.MALFORMED),
        "n404": (encode_reading(Reading("n404", T0 + 60 * 500, 40.0, "m")), Reason.UNKNOWN_SENSOR),
        "n2": (b'{"sensor_id":"n2","timestamp":"2019-01-01T08:20:00Z","value":NaN,"unit":"m"}',
               Reason.NAN),
        "n3": (b'{"sensor_id":"n3","timestamp":"2019-01-01T08:20:00Z","value":"low","unit":"m"}',
               Reason.NOT_NUMERIC),
        "n4": (encode_reading(Reading("n4", T0 + 60 * 501, 999.0, "m")), Reason.OUT_OF_RANGE),
        "n5": (encode_reading(Reading("n5", T0 + 60 * 501, 40.0, "bar")), Reason.WRONG_UNIT),
        "n6": (encode_reading(Reading("n6", T0 + 630, 40.0, "m")), Reason.OUT_OF_ORDER),
        "n7": (encode_reading(Reading("n7", T0 + 60 * 500, 41.0, "m")), Reason.DUPLICATE),
        "n8": (encode_reading(Reading("n8", T0 + 86400 * 30, 41.0, "m")), Reason.FUTURE),
    }
    passed_on: list[Reading] = []

    def on_readings(batch: list[Reading]) -> None:
        passed_on.extend(batch)
        if len(passed_on) == len(batch):                     # the first call
            raise RuntimeError("a consumer bug must not stop the bridge")

    with open_store(f"sqlite:///{tmp_path}/s.db") as store:
        bridge = Bridge(registry(), store, Checker(registry(), now=None, future_tolerance_s=86400))
        done = threading.Event()
        runner = threading.Thread(target=bridge.run_mqtt, args=(settings,),
                                  kwargs={"on_readings": on_readings, "stop": done.is_set})
        runner.start()
        try:
            assert bridge.ready.wait(10), "the bridge did not subscribe within 10 s"
            with Publisher(settings) as pub:
                pub.publish_readings(good, batch=100, source="scada")
                pub.publish_readings(late_step, batch=1)            # one message per reading
                for sensor, (payload, _) in bad.items():
                    pub.publish(settings.reading_topic(sensor), payload)
                pub.publish(settings.reading_topic("n9"), encode_reading(late_step[9]))  # repeat
                pub.flush()
            expected = len(good) + len(late_step) + len(bad) + 1
            wait_for(lambda: bridge.counts.received == expected, 15, f"{expected} readings")
        finally:
            done.set()
            runner.join(10)
        counts = bridge.counts
        assert counts.accepted == counts.received - len(bad) == len(good) + len(late_step) + 1
        assert counts.stored == store.count() == len(good) + len(late_step)
        assert counts.duplicates == 1                           # the identical repeat, absorbed
        assert store.quarantine_counts() == {r.value: 1 for _, r in bad.values()}
        assert dict(counts.quarantined) == {r: 1 for _, r in bad.values()}
        assert counts.callback_errors == 1
        assert passed_on == good + late_step                   # each stored reading once, in order
        q = store.quarantine().set_index("reason")
        assert q.loc["malformed", "topic"] == settings.reading_topic("n1")
        assert q.loc["unknown_sensor", "sensor_id"] == "n404"
        stored = store.readings(wide=True)
        assert stored.loc[T0 + 60 * 199, "n3"] == pytest.approx(40.0 + 49 + 0.3)


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto binary not on PATH")
def test_no_loss_no_double_when_broker_and_bridge_are_killed(tmp_path):
    """Stream readings; SIGKILL the bridge and restart it; SIGTERM the broker and restart it
    on the same port and persistence; every reading is stored exactly once."""
    broker = LocalMosquitto(tmp_path / "broker").start()
    settings = unique_settings(broker.port)
    reg_path = tmp_path / "sensors.csv"
    registry(reg_path)
    db = tmp_path / "bridge.db"
    command = [sys.executable, "-m", "twin.cli", "bridge", "run", "--registry", str(reg_path),
               "--store", f"sqlite:///{db}", "--clock", "replay", "--port", str(broker.port),
               "--prefix", settings.prefix, "--client-id", settings.client_id,
               "--max-seconds", "60", "--json"]

    def start_bridge() -> subprocess.Popen:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    sent = readings(2400)                                    # 24,000 readings, 2,400 messages
    published: dict = {}
    session = MqttSource(settings)                           # the bridge's persistent session
    session.start()                                          # exists before anything is sent
    assert session.subscribed.wait(10)
    session.stop()
    bridge = start_bridge()
    try:
        def publish() -> None:
            with Publisher(settings) as pub:
                published.update(pub.publish_readings(sent, batch=10, speed=60 * 2400 / 6.0))
        publisher = threading.Thread(target=publish)
        publisher.start()
        time.sleep(1.5)
        bridge.kill()                                        # crash: nothing acknowledged is lost
        bridge.wait()
        time.sleep(0.5)
        bridge = start_bridge()
        time.sleep(1.5)
        broker.stop()                                        # SIGTERM: Mosquitto saves its state
        time.sleep(0.7)
        broker.start()
        publisher.join(30)
        assert not publisher.is_alive() and published["readings"] == len(sent)

        with open_store(f"sqlite:///{db}") as store:
            wait_for(lambda: store.count() >= len(sent), 20, "every reading stored")
            time.sleep(0.5)                                  # anything more would be a double
            got = store.readings()
            bridge.send_signal(signal.SIGTERM)
            out, err = bridge.communicate(timeout=10)
    finally:
        if bridge.poll() is None:
            bridge.kill()
        broker.stop()
    assert len(got) == len(sent)
    assert not got.duplicated(["sensor_id", "time_s"]).any()
    expected = {(r.sensor_id, r.time_s): r.value for r in sent}
    assert {(s, t): v for s, t, v in zip(got.sensor_id, got.time_s, got.value)} == expected
    last = json.loads(out.strip().splitlines()[-1])          # the restarted bridge's counts
    assert last["quarantined"] == 0 and last["stored"] > 0, err
