"""PyVRP (through twin.engines.vrp) on the ten CVRPLIB instances of ../shared/data/cvrp.

For each instance: the Clarke-Wright savings baseline (measured in the same run), then
PyVRP with a time limit (``--seconds``, default 10 as the issue asks), the gap of each
to the best-known cost of the instance's ``.sol``. The last line is one JSON object;
``ratio`` is the median over instances of baseline cost / PyVRP cost (how much more
a fleet routed by the savings heuristic would drive; > 1 is better for PyVRP).

    .venv/bin/python benchmarks/cvrp_instances.py [--seconds 10] [--seed 1] [INSTANCE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from twin.engines.cvrplib import read_instance, read_solution  # noqa: E402
from twin.engines.savings import clarke_wright  # noqa: E402
from twin.engines.vrp import solve_cvrp  # noqa: E402

DATA = Path(os.environ.get("TWIN_SHARED_DATA", ROOT.parent / "shared" / "data")) / "cvrp"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instances", nargs="*", help="names (default: every .vrp in the folder)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"reference data not found: {DATA} (set TWIN_SHARED_DATA)")
    names = args.instances or sorted(p.stem for p in DATA.glob("*.vrp"))
    rows = []
    print(f"{'instance':12s} {'n':>4s} {'BKS':>7s} {'savings':>8s} {'gap%':>6s} "
          f"{'pyvrp':>7s} {'gap%':>6s} {'s':>5s} {'iters':>7s}")
    for name in names:
        instance = read_instance(DATA / f"{name}.vrp")
        _, bks = read_solution(DATA / f"{name}.sol")
        t0 = time.perf_counter()
        baseline_routes = clarke_wright(instance.distance, instance.demand, instance.capacity)
        baseline_s = time.perf_counter() - t0
        baseline = instance.route_cost(baseline_routes)
        result = solve_cvrp(instance, seconds=args.seconds, seed=args.seed)
        row = {"instance": name, "customers": instance.dimension - 1, "best_known": bks,
               "baseline_cost": baseline, "baseline_gap_pct": 100 * (baseline - bks) / bks,
               "baseline_s": baseline_s, "cost": result.cost,
               "gap_pct": 100 * (result.cost - bks) / bks, "feasible": result.feasible,
               "seconds": result.seconds, "iterations": result.iterations,
               "routes": len(result.routes)}
        rows.append(row)
        print(f"{name:12s} {row['customers']:4d} {bks:7.0f} {baseline:8d} "
              f"{row['baseline_gap_pct']:6.2f} {result.cost:7d} {row['gap_pct']:6.2f} "
              f"{result.seconds:5.1f} {result.iterations:7d}", flush=True)
    within = sum(r["gap_pct"] <= 1.0 and r["feasible"] for r in rows)
    ratio = statistics.median(r["baseline_cost"] / r["cost"] for r in rows)
    print(f"{within}/{len(rows)} instances within 1 % of the best known; median gap "
          f"{statistics.median(r['gap_pct'] for r in rows):.2f} % (savings baseline "
          f"{statistics.median(r['baseline_gap_pct'] for r in rows):.2f} %)")
    print(json.dumps({
        "benchmark": "cvrp_instances", "seconds_per_instance": args.seconds, "seed": args.seed,
        "instances": len(rows), "within_1pct": within,
        "max_gap_pct": round(max(r["gap_pct"] for r in rows), 3),
        "median_gap_pct": round(statistics.median(r["gap_pct"] for r in rows), 3),
        "median_baseline_gap_pct": round(statistics.median(r["baseline_gap_pct"] for r in rows), 3),
        "median_pyvrp_s": round(statistics.median(r["seconds"] for r in rows), 2),
        "median_baseline_s": round(statistics.median(r["baseline_s"] for r in rows), 4),
        "ratio": round(ratio, 4),
        "ratio_means": "median over instances of Clarke-Wright cost / PyVRP cost",
        "per_instance": {r["instance"]: {"cost": r["cost"], "gap_pct": round(r["gap_pct"], 3),
                                         "baseline_cost": r["baseline_cost"]} for r in rows},
    }))


if __name__ == "__main__":
    main()
