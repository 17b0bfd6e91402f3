"""Recorded readings to replay: a BattLeDIM-style SCADA folder or a tidy file.

SCADA folder: ``<year>_SCADA_Pressures.csv`` (m), ``<year>_SCADA_Flows.csv`` (m3/h),
``<year>_SCADA_Levels.csv`` (m), ``<year>_SCADA_Demands.csv`` (L/h); semicolon separated,
decimal comma, first column the timestamp (naive = UTC), one column per sensor. Any file
may be absent; several years are read together.

Sensor ids (:func:`scada_sensor_id`): a pressure, flow or level sensor keeps its column
name (``n54``, ``p227``, ``PUMP_1``, ``T1``); an AMR demand meter is ``amr_`` + its column
(``amr_n1``), since demand columns name junctions that may also carry a pressure sensor.
The twin element measured is always the bare column name.

Tidy file (``.csv`` or ``.parquet``): columns ``sensor_id, value, unit`` and the time as
``time_s`` (UTC epoch seconds) or ``time`` / ``timestamp`` (ISO text, datetimes or epoch
seconds).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from twin.errors import BadInput

from live_bridge import scada
from live_bridge.readings import Reading
from live_bridge.registry import SensorRegistry, SensorSpec

# quantity -> (file name part, unit, generous plausible range in that unit)
SCADA_KINDS: dict[str, tuple[str, str, tuple[float, float]]] = {
    "pressure": ("Pressures", "m", (-20.0, 250.0)),
    "flow": ("Flows", "m3/h", (-5000.0, 5000.0)),
    "level": ("Levels", "m", (-1.0, 100.0)),
    "demand": ("Demands", "L/h", (0.0, 100000.0)),
}
AMR_PREFIX = "amr_"
TIDY_COLUMNS = ("sensor_id", "value", "unit")


class ReplayError(BadInput):
    """A recording (SCADA folder or tidy file) that cannot be replayed."""


def scada_sensor_id(quantity: str, column: str) -> str:
    """The sensor id of a SCADA column: the column itself, ``amr_<column>`` for demands."""
    return f"{AMR_PREFIX}{column}" if quantity == "demand" else str(column)


def scada_files(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """The SCADA files of a folder by quantity (years in order); absent kinds are left out."""
    try:
        by_kind = scada.scada_files(folder)       # pressures, flows, levels, demands
    except scada.ScadaError as exc:
        raise ReplayError(str(exc)) from None
    return {q: by_kind[part.lower()] for q, (part, _, _) in SCADA_KINDS.items()
            if part.lower() in by_kind}


def read_scada_file(path: Path) -> pd.DataFrame:
    """One SCADA file, wide: index time_s (UTC epoch seconds), one column per sensor column."""
    try:
        frame = scada.read_scada_file(path)
    except scada.ScadaError as exc:
        raise ReplayError(str(exc)) from None
    frame.index = _epoch_s(frame.index)
    return frame


def read_scada(folder: str | os.PathLike, dropna: bool = True) -> pd.DataFrame:
    """Every reading of a SCADA folder, tidy (time_s, sensor_id, value, unit), in time order.

    Empty cells are dropped (a sensor that sent nothing) unless ``dropna`` is False.
    """
    parts = []
    for quantity, paths in scada_files(folder).items():
        unit = SCADA_KINDS[quantity][1]
        for path in paths:
            wide = read_scada_file(path)
            wide.columns = [scada_sensor_id(quantity, c) for c in wide.columns]
            tidy = wide.rename_axis("time_s").reset_index().melt(
                id_vars="time_s", var_name="sensor_id", value_name="value")
            tidy["unit"] = unit
            parts.append(tidy)
    frame = pd.concat(parts, ignore_index=True)
    if dropna:
        frame = frame.dropna(subset=["value"])
    return frame.sort_values("time_s", kind="stable").reset_index(drop=True)


def read_tidy(path: str | os.PathLike) -> pd.DataFrame:
    """A tidy CSV or Parquet file as (time_s, sensor_id, value, unit), in time order."""
    path = Path(path)
    if not path.is_file():
        raise ReplayError(f"{path}: readings file not found")
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path)
    elif path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
    else:
        raise ReplayError(f"{path}: expected a .csv or .parquet file")
    missing = [c for c in TIDY_COLUMNS if c not in frame.columns]
    time_col = next((c for c in ("time_s", "time", "timestamp") if c in frame.columns), None)
    if missing or time_col is None:
        raise ReplayError(f"{path}: column {(missing or ['time_s'])[0]!r} missing (expected "
                          f"time_s or time, sensor_id, value, unit; got {list(frame.columns)})")
    times = frame[time_col]
    if time_col == "time_s" or pd.api.types.is_numeric_dtype(times):
        time_s = pd.to_numeric(times, errors="coerce").astype(float)
    else:
        try:
            time_s = pd.Series(_epoch_s(pd.DatetimeIndex(pd.to_datetime(times, utc=True, format="ISO8601"))),
                               index=frame.index)
        except (ValueError, TypeError) as exc:
            raise ReplayError(f"{path}: column {time_col!r}: expected ISO 8601 times: {exc}") from None
    if time_s.isna().any():
        row = int(np.flatnonzero(time_s.isna().to_numpy())[0])
        raise ReplayError(f"{path}: row {row + 2}: {time_col}: expected a time, got {times.iloc[row]!r}")
    out = pd.DataFrame({"time_s": time_s, "sensor_id": frame["sensor_id"].astype(str),
                        "value": pd.to_numeric(frame["value"], errors="coerce"),
                        "unit": frame["unit"].astype(str)})
    return out.sort_values("time_s", kind="stable").reset_index(drop=True)


class ReplaySource:
    """Readings of a recording in time order, as fast as possible or paced.

    ``speed``: None = as fast as possible; x = x times real time (the gap between two
    timestamps takes gap / x seconds of wall time).
    """

    def __init__(self, frame: pd.DataFrame, speed: float | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        if speed is not None and not (math.isfinite(speed) and speed > 0):
            raise ReplayError(f"speed: expected a factor > 0 (or none), got {speed!r}")
        self.frame = frame.sort_values("time_s", kind="stable").reset_index(drop=True)
        self.speed = speed
        self._sleep, self._clock = sleep, clock

    @classmethod
    def from_scada(cls, folder: str | os.PathLike, **kwargs) -> "ReplaySource":
        return cls(read_scada(folder), **kwargs)

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kwargs) -> "ReplaySource":
        return cls(read_tidy(path), **kwargs)

    def __len__(self) -> int:
        return len(self.frame)

    def __iter__(self) -> Iterator[Reading]:
        f = self.frame
        columns = (f["sensor_id"].tolist(), f["time_s"].tolist(), f["value"].tolist(),
                   f["unit"].tolist())
        start_wall = self._clock()
        first_s = columns[1][0] if len(f) else 0.0
        for sensor_id, time_s, value, unit in zip(*columns):
            if self.speed is not None:
                delay = start_wall + (time_s - first_s) / self.speed - self._clock()
                if delay > 0:
                    self._sleep(delay)
            yield Reading(sensor_id, time_s, value, unit)


def registry_from_scada(folder: str | os.PathLike, layer: str = "water",
                        ranges: dict[str, tuple[float, float]] | None = None) -> SensorRegistry:
    """A registry for every sensor column of a SCADA folder.

    Element = the column name, quantity = pressure / flow / level / demand, the unit of
    the file, the range from ``ranges`` (by quantity) or :data:`SCADA_KINDS`, and
    ``period_s`` the median gap between the file's timestamps.
    """
    specs: dict[str, SensorSpec] = {}
    for quantity, paths in scada_files(folder).items():
        _, unit, default = SCADA_KINDS[quantity]
        low, high = (ranges or {}).get(quantity, default)
        for path in paths:
            wide = read_scada_file(path)
            gaps = np.diff(wide.index.to_numpy(dtype=float))
            period = float(np.median(gaps)) if len(gaps) else None
            for column in wide.columns:
                sid = scada_sensor_id(quantity, column)
                specs.setdefault(sid, SensorSpec(sid, layer, str(column), quantity, unit,
                                                 low, high, period))
    return SensorRegistry(specs.values())


def _epoch_s(index: pd.DatetimeIndex) -> pd.Index:
    """UTC epoch seconds of a datetime index (naive means UTC)."""
    if index.tz is None:
        index = index.tz_localize("UTC")
    return pd.Index((index - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1), name="time_s")
