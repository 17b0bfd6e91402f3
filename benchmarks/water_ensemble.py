"""Single-pipe-break ensembles on Net3 and L-Town (24 h each), three ways in one run.

1. a plain loop calling WNTR's file-based ``EpanetSimulator`` (the network read once; per
   break: an orifice emitter on the pipe's start junction, run, KPIs from the results,
   emitter removed);
2. ``twin.ensemble.run_ensemble`` on a local Dask cluster of one worker;
3. the same on two workers.

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
LEAK_AREA_M2 = 0.002
G = 9.81


def net3_path() -> Path:
    return Path(wntr.__file__).parent / "library" / "networks" / "Net3.inp"


def pick_pipes(wn: wntr.network.WaterNetworkModel, n: int) -> list[str]:
    """``n`` pipes spread over the network whose start node is a junction."""
    pipes = [name for name, p in wn.pipes() if p.start_node.node_type == "Junction"]
    idx = np.unique(np.linspace(0, len(pipes) - 1, min(n, len(pipes))).round().astype(int))
    return [pipes[i] for i in idx]


def wntr_loop(inp: Path, pipes: list[str], folder: Path) -> tuple[float, dict[str, float]]:
    """The plain way: EpanetSimulator per break. Returns (seconds, leak volume per pipe)."""
    t0 = time.perf_counter()
    wn = wntr.network.WaterNetworkModel(str(inp))
    wn.options.time.duration = 24 * 3600
    base = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(folder / "base"))
    base_demand = base.node["demand"]
    coeff = 0.75 * LEAK_AREA_M2 * np.sqrt(2 * G)         # m3/s per sqrt(m), as WNTR takes it
    volumes = {}
    for pipe in pipes:
        node = wn.get_link(pipe).start_node
        node.emitter_coefficient = coeff
        res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(folder / "run"))
        node.emitter_coefficient = None
        leak = (res.node["demand"][node.name] - base_demand[node.name]).to_numpy()
        step = np.diff(res.node["demand"].index.to_numpy(), append=24 * 3600)
        volumes[pipe] = float((leak[:-1] * step[:-1]).sum())      # m3 over the day
        _ = res.node["pressure"].min().min()                      # the KPI a user reads
    return time.perf_counter() - t0, volumes


def scenario_file(inp: Path, pipes: list[str], folder: Path, engine: str) -> Path:
    path = folder / f"breaks_{inp.stem}.yaml"
    path.write_text(json.dumps({      # JSON is YAML
        "name": f"breaks_{inp.stem}".replace("-", "_"), "city": {"inp": str(inp)},
        "horizon": "24h", "policies": {"water": {"engine": engine}},
        "ensemble": {"sweep": [{"type": "pipe_burst", "at": 0, "position": 0.0,
                                "leak_area_m2": LEAK_AREA_M2,
                                "pipe": {"each": "pipe", "ids": pipes}}]}}))
    return path


def ours(spec, client, out: Path) -> tuple[float, dict[str, float]]:
    """Our ensemble on ``client``'s cluster into a fresh folder: (seconds, leak per pipe)."""
    from twin.ensemble import run_ensemble
    from twin.ensemble_store import load_members

    t0 = time.perf_counter()
    summary = run_ensemble(spec, out, client=client, progress=False)
    seconds = time.perf_counter() - t0
    assert summary.failed == 0 and summary.done == summary.members, summary
    rows = load_members(out)
    return seconds, dict(zip(rows["element"], rows["water.leak_volume_m3"]))


def bench_network(name: str, inp: Path, n: int, repeats: int, engine: str, folder: Path,
                  clients: dict[int, object]) -> dict:
    """The three ways in turn, ``repeats`` times (interleaved, so a change in the machine's
    load hits all three alike)."""
    from twin.scenario import load_scenario

    wn = wntr.network.WaterNetworkModel(str(inp))
    pipes = pick_pipes(wn, n)
    spec = load_scenario(scenario_file(inp, pipes, folder, engine))
    seconds: dict[str, list[float]] = {"wntr": [], "ours_1": [], "ours_2": []}
    for r in range(-1, repeats):          # -1: an untimed warm-up of all three
        sub = folder / f"wntr_{name}_{r}"
        sub.mkdir()
        t, volumes = wntr_loop(inp, pipes, sub)
        if r >= 0:
            seconds["wntr"].append(t)
        for workers, client in clients.items():
            t, ours_leak = ours(spec, client, folder / f"{name}_{workers}w_{r}")
            if r >= 0:
                seconds[f"ours_{workers}"].append(t)
    ref = np.array([volumes[p] for p in pipes])
    got = np.array([ours_leak[p] for p in pipes])
    rel = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-9)
    runs = len(pipes)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    result = {
        "runs": runs, "repeats": repeats, "engine": engine,
        "wntr_loop_runs_per_s": runs / med["wntr"],
        "ours_1_worker_runs_per_s": runs / med["ours_1"],
        "ours_2_workers_runs_per_s": runs / med["ours_2"],
        "ratio_1_worker_vs_wntr": med["wntr"] / med["ours_1"],
        "ratio_2_vs_1_workers": med["ours_1"] / med["ours_2"],
        "seconds": seconds,
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
    parser.add_argument("--net3-runs", type=int, default=100)
    parser.add_argument("--ltown-runs", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engine", choices=("owa", "wntr"), default="owa",
                        help="our EPANET library (default owa: EPANET 2.3)")
    args = parser.parse_args()
    networks = {"Net3": (net3_path(), args.net3_runs)}
    ltown = SHARED / "battledim" / "L-TOWN.inp"
    if ltown.is_file():
        networks["L-Town"] = (ltown, args.ltown_runs)
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
