"""Measured series: read, checked, converted to the sensors' units, put on the model's
time base, with excluded periods blanked.

Every problem names the file and, where it has one, the line: an unknown sensor id, a
unit that does not fit the sensor's quantity, unreadable numbers or times, or no
measurement inside the simulated period.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from calibration.config import UNITS, CalibrationSpec, ObservationFile, SensorSpec
from twin.errors import BadInput

TIME_COLUMNS = ("timestamp", "time", "datetime", "date")


def _read_table(obs: ObservationFile) -> pd.DataFrame:
    path = Path(obs.file)
    if not path.is_file():
        raise BadInput(f"observations: no such file {path}")
    try:
        if obs.format == "battledim":
            frame = pd.read_csv(path, sep=";", decimal=",", dtype=str)
        else:
            frame = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise BadInput(f"{path}: not a readable CSV table: {exc}") from None
    if frame.empty:
        raise BadInput(f"{path}: no rows")
    return frame


def _times(frame: pd.DataFrame, column: str, path: Path) -> pd.DatetimeIndex:
    times = pd.to_datetime(frame[column], errors="coerce")
    bad = np.flatnonzero(times.isna().to_numpy())
    if bad.size:
        k = int(bad[0])
        raise BadInput(f"{path}:{k + 2}: {column}: expected a date and time, got "
                       f"{frame[column].iloc[k]!r} ({bad.size} such row(s))")
    return pd.DatetimeIndex(times)


def _numbers(values: pd.Series, path: Path, column: str, decimal_comma: bool) -> np.ndarray:
    text = values.astype("string").str.strip()
    if decimal_comma:
        text = text.str.replace(",", ".", regex=False)
    out = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(out) & text.notna().to_numpy() & (text != "").to_numpy()
                         & ~text.str.lower().isin(["nan", "na", "null"]).to_numpy())
    if bad.size:
        k = int(bad[0])
        raise BadInput(f"{path}:{k + 2}: {column}: expected a number, got {values.iloc[k]!r} "
                       f"({bad.size} such row(s))")
    return out


def _factor(file_unit: str, sensor: SensorSpec, where: str) -> float:
    """Multiplier from ``file_unit`` to the sensor's unit; an error if they do not fit."""
    fam_f, to_si_f = UNITS[file_unit]
    fam_s, to_si_s = UNITS[sensor.unit]
    if fam_f != fam_s:
        raise BadInput(f"{where}: unit mismatch for sensor {sensor.id!r}: the file gives "
                       f"{file_unit} ({fam_f}), the sensor is a {sensor.quantity} in "
                       f"{sensor.unit} ({fam_s})")
    return to_si_f / to_si_s


def _request_counts(obs: ObservationFile, sensors: dict[str, SensorSpec]) -> pd.DataFrame:
    """A request log counted per calendar day and service_code (requests/d), over the
    days the log covers (a day without a request of a service counts 0)."""
    from twin.agents.open311 import read_myla311, read_open311
    from twin.agents.services import default_catalogue

    path = Path(obs.file)
    if not path.is_file():
        raise BadInput(f"observations: no such file {path}")
    result = read_myla311(path) if obs.format == "myla311" else \
        read_open311(path, default_catalogue())
    log = result.requests
    if log.empty:
        raise BadInput(f"{path}: no request could be read ({len(result.errors)} bad rows)")
    wanted = list(obs.sensors) if obs.sensors is not None else list(sensors)
    unknown = sorted(set(wanted) - set(sensors))
    if unknown:
        raise BadInput(f"{path}: unknown sensor id(s) {', '.join(unknown)}; the calibration's "
                       f"sensors are {', '.join(sensors)}")
    for sid in wanted:
        if sensors[sid].quantity != "request_count":
            raise BadInput(f"{path}: a request log gives request_count sensors (service codes); "
                           f"sensor {sid!r} is a {sensors[sid].quantity}")
    day = log["requested_datetime"].dt.floor("D")
    counts = pd.crosstab(day, log["service_code"])
    days = pd.date_range(day.min(), day.max(), freq="D")
    return counts.reindex(index=days, columns=wanted, fill_value=0).astype(float)


