"""The dashboard in headless Chromium with 10,000+ network elements and 500 sensors: time to
first render and per live update, measured in the browser (``performance.now()``).

A generated grid network (59 x 59 junctions and the pipes between them: 10,325
elements) and 500 pressure sensors at random junctions, with 48 hours of simulated steps
already in the feed. The page is served by the real dashboard (uvicorn); each update is
one more hour of steps added to the feed, announced by server-sent events, fetched
(/api/residuals: 500 sensors x 48 hours) and drawn.

* ours: the page's canvas renderer (one path per layer and per colour bin, networks on
  their own canvas, an update redraws the sensors only);
* baseline, in the same run: the same page with ``?renderer=svg``, the naive way: one SVG
  node per network element and per sensor, the sensors' nodes made anew on every draw.

First render: from navigation start to the first frame after networks, sensors, alerts
and residuals are drawn. Per update: from the event's arrival to the next frame after
the redraw (``total``; ``draw`` is the drawing alone). Medians over REPEATS page loads x
UPDATES updates. Last line: one JSON object; ``ratio`` = baseline time to first render /
ours (where 10,000 elements cost); ``ratio_update`` (end to end, dominated by fetching the
residuals, the same for both) and ``ratio_update_draw`` (drawing alone) beside it.

    python benchmarks/dashboard_render.py [--repeats 3] [--updates 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

import geopandas as gpd
import numpy as np
from shapely.geometry import LineString, Point

GRID = 59
SPACING_M = 50.0
SENSORS = 500
STEP_S = 300
HOURS = 48


def grid_network():
    """A GRID x GRID grid of junctions and the pipes between neighbours."""
    from live_bridge.dashboard.geo import NetworkMap

    ids = [f"j{i}_{k}" for i in range(GRID) for k in range(GRID)]
    nodes = gpd.GeoDataFrame({"node_type": "Junction"}, index=ids,
                             geometry=[Point(k * SPACING_M, i * SPACING_M)
                                       for i in range(GRID) for k in range(GRID)])
    rows, geoms = [], []
    for i in range(GRID):
        for k in range(GRID):
            for di, dk in ((0, 1), (1, 0)):
                if i + di < GRID and k + dk < GRID:
                    rows.append(f"p{i}_{k}_{di}{dk}")
                    geoms.append(LineString([(k * SPACING_M, i * SPACING_M),
                                             ((k + dk) * SPACING_M, (i + di) * SPACING_M)]))
    links = gpd.GeoDataFrame({"link_type": "Pipe"}, index=rows, geometry=geoms)
    return NetworkMap({"water": {"nodes": nodes, "links": links}}), ids


def build(folder: str, rng: np.random.Generator):
    from live_bridge.dashboard.feed import LiveFeed
    from live_bridge.dashboard.service import Dashboard
    from live_bridge.registry import SensorRegistry
    from live_bridge.store import open_store

    network, junctions = grid_network()
    where = rng.choice(junctions, SENSORS, replace=False)
    registry = SensorRegistry.from_records([
        {"sensor_id": f"s{i}", "layer": "water", "element": e, "quantity": "pressure",
         "unit": "m", "min": "", "max": "", "period_s": STEP_S} for i, e in enumerate(where)])
    feed = LiveFeed()
    ids = registry.ids()
    t0 = 1514764800.0
    for k in range(HOURS * 3600 // STEP_S):
        add_step(feed, ids, t0 + k * STEP_S, rng)
    store = open_store(f"sqlite:///{folder}/bench.db")
    return Dashboard(store, registry, network, feed=feed), ids


def add_step(feed, ids, time_s: float, rng: np.random.Generator) -> None:
    simulated = 40 + 5 * np.sin(time_s / 86400 * 2 * np.pi) + np.zeros(len(ids))
    feed.add_step(time_s, ids, simulated + rng.normal(0, 0.05, len(ids)), simulated)


def measure(driver, url: str, dashboard, ids, rng, updates: int) -> dict:
    driver.get(url)
    deadline = time.monotonic() + 60
    while not driver.execute_script("return document.body.dataset.ready === '1'"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not render within 60 s")
        time.sleep(0.05)
    first = driver.execute_script("return window.__dashboard.metrics.first_render_ms")
    feed = dashboard.feed
    for u in range(updates):
        last = feed.time_range()[1]
        for k in range(3600 // STEP_S):                      # one more hour
            add_step(feed, ids, last + (k + 1) * STEP_S, rng)
        deadline = time.monotonic() + 30
        while driver.execute_script("const u = window.__dashboard.metrics.updates; "
                                    "return u.length ? u[u.length - 1].steps : -1") < feed.version:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the page did not show step {feed.version} within 30 s")
            time.sleep(0.02)
        time.sleep(0.3)                      # let the page settle before the next hour
    got = driver.execute_script("return window.__dashboard.metrics.updates")
    drawn = driver.execute_script("return window.__dashboard.state.sensors.length")
    return {"first_ms": first, "total_ms": [g["total_ms"] for g in got],
            "draw_ms": [g["draw_ms"] for g in got], "sensors": drawn}


def main() -> int:
    from live_bridge.dashboard import browser
    from live_bridge.dashboard.app import create_app
    from live_bridge.dashboard.server import ServerThread

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--updates", type=int, default=8)
    args = ap.parse_args()
    why = browser.missing()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        dashboard, ids = build(folder, rng)
        elements = dashboard.network.count()
        runs: dict[str, list[dict]] = {"canvas": [], "svg": []}
        with ServerThread(create_app(dashboard, poll_s=0.05)) as server:
            driver = browser.chromium()
            try:
                for renderer in ("canvas", "svg"):          # warm-up: caches, JIT
                    measure(driver, f"{server.url}/?renderer={renderer}", dashboard, ids, rng, 1)
                for r in range(args.repeats):
                    for renderer in ("canvas", "svg"):      # interleaved: same machine load
                        m = measure(driver, f"{server.url}/?renderer={renderer}", dashboard,
                                    ids, rng, args.updates)
                        runs[renderer].append(m)
                        print(f"run {r + 1} {renderer:6s}: first render {m['first_ms']:8.1f} ms,"
                              f" update median {statistics.median(m['total_ms']):7.1f} ms "
                              f"(draw {statistics.median(m['draw_ms']):6.1f} ms), "
                              f"{m['sensors']} sensors", flush=True)
            finally:
                driver.quit()
        dashboard.store.close()

    def med(renderer: str, key: str) -> float:
        if key == "first_ms":
            return statistics.median(m[key] for m in runs[renderer])
        return statistics.median(v for m in runs[renderer] for v in m[key])

    out = {"elements": elements, "sensors": SENSORS, "repeats": args.repeats,
           "updates": args.updates}
    for renderer, name in (("canvas", "ours"), ("svg", "baseline_svg")):
        out[f"{name}_first_render_ms"] = round(med(renderer, "first_ms"), 1)
        out[f"{name}_update_ms"] = round(med(renderer, "total_ms"), 1)
        out[f"{name}_update_draw_ms"] = round(med(renderer, "draw_ms"), 2)
    out["ratio_first_render"] = round(out["baseline_svg_first_render_ms"]
                                      / out["ours_first_render_ms"], 2)
    out["ratio_update_draw"] = round(out["baseline_svg_update_draw_ms"]
                                     / max(out["ours_update_draw_ms"], 1e-3), 1)
    out["ratio_update"] = round(out["baseline_svg_update_ms"] / out["ours_update_ms"], 2)
    out["ratio"] = out["ratio_first_render"]
    print(f"{elements} elements, {SENSORS} sensors: first render {out['ours_first_render_ms']} ms "
          f"(SVG {out['baseline_svg_first_render_ms']} ms), per update {out['ours_update_ms']} ms "
          f"(SVG {out['baseline_svg_update_ms']} ms)")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
