"""Wall time of the hypervision showcase: the 50-year storm (scenarios/storm_50yr.yaml), every
layer on one clock (water, sewer, traffic, lighting, waste, parking, citizens and crews,
cascade rules), 48 simulated hours, on the default demo city (50,000 inhabitants) and on a
250,000-inhabitant one (``city.demo.population`` overridden; nothing else changes).

For each city: the time to build the twin (city, networks, agents), the time to run it,
the time of each layer's own processes (each resume of a layer's generators timed; the work
an event triggers in other layers' handlers counts for the layer that published it, so
``timeline`` is the scenario's own events and what they set off), the events published and
the peak memory of the process. The target is under two minutes (build and run) for the
large city; ``ratio`` = 120 s / our time for it (above 1: within the target). The last line
is one JSON object.

    .venv/bin/python benchmarks/hypervision_storm.py [--populations 50000 250000] [--hours 48]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from twin.run import build_twin                                  # noqa: E402
from twin.scenario import CitySpec, DemoCitySpec, load_scenario  # noqa: E402

TARGET_S = 120.0
# which layer a process belongs to, by the module its generator is written in
MODULE_LAYER = (("twin/networks/water", "water"), ("twin/networks/sewer", "sewer"),
                ("twin/engines/swmm", "sewer"), ("twin/networks/traffic", "traffic"),
                ("twin/networks/lighting", "lighting"), ("twin/networks/waste", "waste"),
                ("twin/networks/parking", "parking"), ("twin/agents/", "citizens"),
                ("twin/cascade", "cascade"), ("twin/twin.py", "timeline"))


def _layer_of(generator) -> str:
    code = getattr(generator, "gi_code", None)
    name = code.co_filename.replace("\\", "/") if code is not None else ""
    return next((layer for part, layer in MODULE_LAYER if part in name), "other")


def _timed(generator, totals: dict[str, float], layer: str):
    """The same SimPy process, with the time of each of its resumes added to its layer."""
    value, error = None, None
    while True:
        t0 = time.perf_counter()
        try:
            target = generator.throw(error) if error is not None else generator.send(value)
        except StopIteration as stop:
            totals[layer] += time.perf_counter() - t0
            return stop.value
        totals[layer] += time.perf_counter() - t0
        value, error = None, None
        try:
            value = yield target
        except BaseException as exc:          # an Interrupt: handed to the process
            error = exc


def run_city(path: Path, population: int, hours: float) -> dict:
    spec = load_scenario(path)
    spec = spec.model_copy(update={"city": CitySpec(demo=DemoCitySpec(population=population,
                                                                       seed=0)),
                                   "horizon_s": hours * 3600.0})
    t0 = time.perf_counter()
    twin = build_twin(spec)
    build_s = time.perf_counter() - t0
    totals: dict[str, float] = defaultdict(float)
    env = twin.clock.env
    # every process put on the clock from now on is timed for its layer
    twin.clock.process = lambda gen: env.process(_timed(gen, totals, _layer_of(gen)))
    t1 = time.perf_counter()
    try:
        twin.run(spec.horizon_s)
    finally:
        run_s = time.perf_counter() - t1
        kpis = twin.kpis()
        events = len(twin.bus.log)
        twin.close()
    per_layer = {k: round(v, 2) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
    # processes started on the SimPy environment directly, and the clock's own work
    per_layer["unattributed"] = round(run_s - sum(totals.values()), 2)
    return {"population": population, "hours": hours, "build_s": round(build_s, 2),
            "run_s": round(run_s, 2), "wall_s": round(build_s + run_s, 2),
            "layers_s": per_layer, "events": events,
            "sewer_flooding_m3": round(kpis.get("sewer", {}).get("flooding_volume_m3", 0.0)),
            "requests": kpis.get("citizens", {}).get("requests"),
            "street_closures": kpis.get("cascade", {}).get(
                "caused_by_deep_flood_closes_street"),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "storm_50yr.yaml"))
    parser.add_argument("--populations", type=int, nargs="+", default=[50_000, 250_000])
    parser.add_argument("--hours", type=float, default=48.0)
    args = parser.parse_args()
    rows = []
    for population in args.populations:
        row = run_city(Path(args.scenario), population, args.hours)
        rows.append(row)
        layers = ", ".join(f"{k} {v:.1f}" for k, v in row["layers_s"].items())
        print(f"{population:,} inhabitants, {args.hours:g} h: build {row['build_s']:.1f} s + "
              f"run {row['run_s']:.1f} s = {row['wall_s']:.1f} s; layers (s): {layers}; "
              f"{row['events']:,} events, {row['requests']} requests, "
              f"peak memory {row['peak_rss_mb']:,} MB", flush=True)
    large = max(rows, key=lambda r: r["population"])
    print(json.dumps({"scenario": Path(args.scenario).name, "hours": args.hours,
                      "cities": rows, "target_s": TARGET_S, "large_wall_s": large["wall_s"],
                      "ratio": round(TARGET_S / large["wall_s"], 3)}))


if __name__ == "__main__":
    main()
