"""End to end against the real Mosquitto: a recorded stretch of L-Town readings with a leak
in it is replayed onto MQTT (with bad readings among them); the bridge stores every accepted
reading, quarantines the bad ones with their reasons, the shadow twin follows the stored
readings and the leak alert comes back on MQTT naming a pipe near the true one."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid

import paho.mqtt.client as paho
import pytest

from live_bridge.bridge import Bridge
from live_bridge.checks import Checker
from live_bridge.leak_config import LeakConfig, LeakSpec, load_leak_config
from live_bridge.leak_dataset import generate_dataset
from live_bridge.leak_detection import DetectorSettings
from live_bridge.leak_scoring import PipeDistances
from live_bridge.mqtt import MqttSettings, Publisher
from live_bridge.readings import Reading, Reason, encode_reading
from live_bridge.replay import ReplaySource, registry_from_scada
from live_bridge.shadow_twin import ShadowTwin, mqtt_sink, store_sink
from live_bridge.store import open_store
from tests.conftest import shared_file
from tests.live_bridge.test_mqtt import wait_for

LEAK_PIPE = "p673"
LEAK_AT = dt.datetime(2018, 1, 3, 6, 0)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    inp = shared_file("battledim/L-TOWN.inp")
    layout = load_leak_config(shared_file(
        "battledim/config/dataset_configuration_historical_2018.yalm"))
    leak = LeakSpec(LEAK_PIPE, LEAK_AT, dt.datetime(2018, 1, 4), 0.02, "abrupt", LEAK_AT)
    config = LeakConfig(start=dt.datetime(2018, 1, 1), end=dt.datetime(2018, 1, 3, 23, 55),
                        leaks=(leak,), pressure_sensors=layout.pressure_sensors,
                        flow_sensors=layout.flow_sensors, level_sensors=layout.level_sensors,
                        amrs=layout.amrs, source="e2e")
    folder = tmp_path_factory.mktemp("scada")
    generate_dataset(inp, config, seed=3).save(folder)
    return inp, folder


def test_replay_with_a_leak_raises_the_alert_on_mqtt(broker_1883, recording, tmp_path):
    inp, folder = recording
    tag = uuid.uuid4().hex[:8]
    settings = MqttSettings(client_id=f"e2e-bridge-{tag}", prefix=f"e2e{tag}")
    registry = registry_from_scada(folder)
    readings = list(ReplaySource.from_scada(folder))
    t0 = readings[0].time_s
    bad = [  # (topic sensor, payload, reason)
        ("n54", b'{"sensor_id": "n54", "value": ', Reason.MALFORMED),
        ("n9999", encode_reading(Reading("n9999", t0 + 3600, 40.0, "m")), Reason.UNKNOWN_SENSOR),
        ("n54", b'{"sensor_id":"n54","timestamp":"2018-01-03T23:55:00Z","value":NaN,"unit":"m"}',
         Reason.NAN),
        ("n105", encode_reading(Reading("n105", t0 + 258600, 1e6, "m")), Reason.OUT_OF_RANGE),
    ]
    alerts: list[dict] = []
    watcher = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"e2e-watch-{tag}")
    watcher.on_message = lambda c, u, m: alerts.append(json.loads(m.payload))
    watcher.connect("127.0.0.1", 1883)
    watcher.subscribe(settings.alert_topic("#"), qos=1)
    watcher.loop_start()
    with open_store(f"sqlite:///{tmp_path}/bridge.db") as store, \
            Publisher(settings, client_id=f"e2e-alerts-{tag}") as alert_pub:
        shadow = ShadowTwin(inp, registry, dt.datetime(2018, 1, 1),
                            settings=DetectorSettings(train_days=2.0),
                            sinks=[store_sink(store), mqtt_sink(alert_pub)])
        bridge = Bridge(registry, store, Checker(registry, now=None, future_tolerance_s=86400))
        done = threading.Event()
        runner = threading.Thread(target=bridge.run_mqtt, args=(settings,),
                                  kwargs={"on_readings": shadow.on_readings, "stop": done.is_set})
        runner.start()
        try:
            assert bridge.ready.wait(10), "the bridge did not subscribe within 10 s"
            with Publisher(settings, client_id=f"e2e-replay-{tag}") as pub:
                pub.publish_readings(readings, batch=500, source="scada")
                for sensor, payload, _ in bad:
                    pub.publish(settings.reading_topic(sensor), payload)
                pub.flush()
            expected = len(readings) + len(bad)
            wait_for(lambda: bridge.counts.received == expected, 60, f"{expected} readings")
        finally:
            done.set()
            runner.join(120)
        assert not runner.is_alive(), "the bridge did not stop"
        shadow.flush()
        wait_for(lambda: alerts, 10, "a leak alert on MQTT")
        counts = bridge.counts
        assert store.count() == counts.stored == len(readings) == expected - len(bad)
        assert store.quarantine_counts() == {"malformed": 1, "unknown_sensor": 1, "nan": 1,
                                             "out_of_range": 1}
        assert shadow.counts.steps == 3 * 288
        assert counts.callback_errors == 0
        stored_alerts = store.alerts()
        assert len(stored_alerts) == len(shadow.alerts) >= 1
    watcher.loop_stop()
    watcher.disconnect()
    leaks = [a for a in alerts if a["kind"] == "leak"]
    assert leaks and all(a["kind"] == "leak" for a in shadow.alerts), shadow.alerts
    first = leaks[0]
    when = dt.datetime.strptime(first["time"], "%Y-%m-%dT%H:%M:%SZ")
    assert LEAK_AT < when < LEAK_AT + dt.timedelta(hours=18)
    distance = PipeDistances.from_inp(inp).distance(first["element"], LEAK_PIPE)
    assert distance <= 300, f"alert names {first['element']}, {distance:.0f} m from {LEAK_PIPE}"
    # the twin's own bus carries the alert too, for crews and dashboards
    assert any(e.element_id == first["element"] for e in shadow.twin.bus.log
               if type(e).__name__ == "Alert")


def test_stuck_and_silent_sensors_are_flagged(recording):
    """One pressure sensor freezes on day three, another goes silent for its last 8 hours:
    the shadow twin's daily health check names both, once each, and nothing else."""
    inp, folder = recording
    registry = registry_from_scada(folder)
    readings = list(ReplaySource.from_scada(folder))
    t_freeze = readings[0].time_s + 2 * 86400 + 6 * 3600
    t_silent = readings[-1].time_s - 8 * 3600
    edited = []
    for r in readings:
        if r.sensor_id == "n105" and r.time_s >= t_freeze:
            r = Reading(r.sensor_id, r.time_s, 47.25, r.unit)
        if r.sensor_id == "n415" and r.time_s > t_silent:
            continue
        edited.append(r)
    shadow = ShadowTwin(inp, registry, dt.datetime(2018, 1, 1),
                        settings=DetectorSettings(train_days=2.0))
    for i in range(0, len(edited), 5000):
        shadow.on_readings(edited[i:i + 5000])
    shadow.flush()
    health = sorted((a["kind"], a["element"]) for a in shadow.alerts if a["kind"] != "leak")
    assert health == [("sensor_silent", "n415"), ("sensor_stuck", "n105")]
    shadow.close()


