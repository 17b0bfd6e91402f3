"""A sequential leak test on hourly residuals, fed one hour at a time.

Residuals are ``measured - simulated`` per sensor (pressures m, flows m3/h),
averaged per hour. The test, in order:

1. **Training** (the first ``train_days``, taken as leak-free): each sensor's
   baseline per hour of day (median) and noise level; residuals are centred and
   scaled by them, then whitened with the sensors' noise covariance (shrunk
   towards its diagonal by ``shrinkage``), so that shared noise (a day of higher
   consumption moves every pressure of a district) is not taken for a leak.
   Leading shared patterns still left (``nuisance_max``, each explaining at least
   ``nuisance_share`` of the variance) are projected out of the residuals and of
   every leak signature.
2. **Signatures**: every pipe has one column per probe size in ``probes_m3h``
   (a small one and a large one): a declared leak is fitted as a non-negative mix
   of its columns, which follows the curvature of a leak as it grows.
3. **Test**: every hour, over the last ``block_days`` days, a generalised
   likelihood ratio for one more leak at each pipe (size >= 0) given the leaks
   already declared, whose sizes are re-fitted every hour by non-negative least
   squares (a growing leak is followed; one fitted at zero for ``repaired_h``
   hours is taken as repaired and dropped). The best pipe's statistic is compared
   with ``threshold`` times the largest value it took on the training window, so
   the threshold adapts to the network and to the noise.
4. **Decision**: above it for ``persistence_h`` hours in a row, a leak is
   declared at the pipe with the most evidence over that run, at that hour (the
   detection time is when the test is sure, never a back-dated onset). A leak
   within ``min_separation_m`` of one already reported is fitted but not reported
   again.
5. **Relocation**: once a day, with no new leak pending, each declared leak is
   looked at again with the other leaks fitted; evidence is summed over the days,
   and when another pipe farther than the separation explains the same leak (a
   similar size) ``relocate_factor`` times better, the leak moves there and that
   place is reported. A leak declared while small and far from sensors is often
   placed loosely at first.

Measured on generated L-Town years: see live_bridge/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from twin.errors import BadInput

from live_bridge.leak_scoring import Detection, PipeDistances
from live_bridge.sensitivity import Signatures


class SettingsError(BadInput):
    """Detector settings that cannot work (a training window too short...)."""


@dataclass(frozen=True)
class DetectorSettings:
    """Settings of the leak detector (see the module doc for what each does)."""

    train_days: float = 7.0
    threshold: float = 5.0            # times the training window's largest statistic
    persistence_h: int = 14
    block_days: int = 1               # the test looks at this many whole days at a time
    min_separation_m: float = 300.0
    nuisance_max: int = 3
    nuisance_share: float = 0.10
    repaired_h: int = 48
    full_whitening: bool = True       # whiten with the sensors' noise covariance
    shrinkage: float = 0.5            # of that covariance towards its diagonal
    sensor_bias: bool = True          # a pressure sensor's own step competes with the leaks
    bias_margin: float = 2.0          # ... and wins when it explains the run this much better
    relocate_factor: float = 2.0      # move a declared leak when a pipe explains it this much better
    sigma_floor: dict = field(default_factory=lambda: {"pressures": 0.002, "flows": 0.1})
    probes_m3h: tuple[float, ...] = (3.6, 20.0)   # leak signature probes (one set each)
    engine: str = "owa"               # EPANET library of the shadow model and signatures


class SequentialLeakTest:
    """Feed :meth:`update` with one hour of mean residuals at a time (see module doc)."""


    def __init__(self, sig: Signatures | list[Signatures], columns: list[str],
                 settings: DetectorSettings, distances: PipeDistances | None = None) -> None:
        """``sig``: one set of signatures, or several of the same pipes from probes of
        different sizes (each pipe then has one column per set: a declared leak is fitted
        as a non-negative mix of them, which follows the curvature of a growing leak)."""
        sigs = sig if isinstance(sig, list) else [sig]
        self.sig = sig = sigs[0]
        self.columns = list(columns)
        self.settings = settings
        self.distances = distances
        rows = [sig.sensors.index(c) for c in self.columns]
        self.S = np.concatenate([s.values[:, rows, :] for s in sigs], axis=2)  # [24, n_s, F*n_p]
        self.n_pipes = len(sig.pipes)
        self.families = len(sigs)
        self.n_leak_cols = self.families * self.n_pipes
        # a sensor's own bias is one more candidate: a step of 1 m at that sensor alone
        self.bias_sensors = [c for c in self.columns if c.startswith("pressures:")] \
            if settings.sensor_bias else []
        if self.bias_sensors:
            E = np.zeros((24, len(self.columns), len(self.bias_sensors)))
            for k, c in enumerate(self.bias_sensors):
                E[:, self.columns.index(c), k] = 1.0
            self.S = np.concatenate([self.S, E], axis=2)
        self.n_s, self.n_p = self.S.shape[1], self.S.shape[2]
        if settings.block_days < 1 or int(settings.block_days) != settings.block_days:
            raise ValueError("block_days must be a whole number of days >= 1")
        self.block_h = 24 * int(settings.block_days)
        if settings.train_days < settings.block_days + 1:
            raise SettingsError(
                f"train_days={settings.train_days:g}: the training window must hold at least "
                f"block_days + 1 = {settings.block_days + 1} days, so that the test's own scale "
                f"can be measured on whole {self.block_h}-hour blocks before it is used")
        self._train: list[tuple[pd.Timestamp, np.ndarray]] = []
        self._start: pd.Timestamp | None = None
        self.trained = False
        self._g: list[np.ndarray] = []                      # per hour: x_j . e for every pipe
        self._e: list[np.ndarray] = []                      # per hour: projected residual
        self._raw: list[np.ndarray] = []                    # per hour: centred residual
        self._hours: list[int] = []
        self.detected: list[list[int]] = []                 # declared leaks: their pipes
        self._cols: np.ndarray | None = None
        self._evidence: dict[int, np.ndarray] = {}          # per declared leak: where, summed
        self._keys: list[int] = []                          # a stable key per declared leak
        self._next_key = 0
        self._den_cache: dict[tuple[int, ...], np.ndarray] = {}
        self._zero_h: dict[int, int] = {}
        self.reported: list[Detection] = []
        self._over = 0
        self._run_T: np.ndarray | None = None
        self._run_B: np.ndarray | None = None
        self.sensor_faults: list[Detection] = []
        self.reference = np.nan
        self.stats: list[tuple] = []

    # -- training -------------------------------------------------------------
    def _fit_training(self) -> None:
        times = pd.DatetimeIndex([t for t, _ in self._train])
        E = np.vstack([r for _, r in self._train])
        hours = times.hour.to_numpy()
        self.base = np.zeros((24, self.n_s))
        for h in range(24):
            sel = hours == h
            if sel.any():
                with np.errstate(all="ignore"):
                    b = np.nanmedian(E[sel], axis=0)
                self.base[h] = np.where(np.isfinite(b), b, 0.0)
        C = E - self.base[hours]
        floor = np.array([self.settings.sigma_floor.get(c.split(":")[0], 1e-3)
                          for c in self.columns])
        with np.errstate(all="ignore"):
            sigma = np.nanstd(C, axis=0)
        self.sigma = np.where(np.isfinite(sigma), np.maximum(sigma, floor), floor)
        W = np.where(np.isfinite(C), C, 0.0) / self.sigma
        # the noise is shared between sensors (a day of higher consumption in one district
        # moves all its pressures): whiten with the training covariance, shrunk towards
        # its diagonal, so the test weighs what the sensors tell independently
        cov = np.cov(W, rowvar=False) if len(W) > 2 else np.eye(self.n_s)
        lam = self.settings.shrinkage
        cov = (1 - lam) * cov + lam * np.diag(np.diag(cov))
        w, v = np.linalg.eigh(cov)
        w = np.maximum(w, 1e-3 * max(w.max(), 1e-12))
        white = (v / np.sqrt(w)) @ v.T if self.settings.full_whitening else np.eye(self.n_s)
        Wz = W @ white.T
        # nuisance: the leading shared patterns left in the training residuals
        _, sv, vt = np.linalg.svd(Wz - Wz.mean(axis=0), full_matrices=False)
        share = sv ** 2 / max(np.sum(sv ** 2), 1e-300)
        k = 0
        while k < min(self.settings.nuisance_max, len(share)) and share[k] >= \
                self.settings.nuisance_share:
            k += 1
        U = vt[:k].T                                        # [n_s, k]
        self.nuisance = U
        self.P = (np.eye(self.n_s) - U @ U.T) @ white
        self.Sw = np.einsum("ab,hbj->haj", self.P, self.S / self.sigma[None, :, None])
        days = self.block_h // 24
        self.gram = days * np.einsum("hij,hik->jk", self.Sw, self.Sw)   # whole days of hours
        self.diag = np.maximum(np.diag(self.gram).copy(), 1e-12)
        self.trained = True
        # the statistic's own scale on the training window (no leak there, by assumption)
        train_T = []
        for t, row in self._train:
            T, _, _ = self._push(t, row)
            if T is not None:
                train_T.append(T)
        if not train_T:
            raise SettingsError("the training window held no whole block of hours: "
                                "give more days of data or a longer train_days")
        self.reference = float(np.max(train_T))

    # -- one hour ---------------------------------------------------------------
    def _push(self, t: pd.Timestamp, row: np.ndarray):
        h = t.hour
        centred = np.where(np.isfinite(row), row - self.base[h], np.nan)
        c = np.nan_to_num(centred) / self.sigma
        e = self.P @ c
        self._e.append(e)
        self._raw.append(centred)
        if len(self._raw) > self.block_h:
            self._raw.pop(0)
        self._hours.append(h)
        self._g.append(self.Sw[h].T @ e)                    # [n_p]
        if len(self._g) > self.block_h:
            self._g.pop(0)
            self._e.pop(0)
            self._hours.pop(0)
        if len(self._g) < self.block_h:
            return None, None, None
        num = np.sum(self._g, axis=0)                        # x_j . y over the block
        self._num = num
        T, num_j, den, a = self._test(num, self._columns())
        j = int(np.argmax(T))
        L = self.n_leak_cols
        self._last_T = T[:L].reshape(self.families, self.n_pipes).max(axis=0)
        self._last_size = (num_j[:L] / den[:L]).reshape(self.families, self.n_pipes)
        self._last_bias = T[L:]
        self._last_bias_size = num_j[L:] / den[L:]
        return float(T[j]), j, (a, float(num_j[j] / den[j]))

    def _test(self, num: np.ndarray, cols: np.ndarray):
        """The statistic of one more leak at every column, given leaks at ``cols``."""
        a = np.zeros(0)
        if len(cols):
            G = self.gram[np.ix_(cols, cols)]
            a = _nnls_normal(G, num[cols])
            num_j = num - self.gram[:, cols] @ a
            active = cols[a > 1e-9]
            den = self._den(tuple(active))
        else:
            num_j, den = num, self.diag
        den = np.maximum(den, 1e-9 * self.diag)
        T = np.where(num_j > 0, num_j ** 2 / den, 0.0)
        if len(cols):
            T[cols] = 0.0
        return T, num_j, den, a

    def _relocate(self, end: pd.Timestamp, sizes: list[float]) -> list[Detection]:
        """Look again at where each declared leak is, with the data of the last day: a leak
        declared when it was small may have been placed at a pipe that explains it less well
        than another does now. Move it when another pipe, farther than the reporting
        separation, explains it ``relocate_factor`` times better, and report that place."""
        out = []
        for k, group in enumerate(self.detected):
            cols = np.array(sorted({c for i, g in enumerate(self.detected) if i != k
                                    for c in g}), dtype=int)
            T, num_j, den, _ = self._test(self._num, cols)
            if group[0] >= self.n_leak_cols:
                continue                                   # a sensor's bias stays put
            L = self.n_leak_cols
            Tp = T[:L].reshape(self.families, self.n_pipes).max(axis=0)
            size_p = (num_j[:L] / den[:L]).reshape(self.families, self.n_pipes).max(axis=0)
            # only the same leak seen elsewhere: a size like its own (not a new leak's)
            Tp = np.where((size_p > 0.5 * sizes[k]) & (size_p < 2.0 * sizes[k]), Tp, 0.0)
            key = self._keys[k]
            self._evidence[key] = self._evidence.get(key, 0.0) + Tp   # days add up
            Tp = self._evidence[key]
            here = group[0] % self.n_pipes
            best = int(np.argmax(Tp))
            if Tp[best] <= self.settings.relocate_factor * max(Tp[here], 1e-12):
                continue
            if Tp[best] / self.reference <= self.settings.threshold:
                continue
            pipe, old = self.sig.pipes[best], self.sig.pipes[here]
            if self.distances is None or \
                    self.distances.distance(pipe, old) <= self.settings.min_separation_m:
                continue
            self.detected[k] = self._all_columns(best)
            self._cols = None
            if not any(self.distances.distance(pipe, d.link_id) <= self.settings.min_separation_m
                       for d in self.reported):
                det = Detection(pipe, end.to_pydatetime(), statistic=Tp[best] / self.reference)
                self.reported.append(det)
                out.append(det)
        return out

    def _all_columns(self, pipe: int) -> list[int]:
        return [f * self.n_pipes + pipe for f in range(self.families)]

    def _columns(self) -> np.ndarray:
        if self._cols is None:
            cols = sorted({c for group in self.detected for c in group})
            self._cols = np.array(cols, dtype=int)
        return self._cols

    def _den(self, active: tuple[int, ...]) -> np.ndarray:
        """Each pipe's signature energy left once the active columns are fitted (cached)."""
        if active not in self._den_cache:
            if len(self._den_cache) > 64:
                self._den_cache.clear()
            if not active:
                self._den_cache[active] = self.diag
            else:
                A = np.array(active)
                GA = self.gram[np.ix_(A, A)]
                L = np.linalg.cholesky(GA + 1e-9 * np.trace(GA) / len(A) * np.eye(len(A)))
                M = np.linalg.solve(L, self.gram[A, :])
                self._den_cache[active] = self.diag - np.sum(M * M, axis=0)
        return self._den_cache[active]

    def update(self, t: pd.Timestamp, row: np.ndarray) -> list[Detection]:
        """Add the mean residuals of the hour starting at ``t``; the leaks declared now."""
        t = pd.Timestamp(t)
        if self._start is None:
            self._start = t
        if not self.trained:
            self._train.append((t, np.asarray(row, dtype=float)))
            if t + pd.Timedelta(hours=1) >= self._start + pd.Timedelta(days=self.settings.train_days):
                self._fit_training()
            return []
        T, j, extra = self._push(t, np.asarray(row, dtype=float))
        if T is None:
            return []
        a, size = extra
        end = t + pd.Timedelta(hours=1)                     # the hour is over
        rel = T / max(self.reference, 1e-12)
        sizes = self._group_sizes(a)
        self.stats.append((end, self._name(j), T, rel, size,
                           ";".join(f"{self._name(g[0])}={x:.1f}"
                                    for g, x in zip(self.detected, sizes))))
        self._forget_repaired(sizes)
        moved = []
        if self.settings.relocate_factor > 0 and end.hour == 0 and self.detected \
                and rel <= self.settings.threshold:     # no new leak pending: the residual
            moved = self._relocate(end, sizes)         # left is the declared leaks' own
        if rel > self.settings.threshold:
            self._over += 1
            self._run_T = self._last_T if self._run_T is None else self._run_T + self._last_T
            self._run_B = self._last_bias if self._run_B is None else self._run_B + self._last_bias
        else:
            self._over, self._run_T, self._run_B = 0, None, None
        if self._over < self.settings.persistence_h:
            return moved
        # the place: the pipe that explains the whole run best, not just its last hour
        j = int(np.argmax(self._run_T))
        size = float(np.max(self._last_size[:, j]))
        if len(self._run_B) and np.max(self._run_B) > self.settings.bias_margin * self._run_T[j]:
            return moved + self._declare_bias(end, rel)
        self._over, self._run_T, self._run_B = 0, None, None
        pipe = self.sig.pipes[j]
        self.detected.append(self._all_columns(j))
        self._keys.append(self._next_key)
        self._next_key += 1
        self._cols = None
        if self.distances is not None and any(
                self.distances.distance(pipe, d.link_id) <= self.settings.min_separation_m
                for d in self.reported):
            return moved
        det = Detection(pipe, end.to_pydatetime(), size_m3h=size, statistic=rel)
        self.reported.append(det)
        return moved + [det]

    def _declare_bias(self, end: pd.Timestamp, rel: float) -> list[Detection]:
        """A sensor's own step explains the run better than any leak: a faulty sensor (or a
        leak right beside it, which looks the same to the network's other sensors)."""
        k = int(np.argmax(self._run_B))
        col = self.columns.index(self.bias_sensors[k])
        with np.errstate(all="ignore"):      # the step: its mean over the alarm run, m
            size = float(np.nanmean([r[col] for r in self._raw[-self.settings.persistence_h:]]))
        self._over, self._run_T, self._run_B = 0, None, None
        self.detected.append([self.n_leak_cols + k])
        self._keys.append(self._next_key)
        self._next_key += 1
        self._cols = None
        sensor = self.bias_sensors[k].split(":", 1)[1]
        if any(f.link_id == sensor for f in self.sensor_faults):
            return []                                      # already reported: fitted only
        det = Detection(sensor, end.to_pydatetime(), size_m3h=None, statistic=rel,
                        kind="sensor_bias", size_m=size)
        self.sensor_faults.append(det)
        return [det]

    def _name(self, col: int) -> str:
        if col >= self.n_leak_cols:
            return self.bias_sensors[col - self.n_leak_cols]
        return self.sig.pipes[col % self.n_pipes]

    def _group_sizes(self, a: np.ndarray) -> list[float]:
        """Fitted size (m3/h) of each declared leak: the sum over its pipes."""
        cols = self._columns()
        pos = {int(c): k for k, c in enumerate(cols)}
        # a column's fitted value is m3/h of leak at its probe's slope: sum them
        return [float(sum(a[pos[c]] for c in g)) if len(a) else 0.0 for g in self.detected]

    def _forget_repaired(self, sizes: list[float]) -> None:
        keep, keys = [], []
        for g, x, key_ in zip(self.detected, sizes, self._keys):
            self._zero_h[key_] = self._zero_h.get(key_, 0) + 1 if x <= 1e-6 else 0
            if self._zero_h[key_] < self.settings.repaired_h:
                keep.append(g)
                keys.append(key_)
        if len(keep) != len(self.detected):
            self.detected, self._keys = keep, keys
            self._cols = None

    def statistic_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.stats, columns=["time", "best_pipe", "statistic", "relative",
                                                 "leak_m3h", "fitted_leaks_m3h"]).set_index("time")


def _nnls_normal(G: np.ndarray, g: np.ndarray) -> np.ndarray:
    """argmin ||y - X a||, a >= 0, from the normal equations G = X'X, g = X'y."""
    try:
        R = np.linalg.cholesky(G + 1e-12 * np.trace(G) * np.eye(len(G))).T
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(G)
        R = (v * np.sqrt(np.maximum(w, 0))).T
    z = np.linalg.lstsq(R.T, g, rcond=None)[0]
    return nnls(R, z)[0]
