"""``twin sewer ...``: run any SWMM file through the sewer layer; write the demo city's sewer."""

from __future__ import annotations

import argparse
import json

from twin.cli import _positive_number


def cmd_run(args: argparse.Namespace) -> int:
    from twin.sewer_run import simulate_sewer_inp

    out = simulate_sewer_inp(args.model, control_step_s=args.step, hours=args.hours,
                             progress=not args.json and not args.no_progress)
    if args.json:
        print(json.dumps(out, default=float))
        return 0
    print(f"{out['network']}: {out['nodes']} nodes, {out['links']} links, "
          f"{out['subcatchments']} subcatchments, {out['hours']:g} h in {out['seconds']:.2f} s "
          f"({out['control_steps']} control steps of {args.step:g} s)")
    for outfall, vol in out["total_outfall_volume"].items():
        print(f"  outfall {outfall:20s} {vol:12.3f} {out['volume_unit']}")
    print(f"  flooding volume              {out['flooding_volume']:12.3f} {out['volume_unit']}")
    print(f"  runoff continuity error      {out['runoff_continuity_error_pct']} %")
    print(f"  flow routing continuity error {out['flow_routing_continuity_error_pct']} %")
    return 0


def cmd_build_demo(args: argparse.Namespace) -> int:
    import datetime as dt

    from twin.city.generator import generate_city
    from twin.networks.rainfall import design_storm
    from twin.networks.sewer_model import build_sewer_model

    city = generate_city(population=args.population, seed=args.seed)
    rain = None
    if args.storm_years:
        rain = design_storm(args.storm_years, duration_s=args.storm_hours * 3600, step_s=300)
    model = build_sewer_model(city, start=dt.datetime(2026, 6, 15), horizon_s=args.hours * 3600,
                              rain_mm_h=rain, rain_start_s=3600.0)
    model.write(args.out)
    summary = {"out": str(args.out), "nodes": len(model.nodes), "conduits": int(
        (model.links["link_type"] == "conduit").sum()), "subcatchments": len(model.subcatchments),
        "cso_outfalls": model.cso_outfalls, "plant_outfalls": model.plant_outfalls}
    print(json.dumps(summary) if args.json else
          f"wrote {args.out}: {summary['nodes']} nodes, {summary['conduits']} conduits, "
          f"{summary['subcatchments']} subcatchments; overflows {', '.join(model.cso_outfalls)}")
    return 0


def register(subparsers) -> None:
    """Add ``twin sewer run`` and ``twin sewer build-demo``."""
    p = subparsers.add_parser("sewer", help="sewer and stormwater (SWMM) commands")
    sub = p.add_subparsers(dest="sewer_command", metavar="SEWER_COMMAND")
    r = sub.add_parser("run", help="run any SWMM .inp through the sewer layer")
    r.add_argument("model", help="SWMM 5 .inp file")
    r.add_argument("--step", type=_positive_number, default=300.0,
                   help="control step of the layer in seconds (default 300; SWMM's routing "
                        "step is the file's)")
    r.add_argument("--hours", type=_positive_number, help="simulated hours (default: the file's period)")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)
    b = sub.add_parser("build-demo", help="write the demo city's combined sewer as a SWMM .inp")
    b.add_argument("--out", required=True, help="the .inp file to write")
    b.add_argument("--population", type=int, default=50_000, help="inhabitants (default 50000)")
    b.add_argument("--seed", type=int, default=0, help="city seed (default 0)")
    b.add_argument("--hours", type=_positive_number, default=24.0, help="simulated period (default 24)")
    b.add_argument("--storm-years", type=_positive_number,
                   help="add a Chicago design storm of this return period (years) after 1 h")
    b.add_argument("--storm-hours", type=_positive_number, default=2.0,
                   help="the design storm's duration (default 2 h)")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=cmd_build_demo)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
