"""`twin bridge ...` commands: run the ingest bridge, replay recordings onto MQTT, write
a registry for a SCADA folder."""

from __future__ import annotations

import argparse
import json
import math
import signal
import time
from typing import Any

DEFAULT_STORE = "sqlite:///bridge.db"


def register(sub) -> None:
    p = sub.add_parser("bridge", help="live bridge: MQTT sensor readings into a durable store")
    bsub = p.add_subparsers(dest="bridge_command", metavar="BRIDGE_COMMAND")

    r = bsub.add_parser("run", help="ingest readings from MQTT: check, store, count")
    r.add_argument("--registry", required=True, help="sensor registry file (.csv or .yaml)")
    r.add_argument("--store", default=DEFAULT_STORE,
                   help=f"sqlite:///path.db or postgresql://... (default {DEFAULT_STORE})")
    r.add_argument("--clock", choices=("wall", "replay"), default="wall",
                   help="'now' for late/future checks: the wall clock, or the newest accepted "
                        "timestamp (replayed recordings)")
    r.add_argument("--lateness", type=_seconds, default=None, metavar="S",
                   help="quarantine readings older than now - S seconds (default: no check)")
    r.add_argument("--future-tolerance", type=_seconds, default=None, metavar="S",
                   help="quarantine readings later than now + S seconds "
                        "(default 300 on the wall clock, 86400 on the replay clock)")
    r.add_argument("--max-seconds", type=_seconds, default=None, help="stop after S seconds")
    r.add_argument("--idle-exit", type=_seconds, default=None, metavar="S",
                   help="stop when no message came for S seconds (after the first)")
    r.add_argument("--inp", help="EPANET model of the network: run the shadow twin on the "
                                 "stored readings and raise leak alerts (store and MQTT)")
    r.add_argument("--train-days", type=float, default=7.0,
                   help="shadow twin: leak-free days to learn the residuals from (default 7)")
    r.add_argument("--json", action="store_true", help="last line: one JSON object of counts")
    _add_mqtt_args(r)
    r.set_defaults(func=cmd_run)

    pub = bsub.add_parser("publish", help="replay recorded readings onto MQTT at QoS 1")
    src = pub.add_mutually_exclusive_group(required=True)
    src.add_argument("--scada", help="BattLeDIM-style SCADA folder")
    src.add_argument("--readings", help="tidy .csv or .parquet (time_s|time, sensor_id, value, unit)")
    pub.add_argument("--speed", type=_speed, default=None,
                     help="x times real time by the readings' timestamps (default: as fast as possible)")
    pub.add_argument("--batch", type=_positive_int, default=500,
                     help="readings per message (1: one message per reading; default 500)")
    pub.add_argument("--source", default="replay", help="batch topic name (default replay)")
    pub.add_argument("--limit", type=_positive_int, default=None, help="first N readings only")
    pub.add_argument("--json", action="store_true", help="last line: one JSON object")
    _add_mqtt_args(pub, client_id=None)
    pub.set_defaults(func=cmd_publish)

    reg = bsub.add_parser("registry", help="write a sensor registry for a SCADA folder")
    reg.add_argument("--scada", required=True, help="BattLeDIM-style SCADA folder")
    reg.add_argument("--out", required=True, help="registry file to write (.csv or .yaml)")
    reg.set_defaults(func=cmd_registry)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def cmd_run(args: argparse.Namespace) -> int:
    from live_bridge.bridge import Bridge
    from live_bridge.checks import Checker
    from live_bridge.registry import SensorRegistry
    from live_bridge.store import open_store

    registry = SensorRegistry.load(args.registry)
    replay = args.clock == "replay"
    tolerance = args.future_tolerance if args.future_tolerance is not None else (
        86400.0 if replay else 300.0)
    checker = Checker(registry, lateness_s=args.lateness, future_tolerance_s=tolerance,
                      now=None if replay else time.time)
    stopping: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: stopping.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    t0 = time.perf_counter()
    shadow = None
    try:
        with open_store(args.store) as store:
            bridge = Bridge(registry, store, checker)
            hook = None
            if args.inp:
                shadow, alert_pub = _shadow_twin(args, registry, store, live=not replay)
                hook = shadow.on_readings
            try:
                counts = bridge.run_mqtt(_settings(args), on_readings=hook,
                                         stop=lambda: bool(stopping),
                                         max_seconds=args.max_seconds,
                                         idle_exit_s=args.idle_exit)
                if shadow is not None:
                    shadow.flush()
            finally:
                if shadow is not None:
                    shadow.close()
                    alert_pub.close()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    out: dict[str, Any] = counts.as_dict() | {"seconds": round(time.perf_counter() - t0, 3),
                                               "store": args.store}
    print(f"received {out['received']} readings in {out['messages']} messages: "
          f"{out['accepted']} accepted, {out['stored']} stored, {out['duplicates']} duplicates "
          f"absorbed, {out['quarantined']} quarantined {out['quarantined_by_reason']}")
    if shadow is not None:
        out["shadow_steps"] = shadow.counts.steps
        out["alerts"] = shadow.counts.alerts
        print(f"shadow twin: {shadow.counts.steps} steps solved, {shadow.counts.alerts} alerts")
        for a in shadow.alerts:
            print(f"  {a['time']}  {a['message']}")
    if args.json:
        print(json.dumps(out))
    return 0


