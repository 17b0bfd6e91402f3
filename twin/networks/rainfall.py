"""Rainfall for the sewer layer: IDF curves, design hyetographs, recorded series.

IDF curves have the Montana form i = a * t^-b (i in mm/h, t the duration in minutes).
The default coefficients (:data:`MONTANA_REGION_I`) are approximate figures for
French rainfall region I (which holds Dijon, the demo city), from the 1977 French
technical instruction on urban drainage, valid for durations of 6 min to 2 h; give
your own ``(a, b)`` for another place. Hyetographs return one mean intensity (mm/h)
per step, whose depths add up exactly to the IDF depth of the storm's duration:

* Chicago (Keifer and Chu 1957): the IDF curve's own intensities arranged around a peak
  at ``peak_fraction`` of the duration;
* double triangle (Desbordes): an intense triangle of ``intense_s`` inside a longer
  triangle, each carrying the IDF depth of its duration.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import BadInput

# return period (years) -> (a [mm/h min^b], b): approximate, region I, 6 min - 2 h. The
# instruction stops at 10 years; 20 and 50 years are extrapolated by a Gumbel law fitted to
# the 2-10 year a and b (each linear in the reduced variate -ln(-ln(1 - 1/T))): 46 mm in
# one hour at 50 years, where Dijon's recorded figure is of that order. Rarer storms need
# local coefficients (``idf=``).
MONTANA_REGION_I: dict[float, tuple[float, float]] = {
    1.0: (186.0, 0.64), 2.0: (222.0, 0.62), 5.0: (300.0, 0.61), 10.0: (354.0, 0.59),
    20.0: (404.0, 0.582), 50.0: (469.0, 0.568),
}


def montana(return_period_years: float,
            table: dict[float, tuple[float, float]] = MONTANA_REGION_I) -> tuple[float, float]:
    """Montana coefficients (a, b) for a return period, log-interpolated in the table."""
    periods = sorted(table)
    t = float(return_period_years)
    if not periods[0] <= t <= periods[-1]:
        raise BadInput(f"design storm: return period {t:g} years is outside the IDF table "
                       f"({periods[0]:g} to {periods[-1]:g} years)")
    if t in table:
        return table[t]
    hi = next(p for p in periods if p > t)
    lo = max(p for p in periods if p < t)
    w = (math.log(t) - math.log(lo)) / (math.log(hi) - math.log(lo))
    a = math.exp((1 - w) * math.log(table[lo][0]) + w * math.log(table[hi][0]))
    b = (1 - w) * table[lo][1] + w * table[hi][1]
    return a, b


def idf_depth_mm(a: float, b: float, duration_min: float | np.ndarray) -> float | np.ndarray:
    """Depth (mm) of the IDF curve i = a t^-b over ``duration_min`` minutes."""
    t = np.asarray(duration_min, dtype=float)
    return a / 60.0 * np.power(np.clip(t, 0.0, None), 1.0 - b)


def chicago(a: float, b: float, duration_s: float, step_s: float = 300.0,
            peak_fraction: float = 0.4) -> np.ndarray:
    """Chicago hyetograph of the IDF curve (a, b): mean intensity (mm/h) of each step."""
    _check_storm(duration_s, step_s)
    if not 0 < peak_fraction < 1:
        raise BadInput(f"design storm: peak position must be between 0 and 1, got {peak_fraction}")
    d_min, r = duration_s / 60.0, peak_fraction
    tp = r * d_min

    def cumulative(t: np.ndarray) -> np.ndarray:
        before = r * idf_depth_mm(a, b, d_min) - r * idf_depth_mm(a, b, (tp - t) / r)
        after = r * idf_depth_mm(a, b, d_min) + (1 - r) * idf_depth_mm(a, b, (t - tp) / (1 - r))
        return np.where(t <= tp, before, after)

    edges = np.minimum(np.arange(0.0, duration_s + step_s, step_s), duration_s) / 60.0
    depth = np.diff(cumulative(edges))
    return depth / (np.diff(edges) / 60.0)


def double_triangle(a: float, b: float, duration_s: float, step_s: float = 300.0,
                    intense_s: float | None = None) -> np.ndarray:
    """Double-triangle hyetograph: the IDF depth of ``intense_s`` (default a fifth of the
    storm) falls in a central triangle, the rest of the storm's depth in a wider one."""
    _check_storm(duration_s, step_s)
    intense_s = duration_s / 5 if intense_s is None else float(intense_s)
    if not 0 < intense_s < duration_s:
        raise BadInput("design storm: the intense period must be shorter than the storm")
    total = float(idf_depth_mm(a, b, duration_s / 60.0))
    intense = float(idf_depth_mm(a, b, intense_s / 60.0))
    mid = duration_s / 2
    fine = np.linspace(0.0, duration_s, int(duration_s) + 1)

    def triangle(t: np.ndarray, base: float, depth: float) -> np.ndarray:
        return np.clip(1 - np.abs(t - mid) / (base / 2), 0, None) * 2 * depth / base

    outer = total - intense
    rate = triangle(fine, duration_s, outer) + triangle(fine, intense_s, intense)   # mm/s
    cum = np.concatenate([[0.0], np.cumsum((rate[1:] + rate[:-1]) / 2 * np.diff(fine))])
    edges = np.minimum(np.arange(0.0, duration_s + step_s, step_s), duration_s)
    depth = np.diff(np.interp(edges, fine, cum))
    depth *= total / depth.sum()
    return depth / (np.diff(edges) / 3600.0)


