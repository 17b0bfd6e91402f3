"""Ingest rate of the live bridge through a real broker, against a plain paho subscriber.

A private Mosquitto (no queue limit) runs on a free port. For each of REPEATS runs a
publisher process replays READINGS readings (the BattLeDIM 2019 SCADA year when
../shared/data has it, synthetic otherwise) at QoS 1 in batches of BATCH readings per
message, while this process runs the bridge: decode, check against the registry, store
(SQLite by default, one transaction per group of messages), acknowledge. The rate is
readings stored per second from the first stored batch to the last. Zero loss is checked:
stored == accepted == published.

Baseline, measured in the same run: a plain paho QoS 1 subscriber that only counts, fed
one message per reading by the same publisher (no checks, no store).

Then a year of L-Town (generated 5-minute SCADA data with the 2018 leak list: 12.5 million
readings) is replayed through the bridge's checks and store into the shadow twin and its
leak detector (``--year direct`` skips the store, ``--year skip`` the whole part); its
wall time and the online detector's BattLeDIM score join the JSON line.

Last line: one JSON object with readings_per_s (median of the runs), lost, ratio
(ours / baseline), the baseline's name, year_replay_s and the year figures.

    python benchmarks/bridge_ingest.py [--readings 300000] [--batch 500] [--repeats 3]
                                       [--store postgresql://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from live_bridge.bridge import Bridge
from live_bridge.checks import Checker
from live_bridge.mqtt import LocalMosquitto, MqttSettings
from live_bridge.registry import SensorRegistry
from live_bridge.replay import read_scada, registry_from_scada
from live_bridge.store import open_store

SCADA_2019 = Path(__file__).resolve().parents[2] / "shared" / "data" / "battledim" / "scada_2019"
BASELINE = "paho QoS 1 subscriber, one message per reading, counting only (no checks, no store)"


def recording(n: int) -> tuple[pd.DataFrame, SensorRegistry, str]:
    """The first n readings of the 2019 SCADA year, or synthetic ones (100 sensors, 5 min)."""
    if SCADA_2019.is_dir() and n <= 420480:
        return read_scada(SCADA_2019).iloc[:n], registry_from_scada(SCADA_2019), "battledim_2019"
    sensors = [f"n{i}" for i in range(100)]
    k = np.arange(n)
    frame = pd.DataFrame({"time_s": 1546300800.0 + 300 * (k // 100),
                          "sensor_id": [sensors[i % 100] for i in k],
                          "value": 40 + 10 * np.sin(k / 1000), "unit": "m"})
    reg = SensorRegistry.from_records([{"sensor_id": s, "layer": "water", "element": s,
                                        "quantity": "pressure", "unit": "m", "min": -20,
                                        "max": 250, "period_s": 300} for s in sensors])
    return frame, reg, "synthetic"


def start_publisher(settings: MqttSettings, readings_file: Path, batch: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "twin.cli", "bridge", "publish", "--readings", str(readings_file),
         "--batch", str(batch), "--port", str(settings.port), "--prefix", settings.prefix,
         "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def bridge_run(broker: LocalMosquitto, readings_file: Path, n: int, registry: SensorRegistry,
               store_url: str, batch: int) -> dict:
    """One run of the bridge; its rate and the loss check."""
    tag = uuid.uuid4().hex[:8]
    settings = broker.settings(client_id=f"bench-bridge-{tag}", prefix=f"bench{tag}")
    commits: list[tuple[float, int]] = []
    with open_store(store_url) as store:
        bridge = Bridge(registry, store, Checker(registry, now=None, future_tolerance_s=86400),
                        on_readings=lambda new: commits.append((time.perf_counter(), len(new))))
        runner = threading.Thread(target=bridge.run_mqtt, args=(settings,), kwargs={
            "stop": lambda: bridge.counts.received >= n, "max_seconds": 300})
        runner.start()
        if not bridge.ready.wait(10):
            raise RuntimeError(f"the bridge did not subscribe at port {broker.port} within 10 s")
        publisher = start_publisher(settings, readings_file, batch)
        out, err = publisher.communicate()
        runner.join()
        if publisher.returncode:
            raise RuntimeError(f"publisher failed: {err}")
        published = json.loads(out.strip().splitlines()[-1])["readings"]
        stored = store.count()
    counts = bridge.counts
    seconds = commits[-1][0] - commits[0][0]
    rate = sum(k for _, k in commits[1:]) / seconds
    return {"readings_per_s": rate, "published": published, "accepted": counts.accepted,
            "stored": stored, "quarantined": sum(counts.quarantined.values()),
            "lost": published - stored, "commits": len(commits)}


def baseline_run(broker: LocalMosquitto, readings_file: Path, n: int) -> float:
    """Messages per second a counting QoS 1 subscriber receives, one reading per message."""
    tag = uuid.uuid4().hex[:8]
    settings = broker.settings(prefix=f"base{tag}")
    times: list[float] = []
    done = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-base-{tag}",
                         clean_session=False, protocol=paho.MQTTv311)

    def on_message(c, u, msg) -> None:
        times.append(time.perf_counter())
        if len(times) >= n:
            done.set()

    subscribed = threading.Event()
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(settings.readings_filter, qos=1)
    client.on_subscribe = lambda c, u, mid, codes, p: subscribed.set()
    client.connect(settings.host, settings.port)
    client.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError("the baseline subscriber did not subscribe within 10 s")
    publisher = start_publisher(settings, readings_file, 1)
    publisher.communicate()
    done.wait(120)
    client.disconnect()
    client.loop_stop()
    if len(times) < n:
        raise RuntimeError(f"baseline subscriber got {len(times)} of {n} messages")
    return (n - 1) / (times[-1] - times[0])


LTOWN = SCADA_2019.parents[0] / "L-TOWN.inp"
CONFIG_2018 = SCADA_2019.parents[0] / "config" / "dataset_configuration_historical_2018.yalm"


def replay_year_through_shadow_twin(args: argparse.Namespace) -> dict | None:
    """A generated year of L-Town 5-minute SCADA data (2018 leak list: 33 pressures, 3 flows,
    the tank level, 82 AMR demands; generation not timed) replayed as fast as possible
    through the bridge's checks and store into the shadow twin and its leak detector. Timed
    from the first reading to the last step solved and scored with the BattLeDIM rule."""
    if args.year == "skip" or not (LTOWN.is_file() and CONFIG_2018.is_file()):
        return None
    from live_bridge.leak_config import load_leak_config
    from live_bridge.leak_dataset import generate_dataset
    from live_bridge.leak_scoring import Detection, PipeDistances, score
    from live_bridge.replay import ReplaySource
    from live_bridge.shadow_twin import ShadowTwin, store_sink

    config = load_leak_config(CONFIG_2018)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "scada"
        t0 = time.perf_counter()
        data = generate_dataset(LTOWN, config, seed=1)
        data.save(folder)
        print(f"year replay: generated a year of L-Town SCADA data in "
              f"{time.perf_counter() - t0:.0f} s (not timed)", flush=True)
        registry = registry_from_scada(folder)
        source = ReplaySource.from_scada(folder)
        n = len(source)
        store_url = f"sqlite:///{tmp}/year.db" if args.year == "bridge" else None
        t0 = time.perf_counter()
        with (open_store(store_url) if store_url else _NoStore()) as store:
            shadow = ShadowTwin(LTOWN, registry, config.start, step_s=300,
                                sinks=[store_sink(store)] if store_url else [])
            bridge = Bridge(registry, store, Checker(registry, now=None,
                                                     future_tolerance_s=86400)) \
                if store_url else None
            chunk = []
            for reading in source:
                chunk.append(reading)
                if len(chunk) == 20_000:
                    shadow.on_readings(bridge.ingest(chunk) if bridge else chunk)
                    chunk = []
            shadow.on_readings(bridge.ingest(chunk) if bridge else chunk)
            shadow.flush()
            wall = time.perf_counter() - t0
            stored = store.count() if store_url else None
        shadow.close()
        dets = [Detection(a["element"], pd.Timestamp(a["time"]).tz_localize(None)
                          .to_pydatetime()) for a in shadow.alerts]
        result = score(dets, config, data.leak_flows_m3h, PipeDistances.from_inp(LTOWN))
    print(f"year replay ({args.year}): {n:,} readings, {shadow.counts.steps:,} shadow steps, "
          f"{shadow.counts.alerts} leak alerts in {wall:.0f} s "
          f"({n / wall:,.0f} readings/s); online detector score "
          f"{100 * result['fraction_of_perfect']:.0f} % of perfect "
          f"({result['true_positives']} TP, {result['false_positives']} FP)", flush=True)
    return {"year_replay_s": round(wall, 1), "year_readings": n, "year_path": args.year,
            "year_shadow_steps": shadow.counts.steps, "year_alerts": shadow.counts.alerts,
            "year_stored": stored, "year_score_fraction": round(result["fraction_of_perfect"], 3),
            "year_true_positives": result["true_positives"],
            "year_false_positives": result["false_positives"]}


class _NoStore:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def fresh_store(url: str, folder: Path, run: int) -> tuple[str, object]:
    """A store URL of its own for a run, and how to drop it afterwards (PostgreSQL schema)."""
    if not url.startswith("postgres"):
        return f"sqlite:///{folder}/run{run}.db", lambda: None
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(url, autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"

    def drop() -> None:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()
    return f"{url}{sep}options=-csearch_path%3D{schema}", drop


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=500, help="readings per MQTT message")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-readings", type=int, default=30_000)
    ap.add_argument("--store", default="sqlite", help="sqlite (default) or a postgresql:// URL")
    ap.add_argument("--year", choices=("bridge", "direct", "skip"), default="bridge",
                    help="the year replay through the shadow twin: through the bridge's checks "
                         "and store (default), straight into the shadow twin, or skipped")
    args = ap.parse_args()

    frame, registry, source = recording(args.readings)
    with tempfile.TemporaryDirectory(prefix="bridge_bench_") as tmp:
        folder = Path(tmp)
        readings_file = folder / "readings.parquet"
        frame.to_parquet(readings_file)
        base_file = folder / "baseline.parquet"
        frame.iloc[:args.baseline_readings].to_parquet(base_file)
        runs, base_rates = [], []
        with LocalMosquitto(folder / "broker", max_inflight=100) as broker:
            for i in range(args.repeats):
                url, drop = fresh_store(args.store, folder, i)
                try:
                    runs.append(bridge_run(broker, readings_file, len(frame), registry, url,
                                           args.batch))
                finally:
                    drop()
                base_rates.append(baseline_run(broker, base_file,
                                               min(args.baseline_readings, len(frame))))
                print(f"run {i + 1}: bridge {runs[-1]['readings_per_s']:,.0f} readings/s "
                      f"(stored {runs[-1]['stored']:,} of {runs[-1]['published']:,} published, "
                      f"{runs[-1]['commits']} commits); baseline {base_rates[-1]:,.0f} readings/s")
        year = replay_year_through_shadow_twin(args)
    rate = statistics.median(r["readings_per_s"] for r in runs)
    base = statistics.median(base_rates)
    lost = max(r["lost"] for r in runs)
    exact = all(r["stored"] == r["accepted"] == r["published"] for r in runs)
    print(f"bridge ingest: {rate:,.0f} readings/s (median of {len(runs)}), "
          f"store {args.store}, {args.batch} readings per message; baseline {base:,.0f}/s; "
          f"ratio {rate / base:.1f}; lost {lost}; stored == accepted == published: {exact}")
    result = {"readings_per_s": round(rate), "lost": lost, "ratio": round(rate / base, 2),
              "baseline": BASELINE, "baseline_readings_per_s": round(base),
              "stored_equals_published": exact, "readings": len(frame), "data": source,
              "batch": args.batch, "store": args.store, "repeats": args.repeats,
              "runs_readings_per_s": [round(r["readings_per_s"]) for r in runs]}
    if year:
        result.update(year)
    print(json.dumps(result))
    return 0 if exact and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
