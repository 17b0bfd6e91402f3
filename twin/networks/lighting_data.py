"""Real cabinet recordings: reading them (with validation) and running the detector on them.

A recording is a text file with one reading a line, one line a minute: active power in W
(``w-*.txt``) or voltage in V (``v-*.txt``), ``nan`` where the meter had no value, as
written by SLightliMon (``../shared/data/streetlight/slightlimon_cabinet``). The first line
is at the start time given on the command line (the file does not store it).

The schedule of a real cabinet is not known, so the expected profile of each day is the
median of the *other* days at the same clock minute (the cabinet's own dimming steps
come at fixed clock times), used between that night's own switch-on and switch-off.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import BadInput
from twin.networks.lighting_detect import DetectorSettings, OnlineDetector

OFF_THRESHOLD_W = 100.0          # the upstream tool's OFF state: P <= 100 W per phase
MINUTES_PER_DAY = 1440
# a recording's nights: HPS lamps run up for minutes after switch-on and the switch-on
# time moves by minutes from night to night, so the guard is longer than the twin's
RECORDING_SETTINGS = replace(DetectorSettings(), guard_min=10, confirm_min=7)


def read_recording(path: str | Path, quantity: str = "power") -> np.ndarray:
    """Readings of one recording file (NaN where ``nan``); BadInput naming the bad line."""
    path = Path(path)
    unit, low, high = {"power": ("W", 0.0, 1e6), "voltage": ("V", 0.0, 1000.0)}[quantity]
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such recording file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read it as text ({exc})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise BadInput(f"{path}: empty recording: expected one {quantity} reading in {unit} "
                       "per line")
    values = np.empty(len(lines))
    for i, line in enumerate(lines, start=1):
        token = line.strip()
        try:
            value = float(token)
        except ValueError:
            raise BadInput(f"{path}:{i}: expected one {quantity} reading in {unit} (a number "
                           f"or 'nan'), got {token[:40]!r}") from None
        if not np.isnan(value) and not low <= value <= high:
            raise BadInput(f"{path}:{i}: expected a {quantity} between {low:g} and {high:g} "
                           f"{unit}, got {token!r}")
        values[i - 1] = value
    return values


@dataclass
class RecordingNight:
    """One night of a recording: minutes on, energy, when it switched."""

    day: int
    on_minutes: int
    energy_kwh: float
    switch_on_min: int | None
    switch_off_min: int | None


def expected_profile(power_w: np.ndarray, off_w: float = OFF_THRESHOLD_W) -> np.ndarray:
    """Expected power of each minute: the median of the other days at that clock minute,
    kept between the day's own first and last minute on (0 elsewhere)."""
    n_days = int(np.ceil(len(power_w) / MINUTES_PER_DAY))
    grid = np.full(n_days * MINUTES_PER_DAY, np.nan)
    grid[:len(power_w)] = power_w
    days = grid.reshape(n_days, MINUTES_PER_DAY)
    out = np.zeros_like(days)
    for d in range(n_days):
        others = np.delete(days, d, axis=0) if n_days > 1 else days
        seen = np.isfinite(others).any(axis=0)
        ref = np.zeros(MINUTES_PER_DAY)
        ref[seen] = np.nanmedian(others[:, seen], axis=0)
        on = np.flatnonzero(days[d] > off_w)
        if on.size:
            window = np.zeros(MINUTES_PER_DAY, dtype=bool)
            window[on[0]:on[-1] + 1] = True
            out[d] = np.where(window & (ref > off_w), ref, 0.0)
    return out.ravel()[:len(power_w)]


def nights(power_w: np.ndarray, off_w: float = OFF_THRESHOLD_W) -> list[RecordingNight]:
    """Each day's time on, energy and switching minutes (day index, clock minute)."""
    out = []
    for d in range(int(np.ceil(len(power_w) / MINUTES_PER_DAY))):
        day = power_w[d * MINUTES_PER_DAY:(d + 1) * MINUTES_PER_DAY]
        on = np.flatnonzero(day > off_w)
        out.append(RecordingNight(d, int(on.size), float(np.nansum(day)) / 60_000.0,
                                  int(on[0]) if on.size else None,
                                  int(on[-1]) if on.size else None))
    return out


def detect_recording(power_w: np.ndarray, start: dt.datetime | None = None,
                     min_step_w: float = 150.0, lamp_power_w: float = 85.0,
                     channel: str = "cabinet",
                     settings: DetectorSettings = RECORDING_SETTINGS) -> pd.DataFrame:
    """Run the detector over a whole recording; one row per event found.

    ``min_step_w``: the smallest lasting drop to report (150 W: on the SLightliMon cabinet
    the ratio to the other nights wanders by about 1 % (50 W) over hours, so smaller steps
    cannot be told from that drift); a step must last ``confirm_min`` (7) minutes, as in
    the upstream tool. ``lamp_power_w`` (a 70 W HPS lamp with its ballast: 85 W) turns a
    drop into a lamp count.
    """
    expected = expected_profile(power_w)
    on_power = power_w[(expected > 0) & np.isfinite(power_w)]
    scale = float(np.median(on_power)) if on_power.size else 1.0
    detector = OnlineDetector([channel], min_step_rel=[min_step_w / scale],
                              lamp_power_w=lamp_power_w, settings=settings)
    t_s = 60.0 * np.arange(len(power_w)) + 30.0
    detector.update(t_s, power_w[None, :], expected[None, :])
    frame = detector.events_frame()
    for col in ("start_s", "detected_s"):
        minute = (frame[col].to_numpy() - 30.0) / 60.0
        frame[col.replace("_s", "_line")] = minute.astype(int) + 1      # line in the file
        if start is not None:
            frame[col.replace("_s", "_time")] = [
                (start + dt.timedelta(minutes=float(m))).isoformat() for m in minute]
    return frame
