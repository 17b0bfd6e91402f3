"""``twin parking ...``: a week of the demo city's parking; import and fit an occupancy file."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math


def _number(text: str, minimum: float, strict: bool, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise argparse.ArgumentTypeError(
            f"expected {what} {'>' if strict else '>='} {minimum:g}, got {text!r}")
    return value


def _days(text: str) -> float:
    return _number(text, 0.0, True, "a number of days")


def _population(text: str) -> int:
    return int(_number(text, 1000.0, False, "a population"))


def _share(text: str) -> float:
    value = _number(text, 0.0, False, "a share")
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a share in 0..1, got {text!r}")
    return value


def _date(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date such as 2026-06-15, got {text!r}")


def cmd_simulate(args: argparse.Namespace) -> int:
    from twin.networks.parking_run import HEADLINE, simulate_parking

    out = simulate_parking(population=args.population, days=args.days, reminders=args.reminders,
                           pricing=args.pricing, every=args.every, seed=args.seed,
                           start=args.start, progress=not args.json and not args.no_progress,
                           out_dir=args.out, reminder_lead_weeks=args.reminder_weeks,
                           reminder_share=args.reminder_share, demand=args.demand)
    if args.json:
        print(json.dumps(out, default=float))
        return 0
    print(f"{args.population:,} inhabitants, {args.days:g} days, {out['zones']} zones, "
          f"{out['car_parks']} car parks, pricing {args.pricing}, reminders "
          f"{'on' if args.reminders else 'off'}: simulated in {out['seconds']:.2f} s")
    for key in HEADLINE + ("cruising_min_per_arrival", "spilled_to_car_park",
                           "spilled_to_neighbour_zone", "mean_price_eur_h", "permits_due"):
        print(f"  {key:34s} {out['kpis'][key]:.4g}")
    if "report" in out:
        print(f"report: {out['report']}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from twin.networks.parking_data import read_occupancy
    from twin.networks.parking_run import fit_recording

    if args.fit:
        out = fit_recording(args.file, strict=args.strict, max_bad_share=args.max_bad_share)
    else:
        out = {"summary": read_occupancy(args.file, strict=args.strict,
                                         max_bad_share=args.max_bad_share).summary()}
    summary = out["summary"]
    if args.json:
        print(json.dumps({**summary, **({"fit": out.get("fit")} if args.fit else {})},
                         default=float))
        return 0
    print(f"{summary['file']}: {summary['good_rows']:,} good readings of {summary['carparks']} "
          f"car parks ({summary['capacity_total']:,} spaces), {summary['first']} to "
          f"{summary['last']}; mean occupancy {summary['mean_occupancy_share']:.3f}")
    print(f"  {summary['bad_rows']} bad rows left out: {summary['bad_rows_by_kind']}")
    for line in summary["bad_rows_listed"]:
        print(f"    {line}")
    fit = out.get("fit")
    if args.fit and fit:
        print(f"  fit: {fit['arrivals_per_space_weekday']:.3f} arrivals per space a weekday; "
              f"RMSE of the occupancy share {fit['rmse_share']} (simulated weekday "
              f"{fit['rmse_share_simulated_weekday']:.4f})")
        for p in fit["purposes"]:
            print(f"    {p['name']:9s} share {p['share']:.3f} peak {p['peak_h']:.2f} h "
                  f"spread {p['spread_h']:.2f} h stay {p['median_stay_h']:.1f} h "
                  f"days {[round(f, 2) for f in p['day_factors']]}")
    elif args.fit:
        print(f"  no fit: {out.get('fit_problem')}")
    return 0


def register(subparsers) -> None:
    """Add ``twin parking simulate`` and ``twin parking import``."""
    p = subparsers.add_parser("parking", help="on-street zones, car parks, pricing, permits")
    sub = p.add_subparsers(dest="parking_command", metavar="PARKING_COMMAND")
    s = sub.add_parser("simulate", help="the generated city's parking over some days")
    s.add_argument("--population", type=_population, default=50_000,
                   help="inhabitants of the generated city (default 50000)")
    s.add_argument("--days", type=_days, default=7.0, help="simulated days (default 7)")
    s.add_argument("--reminders", action=argparse.BooleanOptionalAction, default=True,
                   help="send permit renewal reminders (default on)")
    s.add_argument("--reminder-weeks", type=lambda t: _number(t, 0.0, True, "weeks"),
                   default=3.0, help="weeks before expiry the reminder goes (default 3)")
    s.add_argument("--reminder-share", type=_share, default=1.0,
                   help="share of holders reminded, to compare both groups in one run "
                        "(default 1)")
    s.add_argument("--pricing", choices=("fixed", "responsive"), default="fixed",
                   help="on-street prices: fixed, or raised above 80 %% and lowered below "
                        "60 %% occupancy (default fixed)")
    s.add_argument("--demand", choices=("od", "jobs"), default="od",
                   help="visitors from the OD demand's trips to activity places (od, default) "
                        "or from the zones' jobs (jobs)")
    s.add_argument("--every", choices=("day", "week"), default="day",
                   help="how often responsive prices change (default day)")
    s.add_argument("--start", type=_date, default=dt.datetime(2026, 6, 15),
                   help="first day (default 2026-06-15, a Monday)")
    s.add_argument("--seed", type=int, default=0, help="seed of the city and the run (default 0)")
    s.add_argument("--out", default=None, help="folder for report.html and the series")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_simulate)
    i = sub.add_parser("import", help="check and summarise a car-park occupancy recording "
                                      "(SystemCodeNumber,Capacity,Occupancy,LastUpdated)")
    i.add_argument("file", help="CSV file of occupancy readings")
    i.add_argument("--strict", action="store_true", help="stop at the first bad row (exit 2)")
    i.add_argument("--max-bad-share", type=_share, default=0.05,
                   help="share of bad rows above which the file is refused (default 0.05)")
    i.add_argument("--fit", action="store_true",
                   help="fit the arrival and stay model to its daily occupancy profiles")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.set_defaults(func=cmd_import)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
