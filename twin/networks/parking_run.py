"""Library functions behind ``twin parking``: a week of the demo city's parking, and the
summary and fit of an occupancy recording."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np

from twin.networks.parking_data import daily_profile, read_occupancy
from twin.networks.parking_demand import (FITTED_VISITORS, ArrivalMix, fit_day_factors, fit_mix,
                                          simulate_occupancy)

HEADLINE = ("occupancy_mean_share", "occupancy_peak_share", "zone_hours_above_85pct",
            "cruising_veh_h", "turned_away", "permit_renewals_on_time_share", "revenue_eur")


def simulate_parking(population: int = 50_000, days: float = 7.0, reminders: bool = True,
                     pricing: str = "fixed", every: str = "day", seed: int = 0,
                     start: dt.datetime = dt.datetime(2026, 6, 15), progress: bool = False,
                     out_dir: str | Path | None = None, reminder_lead_weeks: float = 3.0,
                     reminder_share: float = 1.0, demand: str = "od") -> dict:
    """Run the parking layer alone on the generated city; KPIs, occupancy by zone and hour
    (mean by hour of the day), seconds. With ``out_dir``, write the series and a report."""
    from twin.city.generator import generate_city
    from twin.networks.parking import ParkingLayer, PricingPolicy
    from twin.twin import Twin

    t0 = time.perf_counter()
    horizon_s = days * 86400.0
    twin = Twin(city=generate_city(population=population, seed=seed), start=start, seed=seed)
    layer = ParkingLayer(pricing=PricingPolicy(mode=pricing, every=every), reminders=reminders,
                         reminder_lead_weeks=reminder_lead_weeks, reminder_share=reminder_share,
                         horizon_s=horizon_s, demand=demand)
    twin.add_layer(layer)
    t1 = time.perf_counter()
    twin.run(horizon_s, progress=progress, label="parking")
    seconds = time.perf_counter() - t1
    kpis = layer.kpis()
    hourly = layer.occupancy_by_zone_hour()
    by_hour = hourly[layer.zone_ids].groupby(hourly.index.hour).mean()
    result = {k: kpis[k] for k in HEADLINE}
    result.update({"population": population, "days": days, "reminders": reminders,
                   "pricing": pricing, "demand": demand, "seed": seed, "zones": len(layer.zone_ids),
                   "car_parks": len(layer.carpark_ids), "kpis": kpis,
                   "occupancy_by_zone_hour_of_day": {z: [round(float(v), 4) for v in by_hour[z]]
                                                     for z in layer.zone_ids},
                   "seconds": seconds, "setup_seconds": t1 - t0})
    if out_dir is not None:
        from twin.report import write_report
        from twin.results import Results

        res = Results(name=f"parking_{pricing}{'' if reminders else '_no_reminders'}",
                      series=twin.recorder.tidy(), events=twin.bus.to_frame(),
                      kpis=twin.kpis(), elements={"parking": layer.elements()},
                      meta={"start": start.isoformat(), "horizon_s": horizon_s, "seed": seed,
                            "city": f"demo, {population:,} inhabitants",
                            "wall_s": time.perf_counter() - t0,
                            "description": f"parking, {pricing} pricing, reminders "
                                           f"{'on' if reminders else 'off'}"})
        res.save(Path(out_dir) / "results")
        result["report"] = str(write_report([res], out_dir, title="urban-twin: parking",
                                            maps=False))
    return result


def _profile_check(mix: ArrivalMix, per_space: float, profile, dtype_days: tuple[int, ...],
                   rng: np.random.Generator, capacity: int = 1000, weeks: int = 4) -> float:
    """RMSE between the measured profile and the mean simulated one (same days)."""
    occ = simulate_occupancy(mix, per_space * capacity, capacity, 7 * weeks, rng)
    from twin.networks.parking_demand import day_type

    keep = np.array([day_type(d % 7) in dtype_days for d in range(7 * weeks)])
    step_h = 24 / occ.shape[1]
    mean = occ[keep].mean(axis=0) / capacity
    hours = profile.index.to_numpy(float)
    simulated = mean[np.round(hours / step_h).astype(int) % occ.shape[1]]
    return float(np.sqrt(np.mean((simulated - profile["share"].to_numpy()) ** 2)))


def fit_recording(path: str | Path, seed: int = 0, strict: bool = False,
                  max_bad_share: float = 0.05) -> dict:
    """Summary of a recording and the fit of the arrival mix to its daily profiles:
    weekday parameters (least squares), weekend volumes by purpose, the RMSE of the
    expected profile and of a simulated one (Poisson arrivals, 4 weeks, 1000 spaces)."""
    rec = read_occupancy(path, strict=strict, max_bad_share=max_bad_share)
    out = {"summary": rec.summary()}
    weekday = daily_profile(rec, (0,))
    if len(weekday) < 8:
        out["fit"] = None
        out["fit_problem"] = (f"only {len(weekday)} half-hour slots with readings on weekdays; "
                              "the fit needs 8")
        return out
    fit = fit_mix(weekday.index.to_numpy(), weekday["share"].to_numpy(), FITTED_VISITORS)
    mix, rmse = fit.mix, {"weekday": fit.rmse}
    for dtype, name in ((1, "saturday"), (2, "sunday")):
        prof = daily_profile(rec, (dtype,))
        if len(prof) >= 4:
            mix, rmse[name] = fit_day_factors(mix, fit.arrivals_per_space, prof.index.to_numpy(),
                                              prof["share"].to_numpy(), dtype)
    rng = np.random.default_rng(seed)
    out["fit"] = {
        "arrivals_per_space_weekday": fit.arrivals_per_space,
        "purposes": [{"name": p.name, "share": s, "peak_h": p.peak_h, "spread_h": p.spread_h,
                      "median_stay_h": p.median_stay_h, "day_factors": list(p.day_factors)}
                     for p, s in zip(mix.purposes, mix.shares)],
        "rmse_share": rmse,
        "rmse_share_simulated_weekday": _profile_check(mix, fit.arrivals_per_space, weekday, (0,),
                                                       rng),
        "hours": [float(h) for h in weekday.index],
        "measured_share": [float(v) for v in weekday["share"]],
        "fitted_share": [float(v) for v in fit.fitted_share],
    }
    return out
