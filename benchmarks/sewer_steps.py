"""Stepping overhead of the sewer layer: the same SWMM file run by SWMM alone and through
the layer on the twin's clock, in the same process.

Baseline: ``swmm_run`` (SWMM's own loop, no Python between routing steps). Ours: the
SewerLayer stepping every 5 minutes of the twin's clock, reading every node's depth and
flooding and every link's flow, recording them. Medians of ``--repeats`` runs. The last
line is one JSON object; ``ratio`` = baseline time / our time (the overhead is 1/ratio).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from twin.engines.swmm import run_plain          # noqa: E402
from twin.networks.sewer import SewerLayer       # noqa: E402
from twin.twin import Twin                       # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "swmm" / "user4" / "user4.inp"


def layer_run(inp: Path, step_s: float) -> tuple[float, dict]:
    twin = Twin(seed=0)
    t0 = time.perf_counter()
    layer = twin.add_layer(SewerLayer(inp, control_step_s=step_s))
    horizon = layer.run.duration_s
    twin.run(horizon + step_s)
    summary = layer.finish()
    seconds = time.perf_counter() - t0
    twin.close()
    return seconds, summary.total_outfall_volume


def plain_run(inp: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    summary = run_plain(inp)
    return time.perf_counter() - t0, summary.total_outfall_volume


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("inp", nargs="?", default=str(DEFAULT), help="SWMM .inp (default user4)")
    ap.add_argument("--step", type=float, default=300.0, help="layer control step (s)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    inp = Path(args.inp)
    if not inp.is_file():
        print(json.dumps({"error": f"{inp} not found"}))
        sys.exit(1)
    plain, ours = [], []
    for _ in range(args.repeats):          # interleaved, so load changes hit both alike
        t, vol_plain = plain_run(inp)
        plain.append(t)
        t, vol_ours = layer_run(inp, args.step)
        ours.append(t)
    base, mine = statistics.median(plain), statistics.median(ours)
    print(f"{inp.name}: SWMM alone {base:.3f} s, through the layer {mine:.3f} s "
          f"(median of {args.repeats}); overhead {mine / base:.3f}x")
    print(json.dumps({"model": inp.name, "control_step_s": args.step, "repeats": args.repeats,
                      "plain_swmm_s": round(base, 4), "layer_s": round(mine, 4),
                      "overhead": round(mine / base, 4), "ratio": round(base / mine, 4),
                      "same_outfall_volumes": vol_plain == vol_ours}))


if __name__ == "__main__":
    main()
