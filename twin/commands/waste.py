"""``twin waste ...``: route a CVRPLIB instance; simulate the demo city's waste collection."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from twin.cli import _positive_number


def cmd_route(args: argparse.Namespace) -> int:
    from twin.engines.cvrplib import read_instance, read_solution, write_solution
    from twin.engines.vrp import solve_cvrp

    instance = read_instance(args.instance)
    result = solve_cvrp(instance, seconds=args.seconds, seed=args.seed)
    payload = {"instance": instance.name, "customers": instance.dimension - 1,
               "capacity": instance.capacity, "cost": result.cost,
               "routes": result.routes, "feasible": result.feasible,
               "vehicles_used": len(result.routes), "seconds": round(result.seconds, 3),
               "iterations": result.iterations, "seed": args.seed, "solver": "pyvrp",
               "route_numbering": "CVRPLIB .sol: customers by 0-based position, depot 0"}
    sol = Path(args.instance).with_suffix(".sol")
    if sol.is_file():
        try:
            _, best = read_solution(sol)
        except Exception:                          # a broken reference is not our input
            best = None
        if best:
            payload["best_known"] = best
            payload["gap_pct"] = round(100.0 * (result.cost - best) / best, 3)
    if args.out:
        write_solution(args.out, result.routes, result.cost)
        payload["out"] = str(args.out)
    if args.json:
        print(json.dumps(payload))
        return 0
    print(f"{instance.name}: cost {result.cost} with {len(result.routes)} routes in "
          f"{result.seconds:.1f} s ({result.iterations} iterations), "
          f"{'feasible' if result.feasible else 'INFEASIBLE'}"
          + (f"; best known {payload['best_known']:g} (gap {payload['gap_pct']:+.2f} %)"
             if "best_known" in payload else ""))
    for k, route in enumerate(result.routes):
        print(f"Route #{k + 1}: {' '.join(map(str, route))}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from twin.networks.waste_run import simulate_waste

    result = simulate_waste(population=args.population, days=args.days,
                            strategy=args.strategy, seed=args.seed,
                            readings=args.readings, out_dir=args.out,
                            progress=not args.json and not args.no_progress)
    if args.json:
        print(json.dumps(result, default=float))
        return 0
    print(f"waste collection, {args.population:,} inhabitants, {args.days:g} days, strategy "
          f"{args.strategy}: simulated in {result['seconds']:.1f} s")
    for key, value in result["kpis"].items():
        print(f"  {key:32s} {value:.4g}")
    if result.get("report"):
        print(f"report: {result['report']}")
    return 0


def register(subparsers) -> None:
    """Add ``twin waste route`` and ``twin waste simulate``."""
    p = subparsers.add_parser("waste", help="waste collection: routing and simulation")
    sub = p.add_subparsers(dest="waste_command", metavar="WASTE_COMMAND")

    r = sub.add_parser("route", help="solve a CVRPLIB instance (.vrp) with PyVRP")
    r.add_argument("instance", help="CVRPLIB .vrp file (EUC_2D, CEIL_2D, ATT or EXPLICIT)")
    r.add_argument("--seconds", type=_positive_number, default=10.0, help="time limit (default 10)")
    r.add_argument("--seed", type=int, default=0, help="solver seed (default 0)")
    r.add_argument("--out", help="write the solution as a CVRPLIB .sol file")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=cmd_route)

    s = sub.add_parser("simulate", help="the demo city's waste collection over some days")
    s.add_argument("--days", type=_positive_number, default=28.0, help="simulated days (default 28)")
    s.add_argument("--strategy", choices=("fixed", "sensor"), default="fixed",
                   help="fixed weekly schedule or sensor-driven (default fixed)")
    s.add_argument("--population", type=int, default=50_000,
                   help="inhabitants of the generated city (default 50000)")
    s.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    s.add_argument("--readings", help="CSV of fill readings (time_s, container_id, "
                                      "fill_fraction) fed to the layer's reading API")
    s.add_argument("--out", help="folder for report.html and the figures")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_simulate)
    p.set_defaults(func=lambda a: (p.print_help(file=sys.stderr), 2)[1])
