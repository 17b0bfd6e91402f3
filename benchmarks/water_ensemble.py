"""Single-pipe-break ensembles on Net3 and L-Town (24 h each), three ways in one run.

1. a plain loop calling WNTR's file-based ``EpanetSimulator`` (the network read once; per
   break: an orifice emitter on the pipe's start junction, run, KPIs from the results,
   emitter removed);
2. ``twin.ensemble.run_ensemble`` on a local Dask cluster of one worker;
3. the same on two workers.

Each chosen pipe breaks with each of ``LEAK_AREAS_M2`` (a criticality ensemble of break
sizes), so N = pipes x sizes runs; an ensemble's fixed cost (expanding and checking the
members, the manifest, the network tables, a round trip to the workers: tens of
milliseconds) is also measured on its own, with a two-member ensemble.

The three ways take turns, ``--repeats`` times after an untimed warm-up of each (so a
change in the machine's load hits all three alike); the median wall time gives runs per
second. Our members burst the same
pipes at their start (``position: 0``) from time 0 with the same orifice, so the leak
volumes of both are compared too. Ours is timed from the scenario to the Parquet files
(members expanded and validated, results written); the clusters' start-up is not timed
(it is printed); each repetition writes into a fresh folder, so nothing is skipped.

Last line: one JSON object; ``ratio`` = WNTR loop time / ours on one worker (the lower of
the two networks), ``ratio_2_vs_1`` = ours on one worker / ours on two workers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import wntr

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TWIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
LEAK_AREAS_M2 = (0.001, 0.002, 0.005, 0.01)     # each pipe breaks with each of these
G = 9.81


def net3_path() -> Path:
    return Path(wntr.__file__).parent / "library" / "networks" / "Net3.inp"


def pick_pipes(wn: wntr.network.WaterNetworkModel, n: int) -> list[str]:
    """``n`` pipes spread over the network whose start node is a junction."""
    pipes = [name for name, p in wn.pipes() if p.start_node.node_type == "Junction"]
    idx = np.unique(np.linspace(0, len(pipes) - 1, min(n, len(pipes))).round().astype(int))
    return [pipes[i] for i in idx]


def wntr_loop(inp: Path, breaks: list[tuple[str, float]], folder: Path
              ) -> tuple[float, dict[tuple[str, float], float]]:
    """The plain way: EpanetSimulator per break. Returns (seconds, leak volume per break)."""
    t0 = time.perf_counter()
    wn = wntr.network.WaterNetworkModel(str(inp))
    wn.options.time.duration = 24 * 3600
    base = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(folder / "base"))
    base_demand = base.node["demand"]
    volumes = {}
    for pipe, area in breaks:
        node = wn.get_link(pipe).start_node
        node.emitter_coefficient = 0.75 * area * np.sqrt(2 * G)   # m3/s per sqrt(m), as WNTR takes it
        res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(folder / "run"))
        node.emitter_coefficient = None
        leak = (res.node["demand"][node.name] - base_demand[node.name]).to_numpy()
        step = np.diff(res.node["demand"].index.to_numpy(), append=24 * 3600)
        volumes[(pipe, area)] = float((leak[:-1] * step[:-1]).sum())      # m3 over the day
        _ = res.node["pressure"].min().min()                      # the KPI a user reads
    return time.perf_counter() - t0, volumes


def scenario_file(inp: Path, pipes: list[str], folder: Path, engine: str,
                  areas: tuple[float, ...] = LEAK_AREAS_M2) -> Path:
    path = folder / f"breaks_{inp.stem}.yaml"
    path.write_text(json.dumps({      # JSON is YAML
        "name": f"breaks_{inp.stem}".replace("-", "_"), "city": {"inp": str(inp)},
        "horizon": "24h", "policies": {"water": {"engine": engine}},
        "ensemble": {"sweep": [{"type": "pipe_burst", "at": 0, "position": 0.0,
                                "leak_area_m2": areas[0],
                                "pipe": {"each": "pipe", "ids": pipes}}],
                     "grid": {"sweep[0].leak_area_m2": list(areas)}}}))
    return path


def ours(spec, client, out: Path) -> tuple[float, dict[tuple[str, float], float]]:
    """Our ensemble on ``client``'s cluster into a fresh folder: (seconds, leak per break)."""
    from twin.ensemble import run_ensemble
    from twin.ensemble_store import load_members

    t0 = time.perf_counter()
    summary = run_ensemble(spec, out, client=client, progress=False)
    seconds = time.perf_counter() - t0
    assert summary.failed == 0 and summary.done == summary.members, summary
    rows = load_members(out)
    areas = rows["param:sweep[0].leak_area_m2"].astype(float)
    return seconds, dict(zip(zip(rows["element"], areas), rows["water.leak_volume_m3"]))