def _shadow_twin(args, registry, store, live: bool):
    """The shadow twin on the bridge's hook, its alerts to the store and to MQTT."""
    from live_bridge.leak_detection import DetectorSettings
    from live_bridge.mqtt import Publisher
    from live_bridge.shadow_twin import ShadowTwin, mqtt_sink, store_sink

    if not (args.train_days > 0 and math.isfinite(args.train_days)):
        from twin.errors import BadInput

        raise BadInput("--train-days must be a number of days > 0")
    periods = [s.period_s for s in registry if s.period_s]
    step = int(round(min(periods))) if periods else 300
    settings = _settings(args)
    alert_pub = Publisher(settings, client_id=f"{settings.client_id}-alerts").connect()
    shadow = ShadowTwin(args.inp, registry, start=None, step_s=step, realtime=live,
                        settings=DetectorSettings(train_days=args.train_days),
                        sinks=[store_sink(store), mqtt_sink(alert_pub)])
    return shadow, alert_pub


def cmd_publish(args: argparse.Namespace) -> int:
    from itertools import islice

    from live_bridge.mqtt import Publisher
    from live_bridge.replay import ReplaySource

    source = (ReplaySource.from_scada(args.scada) if args.scada
              else ReplaySource.from_file(args.readings))
    readings = islice(source, args.limit) if args.limit else iter(source)
    with Publisher(_settings(args)) as publisher:
        stats = publisher.publish_readings(readings, batch=args.batch, speed=args.speed,
                                           source=args.source)
    stats["readings_per_s"] = round(stats["readings"] / max(stats["seconds"], 1e-9))
    print(f"published {stats['readings']} readings in {stats['messages']} messages "
          f"in {stats['seconds']:.2f} s ({stats['readings_per_s']} readings/s), all acknowledged")
    if args.json:
        print(json.dumps(stats))
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    from live_bridge.replay import registry_from_scada

    registry = registry_from_scada(args.scada)
    path = registry.save(args.out)
    print(f"{path}: {len(registry)} sensors "
          f"({', '.join(sorted({s.quantity for s in registry}))})")
    return 0


def _add_mqtt_args(p: argparse.ArgumentParser, client_id: str | None = "urban-twin-bridge") -> None:
    g = p.add_argument_group("MQTT broker")
    g.add_argument("--host", default="127.0.0.1", help="broker host (default 127.0.0.1)")
    g.add_argument("--port", type=_positive_int, default=1883, help="broker port (default 1883)")
    g.add_argument("--username", help="broker user name")
    g.add_argument("--password", help="broker password (or set it in the broker's ACL file)")
    g.add_argument("--tls-ca", help="CA certificates (PEM): turns TLS on")
    g.add_argument("--tls-cert", help="client certificate (PEM), for mutual TLS")
    g.add_argument("--tls-key", help="client private key (PEM)")
    g.add_argument("--tls-insecure", action="store_true",
                   help="do not check the broker's host name (testing only)")
    g.add_argument("--prefix", default="twin", help="topic prefix (default twin)")
    g.add_argument("--client-id", default=client_id,
                   help="MQTT client id; the bridge's persistent session is kept under it"
                   + (f" (default {client_id})" if client_id else ""))


def _settings(args: argparse.Namespace):
    from live_bridge.mqtt import MqttSettings

    extra = {"client_id": args.client_id} if args.client_id else {}
    return MqttSettings(host=args.host, port=args.port, username=args.username,
                        password=args.password, ca_certs=args.tls_ca, certfile=args.tls_cert,
                        keyfile=args.tls_key, tls_insecure=args.tls_insecure, prefix=args.prefix,
                        **extra)


def _checked(convert, ok, expected: str):
    """An argparse type: ``convert(text)`` that must satisfy ``ok``."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


_seconds = _checked(float, lambda v: math.isfinite(v) and v >= 0, "a number of seconds >= 0")
_speed = _checked(float, lambda v: math.isfinite(v) and v > 0,
                  "a speed factor > 0 (e.g. 60: an hour of readings a minute)")
_positive_int = _checked(int, lambda v: v >= 1, "a whole number >= 1")
