"""``twin ensemble SCENARIO.yaml --out DIR``: every member of a scenario's ensemble on Dask."""

from __future__ import annotations

import argparse
import json

from twin.cli import _positive_int


def cmd_ensemble(args: argparse.Namespace) -> int:
    from twin.ensemble import run_ensemble
    from twin.ensemble_report import write_ensemble_report
    from twin.scenario import load_scenario

    spec = load_scenario(args.scenario)
    summary = run_ensemble(spec, args.out, scheduler=args.scheduler, workers=args.workers,
                           batch_size=args.batch_size,
                           progress=not args.json and not args.no_progress)
    payload = summary.as_dict()
    if not args.no_report:
        payload["report"] = str(write_ensemble_report(args.out))
    if args.json:
        print(json.dumps(payload, default=float))
        return 0
    print(f"{spec.name}: {summary.members} members: {summary.done} done, {summary.failed} "
          f"failed, {summary.skipped} skipped (done before) in {summary.seconds:.1f} s on "
          f"{summary.workers} worker(s)")
    if summary.failed:
        print(f"  failed members keep their error in {args.out}/members/*.parquet (column error)")
    if "report" in payload:
        print(f"report: {payload['report']}")
    return 0


def register(subparsers) -> None:
    """Add ``twin ensemble``."""
    p = subparsers.add_parser(
        "ensemble", help="run a scenario's ensemble (grid, sweeps, seeds) on Dask",
        description="Run every member of the scenario's `ensemble:` section on a local Dask "
                    "cluster (one process per core) or on an existing one, writing results "
                    "as Parquet partitions as they arrive; a re-run skips what is done.")
    p.add_argument("scenario", help="scenario YAML file with an `ensemble:` section")
    p.add_argument("--out", required=True, help="output folder (results, report)")
    p.add_argument("--scheduler", default=None,
                   help="address of a running Dask scheduler, tcp://HOST:PORT "
                        "(default: a local cluster)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="processes of the local cluster (default: one per core)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="members per Dask task (default: automatic)")
    p.add_argument("--no-report", action="store_true", help="no HTML report")
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ensemble)
