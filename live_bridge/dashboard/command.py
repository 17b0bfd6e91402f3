"""`twin dashboard`: the operator dashboard in a browser (registered through the
``urban_twin.commands`` entry point)."""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path


def register(sub) -> None:
    from live_bridge.commands_bridge import _checked

    days = _checked(float, lambda v: 0 < v < 1e4, "a number of days > 0")
    p = sub.add_parser("dashboard", help="operator dashboard: networks, residuals, alerts, "
                                         "what-if and approvals in a browser")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    p.add_argument("--store", default="sqlite:///bridge.db",
                   help="the live bridge's store (default sqlite:///bridge.db)")
    p.add_argument("--registry", help="sensor registry (.csv or .yaml)")
    p.add_argument("--inp", help="EPANET network: drawn on the map, followed by the shadow "
                                 "twin (--bridge) and forked by the what-if")
    p.add_argument("--scenario", help="scenario YAML: draw its city's networks (roads, water...)")
    p.add_argument("--bridge", action="store_true",
                   help="run the bridge and the shadow twin in this process (needs --inp): "
                        "readings from MQTT, residuals and alerts live on the page")
    p.add_argument("--clock", choices=("wall", "replay"), default="wall",
                   help="with --bridge: live sensors (wall) or a replayed recording")
    p.add_argument("--train-days", type=days, default=7.0,
                   help="with --bridge: leak-free days the leak test learns from (default 7)")
    p.add_argument("--candidates", help="what-if candidates file (YAML or JSON)")
    p.add_argument("--actuator", choices=("dry-run", "mqtt"), default="dry-run",
                   help="where approved commands go (default dry-run: logged only)")
    p.add_argument("--max-window-days", type=days, default=31.0,
                   help="longest time window one request may ask for (default 31)")
    p.add_argument("--demo", action="store_true",
                   help="live demo: L-Town readings with a leak replayed onto MQTT, the bridge, "
                        "the shadow twin and the dashboard together")
    p.add_argument("--demo-seconds-per-day", type=float, default=60.0,
                   help="--demo: wall seconds per replayed day (default 60)")
    g = p.add_argument_group("MQTT broker (with --bridge, --demo and --actuator mqtt)")
    g.add_argument("--mqtt-host", default="127.0.0.1", help="broker host (default 127.0.0.1)")
    g.add_argument("--mqtt-port", type=int, default=1883, help="broker port (default 1883)")
    g.add_argument("--mqtt-username", help="broker user name")
    g.add_argument("--mqtt-password", help="broker password")
    g.add_argument("--prefix", default="twin", help="topic prefix (default twin)")
    g.add_argument("--client-id", default="urban-twin-dashboard",
                   help="MQTT client id of the bridge's persistent session")
    p.set_defaults(func=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from twin.errors import BadInput

    from live_bridge.dashboard.app import create_app
    from live_bridge.dashboard.demo import leak_recording, replay
    from live_bridge.dashboard.server import ServerThread
    from live_bridge.mqtt import MqttSettings

    if not 0 < args.port < 65536:
        raise BadInput(f"--port: expected 1-65535, got {args.port}")
    settings = MqttSettings(host=args.mqtt_host, port=args.mqtt_port, username=args.mqtt_username,
                            password=args.mqtt_password, prefix=args.prefix,
                            client_id=args.client_id)
    workdir = None
    if args.demo:
        workdir = tempfile.TemporaryDirectory(prefix="twin-dashboard-demo-")
        print("generating three days of L-Town readings with a leak on p673 (2018-01-03 06:00)…")
        rec = leak_recording(workdir.name)
        args.registry, args.inp, args.bridge, args.clock = str(rec.registry), str(rec.inp), True, "replay"
        args.store = f"sqlite:///{Path(workdir.name) / 'bridge.db'}"
        args.train_days = 2.0
        stamp = int(time.time())            # a fresh session and topics for each demo
        settings = replace(settings, client_id=f"{settings.client_id}-demo-{stamp}",
                           prefix=f"demo{stamp}")
    if not args.registry:
        raise BadInput("--registry is required (the sensor registry of the bridge's store), "
                       "or use --demo")
    if args.bridge and not args.inp:
        raise BadInput("--bridge runs the shadow twin and needs --inp (the EPANET network)")
    dashboard, live = build_dashboard(args, settings)
    server = ServerThread(create_app(dashboard), args.host, args.port, log_level="warning")
    stopping = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stopping.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    publisher = None
    try:
        if live is not None:
            live.start()
        server.start()
        print(f"dashboard: {server.url}/  ({dashboard.network.count()} network elements, "
              f"{len(dashboard.registry)} sensors; Ctrl-C stops)", flush=True)
        if args.demo:
            publisher = replay(rec, settings, args.demo_seconds_per_day, stopping)
            print(f"replaying 3 days at {args.demo_seconds_per_day:g} s a day; the leak shows "
                  "on the third morning and is flagged within hours of simulated time", flush=True)
        while not stopping.wait(0.5):
            pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        stopping.set()
        server.stop()
        if publisher is not None:
            publisher.join(5)
        if live is not None:
            live.stop()
        dashboard.store.close()
        if workdir is not None:
            workdir.cleanup()
    return 0


def build_dashboard(args: argparse.Namespace, settings):
    """(Dashboard, LiveTwin or None) from the command's options."""
    from live_bridge.approval import ApprovalGate, DryRunActuator, MqttActuator
    from live_bridge.dashboard.feed import LiveFeed
    from live_bridge.dashboard.geo import NetworkMap
    from live_bridge.dashboard.live import LiveTwin
    from live_bridge.dashboard.service import DAY_S, Dashboard, DashboardSettings
    from live_bridge.dashboard.whatif_desk import WhatIfDesk
    from live_bridge.registry import SensorRegistry
    from live_bridge.store import open_store

    registry = SensorRegistry.load(args.registry)
    network = network_map(args.inp, args.scenario)
    store = open_store(args.store)
    feed = LiveFeed() if args.bridge else None
    live = (LiveTwin(registry, store, args.inp, feed, settings, replay=args.clock == "replay",
                     train_days=args.train_days) if args.bridge else None)
    actuator = (MqttActuator(settings.host, settings.port, settings.prefix,
                             username=settings.username, password=settings.password)
                if args.actuator == "mqtt"
                else DryRunActuator())
    desk = WhatIfDesk(args.inp, args.candidates) if args.inp else None
    dashboard = Dashboard(store, registry, network, feed=feed, whatif=desk,
                          gate=ApprovalGate(store, actuator),
                          settings=DashboardSettings(max_window_s=args.max_window_days * DAY_S))
    return dashboard, live


def network_map(inp: str | None, scenario: str | None):
    """The map's networks: a scenario's twin (every layer and the city's streets), else the
    water network of ``inp``."""
    from twin.errors import BadInput

    from live_bridge.dashboard.geo import NetworkMap

    if scenario:
        from twin.run import build_twin
        from twin.scenario import load_scenario

        twin = build_twin(load_scenario(scenario))
        try:
            return NetworkMap.from_twin(twin)
        finally:
            twin.close()
    if inp:
        if not Path(inp).is_file():
            raise BadInput(f"--inp {inp}: no such file")
        return NetworkMap.from_inp(inp)
    return NetworkMap({})
