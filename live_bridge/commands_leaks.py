"""`twin leaks ...`: BattLeDIM-style dataset generation, leak detection, scoring.

* ``twin leaks generate --inp INP --config YALM --out DIR`` writes a SCADA folder
  (pressures, flows, levels, AMR demands) and the true leak flows;
* ``twin leaks detect --inp INP --scada DIR --out detections.csv`` writes
  ``linkID,startTime`` lines (and a figure beside them);
* ``twin leaks score --detections CSV --config YALM --inp INP [--json]`` prints the
  BattLeDIM score.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return v


def register(sub) -> None:
    p = sub.add_parser("leaks", help="leak detection: BattLeDIM-style data, detector, score")
    lsub = p.add_subparsers(dest="leaks_command", metavar="LEAKS_COMMAND")

    g = lsub.add_parser("generate", help="simulate a SCADA folder from a model and a leak list")
    g.add_argument("--inp", required=True, help="EPANET .inp model")
    g.add_argument("--config", required=True, help="BattLeDIM configuration (.yalm/.yaml)")
    g.add_argument("--out", required=True, help="folder to write the SCADA files into")
    g.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default 0)")
    g.add_argument("--exact", action="store_true",
                   help="no demand uncertainty and no sensor noise")
    g.add_argument("--engine", choices=("owa", "wntr"), default="owa",
                   help="EPANET library (default owa, EPANET 2.3)")
    g.add_argument("--json", action="store_true", help="last line: one JSON object")
    g.add_argument("--no-progress", action="store_true")
    g.set_defaults(func=cmd_generate)

    d = lsub.add_parser("detect", help="detect and localise leaks in a SCADA folder")
    d.add_argument("--inp", required=True, help="EPANET .inp model of the network")
    d.add_argument("--scada", required=True, help="SCADA folder (BattLeDIM layout)")
    d.add_argument("--out", required=True, help="detections CSV to write (linkID,startTime)")
    d.add_argument("--train-days", type=float, default=None,
                   help="leak-free training window at the start, days (default 7)")
    d.add_argument("--json", action="store_true", help="last line: one JSON object")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=cmd_detect)

    s = lsub.add_parser("score", help="score detections with the BattLeDIM rule")
    s.add_argument("--detections", required=True, help="CSV of linkID,startTime")
    s.add_argument("--config", required=True, help="BattLeDIM configuration with the true leaks")
    s.add_argument("--inp", required=True, help="EPANET .inp model (network distances)")
    s.add_argument("--leakages", help="true leak flows (<year>_Leakages.csv from generate); "
                                      "without it the leaks are simulated on the model")
    s.add_argument("--json", action="store_true", help="last line: one JSON object")
    s.set_defaults(func=cmd_score)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _progress(args) -> bool:
    return not getattr(args, "no_progress", False)


def cmd_generate(args: argparse.Namespace) -> int:
    from live_bridge.leak_config import load_leak_config
    from live_bridge.leak_dataset import Uncertainty, generate_dataset

    config = load_leak_config(args.config)
    t0 = time.perf_counter()
    ds = generate_dataset(args.inp, config, seed=args.seed, engine=args.engine,
                          uncertainty=Uncertainty.none() if args.exact else None,
                          progress=_progress(args))
    files = ds.save(args.out)
    wall = time.perf_counter() - t0
    steps = len(next(iter(ds.frames.values()))) if ds.frames else 0
    print(f"wrote {len(files)} files to {args.out}: {steps:,} steps, "
          f"{len(config.leaks)} leaks, in {wall:.1f} s")
    if args.json:
        print(json.dumps({"out": str(args.out), "files": [str(f) for f in files], "steps": steps,
                          "leaks": len(config.leaks), "seconds": round(wall, 2)}))
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from live_bridge.leak_detection import DetectorSettings, detect_leaks
    from live_bridge.leak_scoring import write_detections

    settings = DetectorSettings()
    if args.train_days is not None:
        if not (args.train_days > 0 and math.isfinite(args.train_days)):
            print("error: --train-days must be a number of days > 0", file=sys.stderr)
            return 2
        settings = DetectorSettings(**{**settings.__dict__, "train_days": args.train_days})
    t0 = time.perf_counter()
    result = detect_leaks(args.inp, args.scada, settings, progress=_progress(args))
    for kind, ids in (result.meta.get("unknown_sensors") or {}).items():
        print(f"warning: {len(ids)} {kind} columns name no element of {args.inp} and were "
              f"left out: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}", file=sys.stderr)
    out = Path(args.out)
    write_detections(out, result.detections)
    extra = {}
    onsets = result.meta.get("onsets")
    if onsets is not None:
        onset_path = out.with_name(out.stem + "_onsets.csv")
        result.statistic.to_csv(onset_path)
        extra["onsets_file"] = str(onset_path)
        print(f"no pressure sensors: leaks cannot be placed; {onsets} leak onsets from night "
              f"flows written to {onset_path}")
    try:
        fig = _figure(result, out.with_suffix(".png"))
        extra["figure"] = str(fig)
    except Exception as exc:         # a figure is a courtesy: never lose the detections to it
        print(f"warning: no figure: {exc}", file=sys.stderr)
    wall = time.perf_counter() - t0
    print(f"{len(result.detections)} leaks detected ({result.demand_mode} consumption), "
          f"written to {out} in {wall:.1f} s")
    for d in result.detections:
        print(f"  {d.link_id:>10}  {d.time:%Y-%m-%d %H:%M}")
    if args.json:
        print(json.dumps({"out": str(out), "detections": len(result.detections),
                          "demand_mode": result.demand_mode, "seconds": round(wall, 2),
                          **extra, **{k: v for k, v in result.meta.items()
                                      if isinstance(v, (int, float, str))}}))
    return 0


def _figure(result, path: Path) -> Path:
    from matplotlib.figure import Figure

    stat = result.statistic
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax = fig.add_subplot()
    if "statistic" in stat:
        ax.semilogy(stat.index, stat["statistic"].clip(lower=1e-3), lw=0.6, color="#1f77b4",
                    label="best pipe's test statistic")
        ax.set_ylabel("GLRT statistic (log)")
    elif "step_m3h" in stat:
        ax.stem(stat.index, stat["step_m3h"], label="leak onsets (night flow step)")
        ax.set_ylabel("m3/h")
    for d in result.detections:
        ax.axvline(d.time, color="#d62728", lw=0.8)
        ax.annotate(d.link_id, (d.time, 1), xycoords=("data", "axes fraction"), rotation=90,
                    va="top", ha="right", fontsize=7, color="#d62728")
    ax.set_title("Leak detection: red lines are the detections")
    ax.legend(loc="upper left", fontsize=8)
    fig.savefig(path, dpi=110)
    return path


def cmd_score(args: argparse.Namespace) -> int:
    from live_bridge.leak_config import load_leak_config
    from live_bridge.leak_dataset import Uncertainty, generate_dataset
    from live_bridge.leak_scoring import PipeDistances, read_detections, read_leak_flows, score

    config = load_leak_config(args.config)
    detections = read_detections(args.detections)
    if args.leakages:
        flows = read_leak_flows(args.leakages)
    else:       # the true leak flows: the leaks simulated on the model, without noise
        flows = generate_dataset(args.inp, config, uncertainty=Uncertainty.none()).leak_flows_m3h
    result = score(detections, config, flows, PipeDistances.from_inp(args.inp))
    print(f"score EUR {result['score_eur']:,.0f} of a perfect EUR {result['perfect_eur']:,.0f} "
          f"({100 * result['fraction_of_perfect']:.1f} %): {result['true_positives']} of "
          f"{result['leaks']} leaks found, {result['false_positives']} false alarms")
    for leak in result["per_leak"]:
        if leak["found"]:
            print(f"  {leak['leak']:>8} found at {leak['detected_at']} on {leak['detected_link']} "
                  f"({leak['distance_m']:.0f} m away, {leak['delay_h']:.0f} h after its start): "
                  f"EUR {leak['reward_eur']:,.0f}")
        else:
            print(f"  {leak['leak']:>8} missed ({leak['volume_m3']:,.0f} m3 lost)")
    if args.json:
        print(json.dumps({k: v for k, v in result.items()}, default=str))
    return 0
