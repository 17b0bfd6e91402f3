"""The ``twin`` command. Thin: every command calls a library function.

Exit status: 0 on success, 2 on bad input (a scenario or network file at fault,
with the file, field and line in the message), 1 on any other failure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO_SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
DEMO_SCENARIOS = ("baseline_day.yaml", "main_break_peak.yaml")


def _hours(text: str) -> float:
    """``--hours``: a finite number >= 0 (0 runs a steady state)."""
    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not math.isfinite(hours) or hours < 0:
        raise argparse.ArgumentTypeError(
            f"expected a number of hours >= 0 (0 = steady state), got {text!r}")
    return hours


def _bad_input(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


def _run_and_report(paths: list[Path], out: Path, progress: bool, title: str,
                    responses: bool = True) -> int:
    from twin.report import write_report
    from twin.responses import response_specs
    from twin.run import run
    from twin.scenario import load_scenario

    specs = [load_scenario(p) for p in paths]          # validate all before running any
    main_spec = specs[-1]             # the scenario asked for (a compared baseline comes first)
    options = {r.spec.name: r for r in response_specs(main_spec)} if responses else {}
    specs += [r.spec for r in options.values()]        # its response options, same seed
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        print(f"error: two scenarios share the name {names[0]!r}; give each a distinct `name:`",
              file=sys.stderr)
        return 2
    results = []
    for spec in specs:
        t0 = time.perf_counter()
        res = run(spec, progress=progress)
        if spec.name in options:
            res.meta.update(response=options[spec.name].option,
                            response_description=options[spec.name].description)
        res.save(out / "results")
        results.append(res)
        k = res.kpis.get("water", {})
        print(f"{spec.name}: {spec.horizon_s / 3600:g} h simulated in {time.perf_counter() - t0:.1f} s; "
              f"min pressure {k.get('min_pressure_m', float('nan')):.1f} m, "
              f"service availability {k.get('water_service_availability', float('nan')):.3f}, "
              f"leak volume {k.get('leak_volume_m3', 0):.0f} m3")
    if main_spec.outputs.report:
        service = float(results[0].meta.get("service_pressure_m", 20.0))
        report = write_report(results, out, title=title, service_pressure_m=service,
                              maps=main_spec.outputs.maps)
        print(f"report: {report}")
    print(f"results: {out / 'results'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    paths = [REPO_SCENARIOS / name for name in DEMO_SCENARIOS]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"error: demo scenario not found: {missing[0]} (run from a clone of urban-twin)",
              file=sys.stderr)
        return 1
    return _run_and_report(paths, Path(args.out), not args.no_progress,
                           "urban-twin demo: a water main break at the morning peak")


def cmd_run(args: argparse.Namespace) -> int:
    paths = [Path(args.scenario)] + ([Path(args.compare)] if args.compare else [])
    if args.compare:   # the file compared against is the baseline: it comes first
        paths = paths[::-1]
    title = f"urban-twin: {Path(args.scenario).stem}"
    return _run_and_report(paths, Path(args.out), not args.no_progress, title,
                           responses=not args.no_responses)


def cmd_validate(args: argparse.Namespace) -> int:
    from twin.scenario import main_validate

    return main_validate(args.scenario)


def cmd_water_simulate(args: argparse.Namespace) -> int:
    from twin.water_run import simulate_inp

    result = simulate_inp(args.network, hours=args.hours, engine=args.engine, check=args.check,
                          progress=not args.json and not args.no_progress)
    if args.json:
        print(json.dumps(result, default=float))
    else:
        print(f"{result['network']}: {result['nodes']} nodes, {result['links']} links, "
              f"{result['steps']} report steps ({result['hydraulic_solves']} solves) "
              f"in {result['seconds']:.3f} s with EPANET ({args.engine})")
        for k, v in result["kpis"].items():
            print(f"  {k:40s} {v:.4g}")
        if args.check:
            print(f"  max |pressure - EpanetSimulator| = "
                  f"{result['max_abs_pressure_diff_vs_epanet_m']:.2e} m "
                  f"over {result['compared_steps']} report steps")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _finite_float(text: str, positive: bool, what: str) -> float:
    """A finite number > 0 (``positive``) or >= 0, else an argparse error naming ``what``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(
            f"expected {what} {'>' if positive else '>='} 0, got {text!r}")
    return value


def _positive_number(text: str) -> float:
    """An argparse type: a finite number > 0 (the layer commands' durations, limits...)."""
    return _finite_float(text, True, "a number")


def _positive_days(text: str) -> float:
    return _finite_float(text, True, "a number of days")


def _non_negative(text: str) -> float:
    return _finite_float(text, False, "a number")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twin", description="urban-twin: simulate a city's networks on one clock.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="run the baseline and a main break on the demo city, "
                                    "write an HTML report")
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="run a scenario file and write its report")
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--compare", help="baseline scenario to compare against")
    p.add_argument("--no-responses", action="store_true",
                   help="run the scenario only, not the options of its `responses:` section")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check a scenario file without running it")
    p.add_argument("scenario", help="scenario YAML file")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("water", help="water network commands")
    wsub = p.add_subparsers(dest="water_command", metavar="WATER_COMMAND")
    w = wsub.add_parser("simulate", help="step any EPANET .inp file through the water layer")
    w.add_argument("network", help="EPANET .inp file")
    w.add_argument("--hours", type=_hours, help="simulated hours (default: the file's duration)")
    w.add_argument("--engine", choices=("wntr", "owa"), default="wntr",
                   help="EPANET library: wntr (2.2 as in WNTR, default) or owa (2.3, faster)")
    w.add_argument("--check", action="store_true",
                   help="compare every report step with WNTR's EpanetSimulator")
    w.add_argument("--json", action="store_true", help="print one JSON object")
    w.add_argument("--no-progress", action="store_true", help="no progress bar")
    w.set_defaults(func=cmd_water_simulate)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    _add_layer_commands(sub)
    _add_plugin_commands(sub)
    return parser


def _add_layer_commands(sub) -> None:
    """Each network layer's commands (``twin traffic ...``, ``twin sewer ...``) live in a
    module of :mod:`twin.commands` with a ``register(subparsers)`` function."""
    import importlib
    import pkgutil

    import twin.commands as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        module.register(sub)


def _add_plugin_commands(sub) -> None:
    """Commands of the packages installed beside ``twin`` (live_bridge, ...).

    They register through the ``urban_twin.commands`` entry-point group with a
    ``register(subparsers)`` callable, so ``twin`` never imports them itself.
    """
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group="urban_twin.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:      # a broken optional package must not break `twin`
            print(f"warning: commands of {ep.name!r} unavailable: {exc}", file=sys.stderr)
            continue
        register(sub)


def main(argv: list[str] | None = None) -> int:
    from twin.errors import BadInput
    from twin.scenario_fields import ScenarioError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ScenarioError, BadInput) as exc:
        return _bad_input(exc)
    except FileNotFoundError as exc:
        return _bad_input(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