def read_file(obs: ObservationFile, sensors: dict[str, SensorSpec]) -> pd.DataFrame:
    """One observation file as a wide frame in the sensors' units."""
    if obs.format in ("open311", "myla311"):
        return _request_counts(obs, sensors)
    path, frame = Path(obs.file), _read_table(obs)
    if obs.format == "tidy":
        need = {"time", "sensor", "value", "unit"}
        missing = need - set(frame.columns)
        if missing:
            raise BadInput(f"{path}: missing column(s) {sorted(missing)}; a tidy file has "
                           "time, sensor, value, unit")
        unknown = sorted(set(frame["sensor"]) - set(sensors))
        if unknown:
            k = int(np.flatnonzero(frame["sensor"].isin(unknown).to_numpy())[0])
            raise BadInput(f"{path}:{k + 2}: unknown sensor id(s) {', '.join(unknown[:10])}; "
                           f"known: {', '.join(sensors)}")
        frame = frame.reset_index(drop=True)      # positions + 2 are the file's lines
        times = _times(frame, "time", path)
        values = _numbers(frame["value"], path, "value", False)
        factors = np.empty(len(frame))
        units = frame["unit"].astype(str).str.strip().str.lower()
        for (unit, sensor), rows in frame.groupby([units, frame["sensor"]]).indices.items():
            where = f"{path}:{int(rows[0]) + 2}"
            if unit not in UNITS:
                raise BadInput(f"{where}: unit {frame['unit'].iloc[rows[0]]!r}: expected one "
                               f"of {', '.join(UNITS)}")
            factors[rows] = _factor(unit, sensors[sensor], where)
        keep = frame["sensor"].isin(obs.sensors or list(sensors)).to_numpy()
        frame, times, values, factors = frame[keep], times[keep], values[keep], factors[keep]
        tidy = pd.DataFrame({"time": times, "sensor": frame["sensor"].to_numpy(),
                             "value": values * factors})
        return tidy.pivot_table(index="time", columns="sensor", values="value", aggfunc="mean")
    time_col = next((c for c in frame.columns if c.strip().lower() in TIME_COLUMNS), None)
    if time_col is None:
        raise BadInput(f"{path}:1: no time column; expected the first column named one of "
                       f"{', '.join(TIME_COLUMNS)}, got {list(frame.columns)[:5]}")
    columns = [c for c in frame.columns if c != time_col]
    chosen = list(obs.sensors) if obs.sensors is not None else columns
    unknown = sorted(set(chosen) - set(sensors))
    if unknown:
        raise BadInput(f"{path}:1: unknown sensor id(s) {', '.join(unknown[:10])}; the "
                       f"calibration's sensors are {', '.join(sensors)} (list the columns to "
                       "use under `sensors:` of this file to skip others)")
    absent = sorted(set(chosen) - set(columns))
    if absent:
        raise BadInput(f"{path}:1: no column for sensor(s) {', '.join(absent)}")
    index = _times(frame, time_col, path)
    out = {}
    for c in chosen:
        values = _numbers(frame[c], path, c, obs.format == "battledim")
        factor = _factor(obs.unit, sensors[c], str(path)) if obs.unit else 1.0
        out[c] = values * factor
    return pd.DataFrame(out, index=index).sort_index()


def read_observations(spec: CalibrationSpec) -> pd.DataFrame:
    """Every sensor's measurements (datetime index, sensor columns, the sensors' units)."""
    sensors = {s.id: s for s in spec.sensors}
    frames = [read_file(o, sensors) for o in spec.observations]
    data = pd.concat(frames, axis=1) if frames else pd.DataFrame()
    data = data.T.groupby(level=0).first().T if data.columns.duplicated().any() else data
    missing = [s for s in sensors if s not in data.columns]
    if missing:
        raise BadInput(f"calibration: no observations for sensor(s) {', '.join(missing)} in "
                       f"{', '.join(str(o.file) for o in spec.observations)}")
    return data[list(sensors)]


def on_time_base(data: pd.DataFrame, times: pd.DatetimeIndex, spec: CalibrationSpec,
                 tolerance_s: float | None = None) -> pd.DataFrame:
    """The measurement nearest to each model time (within half a report step), with the
    excluded periods blanked; an error if nothing overlaps the simulated period."""
    tol = pd.Timedelta(seconds=tolerance_s if tolerance_s is not None
                       else spec.model.report_step_s / 2)
    data = data[~data.index.duplicated(keep="first")].sort_index()
    matched = data.reindex(times, method="nearest", tolerance=tol)
    for ex in spec.exclude:
        cols = list(ex.sensors) or list(matched.columns)
        matched.loc[(matched.index >= ex.start) & (matched.index < ex.end), cols] = np.nan
    if not np.isfinite(matched.to_numpy(dtype=float)).any():
        span = (f"{data.index.min()} .. {data.index.max()}" if len(data) else "no data")
        raise BadInput(f"calibration: the observations ({span}) do not overlap the simulated "
                       f"period {times.min()} .. {times.max()}")
    return matched


def initial_levels(spec: CalibrationSpec, data: pd.DataFrame) -> dict[str, float]:
    """Measured level of each tank at the model's start (to start the model there)."""
    out: dict[str, float] = {}
    if not spec.model.initial_levels_from_observations:
        return out
    start = pd.Timestamp(spec.model.start)
    for s in spec.sensors:
        if s.quantity == "level" and s.id in data.columns:
            series = data[s.id].dropna()
            near = series[(series.index >= start - pd.Timedelta(minutes=30))
                          & (series.index <= start + pd.Timedelta(minutes=30))]
            if len(near):
                out[s.element or s.id] = float(near.iloc[0]) * UNITS[s.unit][1]
    return out


def flow_schedules(spec: CalibrationSpec, data: pd.DataFrame,
                   on_share: float = 0.2) -> dict[str, list[tuple[float, int]]]:
    """On/off switching times (seconds from the model start) of each flow sensor's element,
    from its measured flow: on above ``on_share`` of its largest flow. The water model
    uses those of pumps as boundary conditions."""
    out: dict[str, list[tuple[float, int]]] = {}
    if not spec.model.pump_status_from_observations or spec.model.duration_s is None:
        return out
    start = pd.Timestamp(spec.model.start)
    end = start + pd.Timedelta(seconds=spec.model.duration_s)
    for s in spec.sensors:
        if s.quantity != "flow" or s.id not in data.columns:
            continue
        series = data[s.id].dropna()
        series = series[(series.index >= start - pd.Timedelta(hours=1)) & (series.index <= end)]
        if series.empty:
            continue
        top = float(np.abs(series).max())
        on = (np.abs(series.to_numpy()) > on_share * top).astype(int) if top > 0 else \
            np.zeros(len(series), dtype=int)
        seconds = (series.index - start) / pd.Timedelta(seconds=1)
        first = int(on[max(int(np.searchsorted(seconds, 0.0, side="right")) - 1, 0)])
        schedule = [(0.0, first)]
        for t, state in zip(seconds, on):
            if t > 0 and state != schedule[-1][1]:
                schedule.append((float(t), int(state)))
        out[s.element or s.id] = schedule
    return out


__all__ = ["read_observations", "on_time_base", "initial_levels", "read_file", "flow_schedules"]
