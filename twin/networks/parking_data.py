"""Occupancy recordings of car parks: read, check, summarise, and their daily profiles.

The format is the one of Birmingham City Council's car-park feed (UCI "Parking
Birmingham"): a CSV file with a header naming ``SystemCodeNumber`` (car-park id),
``Capacity`` (spaces), ``Occupancy`` (vehicles) and ``LastUpdated`` (local time,
``YYYY-MM-DD HH:MM:SS``); other columns are ignored, column order is free.

Checks, each reported with its line number: a row with a missing field, a number that is
not a whole number, a time that cannot be read, a negative occupancy reading, an occupancy
above capacity (sensor drift), a car park whose capacity changes, a repeated (car park,
time) reading. Such rows are left out and listed in :attr:`OccupancyRecording.bad_rows`.
A negative capacity is not a reading but the car park's definition: it stops the import.
So does a file without the columns, without any good row, or with more than
``max_bad_share`` of bad rows (it is probably not this format); ``strict=True`` stops at
the first bad row. Every stop raises :class:`~twin.errors.BadInput` naming the file, the
line and what was expected.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from twin.errors import BadInput

COLUMNS = {"carpark_id": "SystemCodeNumber", "capacity": "Capacity",
           "occupancy": "Occupancy", "time": "LastUpdated"}


@dataclass(frozen=True)
class BadRow:
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.problem}"


@dataclass
class OccupancyRecording:
    """Good readings (``carpark_id``, ``time``, ``capacity``, ``occupancy``, ``line``) and the
    rows left out, with the file they came from."""

    path: Path
    readings: pd.DataFrame
    bad_rows: list[BadRow] = field(default_factory=list)

    @property
    def carparks(self) -> pd.DataFrame:
        """One row per car park: capacity, readings, first and last time."""
        g = self.readings.groupby("carpark_id", sort=True)
        return pd.DataFrame({"capacity": g["capacity"].first(), "readings": g.size(),
                             "first": g["time"].min(), "last": g["time"].max(),
                             "mean_share": g["share"].mean()})

    def summary(self, max_listed: int = 10) -> dict:
        """Plain figures of the recording, bad rows by kind and the first ones listed."""
        r = self.readings
        kinds: dict[str, int] = {}
        for b in self.bad_rows:
            key = b.problem.split(":")[0]
            kinds[key] = kinds.get(key, 0) + 1
        cps = self.carparks
        return {"file": str(self.path), "rows": int(len(r) + len(self.bad_rows)),
                "good_rows": int(len(r)), "bad_rows": len(self.bad_rows),
                "bad_rows_by_kind": kinds,
                "bad_rows_listed": [str(b) for b in self.bad_rows[:max_listed]],
                "carparks": int(len(cps)), "capacity_total": int(cps["capacity"].sum()),
                "first": str(r["time"].min()), "last": str(r["time"].max()),
                "mean_occupancy_share": float(r["share"].mean())}

    def check_ids(self, known: Iterable[str], what: str = "car park") -> None:
        """Raise :class:`BadInput` at the first reading of a car park not in ``known``."""
        known = set(known)
        unknown = self.readings.loc[~self.readings["carpark_id"].isin(known)]
        if len(unknown):
            row = unknown.iloc[0]
            examples = ", ".join(repr(k) for k in sorted(known)[:4])
            raise BadInput(f"{self.path}:{int(row['line'])}: SystemCodeNumber: unknown {what} "
                           f"{row['carpark_id']!r} (expected one of {len(known)} ids, "
                           f"e.g. {examples})")


def _parse_time(text: str) -> dt.datetime:
    text = text.strip()
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return dt.datetime.fromisoformat(text)


def _whole(text: str) -> int:
    value = float(text.strip())
    if not np.isfinite(value) or value != int(value):
        raise ValueError(text)
    return int(value)


def _parse_fields(row: list[str], col: dict[str, int]) -> tuple[int, int, dt.datetime] | BadRow:
    """(capacity, occupancy, time) of a row, or what is wrong with it (line set later)."""
    parsed: list = []
    for key, unit in (("capacity", "spaces"), ("occupancy", "vehicles")):
        try:
            parsed.append(_whole(row[col[key]]))
        except ValueError:
            return BadRow(0, COLUMNS[key], f"not a number: expected a whole number of {unit}, "
                                           f"got {row[col[key]]!r}")
    try:
        parsed.append(_parse_time(row[col["time"]]))
    except ValueError:
        return BadRow(0, COLUMNS["time"], f"bad time: expected YYYY-MM-DD HH:MM:SS, got "
                                          f"{row[col['time']]!r}")
    return parsed[0], parsed[1], parsed[2]


def read_occupancy(path: str | Path, strict: bool = False,
                   max_bad_share: float = 0.05) -> OccupancyRecording:
    """Read an occupancy recording (module docstring: format and checks)."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the occupancy file: {exc.strerror}") from None
    ids: list[str] = []
    times: list[dt.datetime] = []
    caps: list[int] = []
    occs: list[int] = []
    lines: list[int] = []
    bad: list[BadRow] = []
    capacity_of: dict[str, tuple[int, int]] = {}
    seen: dict[tuple[str, dt.datetime], int] = {}

    def reject(line: int, name: str, problem: str) -> None:
        if strict:
            raise BadInput(f"{path}:{line}: {name}: {problem}")
        bad.append(BadRow(line, name, problem))

    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise BadInput(f"{path}:1: not a CSV text file ({exc})") from None
        if header is None:
            raise BadInput(f"{path}: empty file; expected a header line with "
                           f"{', '.join(COLUMNS.values())}")
        names = [h.strip() for h in header]
        missing = [c for c in COLUMNS.values() if c not in names]
        if missing:
            raise BadInput(f"{path}:1: header: expected the columns {', '.join(COLUMNS.values())}"
                           f", missing {', '.join(missing)} (got {', '.join(names[:6]) or 'nothing'})")
        col = {key: names.index(name) for key, name in COLUMNS.items()}
        width = len(names)
        try:
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) < width:
                    reject(line, "row", f"missing fields: expected {width} fields, got {len(row)}")
                    continue
                cid = row[col["carpark_id"]].strip()
                if not cid:
                    reject(line, COLUMNS["carpark_id"], "empty car-park id")
                    continue
                values = _parse_fields(row, col)
                if isinstance(values, BadRow):
                    reject(line, values.field, values.problem)
                    continue
                cap, occ, when = values
                if cap < 0:
                    raise BadInput(f"{path}:{line}: Capacity: expected a capacity >= 0 spaces for "
                                   f"car park {cid!r}, got {cap}")
                if occ < 0:
                    reject(line, COLUMNS["occupancy"], f"negative reading: {occ} vehicles "
                           f"(car park {cid!r})")
                    continue
                if occ > cap:
                    reject(line, COLUMNS["occupancy"], f"above capacity: {occ} vehicles in "
                           f"{cap} spaces (car park {cid!r})")
                    continue
                first = capacity_of.setdefault(cid, (cap, line))
                if first[0] != cap:
                    reject(line, COLUMNS["capacity"], f"capacity changed: {cap} spaces, but "
                           f"{first[0]} on line {first[1]} (car park {cid!r})")
                    continue
                key = (cid, when)
                if key in seen:
                    reject(line, COLUMNS["time"], f"repeated reading: car park {cid!r} at "
                           f"{when} already on line {seen[key]}")
                    continue
                seen[key] = line
                ids.append(cid)
                times.append(when)
                caps.append(cap)
                occs.append(occ)
                lines.append(line)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise BadInput(f"{path}:{reader.line_num}: not readable as CSV text ({exc})") from None
    total = len(ids) + len(bad)
    if not ids:
        first = f"; first problem: {bad[0]}" if bad else ""
        raise BadInput(f"{path}: no good reading in {total} rows{first}")
    if len(bad) > max_bad_share * total:
        listed = "; ".join(str(b) for b in bad[:3])
        raise BadInput(f"{path}: {len(bad)} of {total} rows are bad (more than "
                       f"{max_bad_share:.0%}; is this an occupancy recording?): {listed}")
    readings = pd.DataFrame({"carpark_id": ids, "time": pd.to_datetime(times),
                             "capacity": np.asarray(caps, dtype=np.int64),
                             "occupancy": np.asarray(occs, dtype=np.int64),
                             "line": np.asarray(lines, dtype=np.int64)})
    cap_f = readings["capacity"].to_numpy(float)
    readings["share"] = np.divide(readings["occupancy"].to_numpy(float), cap_f,
                                  out=np.full(len(cap_f), np.nan), where=cap_f > 0)
    return OccupancyRecording(path=path, readings=readings, bad_rows=bad)


