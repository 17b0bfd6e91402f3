"""``twin traffic ...``: static user-equilibrium assignment on TNTP networks.

``twin traffic assign --tntp DIR [--gap 1e-4] [--method auto|path|bfw] [--close A-B ...]
[--json]`` reads a TNTP folder (net, trips, optional flow/node/README), solves to the gap and
reports iterations, relative gap, Beckmann objective and total system travel time (in the
network's time unit, minutes for TNTP). With ``--close`` or ``--capacity`` it then applies the
incident, re-equilibrates from the first solution and reports the change of total travel time
and the most affected links.
"""

from __future__ import annotations

import argparse
import json
import math
import time

from twin.cli import _positive_number


def _link(text: str) -> tuple[int, int]:
    parts = text.replace(">", "").split("-")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected a link as FROM-TO node ids (e.g. 10-15), "
                                         f"got {text!r}")
    return int(parts[0]), int(parts[1])


def _capacity(text: str) -> tuple[tuple[int, int], float]:
    link, _, factor = text.partition("=")
    value = _positive_number(factor) if factor else math.nan
    if not factor or value > 1:
        raise argparse.ArgumentTypeError(f"expected FROM-TO=FACTOR with 0 < FACTOR <= 1 "
                                         f"(e.g. 10-15=0.5), got {text!r}")
    return _link(link), value


def cmd_assign(args: argparse.Namespace) -> int:
    import numpy as np

    from twin.engines.assignment import assign, compare
    from twin.errors import BadInput
    from twin.networks.tntp import read_flow, read_folder

    t0 = time.perf_counter()
    network, demand = read_folder(args.tntp, args.toll_weight, args.length_weight)
    load_s = time.perf_counter() - t0
    progress = not args.json and not args.no_progress
    result = assign(network, demand, gap=args.gap, max_iterations=args.max_iterations,
                    method=args.method, progress=progress)
    out = {"network": network.name, "zones": network.zones, "nodes": len(network.nodes),
           "links": network.n_links, "first_thru_node": network.first_thru_node,
           "method": result.method, "iterations": result.iterations,
           "relative_gap": result.relative_gap, "beckmann": result.beckmann,
           "tstt": result.tstt, "tstt_veh_h": result.tstt_veh_h, "seconds": result.seconds,
           "converged": result.converged, "read_seconds": load_s,
           "time_unit": "min", "demand_veh_h": float(demand.sum()),
           "history": result.history.to_dict("records")}
    flow_file = network.meta.get("files", {}).get("flow")
    if flow_file:
        best = read_flow(flow_file, network)
        flows = np.zeros(network.n_links)
        flows[best["link"].to_numpy()] = best["flow_veh_h"].to_numpy()
        out["best_known_beckmann"] = network.beckmann(flows)
        out["beckmann_relative_difference"] = (result.beckmann / out["best_known_beckmann"] - 1)
    if args.close or args.capacity:
        changed = network
        try:
            if args.close:
                changed = changed.close([network.link_index(*pair) for pair in args.close])
            for pair, factor in args.capacity or []:
                i = network.link_index(*pair)
                changed = changed.set_lanes([i], float(changed.links["lanes"].iat[i]) * factor)
        except KeyError as exc:
            raise BadInput(f"--close/--capacity: {exc.args[0]}") from None
        after = assign(changed, demand, gap=args.gap, max_iterations=args.max_iterations,
                       method=args.method, warm_start=result, progress=progress,
                       unreachable="drop")
        change = compare(result, after, top=args.top)
        out["incident"] = {
            "iterations": after.iterations, "relative_gap": after.relative_gap,
            "seconds": after.seconds, "tstt": after.tstt, "tstt_change": change.tstt_change,
            "tstt_change_relative": change.tstt_change_relative,
            "unserved_demand_veh_h": float(after.unserved["demand_veh_h"].sum()),
            "most_affected": [
                {"from": int(r.init_node), "to": int(r.term_node),
                 "flow_before_veh_h": r.flow_before_veh_h, "flow_after_veh_h": r.flow_after_veh_h,
                 "time_before_min": r.time_before_min, "time_after_min": r.time_after_min}
                for r in change.most_affected.itertuples()]}
    if args.out:
        result.links().to_csv(args.out, index_label="link")
        out["links_csv"] = str(args.out)
    if args.json:
        print(json.dumps(out, default=float))
        return 0
    print(f"{network.name}: {network.zones} zones, {len(network.nodes)} nodes, "
          f"{network.n_links} links (first thru node {network.first_thru_node}), "
          f"{demand.sum():,.1f} veh/h")
    print("  iteration  relative gap        Beckmann            TSTT   seconds")
    for row in result.history.itertuples():
        print(f"  {row.iteration:9d}  {row.relative_gap:12.3e}  {row.beckmann:14,.1f}  "
              f"{row.tstt:14,.1f}  {row.seconds:8.3f}")
    print(f"  {result.method}: {result.iterations} iterations, relative gap "
          f"{result.relative_gap:.3e} in {result.seconds:.2f} s "
          f"({'converged' if result.converged else 'NOT converged'})")
    print(f"  Beckmann {result.beckmann:,.3f}   TSTT {result.tstt:,.3f} veh*min")
    if "best_known_beckmann" in out:
        print(f"  best known Beckmann {out['best_known_beckmann']:,.3f} "
              f"(ours {out['beckmann_relative_difference']:+.2e} relative)")
    if "incident" in out:
        inc = out["incident"]
        print(f"  after the incident: TSTT {inc['tstt']:,.1f} ({inc['tstt_change']:+,.1f} veh*min, "
              f"{100 * inc['tstt_change_relative']:+.2f} %), re-equilibrated in "
              f"{inc['iterations']} iterations, {inc['seconds']:.2f} s")
        if inc["unserved_demand_veh_h"] > 0:
            print(f"  unserved: {inc['unserved_demand_veh_h']:,.1f} veh/h have no path any more")
        for row in inc["most_affected"]:
            print(f"    {row['from']}->{row['to']}: {row['flow_before_veh_h']:,.0f} -> "
                  f"{row['flow_after_veh_h']:,.0f} veh/h, {row['time_before_min']:.2f} -> "
                  f"{row['time_after_min']:.2f} min")
    return 0


