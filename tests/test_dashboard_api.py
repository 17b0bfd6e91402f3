"""The dashboard's API on a real run: Net3 readings generated with a leak, passed through
the bridge's checks into a SQLite store and followed by the shadow twin, whose steps feed
the dashboard. Every endpoint, the operator token on the actions, bad input as 4xx."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from live_bridge.bridge import Bridge
from live_bridge.checks import Checker
from live_bridge.dashboard.app import create_app
from live_bridge.dashboard.feed import LiveFeed
from live_bridge.dashboard.geo import NetworkMap
from live_bridge.dashboard.server import ServerThread
from live_bridge.dashboard.service import Dashboard, DashboardSettings
from live_bridge.dashboard.whatif_desk import WhatIfDesk
from live_bridge.glrt import DetectorSettings
from live_bridge.leak_config import LeakConfig, LeakSpec
from live_bridge.leak_dataset import generate_dataset
from live_bridge.replay import ReplaySource, registry_from_scada
from live_bridge.shadow_twin import ShadowTwin, store_sink
from live_bridge.store import open_store

TOKEN = "s3cret-operator-token"
T0 = dt.datetime(2018, 1, 1)
LEAK_PIPE = "123"
LEAK_AT = T0 + dt.timedelta(hours=54)
DAYS = 3


@pytest.fixture(scope="module")
def run(tmp_path_factory, net3_inp_module):
    """Three days of Net3 with a leak from hour 54, through the bridge and the shadow twin
    (trained on the first two days)."""
    import wntr

    inp = net3_inp_module
    wn = wntr.network.WaterNetworkModel(str(inp))
    rng = np.random.default_rng(0)
    sources = tuple(n for n, link in wn.links() if link.link_type == "Pump"
                    or wn.get_node(link.start_node_name).node_type == "Reservoir")
    consumers = [n for n, j in wn.junctions() if j.demand_timeseries_list[0].base_value > 0]
    leak = LeakSpec(LEAK_PIPE, LEAK_AT, T0 + dt.timedelta(days=DAYS + 1), 0.03, "abrupt", LEAK_AT)
    config = LeakConfig(T0, T0 + dt.timedelta(days=DAYS) - dt.timedelta(minutes=5), (leak,),
                        tuple(rng.choice(wn.junction_name_list, 12, replace=False)), sources,
                        tuple(wn.tank_name_list), tuple(rng.choice(consumers, 15, replace=False)))
    folder = tmp_path_factory.mktemp("net3")
    generate_dataset(inp, config, seed=1).save(folder / "scada")
    registry = registry_from_scada(folder / "scada")
    store = open_store(f"sqlite:///{folder}/bridge.db")
    feed = LiveFeed(reference_s=24 * 3600)
    shadow = ShadowTwin(inp, registry, T0, settings=DetectorSettings(train_days=2.0),
                        sinks=[store_sink(store)], on_step=feed)
    bridge = Bridge(registry, store, Checker(registry, now=None, future_tolerance_s=86400),
                    on_readings=shadow.on_readings)
    readings = list(ReplaySource.from_scada(folder / "scada"))
    for i in range(0, len(readings), 2000):
        bridge.ingest(readings[i:i + 2000])
    shadow.flush()
    shadow.close()
    # alerts as the detectors file them (the detector's own leak alert on real data is the
    # browser test's, on L-Town): a leak on the leaking pipe and two of other severities
    sink = store_sink(store)
    for hours, kind, element, severity, details in (
            (60, "leak", LEAK_PIPE, "high", {"estimated_m3h": 40.0}),
            (64, "sensor_stuck", registry.ids()[0], "medium", {}),
            (65, "note", None, "low", {})):
        when = T0 + dt.timedelta(hours=hours)
        sink({"time_s": when.replace(tzinfo=dt.timezone.utc).timestamp(), "kind": kind,
              "element": element, "severity": severity, "message": f"{kind} test alert",
              "details": details})
    dashboard = Dashboard(store, registry, NetworkMap.from_inp(inp), feed=feed,
                          whatif=WhatIfDesk(inp, horizon_s=2 * 3600),
                          settings=DashboardSettings(max_window_s=7 * 86400,
                                                     environ={"TWIN_OPERATOR_TOKEN": TOKEN}))
    yield dashboard, readings, shadow, bridge
    store.close()


@pytest.fixture(scope="module")
def net3_inp_module() -> Path:
    import wntr

    return Path(wntr.__file__).parent / "library" / "networks" / "Net3.inp"


@pytest.fixture(scope="module")
def client(run):
    return TestClient(create_app(run[0]))


def test_status_counts_what_went_through(client, run):
    dashboard, readings, shadow, bridge = run
    s = client.get("/api/status").json()
    counts = bridge.counts
    assert counts.received == len(readings) and counts.stored > 0.8 * len(readings)
    assert s["readings"] == counts.stored == dashboard.store.count()
    print(counts.as_dict())
    assert s["sensors"] == len(dashboard.registry)
    assert s["simulated_steps"] == shadow.counts.steps == DAYS * 288
    assert s["readings_from"] == "2018-01-01T00:00:00Z"
    assert s["readings_to"] == "2018-01-03T23:55:00Z"


def test_networks_as_geojson(client, net3_inp_module):
    import wntr

    wn = wntr.network.WaterNetworkModel(str(net3_inp_module))
    nets = client.get("/api/networks").json()
    assert nets["layers"] == [{"name": "water", "elements": wn.num_nodes + wn.num_links}]
    x0, y0, x1, y1 = nets["bounds"]
    assert x0 < x1 and y0 < y1
    layer = client.get("/api/networks/water").json()
    assert layer["type"] == "FeatureCollection"
    assert len(layer["features"]) == wn.num_nodes + wn.num_links
    # Net3 has a node and a pipe named 123: ids are unique per kind
    pipe = next(f for f in layer["features"] if f["properties"]["id"] == LEAK_PIPE
                and f["properties"]["kind"] == "links")
    assert pipe["geometry"]["type"] == "LineString"
    start = wn.get_link(LEAK_PIPE).start_node.coordinates
    assert pipe["geometry"]["coordinates"][0] == pytest.approx(list(start), abs=0.01)


def test_sensors_sit_on_their_elements(client, net3_inp_module):
    import wntr

    wn = wntr.network.WaterNetworkModel(str(net3_inp_module))
    sensors = client.get("/api/sensors").json()
    pressure = next(s for s in sensors if s["quantity"] == "pressure")
    assert (pressure["x"], pressure["y"]) == pytest.approx(wn.get_node(pressure["element"]).coordinates)
    assert all(s["x"] is not None for s in sensors)
    one = client.get(f"/api/sensors/{pressure['sensor_id']}").json()
    assert one == pressure


def test_series_measured_from_the_store_simulated_from_the_twin(client, run):
    dashboard, readings, _, _ = run
    sid = next(s.sensor_id for s in dashboard.registry if s.quantity == "pressure")
    d = client.get(f"/api/sensors/{sid}/series",
                   params={"start": "2018-01-01T12:00:00Z", "end": "2018-01-01T13:00:00"}).json()
    t12 = dt.datetime(2018, 1, 1, 12, tzinfo=dt.timezone.utc).timestamp()
    assert d["time_s"] == [t12 + 300 * k for k in range(13)]
    mine = {r.time_s: r.value for r in readings if r.sensor_id == sid}
    assert d["measured"] == pytest.approx([mine[t] for t in d["time_s"]])
    sim = np.array(d["simulated"], float)
    assert np.isfinite(sim).all()
    # the twin follows the data: measured and simulated agree to within metres, not equal
    resid = np.array(d["residual"], float)
    assert np.allclose(resid, np.array(d["measured"]) - sim)
    assert 0 < np.abs(resid).max() < 10


def test_residual_scores_are_hourly_residuals_over_their_usual_spread(client, run):
    """/api/residuals agrees with the per-step series: each hour's residual is the mean of
    its steps', and the score is that minus the first day's median, over its spread."""
    dashboard = run[0]
    d = client.get("/api/residuals", params={"start": "2018-01-01T00:00:00Z",
                                             "end": "2018-01-03T23:59:00Z"}).json()
    hours = np.array(d["hours_s"])
    assert len(hours) == 24 * DAYS and np.all(np.diff(hours) == 3600)
    sid = next(s.sensor_id for s in dashboard.registry if s.quantity == "pressure")
    j = d["sensor_ids"].index(sid)
    hourly = np.array([row[j] for row in d["residual"]], float)
    score = np.array([row[j] for row in d["score"]], float)
    series = client.get(f"/api/sensors/{sid}/series", params={
        "start": "2018-01-01T00:00:00Z", "end": "2018-01-03T23:59:00Z"}).json()
    t = np.array(series["time_s"])
    r = np.array(series["residual"], float)
    mine = np.array([np.nanmean(r[(t >= h) & (t < h + 3600)]) for h in hours])
    assert np.allclose(hourly, mine, atol=1e-4, equal_nan=True)
    median = np.median(mine[:24])
    spread = max(1.4826 * np.median(np.abs(mine[:24] - median)),
                 1e-3 * np.median(np.abs(np.array(series["measured"], float)[t < hours[24]])))
    assert np.allclose(score, (mine - median) / spread, atol=2e-3, rtol=1e-3)


def test_alerts_open_sorted_by_severity_then_time(client, run):
    alerts = client.get("/api/alerts").json()
    severities = [a["severity"] for a in alerts]
    order = {"high": 0, "medium": 1, "low": 2}
    assert severities == sorted(severities, key=order.get)
    assert {"medium", "low"} <= set(severities)
    leaks = [a for a in alerts if a["kind"] == "leak"]
    assert leaks
    assert all(a["time_s"] > LEAK_AT.replace(tzinfo=dt.timezone.utc).timestamp() for a in leaks)
    assert leaks[0]["sensors"] and leaks[0]["x"] is not None
    stuck = next(a for a in alerts if a["kind"] == "sensor_stuck")
    assert stuck["sensors"] == [stuck["element"]]
    assert client.get(f"/api/alerts/{stuck['id']}").json() == stuck


def test_acknowledging_needs_the_token_and_is_logged(client, run):
    dashboard = run[0]
    note = next(a for a in client.get("/api/alerts").json() if a["kind"] == "note")
    r = client.post(f"/api/alerts/{note['id']}/ack", json={"operator": "alice"})
    assert r.status_code == 401 and "operator login" in r.json()["error"]
    r = client.post(f"/api/alerts/{note['id']}/ack", json={"operator": "alice"},
                    headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403 and "wrong operator token" in r.json()["error"]
    r = client.post(f"/api/alerts/{note['id']}/ack", json={"operator": "alice"},
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json()["acknowledged"]
    assert note["id"] not in [a["id"] for a in client.get("/api/alerts").json()]
    assert note["id"] in [a["id"] for a in client.get("/api/alerts?status=acknowledged").json()]
    log = dashboard.store.log_entries()
    assert ("alert_ack", "alice") in set(zip(log["kind"], log["actor"]))
    assert TOKEN not in json.dumps(log["payload"].tolist())


def test_whatif_on_the_leak_alert_then_approval_with_the_token(client, run):
    dashboard = run[0]
    leak = next(a for a in client.get("/api/alerts").json() if a["kind"] == "leak")
    body = {"operator": "bob", "alert_id": leak["id"]}
    assert client.post("/api/whatif", json=body).status_code == 401
    r = client.post("/api/whatif", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    w = r.json()
    result = w["result"]
    close = f"close_{leak['element']}"
    assert set(result["ranking"]) == {"do_nothing", close}
    kpis = result["candidates"]
    # closing the leaking pipe stops the leak the baseline keeps losing water to
    assert kpis["do_nothing"]["kpis"]["leak_volume_m3"] > 1
    assert kpis[close]["kpis"]["leak_volume_m3"] < kpis["do_nothing"]["kpis"]["leak_volume_m3"]
    (proposal,) = w["proposals"]
    pid = proposal["proposal_id"]
    assert proposal["status"] == "proposed"
    url = f"/api/proposals/{pid}/approve"
    r = client.post(url, json={"operator": "bob"})
    assert r.status_code == 401, r.text
    r = client.post(url, json={"operator": "bob"}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 403 and "wrong operator token" in r.json()["error"]
    r = client.post(url, json={"operator": "bob"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "sent"
    assert [(c["kind"], c["element"]) for c in r.json()["commands"]] == [("close", leak["element"])]
    again = client.post(url, json={"operator": "bob"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert again.status_code == 409 and "already" in again.json()["error"]
    unknown = client.post("/api/proposals/feedbeef/approve", json={"operator": "bob"},
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert unknown.status_code == 404 and "unknown proposal" in unknown.json()["error"]
    assert client.get("/api/whatif").json()["proposals"][0]["status"] == "sent"
    kinds = list(dashboard.store.log_entries()["kind"])
    assert {"proposal", "approval", "command_sent", "refusal"} <= set(kinds)
    assert kinds.count("refusal") >= 4


@pytest.mark.parametrize("path, status, words", [
    ("/api/sensors/no_such_sensor", 404, "unknown sensor 'no_such_sensor'"),
    ("/api/sensors/no_such_sensor/series", 404, "unknown sensor"),
    ("/api/networks/sewer", 404, "unknown network layer 'sewer'; this dashboard has: water"),
    ("/api/alerts/99999", 404, "unknown alert 99999"),
    ("/api/alerts/abc", 404, "alert ids are whole numbers"),
    ("/api/alerts?status=closed", 400, "status: expected open, acknowledged or all"),
    ("/api/nothing/here", 404, "unknown endpoint /api/nothing/here"),
    ("/api/residuals?start=2018-01-02T00:00:00Z&end=2018-01-01T00:00:00Z", 400,
     "time window reversed: start 2018-01-02T00:00:00Z is after end 2018-01-01T00:00:00Z"),
    ("/api/residuals?start=2017-01-01&end=2018-01-01", 400,
     "time window too large: 365.0 days"),
    ("/api/residuals?start=yesterday", 400, "start: expected an ISO 8601 timestamp"),
    ("/api/residuals?end=nan", 400, "end: expected finite epoch seconds"),
])
def test_bad_input_is_a_4xx_with_a_clear_message(client, path, status, words):
    r = client.get(path)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_bad_series_window_and_bad_bodies(client, run):
    sid = run[0].registry.ids()[0]
    r = client.get(f"/api/sensors/{sid}/series", params={"start": "2018-01-10", "end": "2018-01-01"})
    assert r.status_code == 400 and "reversed" in r.json()["error"]
    r = client.get(f"/api/sensors/{sid}/series", params={"start": "2018-01-01", "end": "2018-03-01"})
    assert r.status_code == 400 and "at most 7 days per request" in r.json()["error"]
    r = client.post("/api/whatif", content=b"[1, 2", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 400 and "expected a JSON object" in r.json()["error"]
    r = client.post("/api/whatif", json={"operator": "bob", "alert_id": 424242},
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404 and "unknown alert 424242" in r.json()["error"]
    stuck = next(a for a in client.get("/api/alerts").json() if a["kind"] == "sensor_stuck")
    r = client.post("/api/whatif", json={"operator": "bob", "alert_id": stuck["id"]},
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 400 and "not a leak on a water pipe" in r.json()["error"]


def test_the_page_and_its_assets_are_served_without_any_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and "operator dashboard" in page.text
    for asset in ("/static/app.js", "/static/map.js", "/static/style.css"):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.text) > 500
        assert "http://" not in r.text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in r.text


def test_server_sent_events_announce_a_new_alert(run):
    """Over real HTTP (uvicorn): the event stream sends the current version, then a new
    one when an alert is stored."""
    dashboard = run[0]
    with ServerThread(create_app(dashboard, poll_s=0.1)) as server:
        with httpx.stream("GET", f"{server.url}/api/events", timeout=10) as stream:
            lines = stream.iter_lines()
            first = _next_update(lines)
            assert first["steps"] == dashboard.feed.version
            dashboard.store.add_alert(first["latest"], "sensor_silent", "high", "test: silent",
                                      element=dashboard.registry.ids()[1])
            second = _next_update(lines)
            assert second["alerts"] == first["alerts"] + 1


def _next_update(lines) -> dict:
    for line in lines:
        if line.startswith("data: "):
            return json.loads(line[len("data: "):])
    raise AssertionError("the event stream ended")
