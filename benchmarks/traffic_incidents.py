"""Re-equilibrating the demo city after a street closure at the morning peak: warm start from
the equilibrium before the closure (ours) against a cold start (the baseline), same gap.

For each of ``--closures`` arterial streets (evenly spread over the city's arterials) the
08:00-09:00 demand is assigned on the intact network, the street is closed, and the closed
network is solved twice: from scratch and warm-started from the intact solution. Medians of
iterations and seconds are quoted (each solve repeated ``--repeat`` times, best taken); the
last line is one JSON object with ``ratio`` = cold seconds / warm seconds (medians). A whole
day of the layer (24 hourly assignments and the closure) is timed too.

    .venv/bin/python benchmarks/traffic_incidents.py [--population 50000] [--closures 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from twin.city.generator import generate_city
from twin.engines.assignment import assign
from twin.traffic_run import simulate_city_day
from twin.twin import Twin
from twin.networks.traffic import TrafficLayer


def best_of(repeat: int, solve):
    best, result = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = solve()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=50_000)
    parser.add_argument("--closures", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gap", type=float, default=1e-4)
    args = parser.parse_args()

    city = generate_city(args.population, seed=0)
    layer = Twin(city=city, seed=0).add_layer(TrafficLayer())
    net, demand = layer.base_network, layer.demand.hour(8)
    assign(net, demand, gap=args.gap)                       # compile the kernels first
    intact = assign(net, demand, gap=args.gap)
    arterials = city.streets.index[city.streets["street_class"] == "arterial"]
    chosen = arterials[np.linspace(0, len(arterials) - 1, args.closures).astype(int)]
    rows = []
    for street in chosen:
        closed = net.close(net.links_on_streets([street]))
        cold_s, cold = best_of(args.repeat, lambda: assign(closed, demand, gap=args.gap,
                                                            unreachable="drop"))
        warm_s, warm = best_of(args.repeat, lambda: assign(closed, demand, gap=args.gap,
                                                            warm_start=intact,
                                                            unreachable="drop"))
        rows.append({"street": street, "cold_s": cold_s, "warm_s": warm_s,
                     "cold_iterations": cold.iterations, "warm_iterations": warm.iterations,
                     "tstt_change_veh_h": warm.tstt_veh_h - intact.tstt_veh_h,
                     "tstt_warm_vs_cold": warm.tstt / cold.tstt - 1})
        print(f"{street:6s} cold {cold.iterations:3d} it {cold_s * 1000:7.1f} ms | warm "
              f"{warm.iterations:3d} it {warm_s * 1000:7.1f} ms | TSTT "
              f"{rows[-1]['tstt_change_veh_h']:+7.2f} veh*h/h")
    day = [simulate_city_day(args.population, closures=["s324@7:30+4h"])["seconds"]
           for _ in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in rows)
           for k in ("cold_s", "warm_s", "cold_iterations", "warm_iterations",
                     "tstt_change_veh_h")}
    out = {"population": args.population, "zones": net.zones, "links": net.n_links,
           "closures": len(rows), "gap": args.gap,
           "median_cold_iterations": med["cold_iterations"],
           "median_warm_iterations": med["warm_iterations"],
           "median_cold_ms": round(1000 * med["cold_s"], 2),
           "median_warm_ms": round(1000 * med["warm_s"], 2),
           "median_tstt_change_veh_h": round(med["tstt_change_veh_h"], 3),
           "max_tstt_warm_vs_cold": max(abs(r["tstt_warm_vs_cold"]) for r in rows),
           "warm_fewer_iterations_share": sum(r["warm_iterations"] < r["cold_iterations"]
                                              for r in rows) / len(rows),
           "day_seconds_median": round(statistics.median(day), 3),
           "ratio": round(med["cold_s"] / med["warm_s"], 3)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
