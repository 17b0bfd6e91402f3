"""Stepping L-Town 168 h at 5-minute steps: our layer vs WNTR's EpanetSimulator.

Both sides start from a WNTR model in memory and end with every node pressure at
every report step: the EpanetSimulator writes an .inp, runs EPANET and reads the
binary file; our layer writes the model once, opens it in the toolkit and steps on
the shared clock, reading all pressures at every step. Medians of REPEATS runs.
Last line: one JSON object; ``ratio`` = EpanetSimulator time / our time.

    python benchmarks/water_steps.py [--inp PATH] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from twin.networks.water import WaterLayer, epanet_pressures, load_inp
from twin.twin import Twin

DEFAULT_INP = Path(__file__).resolve().parents[2] / "shared" / "data" / "battledim" / "L-TOWN.inp"


def ours(inp: Path, horizon_s: int, engine: str) -> tuple[float, object]:
    wn = load_inp(inp)
    t0 = time.perf_counter()
    twin = Twin(seed=0)
    layer = twin.add_layer(WaterLayer(wn, horizon_s=horizon_s, engine=engine, record=("pressure",)))
    twin.run(horizon_s)
    pressures = twin.recorder.wide("water", "pressure")
    elapsed = time.perf_counter() - t0
    layer.close()
    return elapsed, pressures


def reference(inp: Path, horizon_s: int) -> tuple[float, object]:
    wn = load_inp(inp)
    wn.options.time.duration = horizon_s
    t0 = time.perf_counter()
    pressures = epanet_pressures(wn)
    return time.perf_counter() - t0, pressures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inp", type=Path, default=DEFAULT_INP)
    ap.add_argument("--hours", type=float, default=168)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if not args.inp.exists():
        print(f"input not found: {args.inp}", file=sys.stderr)
        return 2
    horizon = int(args.hours * 3600)
    times = {"epanet_simulator": [], "ours_owa": [], "ours_wntr_lib": []}
    diff = 0.0
    for i in range(args.repeats):
        t_ref, p_ref = reference(args.inp, horizon)
        t_ours, p_ours = ours(args.inp, horizon, "owa")
        times["epanet_simulator"].append(t_ref)
        times["ours_owa"].append(t_ours)
        if i < 2:   # the per-node EPANET 2.2 path is slower: fewer repeats
            t_w, _ = ours(args.inp, horizon, "wntr")
            times["ours_wntr_lib"].append(t_w)
        diff = max(diff, float(np.abs(p_ours[p_ref.columns].to_numpy() - p_ref.to_numpy()).max()))
        print(f"run {i + 1}: EpanetSimulator {t_ref:.3f} s, ours {t_ours:.3f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    steps = int(horizon / 300) + 1
    print(f"L-Town {args.hours:g} h, {steps} report steps, medians of {args.repeats}:")
    print(f"  WNTR EpanetSimulator (file based): {med['epanet_simulator']:.3f} s")
    print(f"  urban-twin stepped (EPANET 2.3):   {med['ours_owa']:.3f} s")
    print(f"  urban-twin stepped (WNTR's 2.2):   {med['ours_wntr_lib']:.3f} s")
    ratio = med["epanet_simulator"] / med["ours_owa"]
    print(f"  ratio EpanetSimulator / ours: {ratio:.2f} (target: ours costs <= 1.5x, ratio >= 0.67)")
    print(json.dumps({"benchmark": "water_steps", "network": args.inp.name, "hours": args.hours,
                      "report_steps": steps, "repeats": args.repeats,
                      "epanet_simulator_s": round(med["epanet_simulator"], 4),
                      "ours_s": round(med["ours_owa"], 4),
                      "ours_wntr_lib_s": round(med["ours_wntr_lib"], 4),
                      "max_abs_pressure_diff_m": diff, "ratio": round(ratio, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
