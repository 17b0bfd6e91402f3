"""``twin calibrate CONFIG.yaml --out DIR``: fit a model to measurements and report.

Registered in ``twin`` through the ``urban_twin.commands`` entry point.
"""

from __future__ import annotations

import argparse
import json
import os


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of workers, got {text!r}")
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 worker, got {n}")
    return n


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="fit model parameters to measurements, with "
                                         "uncertainty; writes DIR/report.html")
    p.add_argument("config", help="calibration file (YAML): model, groups, parameters, "
                                  "sensors, observations")
    p.add_argument("--out", required=True, help="folder for the report and calibrated model")
    p.add_argument("--workers", type=_workers, default=min(2, os.cpu_count() or 1),
                   help="local worker processes for model runs (default: up to 2)")
    p.add_argument("--scheduler", default=None,
                   help="a Dask scheduler address (tcp://HOST:PORT) to run on instead")
    p.add_argument("--method", choices=("least_squares", "differential_evolution", "both"),
                   default=None, help="override the file's method")
    p.add_argument("--max-evaluations", type=_workers, default=None,
                   help="override the file's budget of model runs")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from calibration.calibrate import calibrate
    from calibration.config import load_calibration
    from calibration.evaluate import build_model
    from calibration.report import write_report

    spec = load_calibration(args.config)
    update = {}
    if args.method:
        update["method"] = args.method
    if args.max_evaluations:
        update["max_evaluations"] = args.max_evaluations
    if update:
        spec = spec.model_copy(update=update)
    result = calibrate(spec, workers=args.workers, scheduler=args.scheduler)
    model = build_model(spec, {})        # the model as the file gives it, to save
    try:
        path = write_report(result, args.out, model)
    finally:
        if hasattr(model, "close"):
            model.close()
    summary = result.summary()
    print(f"calibrated {spec.name}: {len(spec.parameters)} parameters, "
          f"{result.fit.evaluations} model runs in {result.seconds:.1f} s; "
          f"mean NSE {summary['nse_before']:.3f} -> {summary['nse_after']:.3f}")
    if summary["check_nse_after"] is not None:
        print(f"on the check window: mean NSE {summary['check_nse_before']:.3f} -> "
              f"{summary['check_nse_after']:.3f}")
    print(f"report: {path}")
    if args.json:
        summary["report"] = str(path)
        print(json.dumps(summary, default=float))
    return 0
