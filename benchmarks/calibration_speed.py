"""Calibration model runs per second: serial against parallel (local processes).

The model is L-Town (BattLeDIM) over 24 h with the synthetic study's 8 parameters (5
roughness groups, 3 demand patterns) and 36 sensors; without the reference data it is
Net3 (shipped with WNTR). A batch of parameter vectors, as one finite-difference
Jacobian or one generation of differential evolution asks for, is evaluated by one
process and by ``--workers`` processes (each with its model built once, as the
calibration does), ``--repeats`` times; medians are quoted. Last line: one JSON object
with ``serial_runs_per_s``, ``parallel_runs_per_s``, ``workers`` and ``ratio`` (parallel
/ serial rate). On a machine of N idle cores the ratio approaches N.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TWIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _config(folder: Path) -> Path:
    ltown = SHARED / "battledim" / "L-TOWN.inp"
    if ltown.is_file():
        groups = {"d_small": [0, 90], "d_100": [90, 130], "d_150": [130, 190],
                  "d_200": [190, 210], "d_225": [210, 5000]}
        cfg_file = SHARED / "battledim" / "config" / "dataset_configuration_historical_2018.yalm"
        pressures = yaml.safe_load(cfg_file.read_text())["pressure_sensors"]
        config = {
            "name": "ltown_speed", "model": {"inp": str(ltown), "duration": "24h",
                                             "report_step": "5min"},
            "groups": {**{g: {"pipes": {"diameter_mm": r}} for g, r in groups.items()},
                       "res": {"pattern": "P-Residential"}, "com": {"pattern": "P-Commercial"},
                       "ind": {"pattern": "P-Industrial"}},
            "parameters": [{"name": f"c_{g}", "kind": "roughness", "group": g,
                            "bounds": [0.5, 1.5]} for g in groups]
            + [{"name": f"q_{g}", "kind": "demand", "group": g, "bounds": [0.5, 2.0]}
               for g in ("res", "com", "ind")],
            "sensors": [{"id": n, "quantity": "pressure", "unit": "m"} for n in pressures]
            + [{"id": f, "quantity": "flow", "unit": "m3/h"} for f in ("p227", "p235", "PUMP_1")],
        }
    else:
        import wntr

        net3 = Path(wntr.__file__).parent / "library" / "networks" / "Net3.inp"
        config = {
            "name": "net3_speed", "model": {"inp": str(net3), "duration": "24h",
                                            "report_step": "1h"},
            "groups": {"small": {"pipes": {"diameter_mm": [0, 300]}},
                       "large": {"pipes": {"diameter_mm": [300, 5000]}}},
            "parameters": [{"name": g, "kind": "roughness", "group": g, "bounds": [0.5, 1.5]}
                           for g in ("small", "large")],
            "sensors": [{"id": n, "quantity": "pressure", "unit": "m"}
                        for n in ("101", "123", "141", "163")],
        }
    config["observations"] = [{"file": "unused.csv"}]
    path = folder / "speed.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--batch", type=int, default=24, help="parameter vectors per batch")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from calibration.config import load_calibration
    from calibration.evaluate import Evaluator

    with tempfile.TemporaryDirectory() as tmp:
        spec = load_calibration(_config(Path(tmp)))
        rng = np.random.default_rng(0)
        lo = np.array([p.bounds[0] for p in spec.parameters])
        hi = np.array([p.bounds[1] for p in spec.parameters])
        batch = [lo + (hi - lo) * rng.random(len(lo)) for _ in range(args.batch)]
        rates: dict[str, list[float]] = {"serial": [], "parallel": []}
        with Evaluator(spec, {}, workers=1) as serial, \
                Evaluator(spec, {}, workers=args.workers) as parallel:
            serial.map(batch[:1])                       # build and warm both
            parallel.map(batch[: args.workers])
            for _ in range(args.repeats):
                for name, ev in (("serial", serial), ("parallel", parallel)):
                    t0 = time.perf_counter()
                    ev.map(batch)
                    rates[name].append(len(batch) / (time.perf_counter() - t0))
                    print(f"{spec.name} {name}: {rates[name][-1]:.2f} runs/s", file=sys.stderr)
    s, p = statistics.median(rates["serial"]), statistics.median(rates["parallel"])
    print(json.dumps({"model": spec.name, "parameters": len(spec.parameters),
                      "batch": args.batch, "repeats": args.repeats, "workers": args.workers,
                      "serial_runs_per_s": round(s, 3), "parallel_runs_per_s": round(p, 3),
                      "ratio": round(p / s, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