def daily_profile(recording: OccupancyRecording, day_types: tuple[int, ...] = (0,),
                  slot_min: int = 30, min_readings: int = 20) -> pd.DataFrame:
    """Mean occupancy share by time of day (slots of ``slot_min``, readings rounded to the
    nearest slot) over the days of the given types (0 weekday, 1 Saturday, 2 Sunday).

    Each car park's mean share per slot is taken first, then the mean over car parks, so a
    large car park does not stand for the city. Slots with fewer than ``min_readings``
    readings are left out. Index ``hour`` (decimal hours); columns ``share``,
    ``carparks``, ``readings``.
    """
    r = recording.readings.dropna(subset=["share"])
    t = r["time"]
    minutes = t.dt.hour * 60 + t.dt.minute + t.dt.second / 60
    slot = np.round(minutes / slot_min) * slot_min / 60.0
    weekday = t.dt.day_of_week.to_numpy()
    dtypes = np.where(weekday < 5, 0, weekday - 4)          # as parking_demand.day_type
    keep = np.isin(dtypes, day_types)
    frame = pd.DataFrame({"hour": slot[keep], "carpark_id": r["carpark_id"][keep],
                          "share": r["share"][keep]})
    per_cp = frame.groupby(["hour", "carpark_id"])["share"].mean()
    out = pd.DataFrame({"share": per_cp.groupby(level="hour").mean(),
                        "carparks": per_cp.groupby(level="hour").size(),
                        "readings": frame.groupby("hour").size()})
    return out[out["readings"] >= min_readings]
