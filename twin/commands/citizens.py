"""``twin citizens simulate`` (a generated city's requests and crews) and ``twin citizens
import`` (a real request log: Open311 GeoReport v2 JSON or CSV, or the Los Angeles
MyLA311 CSV, checked row by row and summarised against the catalogue's rates)."""

from __future__ import annotations

import argparse
import json
import sys

from twin.cli import _bad_input, _non_negative, _positive_days, _positive_int


def register(sub) -> None:
    from twin.agents.dispatch import POLICIES

    pc = sub.add_parser("citizens", help="citizens' requests, channels and field crews")
    csub = pc.add_subparsers(dest="citizens_command", metavar="CITIZENS_COMMAND")
    c = csub.add_parser("simulate", help="a generated city's requests answered by its crews")
    c.add_argument("--population", type=_positive_int, default=250_000,
                   help="inhabitants of the generated city (default 250000)")
    c.add_argument("--days", type=_positive_days, default=365.0, help="simulated days (default 365)")
    c.add_argument("--crews", type=_positive_int, default=40, help="field crews (default 40)")
    c.add_argument("--policy", choices=POLICIES, default="priority",
                   help="dispatch policy (default priority)")
    c.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    c.add_argument("--storm-days", type=_non_negative, default=0.0,
                   help="days of a storm flooding streets (default 0: no storm)")
    c.add_argument("--storm-floods-per-day", type=_non_negative, default=30.0,
                   help="flooded streets a storm day (default 30)")
    c.add_argument("--storm-start-day", type=_non_negative, default=1.0,
                   help="day the storm starts (default 1)")
    c.add_argument("--out", default=None,
                   help="folder for report.html, backlog.png, the series, citizens.json and "
                        "the requests as Open311 GeoReport v2 (open311/)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_citizens_simulate)

    i = csub.add_parser("import", help="read a request log (Open311 JSON/CSV or MyLA311 CSV): "
                                       "bad rows by line, volumes against the catalogue")
    i.add_argument("file", help="requests.json / .csv (GeoReport v2 fields) or a MyLA311 CSV")
    i.add_argument("--format", choices=("auto", "open311", "myla311"), default="auto")
    i.add_argument("--population", type=_positive_int, default=None,
                   help="inhabitants served, to compare requests per 1,000 a year with the "
                        "catalogue")
    i.add_argument("--json", action="store_true", help="last line: one JSON object")
    i.set_defaults(func=cmd_citizens_import)
    pc.set_defaults(func=lambda a: (pc.print_help(), 2)[1])


def cmd_citizens_simulate(args: argparse.Namespace) -> int:
    from twin.agents.service_layer import simulate_city

    if args.population < 1000:
        print(f"error: --population: expected >= 1000 inhabitants, got {args.population}",
              file=sys.stderr)
        return 2
    try:
        result = simulate_city(population=args.population, days=args.days, crews=args.crews,
                               policy=args.policy, seed=args.seed,
                               progress=not args.json and not args.no_progress,
                               storm_days=args.storm_days,
                               storm_floods_per_day=args.storm_floods_per_day,
                               storm_start_day=args.storm_start_day, out_dir=args.out)
    except ValueError as exc:          # too few crews for the skills, ...
        return _bad_input(exc)
    if args.json:
        print(json.dumps(result, default=float))
        return 0
    k = result["kpis"]
    print(f"{args.population:,} inhabitants, {args.days:g} days, {args.crews} crews, "
          f"policy {args.policy}: simulated in {result['seconds']:.2f} s "
          f"(+{result['setup_seconds']:.2f} s setup)")
    for key in ("requests", "duplicates", "closed", "median_hours_to_close",
                "within_promise_share", "urgent_within_promise_share", "crew_utilisation",
                "km_driven", "phone_abandoned_share", "phone_mean_wait_s", "backlog_end"):
        print(f"  {key:32s} {k[key]:.4g}")
    if "report" in result:
        print(f"report: {result['report']}")
    return 0
def cmd_citizens_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from twin.agents.open311 import Open311Error, import_summary, read_myla311, read_open311
    from twin.agents.services import default_catalogue

    path = Path(args.file)
    fmt = args.format
    if fmt == "auto":
        head = path.read_text(encoding="utf-8-sig", errors="replace")[:400] if path.is_file() else ""
        fmt = "myla311" if "SRNumber" in head.split("\n", 1)[0] else "open311"
    catalogue = default_catalogue()
    try:
        result = read_myla311(path) if fmt == "myla311" else read_open311(path, catalogue)
    except Open311Error as exc:
        return _bad_input(exc)
    summary = import_summary(result, catalogue, args.population)
    summary.update({"file": str(path), "format": fmt})
    for line in result.report(path).splitlines()[:20]:
        print(line, file=sys.stderr)
    if len(result.errors) > 20:
        print(f"... {len(result.errors) - 20} more bad rows", file=sys.stderr)
    print(f"{path}: {summary['rows_kept']} requests kept, {summary['rows_bad']} bad rows "
          f"skipped; {summary['first']} to {summary['last']}")
    for code, row in summary["by_service"].items():
        line = f"  {code:26s} {row['requests']:8d}"
        if "per_1000_per_year" in row:
            line += (f"   {row['per_1000_per_year']:7.2f} /1000/yr (catalogue "
                     f"{row['catalogue_per_1000_per_year']:.2f})")
        print(line)
    if args.json:
        print(json.dumps(summary, default=float))
    return 0
