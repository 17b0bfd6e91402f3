"""``twin lighting ...``: run the cabinet fault detector on recordings; simulate strategies."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from twin.cli import _positive_number


def _when(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date-time such as 2026-01-01T17:00, got {text!r}") from None


def cmd_detect(args: argparse.Namespace) -> int:
    from twin.networks.lighting_data import detect_recording, nights, read_recording

    files = []
    for path in args.files:           # read and check every file before running any
        files.append((path, read_recording(path)))
    report = []
    for path, power in files:
        events = detect_recording(power, start=args.start, min_step_w=args.min_step_w,
                                  lamp_power_w=args.lamp_power_w)
        report.append({"file": str(path), "minutes": int(len(power)),
                       "missing_minutes": int((power != power).sum()),
                       "nights": [vars(n) for n in nights(power)],
                       "events": events.to_dict(orient="records")})
    total = sum(len(r["events"]) for r in report)
    if args.json:
        print(json.dumps({"files": report, "events": total,
                          "min_step_w": args.min_step_w}, default=float))
        return 0
    for r in report:
        print(f"{r['file']}: {r['minutes']} minutes ({r['missing_minutes']} missing), "
              f"{len(r['nights'])} days")
        for n in r["nights"]:
            print(f"  day {n['day']}: {n['on_minutes']} min on, {n['energy_kwh']:.1f} kWh")
        for e in r["events"]:
            print(f"  {e['kind']:20s} lines {e['start_line']}-{e['detected_line']}: "
                  f"{e['size_w']:.0f} W (~{e['n_lamps']} lamps)")
    print(f"{total} event(s) found")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from twin.networks.lighting_run import simulate_lighting

    result = simulate_lighting(days=args.days, strategy=args.strategy,
                               population=args.population, seed=args.seed, start=args.start,
                               injected_per_day=args.inject_per_day,
                               progress=not args.json and not args.no_progress)
    if args.json:
        print(json.dumps(result, default=float))
        return 0
    print(f"{result['lamps']} lamps, {result['cabinets']} cabinets, {args.days:g} days, "
          f"strategy {args.strategy}: {result['seconds']:.1f} s")
    for k, v in result["kpis"].items():
        print(f"  {k:34s} {v:.4g}")
    return 0


def register(subparsers) -> None:
    """Add ``twin lighting detect`` and ``twin lighting simulate``."""
    p = subparsers.add_parser("lighting", help="street lighting: detector, strategies")
    sub = p.add_subparsers(dest="lighting_command", metavar="LIGHTING_COMMAND")
    d = sub.add_parser("detect", help="find lamp outages and supply faults in cabinet "
                                      "power recordings (one reading a minute, W)")
    d.add_argument("files", nargs="+", help="power recording files (one value a line)")
    d.add_argument("--start", type=_when, default=None,
                   help="date-time of the first line (the files do not store it)")
    d.add_argument("--min-step-w", type=_positive_number, default=150.0,
                   help="smallest lasting drop to report, W (default 150)")
    d.add_argument("--lamp-power-w", type=_positive_number, default=85.0,
                   help="one lamp's power, to count lamps lost (default 85: 70 W HPS)")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(func=cmd_detect)
    s = sub.add_parser("simulate", help="the lighting layer alone on the demo city")
    s.add_argument("--days", type=_positive_number, default=7.0, help="simulated days (default 7)")
    s.add_argument("--strategy", choices=("full", "dimming", "adaptive"), default="full")
    s.add_argument("--population", type=int, default=50_000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--start", type=_when, default=dt.datetime(2026, 1, 1),
                   help="start date-time, local (default 2026-01-01T00:00)")
    s.add_argument("--inject-per-day", type=int, default=0,
                   help="lamps failed at random each day at 22:00 (default 0)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_simulate)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
