"""The leak detector fed one hour at a time (for the shadow twin).

It keeps the hourly residuals it has been given and, every ``every_h`` hours
after the training window, runs the detector of :mod:`live_bridge.leak_detection`
over them, returning the detections not returned before. The leak signatures
are computed once, when the training window ends, at the consumption level the
shadow model saw during training.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from live_bridge.leak_detection import DetectorSettings, glrt_detect
from live_bridge.leak_scoring import Detection, PipeDistances
from live_bridge.sensitivity import compute_signatures


class OnlineLeakDetector:
    def __init__(self, inp: str | Path, columns: list[str], settings: DetectorSettings,
                 start: dt.datetime, multiplier: Callable[[], float] | None = None,
                 every_h: int = 1) -> None:
        self.inp = inp
        self.columns = list(columns)
        self.settings = settings
        self.start = pd.Timestamp(start)
        self.multiplier = multiplier or (lambda: 1.0)
        self.every_h = max(int(every_h), 1)
        self._times: list[pd.Timestamp] = []
        self._rows: list[np.ndarray] = []
        self._sig = None
        self._dist = None
        self._reported: set[tuple[str, dt.datetime]] = set()

    def _prepare(self) -> None:
        pressures = tuple(c.split(":", 1)[1] for c in self.columns if c.startswith("pressures:"))
        flows = tuple(c.split(":", 1)[1] for c in self.columns if c.startswith("flows:"))
        self._sig = compute_signatures(self.inp, pressures, flows,
                                       multiplier=float(self.multiplier()),
                                       engine=self.settings.engine)
        self._dist = PipeDistances.from_inp(self.inp)

    def update(self, hour: pd.Timestamp, row: np.ndarray) -> list[Detection]:
        """Add the mean residuals of the hour starting at ``hour``; new detections."""
        self._times.append(pd.Timestamp(hour))
        self._rows.append(np.asarray(row, dtype=float))
        trained = pd.Timestamp(hour) + pd.Timedelta(hours=1) >= \
            self.start + pd.Timedelta(days=self.settings.train_days)
        if not trained or len(self._rows) % self.every_h:
            return []
        if not any(c.startswith("pressures:") for c in self.columns):
            return []                     # leaks cannot be placed without pressures
        if self._sig is None:
            self._prepare()
        frame = pd.DataFrame(np.vstack(self._rows), pd.DatetimeIndex(self._times), self.columns)
        if len(frame) < self.settings.block_h:
            return []
        detections, _ = glrt_detect(frame, self._sig, self.settings, self._dist)
        new = [d for d in detections if (d.link_id, d.time) not in self._reported]
        self._reported.update((d.link_id, d.time) for d in new)
        return new
