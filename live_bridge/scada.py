"""SCADA folders in the BattLeDIM layout: read and write.

A folder holds up to four files per year, ``<year>_SCADA_Pressures.csv`` (m),
``<year>_SCADA_Flows.csv`` (m3/h), ``<year>_SCADA_Levels.csv`` (m) and
``<year>_SCADA_Demands.csv`` (AMR demands, L/h): semicolon-separated, decimal
comma, the first column the timestamp, one column per sensor. Any file may be
absent; several years are joined in time order.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import BadInput

KINDS = {"pressures": "Pressures", "flows": "Flows", "levels": "Levels", "demands": "Demands"}
UNITS = {"pressures": "m", "flows": "m3/h", "levels": "m", "demands": "L/h"}
_NAME = re.compile(r"^(\d{4})_SCADA_(Pressures|Flows|Levels|Demands)\.csv$", re.IGNORECASE)


class ScadaError(BadInput):
    """A SCADA folder or file that cannot be read."""


def scada_files(folder: str | Path) -> dict[str, list[Path]]:
    """The SCADA files of ``folder`` by kind (pressures, flows, levels, demands)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScadaError(f"SCADA folder not found: {folder}")
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        m = _NAME.match(path.name)
        if m:
            kind = m.group(2).lower()
            found.setdefault(kind, []).append(path)
    if not found:
        raise ScadaError(f"{folder}: no SCADA file in the folder (expected "
                         f"<year>_SCADA_<Pressures|Flows|Levels|Demands>.csv)")
    return found


def read_scada_file(path: str | Path) -> pd.DataFrame:
    """One SCADA file as a float frame indexed by timestamp (checked)."""
    path = Path(path)
    try:
        df = pd.read_csv(path, sep=";", decimal=",", index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ScadaError(f"{path}: not a SCADA file (semicolon-separated, decimal comma): "
                         f"{exc}") from None
    if df.shape[1] == 0:
        raise ScadaError(f"{path}: no sensor column (is it semicolon-separated?)")
    try:
        df.index = pd.to_datetime(df.index)
    except (ValueError, TypeError) as exc:
        raise ScadaError(f"{path}: first column must be timestamps: {exc}") from None
    df.index.name = "Timestamp"
    df.columns = [str(c).strip() for c in df.columns]
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    for c in bad:       # a stray text value: report where
        conv = pd.to_numeric(df[c].astype(str).str.replace(",", ".", regex=False),
                             errors="coerce")
        wrong = df[c][conv.isna() & df[c].notna()]
        if len(wrong):
            raise ScadaError(f"{path}: column {c!r}, row {wrong.index[0]}: not a number: "
                             f"{wrong.iloc[0]!r}")
        df[c] = conv
    if not df.index.is_monotonic_increasing:
        df = df.sort_index()
    df = df[~df.index.duplicated(keep="first")]
    return df.astype(float)


def read_scada(folder: str | Path, kinds=None) -> dict[str, pd.DataFrame]:
    """Every SCADA file of ``folder`` by kind; years are joined in time order."""
    out = {}
    for kind, paths in scada_files(folder).items():
        if kinds is not None and kind not in kinds:
            continue
        frames = [read_scada_file(p) for p in paths]
        df = pd.concat(frames).sort_index() if len(frames) > 1 else frames[0]
        out[kind] = df[~df.index.duplicated(keep="first")]
    return out


def write_scada(folder: str | Path, year: int, frames: dict[str, pd.DataFrame],
                decimals: int = 2) -> list[Path]:
    """Write ``frames`` (by kind) as ``<year>_SCADA_<Kind>.csv`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, df in frames.items():
        if kind not in KINDS:
            raise ValueError(f"unknown SCADA kind {kind!r}; expected one of {sorted(KINDS)}")
        path = folder / f"{year}_SCADA_{KINDS[kind]}.csv"
        out = df.copy()
        out.index = pd.DatetimeIndex(out.index).strftime("%Y-%m-%d %H:%M:%S")
        out.index.name = "Timestamp"
        out = out.round(decimals)
        out.to_csv(path, sep=";", decimal=",", float_format=f"%.{decimals}f")
        written.append(path)
    return written


def regular_index(frames: dict[str, pd.DataFrame]) -> pd.DatetimeIndex:
    """The common time base of several SCADA frames (their union, sorted)."""
    idx = None
    for df in frames.values():
        idx = df.index if idx is None else idx.union(df.index)
    if idx is None:
        raise ScadaError("no SCADA data")
    return pd.DatetimeIndex(idx)


def step_seconds(index: pd.DatetimeIndex) -> int:
    """The sampling step of a time index (the median spacing), in whole seconds."""
    if len(index) < 2:
        raise ScadaError("a SCADA series needs at least two timestamps")
    step = int(round(float(np.median(np.diff(index)) / pd.Timedelta(1, "s"))))
    if step <= 0:
        raise ScadaError("SCADA timestamps must increase")
    return step