def test_a_biased_pressure_sensor_is_named_not_taken_for_a_leak(tmp_path):
    """No leak; from 03:00 on day four one pressure sensor reads 0.5 m high. The shadow twin
    names that sensor (sensor_bias) and raises no leak alert."""
    inp = shared_file("battledim/L-TOWN.inp")
    layout = load_leak_config(shared_file(
        "battledim/config/dataset_configuration_historical_2018.yalm"))
    config = LeakConfig(start=dt.datetime(2018, 1, 1), end=dt.datetime(2018, 1, 4, 23, 55),
                        pressure_sensors=layout.pressure_sensors,
                        flow_sensors=layout.flow_sensors, level_sensors=layout.level_sensors,
                        amrs=layout.amrs, source="bias")
    folder = tmp_path / "scada"
    generate_dataset(inp, config, seed=4).save(folder)
    registry = registry_from_scada(folder)
    t_bias = (dt.datetime(2018, 1, 4, 3) - dt.datetime(1970, 1, 1)).total_seconds()
    readings = [Reading(r.sensor_id, r.time_s, r.value + 0.5, r.unit)
                if r.sensor_id == "n458" and r.time_s >= t_bias else r
                for r in ReplaySource.from_scada(folder)]
    shadow = ShadowTwin(inp, registry, dt.datetime(2018, 1, 1),
                        settings=DetectorSettings(train_days=3.0))
    for i in range(0, len(readings), 5000):
        shadow.on_readings(readings[i:i + 5000])
    shadow.flush()
    shadow.close()
    kinds = [(a["kind"], a["element"]) for a in shadow.alerts]
    assert ("sensor_bias", "n458") in kinds, kinds
    assert not [k for k in kinds if k[0] == "leak"], kinds
    alert = next(a for a in shadow.alerts if a["kind"] == "sensor_bias")
    assert alert["details"]["bias_m"] == pytest.approx(0.5, abs=0.15)
    assert alert["time_s"] > t_bias


def test_live_shadow_twin_follows_the_data_on_the_real_time_clock(recording):
    """Live mode runs on SimPy's real-time environment anchored at the first step's wall
    time: readings of the last minutes are solved as they come, never held back until the
    clock catches up from the moment the twin was built."""
    import threading

    inp, folder = recording
    registry = registry_from_scada(folder)
    now = dt.datetime.now(dt.timezone.utc).timestamp()
    first = (now // 300) * 300 - 3 * 300
    recent = [Reading(s, first + k * 300, 40.0 + k, "m") for k in range(4)
              for s in ("n54", "n105", "n114")]
    shadow = ShadowTwin(inp, registry, realtime=True)
    worker = threading.Thread(target=lambda: (shadow.on_readings(recent), shadow.flush()))
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the live shadow twin waited behind the data"
    assert shadow.twin.clock.realtime and shadow.counts.steps == 4
    assert shadow.twin.clock.now_s == 3 * 300
    shadow.close()
