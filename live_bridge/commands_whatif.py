"""`twin whatif`: try candidate actions on forks of a twin run to a given time, rank them.

A scenario (or a bare .inp network) run to ``--at`` hours stands in for the live state.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def _hours(text: str) -> float:
    """A number of hours (``8``, ``7.5``) or a duration (``7h30min``, ``PT8H``) -> hours."""
    from twin.scenario_fields import parse_duration

    try:
        seconds = float(text) * 3600.0 if text.strip().replace(".", "", 1).isdigit() \
            else parse_duration(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(
            f"expected hours >= 0 (8, 7.5) or a duration (7h30min), got {text!r}")
    return seconds / 3600.0


def _weights(text: str) -> dict[str, float]:
    """``leak_volume_m3=1,pump_energy_kwh=0.2`` -> {name: weight}."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not sep or not name.strip() or not math.isfinite(weight):
            raise argparse.ArgumentTypeError(
                f"expected KPI=WEIGHT pairs separated by commas, got {part!r}")
        out[name.strip()] = weight
    return out


def register(sub) -> None:
    p = sub.add_parser("whatif", help="try candidate operator actions on forks of the twin "
                                      "at a given time and rank them by KPIs")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--inp", help="EPANET .inp network (run from its start)")
    src.add_argument("--scenario", help="scenario YAML (its events up to --at make the state)")
    p.add_argument("--at", type=_hours, required=True,
                   help="when to fork, after the start: hours (8, 7.5) or a duration (7h30min)")
    p.add_argument("--candidates", required=True, help="candidates YAML or JSON file")
    p.add_argument("--horizon-hours", type=_hours, default=None,
                   help="simulated hours after the fork (default: the file's horizon, else 6)")
    p.add_argument("--weights", type=_weights, default=None,
                   help="rank by a weighted cost instead, e.g. "
                        "'water_service_availability=100,leak_volume_m3=1' (per unit of cost)")
    p.add_argument("--out", help="folder for whatif.png, whatif.json and whatif.csv")
    p.add_argument("--json", action="store_true",
                   help="last line of output: one JSON object (ranking, KPIs per candidate)")
    p.set_defaults(func=cmd_whatif)


def _live_twin(args: argparse.Namespace, at_s: float):
    """(twin run to ``at_s``, events still to come with times from ``at_s``, label)."""
    from dataclasses import replace

    from twin.errors import BadInput
    from twin.networks.water import WaterLayer
    from twin.twin import Twin

    if args.scenario:
        from twin.run import build_twin
        from twin.scenario import load_scenario
        from twin.scenario_fields import format_duration

        spec = load_scenario(args.scenario)
        if at_s > spec.horizon_s:
            raise BadInput(f"--at {args.at:g}: the scenario {args.scenario} runs "
                           f"{format_duration(spec.horizon_s)}; fork within it")
        live = build_twin(spec)
        future = [replace(ev, time_s=ev.time_s - at_s) for ev in spec.to_events()
                  if ev.time_s > at_s]
        label = f"scenario {spec.name}"
    else:
        live = Twin(seed=0)
        live.add_layer(WaterLayer(args.inp, horizon_s=max(at_s, 1.0)))
        future, label = [], f"network {Path(args.inp).name}"
    live.run(at_s)
    return live, future, label


def cmd_whatif(args: argparse.Namespace) -> int:
    from live_bridge.whatif import (DEFAULT_HORIZON_S, format_table, load_candidates,
                                    plot_whatif, run_whatif)

    candidates, file_horizon_s = load_candidates(args.candidates)     # check before running
    horizon_s = (args.horizon_hours * 3600.0 if args.horizon_hours is not None
                 else file_horizon_s or DEFAULT_HORIZON_S)
    if horizon_s <= 0:
        print("error: --horizon-hours must be > 0", file=sys.stderr)
        return 2
    at_s = args.at * 3600.0
    live, future, label = _live_twin(args, at_s)
    try:
        result = run_whatif(live, candidates, horizon_s=horizon_s, weights=args.weights,
                            future_events=future)
    finally:
        live.close()
    print(f"what-if on {label} at {result.at:%Y-%m-%d %H:%M} (+{args.at:g} h), "
          f"{len(result.results)} candidates over {horizon_s / 3600:g} h")
    for ev in future:
        if ev.time_s <= horizon_s:
            print(f"  in every fork (already planned): {ev.kind} at +{ev.time_s / 3600:g} h")
    print(format_table(result))
    for name, r in result.results.items():
        for alert in r.alerts:
            print(f"  {name}: alert: {alert}")
    data = result.to_json()
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        figure = plot_whatif(result, out / "whatif.png")
        (out / "whatif.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
        result.table.to_csv(out / "whatif.csv", index=False)
        print(f"figure: {figure}")
    if args.json:
        print(json.dumps(data))
    return 0