def design_storm(return_period_years: float, duration_s: float = 7200.0, step_s: float = 300.0,
                 shape: str = "chicago", peak_fraction: float = 0.4,
                 idf: tuple[float, float] | None = None) -> np.ndarray:
    """Intensities (mm/h per step) of a design storm of the given return period."""
    a, b = idf if idf is not None else montana(return_period_years)
    if shape == "chicago":
        return chicago(a, b, duration_s, step_s, peak_fraction)
    if shape == "double_triangle":
        return double_triangle(a, b, duration_s, step_s)
    raise BadInput(f"design storm: unknown shape {shape!r} (chicago or double_triangle)")


def _check_storm(duration_s: float, step_s: float) -> None:
    if not (step_s > 0 and duration_s >= step_s):
        raise BadInput(f"design storm: need a step > 0 no longer than the duration, got "
                       f"step {step_s} s, duration {duration_s} s")


UNITS = {"mm": "depth per step", "mm/h": "intensity"}


def read_rainfall(path: str | Path, value_column: str | None = None, time_column: str = "date",
                  unit: str = "mm", step_s: float | None = None, gaps: str = "error",
                  start: str | None = None, end: str | None = None) -> pd.Series:
    """A recorded rainfall series from a CSV file, checked, as intensities (mm/h).

    ``unit`` says what the values are: ``mm`` (depth per step) or ``mm/h``. The step is
    the most common spacing of the timestamps unless given. ``gaps='error'`` refuses a
    missing value or a missing stretch of time (naming the line); ``gaps='dry'`` treats
    them as no rain. Negative or non-numeric values are always refused, naming the line.
    ``start``/``end`` cut a window (inclusive) before checking.
    """
    path = Path(path)
    if unit not in UNITS:
        raise BadInput(f"{path}: unknown rainfall unit {unit!r} (expected mm or mm/h)")
    if gaps not in ("error", "dry"):
        raise BadInput(f"rainfall gaps: expected 'error' or 'dry', got {gaps!r}")
    if not path.is_file():
        raise BadInput(f"{path}: no such rainfall file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise BadInput(f"{path}: not a readable CSV file: {exc}") from None
    if time_column not in frame.columns:
        raise BadInput(f"{path}: no {time_column!r} column (columns: {', '.join(frame.columns)})")
    values = [c for c in frame.columns if c != time_column]
    column = value_column or (values[0] if len(values) == 1 else None)
    if column not in frame.columns:
        raise BadInput(f"{path}: name the rainfall column (one of {', '.join(values)})")
    line = pd.Series(np.arange(len(frame)) + 2, index=frame.index)      # header is line 1
    when = pd.to_datetime(frame[time_column], errors="coerce")
    if when.isna().any():
        k = int(np.flatnonzero(when.isna())[0])
        raise BadInput(f"{path}, line {line[k]}: {time_column} {frame[time_column][k]!r} is not "
                       "a date and time")
    raw = frame[column].str.strip()
    value = pd.to_numeric(raw.where(raw != ""), errors="coerce")
    bad = value.isna() & (raw != "")
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise BadInput(f"{path}, line {line[k]}: rainfall {raw[k]!r} is not a number")
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= when >= pd.Timestamp(start)
    if end is not None:
        keep &= when <= pd.Timestamp(end)
    when, value, line = when[keep], value[keep], line[keep]
    if not len(when):
        raise BadInput(f"{path}: no rainfall between {start} and {end}")
    order = np.diff(when.to_numpy()).astype("timedelta64[s]").astype(float)
    if (order <= 0).any():
        k = int(np.flatnonzero(order <= 0)[0]) + 1
        raise BadInput(f"{path}, line {line.iloc[k]}: timestamps must increase "
                       f"({when.iloc[k]} after {when.iloc[k - 1]})")
    if (value < 0).any():
        k = int(np.flatnonzero((value < 0).to_numpy())[0])
        raise BadInput(f"{path}, line {line.iloc[k]}: negative rainfall {value.iloc[k]:g} {unit}")
    step = float(step_s) if step_s else float(pd.Series(order).mode().iloc[0]) if len(order) else 300.0
    if gaps == "error":
        if value.isna().any():
            k = int(np.flatnonzero(value.isna().to_numpy())[0])
            raise BadInput(f"{path}, line {line.iloc[k]}: missing rainfall value at "
                           f"{when.iloc[k]} (use gaps='dry' to read it as no rain)")
        jump = np.flatnonzero(np.abs(order - step) > 1e-6)
        if len(jump):
            k = int(jump[0]) + 1
            raise BadInput(f"{path}, line {line.iloc[k]}: a gap in the record: {when.iloc[k - 1]} "
                           f"to {when.iloc[k]} instead of a {step:g} s step (use gaps='dry' to "
                           "read gaps as no rain)")
    series = pd.Series(value.fillna(0.0).to_numpy(), index=pd.DatetimeIndex(when.to_numpy()))
    regular = series.resample(pd.Timedelta(seconds=step)).sum().fillna(0.0)
    if unit == "mm":
        regular = regular * (3600.0 / step)
    regular.name = "rain_mm_h"
    regular.index.name = "time"
    return regular
