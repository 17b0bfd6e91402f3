"""``twin traffic day`` and ``twin traffic osm``: the traffic layer's own subcommands, added
to ``twin traffic`` by :mod:`twin.commands.traffic`. Thin: they call :mod:`twin.traffic_run`
(imported inside the handlers, so ``twin --help`` stays fast)."""

from __future__ import annotations

import argparse
import json


def _hours(text: str) -> float:
    from twin.cli import _finite_float

    return _finite_float(text, True, "a number of hours")


def _non_negative(text: str) -> float:
    from twin.cli import _non_negative as check

    return check(text)


def cmd_day(args: argparse.Namespace) -> int:
    from twin.traffic_run import simulate_city_day

    out = simulate_city_day(population=args.population, city_seed=args.city_seed,
                            seed=args.seed, hours=args.hours, closures=args.close or (),
                            gap=args.gap, method=args.method,
                            progress=not args.json and not args.no_progress)
    if args.json:
        print(json.dumps(out, default=float))
        return 0
    k = out["kpis"]
    print(f"demo city, {out['population']:,} inhabitants: {out['streets']} streets, "
          f"{out['zones']} zones, {out['daily_trips_veh']:,.0f} car trips a day; "
          f"{out['hours']:g} h in {out['seconds']:.2f} s ({out['assignments']} assignments, "
          f"{k['mean_iterations']:.1f} iterations each)")
    for key in ("total_travel_time_veh_h", "vehicle_km", "mean_speed_kph", "delay_veh_h",
                "incident_extra_veh_h", "peak_hour_travel_time_veh_h"):
        print(f"  {key:32s} {k[key]:,.1f}")
    for row in out["incidents"]:
        print(f"  {row['time_s'] / 3600:5.2f} h {'+'.join(row['kinds'])} "
              f"{','.join(row['streets'])}: {row['tstt_before_veh_h']:,.1f} -> "
              f"{row['tstt_after_veh_h']:,.1f} veh*h per hour, re-equilibrated in "
              f"{row['iterations']} iterations")
    if out["most_affected_first_incident"]:
        print("  most affected links at the first incident:")
    for row in out["most_affected_first_incident"]:
        change = "closed" if row["time_change_s"] is None else f"{row['time_change_s']:+.2f} s"
        print(f"    {row['street_id']} {row['from']}->{row['to']}: "
              f"{row['flow_change_veh_h']:+,.0f} veh/h, {change}")
    return 0


def cmd_osm(args: argparse.Namespace) -> int:
    from twin.traffic_run import osm_network_summary

    out = osm_network_summary(args.file, zone_size_m=args.zone_size_m,
                              trips_veh_h=args.trips, gap=args.gap, method=args.method)
    if args.json:
        print(json.dumps(out, default=float))
        return 0
    print(f"{out['file']}: {out['nodes']} intersections, {out['streets']} streets "
          f"({out['oneway_streets']} one-way), {out['links']} directed links, "
          f"{out['length_km']:.1f} km, {out['zones']} zones, in {out['crs']}")
    print("  " + ", ".join(f"{k} {v}" for k, v in out["by_class"].items()))
    if "assignment" in out:
        a = out["assignment"]
        print(f"  {args.trips:,.0f} trips/h assigned: {a['iterations']} iterations, gap "
              f"{a['relative_gap']:.2e}, {a['tstt_veh_h']:,.1f} veh*h per hour, "
              f"max volume/capacity {a['max_voc']:.2f}")
    return 0


def register_commands(sub) -> None:
    """Add ``day`` and ``osm`` to the ``twin traffic`` subparsers ``sub``."""
    p = sub.add_parser("day", help="a day of the demo city's traffic, hourly equilibria, "
                                   "with street closures")
    from twin.cli import _positive_int

    p.add_argument("--population", type=_positive_int, default=50_000,
                   help="inhabitants of the generated city (default 50000)")
    p.add_argument("--city-seed", type=int, default=0, help="layout of the city (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    p.add_argument("--hours", type=_hours, default=24.0, help="simulated hours from midnight")
    p.add_argument("--close", action="append", metavar="STREETS@HH:MM[+DURATION]",
                   help="close streets at a time, e.g. s324@7:30+4h (repeatable)")
    p.add_argument("--gap", type=float, default=1e-4, help="relative gap of each assignment")
    p.add_argument("--method", choices=("auto", "path", "bfw"), default="auto")
    p.add_argument("--json", action="store_true", help="one JSON object on the last line")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_day)
    o = sub.add_parser("osm", help="read an OpenStreetMap .osm/.osm.gz file into a road network")
    o.add_argument("file", help="OpenStreetMap XML, plain or gzip-compressed")
    o.add_argument("--zone-size-m", type=float, default=500.0, help="side of a zone (500 m)")
    o.add_argument("--trips", type=_non_negative, default=0.0,
                   help="also assign this many trips an hour between the zones")
    o.add_argument("--gap", type=float, default=1e-4)
    o.add_argument("--method", choices=("auto", "path", "bfw"), default="auto")
    o.add_argument("--json", action="store_true", help="one JSON object on the last line")
    o.set_defaults(func=cmd_osm)
