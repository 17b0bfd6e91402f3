"""calibrate(spec) -> CalibrationResult: read the measurements, fit, measure the fit.

No file is written here: :func:`calibration.report.write_report` writes the report
and the calibrated model from the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from calibration.config import CalibrationSpec
from calibration.evaluate import Evaluator
from calibration.fit import FitResult, Objective, fit, to_natural
from calibration.metrics import fit_table
from calibration.observations import (flow_schedules, initial_levels, on_time_base,
                                      read_observations)

Z95 = 1.959963984540054


@dataclass
class CalibrationResult:
    spec: CalibrationSpec
    parameters: pd.DataFrame        # one row per parameter: initial, estimate, sd, 95 % interval
    fit_before: pd.DataFrame        # metrics per sensor on the fit window
    fit_after: pd.DataFrame
    check_before: pd.DataFrame | None   # same on the points outside the fit window
    check_after: pd.DataFrame | None
    observed: pd.DataFrame          # on the model's time base
    simulated_before: pd.DataFrame
    simulated_after: pd.DataFrame
    fit: FitResult
    fit_mask: np.ndarray
    evaluations_per_s: float
    seconds: float
    workers: int

    def summary(self) -> dict:
        def mean_of(table: pd.DataFrame | None, col: str) -> float | None:
            return None if table is None else float(table[col].mean())
        return {
            "name": self.spec.name, "method": self.fit.method,
            "parameters": {r.Index: {"estimate": r.estimate, "sd": r.sd, "ci95_low": r.ci95_low,
                                     "ci95_high": r.ci95_high, "at_bound": r.at_bound}
                           for r in self.parameters.itertuples()},
            "nse_before": mean_of(self.fit_before, "nse"), "nse_after": mean_of(self.fit_after, "nse"),
            "rmse_before": mean_of(self.fit_before, "rmse"),
            "rmse_after": mean_of(self.fit_after, "rmse"),
            "check_nse_before": mean_of(self.check_before, "nse"),
            "check_nse_after": mean_of(self.check_after, "nse"),
            "evaluations": self.fit.evaluations, "evaluations_per_s": self.evaluations_per_s,
            "workers": self.workers, "seconds": self.seconds,
        }


def calibrate(spec: CalibrationSpec, workers: int = 1, scheduler: str | None = None) -> CalibrationResult:
    t0 = time.perf_counter()
    measured = read_observations(spec)
    boundary = {"levels": initial_levels(spec, measured),
                "schedules": flow_schedules(spec, measured)}
    with Evaluator(spec, boundary, workers=workers, scheduler=scheduler) as evaluator:
        x0 = np.array([p.initial_value for p in spec.parameters])
        before = evaluator.map([x0])[0]
        observed = on_time_base(measured, before.index, spec)
        if spec.fit_window is not None:
            lo, hi = spec.fit_window
            fit_mask = np.asarray((observed.index >= lo) & (observed.index < hi))
        else:
            fit_mask = np.ones(len(observed), dtype=bool)
        objective = Objective(spec, evaluator, observed, fit_mask)
        result = fit(spec, objective)
        after = evaluator.map([result.x])[0]
        rate = evaluator.evaluations / evaluator.busy_s if evaluator.busy_s > 0 else float("nan")
        n_workers = evaluator.workers
    rows = []
    for k, p in enumerate(spec.parameters):
        z, sd = result.z[k], result.sd_z[k]
        est = to_natural(p, z)
        lo, hi = to_natural(p, z - Z95 * sd), to_natural(p, z + Z95 * sd)
        rows.append({"parameter": p.name, "kind": p.kind, "group": p.group,
                     "initial": p.initial_value, "estimate": est,
                     "sd": est * sd if p.log else sd, "ci95_low": lo, "ci95_high": hi,
                     "lower_bound": p.bounds[0], "upper_bound": p.bounds[1],
                     # an estimate on its bound is no optimum: widen the bound or question
                     # the model (a leak, a wrong zone) before trusting it
                     "at_bound": bool(np.isclose(est, p.bounds[0], rtol=1e-4)
                                      or np.isclose(est, p.bounds[1], rtol=1e-4)),
                     "true_value": p.true_value})
    table = pd.DataFrame(rows).set_index("parameter")
    check = ~fit_mask
    return CalibrationResult(
        spec=spec, parameters=table,
        fit_before=fit_table(observed[fit_mask], before[fit_mask]),
        fit_after=fit_table(observed[fit_mask], after[fit_mask]),
        check_before=fit_table(observed[check], before[check]) if check.any() else None,
        check_after=fit_table(observed[check], after[check]) if check.any() else None,
        observed=observed, simulated_before=before, simulated_after=after, fit=result,
        fit_mask=fit_mask, evaluations_per_s=rate, seconds=time.perf_counter() - t0,
        workers=n_workers)
