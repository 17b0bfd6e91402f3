"""Results of one run: recorded series, events, KPIs and element tables.

Reports and comparisons read a :class:`Results` only, never a live twin, so a
report can be rebuilt from Parquet files written earlier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd


@dataclass
class Results:
    name: str
    series: pd.DataFrame                       # tidy: layer, time_s, element, quantity, value, unit
    events: pd.DataFrame                       # event_id, time_s, kind, source, cause_id, details
    kpis: dict[str, dict[str, float]]          # layer -> name -> value
    elements: dict[str, dict[str, gpd.GeoDataFrame]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)   # seed, start, horizon, wall time...

    def wide(self, layer: str, quantity: str) -> pd.DataFrame:
        """Time x element table of one recorded quantity."""
        s = self.series
        sel = s[(s["layer"] == layer) & (s["quantity"] == quantity)]
        if sel.empty:
            return pd.DataFrame()
        return sel.pivot(index="time_s", columns="element", values="value")

    def kpi_table(self) -> pd.Series:
        """All KPIs as one series indexed 'layer.kpi'."""
        return pd.Series({f"{layer}.{k}": v for layer, d in self.kpis.items() for k, v in d.items()},
                         name=self.name, dtype=float)

    def save(self, directory: str | Path) -> list[Path]:
        """Write ``<name>_<layer>.parquet`` series, ``<name>_events.parquet``, a KPI JSON and
        the element tables as GeoParquet under ``elements/<name>/<layer>_<kind>.parquet``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for layer, frame in self.series.groupby("layer", sort=True):
            path = directory / f"{self.name}_{layer}.parquet"
            frame.reset_index(drop=True).to_parquet(path, index=False)
            written.append(path)
        ev = self.events.copy()
        path = directory / f"{self.name}_events.parquet"
        ev.to_parquet(path, index=False)
        written.append(path)
        path = directory / f"{self.name}_kpis.json"
        path.write_text(json.dumps({"kpis": self.kpis, "meta": self.meta}, indent=2, default=str))
        written.append(path)
        for layer, frames in self.elements.items():
            for kind, frame in frames.items():
                path = directory / "elements" / self.name / f"{layer}_{kind}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                frame.to_parquet(path)
                written.append(path)
        return written

    @classmethod
    def load(cls, directory: str | Path, name: str) -> "Results":
        """Read back what :meth:`save` wrote."""
        directory = Path(directory)
        info = json.loads((directory / f"{name}_kpis.json").read_text())
        files = [directory / f"{name}_{layer}.parquet" for layer in sorted(info["kpis"])]
        frames = [pd.read_parquet(p) for p in files if p.exists()]
        series = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        events = pd.read_parquet(directory / f"{name}_events.parquet")
        elements: dict[str, dict[str, gpd.GeoDataFrame]] = {}
        for path in sorted((directory / "elements" / name).glob("*_*.parquet")):
            layer, kind = path.stem.split("_", 1)
            elements.setdefault(layer, {})[kind] = gpd.read_parquet(path)
        return cls(name=name, series=series, events=events, kpis=info["kpis"], meta=info["meta"],
                   elements=elements)
