"""Tidy time series of a run: (time_s, element, quantity, value, unit).

Layers and agents write here only; KPIs and reports read from here. Arrays are
buffered per (quantity, element set) and turned into a long table on demand,
so a layer can record 800 pressures per step for a year at numpy speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd


@dataclass
class _Series:
    layer: str
    quantity: str
    unit: str
    elements: tuple[str, ...]
    times: list[float] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)


class Recorder:
    """Collects every recorded value of a run."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], _Series] = {}

    def record(self, time_s: float, layer: str, quantity: str, unit: str,
               elements: Sequence[str], values: np.ndarray | Sequence[float]) -> None:
        """Record ``values`` (one per element) of ``quantity`` [``unit``] at ``time_s``."""
        key = (layer, quantity)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(layer, quantity, unit, tuple(elements))
        elif len(elements) != len(series.elements) or tuple(elements) != series.elements:
            raise ValueError(f"recorder: {layer}/{quantity} was started with "
                             f"{len(series.elements)} elements, got {len(elements)}")
        series.times.append(float(time_s))
        series.values.append(np.asarray(values, dtype=float).copy())

    def quantities(self) -> list[tuple[str, str, str]]:
        return [(s.layer, s.quantity, s.unit) for s in self._series.values()]

    def wide(self, layer: str, quantity: str) -> pd.DataFrame:
        """Time x element table of one quantity (index ``time_s``)."""
        s = self._series[(layer, quantity)]
        data = np.vstack(s.values) if s.values else np.empty((0, len(s.elements)))
        return pd.DataFrame(data, index=pd.Index(s.times, name="time_s"),
                            columns=pd.Index(s.elements, name="element"))

    def unit(self, layer: str, quantity: str) -> str:
        return self._series[(layer, quantity)].unit

    def tidy(self) -> pd.DataFrame:
        """All series as one long table: layer, time_s, element, quantity, value, unit."""
        frames = []
        for s in self._series.values():
            if not s.values:
                continue
            data = np.vstack(s.values)
            n_t, n_e = data.shape
            frames.append(pd.DataFrame({
                "layer": pd.Categorical([s.layer] * (n_t * n_e)),
                "time_s": np.repeat(np.asarray(s.times), n_e),
                "element": pd.Categorical(np.tile(np.asarray(s.elements, dtype=object), n_t)),
                "quantity": pd.Categorical([s.quantity] * (n_t * n_e)),
                "value": data.ravel(),
                "unit": pd.Categorical([s.unit] * (n_t * n_e)),
            }))
        if not frames:
            return pd.DataFrame(columns=["layer", "time_s", "element", "quantity", "value", "unit"])
        out = pd.concat(frames, ignore_index=True)
        for col in ("layer", "element", "quantity", "unit"):
            out[col] = out[col].astype(str)
        return out

    def to_parquet(self, directory: Path) -> list[Path]:
        """Write one Parquet file per layer (tidy rows) into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        tidy = self.tidy()
        paths = []
        for layer, frame in tidy.groupby("layer", sort=True):
            path = directory / f"{layer}.parquet"
            frame.reset_index(drop=True).to_parquet(path, index=False)
            paths.append(path)
        return paths
