"""The fit: weighted residuals, global and local search, and the uncertainty at the optimum.

Parameters are fitted in a transformed space ``z`` (``log x`` for multipliers), bounds
included. Residuals are (simulated - measured) / sigma for every compared point of the
fit window, plus (z - prior mean) / prior sd for each parameter with a prior.

* ``least_squares``: scipy's trust-region reflective method with a forward-difference
  Jacobian whose columns are evaluated together (in parallel with workers).
* ``differential_evolution``: scipy's global search, each generation evaluated together.
* ``both``: the global search, then the local one from its best point.

Uncertainty: the Gauss-Newton covariance ``s^2 (J'J)^-1`` at the optimum, with ``s^2``
the residual variance per degree of freedom, reported as a standard deviation and a
95 % interval in natural units (asymmetric for log-transformed parameters).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import differential_evolution, least_squares

from calibration.config import CalibrationSpec, ParameterSpec
from calibration.evaluate import Evaluator

DEFAULT_SIGMA = {"pressure": 0.5, "head": 0.5, "level": 0.05}   # in the sensor's unit
DEFAULT_FLOW_SIGMA_SHARE = 0.02      # 2 % of the mean measured flow or count
FD_STEP = 1e-3                       # forward-difference step in the fitted space


def to_fitted(par: ParameterSpec, x: float) -> float:
    return float(np.log(x)) if par.log else float(x)


def to_natural(par: ParameterSpec, z: float) -> float:
    return float(np.exp(z)) if par.log else float(z)


def sensor_sigmas(spec: CalibrationSpec, observed: pd.DataFrame) -> np.ndarray:
    out = []
    for s in spec.sensors:
        if s.sigma is not None:
            out.append(s.sigma)
        elif s.quantity in DEFAULT_SIGMA:
            out.append(DEFAULT_SIGMA[s.quantity])
        elif s.quantity == "request_count":      # Poisson counts: sd = sqrt(mean)
            mean = float(np.nanmean(observed[s.id].to_numpy(dtype=float)))
            out.append(max(np.sqrt(max(mean, 0.0)), 1.0))
        else:
            mean = float(np.nanmean(np.abs(observed[s.id].to_numpy(dtype=float))))
            out.append(max(DEFAULT_FLOW_SIGMA_SHARE * mean, 1e-6))
    return np.asarray(out)


@dataclass
class FitResult:
    x: np.ndarray                     # natural units
    z: np.ndarray
    sd_z: np.ndarray
    correlation: np.ndarray
    cost_start: float
    cost_end: float
    evaluations: int
    seconds: float
    method: str
    messages: list[str] = field(default_factory=list)


class Objective:
    """Residuals of parameter vectors (fitted space) against the fit window's points."""

    def __init__(self, spec: CalibrationSpec, evaluator: Evaluator, observed: pd.DataFrame,
                 fit_mask: np.ndarray) -> None:
        self.spec, self.evaluator = spec, evaluator
        self.params = list(spec.parameters)
        self.observed = observed
        self.sigma = sensor_sigmas(spec, observed)
        obs = observed.to_numpy(dtype=float)
        self.mask = np.isfinite(obs) & fit_mask[:, None]
        if not self.mask.any():
            raise ValueError("calibration: no measured point inside the fit window")
        self.obs = obs
        self.prior = [(k, (to_fitted(p, p.initial_value) if p.prior.mean is None
                           else p.prior.mean), p.prior.sd)
                      for k, p in enumerate(self.params) if p.prior is not None]
        self.lower = np.array([to_fitted(p, p.bounds[0]) for p in self.params])
        self.upper = np.array([to_fitted(p, p.bounds[1]) for p in self.params])
        self._cache: dict[bytes, np.ndarray] = {}

    def natural(self, z: np.ndarray) -> np.ndarray:
        return np.array([to_natural(p, v) for p, v in zip(self.params, z)])

    def residuals_of(self, sim: pd.DataFrame, z: np.ndarray) -> np.ndarray:
        s = sim.reindex(self.observed.index)[list(self.observed.columns)].to_numpy(dtype=float)
        r = ((s - self.obs) / self.sigma[None, :])[self.mask]
        r = np.where(np.isfinite(r), r, 1e3)      # a failed or missing simulated value
        prior = [(z[k] - mean) / sd for k, mean, sd in self.prior]
        return np.concatenate([r, prior]) if prior else r

    def residuals(self, zs: list[np.ndarray]) -> list[np.ndarray]:
        todo = [z for z in zs if z.tobytes() not in self._cache]
        if todo:
            sims = self.evaluator.map([self.natural(z) for z in todo])
            for z, sim in zip(todo, sims):
                self._cache[z.tobytes()] = self.residuals_of(sim, z)
        return [self._cache[z.tobytes()] for z in zs]

    def fun(self, z: np.ndarray) -> np.ndarray:
        return self.residuals([np.asarray(z, dtype=float)])[0]

    def jac(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        steps = []
        for k in range(len(z)):
            h = FD_STEP * max(1.0, abs(z[k])) if not self.params[k].log else FD_STEP
            if z[k] + h > self.upper[k]:
                h = -h
            zk = z.copy()
            zk[k] += h
            steps.append((zk, h))
        rs = self.residuals([z] + [zk for zk, _ in steps])
        return np.column_stack([(r - rs[0]) / h for r, (_, h) in zip(rs[1:], steps)])

    def cost(self, z: np.ndarray) -> float:
        r = self.fun(z)
        return 0.5 * float(r @ r)

    def costs(self, zs) -> list[float]:
        """For differential evolution's vectorised map: the cost of each vector."""
        zs = [np.asarray(z, dtype=float) for z in zs]
        return [0.5 * float(r @ r) for r in self.residuals(zs)]


def _de_map(objective: Objective):
    """A ``workers`` map for differential evolution: a generation's costs in one batch
    (``func`` is ``objective.cost``; the batch computes the same, in parallel)."""
    def mapper(func, population):
        return objective.costs(list(population))
    return mapper


def covariance(jac: np.ndarray, residuals: np.ndarray, n_params: int) -> np.ndarray:
    dof = max(len(residuals) - n_params, 1)
    s2 = float(residuals @ residuals) / dof
    jtj = jac.T @ jac
    return s2 * np.linalg.pinv(jtj)


def fit(spec: CalibrationSpec, objective: Objective) -> FitResult:
    t0 = time.perf_counter()
    z0 = np.array([to_fitted(p, p.initial_value) for p in objective.params])
    cost0 = objective.cost(z0)
    z, messages = z0.copy(), []
    budget = spec.max_evaluations
    if spec.method in ("differential_evolution", "both"):
        n = len(z0)
        popsize = max(5, min(15, 40 // max(n, 1)))
        gens = max(2, budget // max(popsize * n, 1) - 1)
        if spec.method == "both":
            gens = max(2, gens // 2)
        de = differential_evolution(objective.cost, list(zip(objective.lower, objective.upper)),
                                    popsize=popsize, maxiter=gens, seed=spec.seed, polish=False,
                                    updating="deferred", workers=_de_map(objective), x0=z0,
                                    tol=1e-8)
        z = np.asarray(de.x)
        messages.append(f"differential evolution: {de.message} ({de.nit} generations)")
    if spec.method in ("least_squares", "both"):
        remaining = max(10, budget - objective.evaluator.evaluations)
        max_nfev = max(3, remaining // (len(z0) + 1))
        ls = least_squares(objective.fun, np.clip(z, objective.lower, objective.upper),
                           jac=objective.jac, bounds=(objective.lower, objective.upper),
                           x_scale="jac", max_nfev=max_nfev, xtol=1e-8, ftol=1e-8)
        z = ls.x
        messages.append(f"least squares: {ls.message} ({ls.nfev} evaluations of the "
                        f"residuals, {ls.njev} Jacobians)")
    jac = objective.jac(z)
    r = objective.fun(z)
    cov = covariance(jac, r, len(z))
    sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    return FitResult(x=objective.natural(z), z=z, sd_z=sd, correlation=corr, cost_start=cost0,
                     cost_end=0.5 * float(r @ r), evaluations=objective.evaluator.evaluations,
                     seconds=time.perf_counter() - t0, method=spec.method, messages=messages)
