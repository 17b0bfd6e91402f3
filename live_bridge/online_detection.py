"""The leak detector fed one hour at a time (for the shadow twin).

It wraps :class:`live_bridge.glrt.SequentialLeakTest`, which is sequential by
construction: each hour costs the same whatever has come before. The leak
signatures are computed once, when the training window ends, at the consumption
level the shadow model saw during training.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from live_bridge.glrt import DetectorSettings, SequentialLeakTest
from live_bridge.leak_detection import leak_signatures
from live_bridge.leak_scoring import Detection, PipeDistances


class OnlineLeakDetector:
    def __init__(self, inp: str | Path, columns: list[str], settings: DetectorSettings,
                 start: dt.datetime, multiplier: Callable[[], float] | None = None,
                 demand_mode: Callable[[], str] | None = None) -> None:
        self.inp = inp
        self.columns = list(columns)
        self.settings = settings
        self.start = pd.Timestamp(start)
        self.multiplier = multiplier or (lambda: 1.0)
        self.demand_mode = demand_mode or (lambda: "amr")
        self._train: list[tuple[pd.Timestamp, np.ndarray]] = []
        self.test: SequentialLeakTest | None = None
        self.placeable = any(c.startswith("pressures:") for c in self.columns)

    def update(self, hour: pd.Timestamp, row: np.ndarray) -> list[Detection]:
        """Add the mean residuals of the hour starting at ``hour``; new detections."""
        if not self.placeable:
            return []                     # leaks cannot be placed without pressures
        if self.test is None:
            self._train.append((pd.Timestamp(hour), np.asarray(row, dtype=float)))
            end = pd.Timestamp(hour) + pd.Timedelta(hours=1)
            if end < self.start + pd.Timedelta(days=self.settings.train_days):
                return []
            pressures = [c.split(":", 1)[1] for c in self.columns if c.startswith("pressures:")]
            flows = [c.split(":", 1)[1] for c in self.columns if c.startswith("flows:")]
            sigs = leak_signatures(self.inp, pressures, flows, self.settings,
                                   float(self.multiplier()), self.demand_mode())
            self.test = SequentialLeakTest(sigs, self.columns, self.settings,
                                           PipeDistances.from_inp(self.inp))
            found: list[Detection] = []
            for t, r in self._train:
                found += self.test.update(t, r)
            self._train = []
            return found
        return self.test.update(hour, row)
