"""Stepping L-Town 168 h at 5-minute steps: our layer vs WNTR's EpanetSimulator.

Both sides start from a WNTR model in memory and end with every node pressure at
every report step: the EpanetSimulator writes an .inp, runs EPANET and reads the
binary file; our layer writes the model once, opens it in the toolkit and steps on
the shared clock, reading all pressures at every step. Ours runs on its default
engine (EPANET 2.2, as the EpanetSimulator) and on EPANET 2.3 (engine "owa").
Medians of REPEATS runs after one untimed warm-up.
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


def ours(inp: Path, horizon_s: int, engine: str = "wntr") -> tuple[float, object]:
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
    # warm-up (imports, numba compiling the EPANET 2.2 readers), not timed
    ours(args.inp, 3600, "wntr")
    ours(args.inp, 3600, "owa")
    reference(args.inp, 3600)
    times = {"epanet_simulator": [], "ours": [], "ours_owa": []}
    diff = {"ours": 0.0, "ours_owa": 0.0}
    for i in range(args.repeats):
        t_ref, p_ref = reference(args.inp, horizon)
        times["epanet_simulator"].append(t_ref)
        for key, engine in (("ours", "wntr"), ("ours_owa", "owa")):
            t, p = ours(args.inp, horizon, engine)
            times[key].append(t)
            d = np.abs(p[p_ref.columns].to_numpy() - p_ref.to_numpy()).max()
            diff[key] = max(diff[key], float(d))
        print(f"run {i + 1}: EpanetSimulator {t_ref:.3f} s, ours (EPANET 2.2) {times['ours'][-1]:.3f} s, "
              f"ours (EPANET 2.3) {times['ours_owa'][-1]:.3f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    steps = int(horizon / 300) + 1
    ratio = med["epanet_simulator"] / med["ours"]
    ratio_owa = med["epanet_simulator"] / med["ours_owa"]
    print(f"{args.inp.name} {args.hours:g} h, {steps} report steps, medians of {args.repeats}:")
    print(f"  WNTR EpanetSimulator (file based, EPANET 2.2): {med['epanet_simulator']:.3f} s")
    print(f"  urban-twin stepped, default (EPANET 2.2):       {med['ours']:.3f} s  "
          f"(max |dp| {diff['ours']:.1e} m)")
    print(f"  urban-twin stepped, engine owa (EPANET 2.3):    {med['ours_owa']:.3f} s  "
          f"(max |dp| {diff['ours_owa']:.1e} m)")
    print(f"  ratio EpanetSimulator / ours: {ratio:.2f} (owa: {ratio_owa:.2f}); "
          f"target: stepping costs at most 1.5x, i.e. ratio >= 0.67")
    print(json.dumps({"benchmark": "water_steps", "network": args.inp.name, "hours": args.hours,
                      "report_steps": steps, "repeats": args.repeats,
                      "epanet_simulator_s": round(med["epanet_simulator"], 4),
                      "ours_s": round(med["ours"], 4), "ours_owa_s": round(med["ours_owa"], 4),
                      "max_abs_pressure_diff_m": diff["ours"],
                      "max_abs_pressure_diff_owa_m": diff["ours_owa"],
                      "ratio": round(ratio, 3), "ratio_owa": round(ratio_owa, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
