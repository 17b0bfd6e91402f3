"""End to end in headless Chromium: the page is open while three days of L-Town readings
with a leak are replayed onto the real Mosquitto; the bridge stores them, the shadow twin
follows them in the dashboard's process, the leak alert appears on the page, a click on it
shows the chart of measured vs simulated for the sensor nearest the leak, and a screenshot
is saved in the test's output folder."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from live_bridge.dashboard import browser
from tests.live_bridge.conftest import broker_1883  # noqa: F401  (the real Mosquitto)

ENV_OUTPUT = "TWIN_TEST_OUTPUT"      # keep the screenshot there (default: pytest's tmp_path)


@pytest.fixture
def chrome():
    why = browser.missing()
    if why:
        pytest.skip(why)
    driver = browser.chromium()
    yield driver
    driver.quit()


@pytest.fixture
def output_dir(tmp_path, request) -> Path:
    base = os.environ.get(ENV_OUTPUT)
    folder = Path(base) / request.node.name if base else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_replayed_leak_is_flagged_in_the_browser(chrome, broker_1883, tmp_path, output_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from live_bridge.dashboard.app import create_app
    from live_bridge.dashboard.demo import leak_recording, replay
    from live_bridge.dashboard.feed import LiveFeed
    from live_bridge.dashboard.geo import NetworkMap
    from live_bridge.dashboard.live import LiveTwin
    from live_bridge.dashboard.server import ServerThread
    from live_bridge.dashboard.service import Dashboard
    from live_bridge.dashboard.whatif_desk import WhatIfDesk
    from live_bridge.mqtt import MqttSettings
    from live_bridge.registry import SensorRegistry
    from live_bridge.store import open_store
    from tests.conftest import SHARED_DATA, shared_file

    shared_file("battledim", "L-TOWN.inp")
    shared_file("battledim", "config", "dataset_configuration_historical_2018.yalm")
    rec = leak_recording(tmp_path / "demo", data=SHARED_DATA)
    tag = uuid.uuid4().hex[:8]
    settings = MqttSettings(client_id=f"dash-e2e-{tag}", prefix=f"dash{tag}")
    registry = SensorRegistry.load(rec.registry)
    store = open_store(f"sqlite:///{tmp_path}/bridge.db")
    feed = LiveFeed()
    live = LiveTwin(registry, store, rec.inp, feed, settings, replay=True, train_days=2.0,
                    idle_flush_s=2.0)
    dashboard = Dashboard(store, registry, NetworkMap.from_inp(rec.inp), feed=feed,
                          whatif=WhatIfDesk(rec.inp))
    server = ServerThread(create_app(dashboard, poll_s=0.25))
    live.start()
    server.start()
    try:
        chrome.get(server.url + "/")
        wait = WebDriverWait(chrome, 20)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        assert chrome.find_elements(By.CSS_SELECTOR, "#alerts li.alert") == []
        publisher = replay(rec, settings, seconds_per_day=None)       # the replay runs now
        leak = WebDriverWait(chrome, 90, poll_frequency=0.5).until(ec.element_to_be_clickable(
            (By.CSS_SELECTOR, "#alerts li.alert[data-kind='leak']")))
        publisher.join(60)
        element = leak.get_attribute("data-element")
        leak.click()
        wait.until(lambda d: int(d.find_element(By.ID, "chart").get_attribute("data-points")) > 0)
        title = chrome.find_element(By.ID, "chart-title").text
        chart = chrome.find_element(By.ID, "chart")
        points = int(chart.get_attribute("data-points"))
        simulated = int(chart.get_attribute("data-simulated"))
        state = chrome.execute_script(
            "const S = window.__dashboard.state; return JSON.stringify({"
            "selected: S.selected && S.selected.sensor_id, alert: S.alert,"
            "score: S.selected ? S.scores[S.byId[S.selected.sensor_id]] : null,"
            "updates: window.__dashboard.metrics.updates.length})")
        state = json.loads(state)
        shot = output_dir / "dashboard_leak_flagged.png"
        assert chrome.save_screenshot(str(shot))
    finally:
        server.stop()
        live.stop()
        store.close()
    alert = state["alert"]
    assert alert["kind"] == "leak" and alert["element"] == element
    assert alert["time"] > "2018-01-03T06:00:00Z", "flagged before the leak started"
    # the chart is the nearest sensor's, with simulated values beside the measured ones
    assert state["selected"] == alert["sensors"][0]
    assert title.startswith(f"Sensor {state['selected']}:")
    assert points > 100 and simulated > 100, (points, simulated)
    # the map shows that sensor departing from the twin at the alert's hour
    assert state["score"] is not None and abs(state["score"]) > 3, state
    assert state["updates"] > 0, "the page received no live update while the replay ran"
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
