"""Evaluating the model for many parameter vectors: serially, on local processes, or on
a Dask cluster.

Each worker process builds its model once (an open EPANET project, a traffic network)
and runs every evaluation it is given on it; only parameter vectors go out and sensor
series come back. With ``scheduler`` (``tcp://host:port``) the evaluations go to that
Dask cluster; an address that cannot be reached is an error within a few seconds.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from calibration.config import CalibrationSpec
from twin.errors import BadInput

_MODEL: Any = None          # this process's model (worker processes)
_MODEL_KEY: str | None = None


def build_model(spec: CalibrationSpec, boundary: dict[str, Any]):
    """The model a calibration file describes, with its measured boundary conditions
    (``levels``: initial tank levels; ``schedules``: on/off times of measured pumps)."""
    if spec.model.tntp is not None:
        from calibration.traffic_model import TrafficModel

        return TrafficModel(spec)
    if spec.model.population is not None:
        from calibration.requests_model import RequestsModel

        return RequestsModel(spec)
    from calibration.water_model import WaterModel

    return WaterModel(spec, boundary.get("levels"), boundary.get("schedules"))


def _init(spec: CalibrationSpec, boundary: dict[str, Any]) -> None:
    global _MODEL, _MODEL_KEY
    _MODEL, _MODEL_KEY = build_model(spec, boundary), None


def _simulate(x: np.ndarray) -> pd.DataFrame:
    return _MODEL.simulate(x)


def _dask_simulate(x: np.ndarray, spec: CalibrationSpec, boundary: dict[str, Any],
                   model_key: str) -> pd.DataFrame:
    global _MODEL, _MODEL_KEY
    if _MODEL_KEY != model_key:        # one model per worker process and calibration
        if _MODEL is not None and hasattr(_MODEL, "close"):
            _MODEL.close()
        _MODEL, _MODEL_KEY = build_model(spec, boundary), model_key
    return _MODEL.simulate(x)


class Evaluator:
    """``map(xs)`` -> simulated frames, in order. ``workers``: 1 runs in this process."""

    def __init__(self, spec: CalibrationSpec, boundary: dict[str, Any], workers: int = 1,
                 scheduler: str | None = None, connect_timeout_s: float = 5.0) -> None:
        self.spec, self.boundary = spec, boundary
        self.workers = max(1, int(workers))
        self.evaluations = 0
        self.busy_s = 0.0
        self._pool: ProcessPoolExecutor | None = None
        self._client = None
        self._local = None
        if scheduler:
            from dask.distributed import Client

            try:
                self._client = Client(scheduler, timeout=f"{connect_timeout_s}s")
            except (OSError, TimeoutError) as exc:
                raise BadInput(f"calibration: cannot reach the Dask scheduler {scheduler!r} "
                               f"within {connect_timeout_s:g} s: {exc}") from None
            self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))
            self._key = f"{os.getpid()}-{id(self)}-{time.time()}"
        elif self.workers > 1:
            self._pool = ProcessPoolExecutor(self.workers,
                                             mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init, initargs=(spec, boundary))
        else:
            self._local = build_model(spec, boundary)

    @property
    def model(self):
        """A model in this process (built on first use), for saving and plotting."""
        if self._local is None:
            self._local = build_model(self.spec, self.boundary)
        return self._local

    def map(self, xs: list[np.ndarray]) -> list[pd.DataFrame]:
        t0 = time.perf_counter()
        xs = [np.asarray(x, dtype=float) for x in xs]
        if self._client is not None:
            futures = self._client.map(_dask_simulate, xs, spec=self.spec, boundary=self.boundary,
                                       model_key=self._key, pure=False)
            out = self._client.gather(futures)
        elif self._pool is not None:
            out = list(self._pool.map(_simulate, xs))
        else:
            out = [self.model.simulate(x) for x in xs]
        self.evaluations += len(xs)
        self.busy_s += time.perf_counter() - t0
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        if self._client is not None:
            self._client.close()
        if self._local is not None and hasattr(self._local, "close"):
            self._local.close()

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