def register(subparsers) -> None:
    """Add ``twin traffic`` and its subcommands."""
    parser = subparsers.add_parser("traffic", help="traffic assignment and the traffic layer")
    sub = parser.add_subparsers(dest="traffic_command")
    p = sub.add_parser("assign", help="user-equilibrium assignment of a TNTP network")
    p.add_argument("--tntp", required=True,
                   help="TNTP folder (with *_net.tntp and *_trips.tntp) or its _net file")
    p.add_argument("--gap", type=_positive_number, default=1e-4, help="target relative gap (1e-4)")
    p.add_argument("--max-iterations", type=int, default=1000)
    p.add_argument("--method", choices=("auto", "path", "bfw"), default="auto",
                   help="path-based gradient projection (auto) or bi-conjugate Frank-Wolfe")
    p.add_argument("--toll-weight", type=float, default=None,
                   help="minutes per toll unit in the generalised cost (default: README's)")
    p.add_argument("--length-weight", type=float, default=None,
                   help="minutes per length unit in the generalised cost (default: README's)")
    p.add_argument("--close", type=_link, action="append", metavar="FROM-TO",
                   help="close this link after the first solution and re-equilibrate")
    p.add_argument("--capacity", type=_capacity, action="append", metavar="FROM-TO=FACTOR",
                   help="scale this link's capacity (a lost lane) and re-equilibrate")
    p.add_argument("--top", type=int, default=10, help="most affected links to list")
    p.add_argument("--out", help="write the links with flows and times to this CSV")
    p.add_argument("--json", action="store_true", help="one JSON object on the last line")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_assign)
    from twin.traffic_commands import register_commands   # day (demo city) and osm files
    register_commands(sub)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
