"""A week of the demo city's parking, and the arrival model fitted on Birmingham's car parks.

Timing: the parking layer (arrivals drawn per 5-minute step as arrays, each arrival placed
in one pass, departures kept as arrays) against a baseline in the same run: the textbook
SimPy model, one process per vehicle (arrive, take a place if any, stay, leave), fed
with the same arrival rates and stays, without search, spill-over, pricing or sensors.
Medians of ``--repeats`` runs; ``ratio`` = baseline time / layer time.

Fit (when ../shared/data/parking/birmingham is present): the arrival mix fitted on the
weekday profile of October-November 2016 and checked on December's (held out), RMSE of
the occupancy share at the half hours 08:00-16:30.

    .venv/bin/python benchmarks/parking_week.py [--population 50000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import statistics
import time
from pathlib import Path

import numpy as np
import simpy

from twin.city.generator import generate_city
from twin.networks.parking import ParkingLayer
from twin.networks.parking_demand import RESIDENT, day_type
from twin.twin import Twin

START = dt.datetime(2026, 6, 15)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "parking" / "birmingham"


def layer_week(city, days: float) -> tuple[float, ParkingLayer]:
    twin = Twin(city=city, start=START, seed=1)
    layer = twin.add_layer(ParkingLayer(horizon_s=days * 86400))
    t0 = time.perf_counter()
    twin.run(days * 86400)
    return time.perf_counter() - t0, layer


def simpy_week(layer: ParkingLayer, days: float, seed: int = 1) -> tuple[float, int]:
    """One SimPy process per vehicle, the layer's arrival rates (warm-up included)."""
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    occ = np.zeros(len(layer.ids), dtype=np.int64)
    cap = layer.cap.copy()
    parked = [0]
    step, warmup = 300.0, layer.params.warmup_days * 86400

    def vehicle(loc: int, stay: float):
        if occ[loc] >= cap[loc]:
            return
        occ[loc] += 1
        parked[0] += 1
        yield env.timeout(stay)
        occ[loc] -= 1

    def source():
        t = 0.0
        while t < warmup + days * 86400:
            when = START + dt.timedelta(seconds=t - warmup + step / 2)
            hod, dtype = when.hour + when.minute / 60, day_type(when.weekday())
            lam = layer.visitor_day[:, None] * layer.mix.rates_per_h(hod, dtype)[None, :]
            n = rng.poisson(lam * step / 3600)
            n_res = rng.poisson(layer.resident_day * float(RESIDENT.density_per_h(hod)) *
                                RESIDENT.day_factors[dtype] * step / 3600)
            offsets = []
            for loc, purpose in zip(*np.nonzero(n)):
                stays = layer.mix.sample_stays_s(rng, np.full(n[loc, purpose], purpose))
                offsets += [(rng.uniform(0, step), loc, s) for s in stays]
            for loc in np.flatnonzero(n_res):
                offsets += [(rng.uniform(0, step), loc, s)
                            for s in RESIDENT.sample_stay_s(rng, int(n_res[loc]))]
            offsets.sort()
            done = 0.0
            for off, loc, stay in offsets:
                yield env.timeout(off - done)
                done = off
                env.process(vehicle(int(loc), float(stay)))
            yield env.timeout(step - done)
            t += step

    env.process(source())
    t0 = time.perf_counter()
    env.run(until=warmup + days * 86400)
    return time.perf_counter() - t0, parked[0]


def birmingham_fit() -> dict | None:
    path = DATA / "birmingham_parking_2016.csv"
    if not path.exists():
        return None
    from twin.networks.parking_data import daily_profile, read_occupancy
    from twin.networks.parking_demand import expected_occupancy, fit_mix

    rec = read_occupancy(path)
    whole = daily_profile(rec)
    fit = fit_mix(whole.index.to_numpy(), whole["share"].to_numpy())
    cut = rec.readings["time"] < "2016-12-01"
    train, test = copy.copy(rec), copy.copy(rec)
    train.readings, test.readings = rec.readings[cut], rec.readings[~cut]
    ptrain, ptest = daily_profile(train), daily_profile(test)
    held = fit_mix(ptrain.index.to_numpy(), ptrain["share"].to_numpy())
    predicted = expected_occupancy(held.mix, held.arrivals_per_space, ptest.index.to_numpy())
    error = predicted - ptest["share"].to_numpy()
    return {"rmse_weekday_all": fit.rmse, "arrivals_per_space": fit.arrivals_per_space,
            "rmse_train_oct_nov": held.rmse, "rmse_test_dec": float(np.sqrt(np.mean(error ** 2))),
            "test_bias_dec": float(np.mean(-error))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=50_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    city = generate_city(population=args.population, seed=0)
    ours, base = [], []
    for _ in range(args.repeats):
        seconds, layer = layer_week(city, args.days)
        ours.append(seconds)
        seconds, parked = simpy_week(layer, args.days)
        base.append(seconds)
    k = layer.kpis()
    out = {"population": args.population, "days": args.days, "zones": len(layer.zone_ids),
           "arrivals": k["arrivals"], "baseline_parked": parked,
           "layer_s_median": statistics.median(ours), "simpy_s_median": statistics.median(base),
           "ratio": statistics.median(base) / statistics.median(ours),
           "occupancy_mean_share": k["occupancy_mean_share"],
           "cruising_veh_h": k["cruising_veh_h"], "fit": birmingham_fit()}
    print(f"layer {out['layer_s_median']:.2f} s, one SimPy process per vehicle "
          f"{out['simpy_s_median']:.2f} s for {args.days:g} days ({k['arrivals']:.0f} arrivals)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