def bench_network(name: str, inp: Path, n: int, repeats: int, engine: str, folder: Path,
                  clients: dict[int, object]) -> dict:
    """The three ways in turn, ``repeats`` times (interleaved, so a change in the machine's
    load hits all three alike)."""
    from twin.scenario import load_scenario

    wn = wntr.network.WaterNetworkModel(str(inp))
    pipes = pick_pipes(wn, n)
    breaks = [(p, a) for p in pipes for a in LEAK_AREAS_M2]
    spec = load_scenario(scenario_file(inp, pipes, folder, engine))
    seconds: dict[str, list[float]] = {"wntr": [], "ours_1": [], "ours_2": []}
    for r in range(-1, repeats):          # -1: an untimed warm-up of all three
        sub = folder / f"wntr_{name}_{r}"
        sub.mkdir()
        t, volumes = wntr_loop(inp, breaks, sub)
        if r >= 0:
            seconds["wntr"].append(t)
        for workers, client in clients.items():
            t, ours_leak = ours(spec, client, folder / f"{name}_{workers}w_{r}")
            if r >= 0:
                seconds[f"ours_{workers}"].append(t)
    # an ensemble's fixed cost: two members, timed like the rest
    (folder / f"small_{name}").mkdir()
    small = load_scenario(scenario_file(inp, pipes[:2], folder / f"small_{name}", engine,
                                        areas=LEAK_AREAS_M2[:1]))
    fixed = {w: statistics.median(ours(small, client, folder / f"{name}_small_{w}w_{r}")[0]
                                  for r in range(5)) for w, client in clients.items()}
    ref = np.array([volumes[b] for b in breaks])
    got = np.array([ours_leak[b] for b in breaks])
    rel = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-9)
    runs = len(breaks)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    result = {
        "runs": runs, "repeats": repeats, "engine": engine,
        "wntr_loop_runs_per_s": runs / med["wntr"],
        "ours_1_worker_runs_per_s": runs / med["ours_1"],
        "ours_2_workers_runs_per_s": runs / med["ours_2"],
        "ratio_1_worker_vs_wntr": med["wntr"] / med["ours_1"],
        "ratio_2_vs_1_workers": med["ours_1"] / med["ours_2"],
        "seconds": seconds,
        "two_member_ensemble_s": {f"{w}_workers": t for w, t in fixed.items()},
        "leak_volume_median_rel_diff_vs_wntr": float(np.median(rel)),
        "leak_volume_p90_rel_diff_vs_wntr": float(np.percentile(rel, 90)),
    }
    print(f"{name}: {runs} breaks x 24 h, median of {repeats}: WNTR loop "
          f"{result['wntr_loop_runs_per_s']:.1f} runs/s, ours 1 worker "
          f"{result['ours_1_worker_runs_per_s']:.1f} runs/s "
          f"({result['ratio_1_worker_vs_wntr']:.2f}x), 2 workers "
          f"{result['ours_2_workers_runs_per_s']:.1f} runs/s "
          f"({result['ratio_2_vs_1_workers']:.2f}x one worker); leak volume vs WNTR: "
          f"median {100 * result['leak_volume_median_rel_diff_vs_wntr']:.3f} %, "
          f"90th percentile {100 * result['leak_volume_p90_rel_diff_vs_wntr']:.3f} %", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net3-pipes", type=int, default=117,
                        help="pipes of Net3 to break (x 4 sizes; default: all 117)")
    parser.add_argument("--ltown-pipes", type=int, default=30, help="pipes of L-Town (x 4 sizes)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engine", choices=("owa", "wntr"), default="owa",
                        help="our EPANET library (default owa: EPANET 2.3)")
    args = parser.parse_args()
    networks = {"Net3": (net3_path(), args.net3_pipes)}
    ltown = SHARED / "battledim" / "L-TOWN.inp"
    if ltown.is_file():
        networks["L-Town"] = (ltown, args.ltown_pipes)
    else:
        print(f"L-Town skipped: {ltown} not found (set TWIN_SHARED_DATA)")
    from twin.ensemble import dask_client

    results = {}
    with tempfile.TemporaryDirectory(prefix="twin-bench-ens-") as tmp, ExitStack() as stack:
        t0 = time.perf_counter()
        clients = {w: stack.enter_context(dask_client(workers=w)) for w in (1, 2)}
        startup = time.perf_counter() - t0
        print(f"two local clusters (1 and 2 workers) started in {startup:.1f} s (not timed)")
        for name, (inp, n) in networks.items():
            results[name] = bench_network(name, inp, n, args.repeats, args.engine, Path(tmp),
                                          clients)
    print(json.dumps({
        "benchmark": "water_ensemble", "cores": os.cpu_count(), "cluster_startup_s": startup,
        "ratio": min(r["ratio_1_worker_vs_wntr"] for r in results.values()),
        "ratio_2_vs_1": min(r["ratio_2_vs_1_workers"] for r in results.values()),
        "networks": results}))


if __name__ == "__main__":
    main()
