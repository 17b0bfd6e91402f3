"""Astronomical clock: sunrise and sunset from the NOAA solar equations, offline.

The equations are those of NOAA's Solar Calculator (Meeus, *Astronomical
Algorithms*): the sun's declination and the equation of time from the Julian
century, the sunrise hour angle for a zenith of 90.833 degrees (refraction and the
sun's radius). Accurate to about a minute between latitudes +-65 degrees;
above that the sun may not rise (polar night) or not set (midnight sun), which
the functions report instead of failing.

Everything is vectorised over dates, so a year of nights costs one call.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

ZENITH_DEG = 90.833              # geometric zenith of the upper limb at sunrise/sunset
_EPOCH = dt.date(1970, 1, 1)
_JD_UNIX_EPOCH = 2440587.5       # Julian day of 1970-01-01 00:00 UTC


def _solar_terms(jd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Declination (rad) and equation of time (minutes) at Julian days ``jd``."""
    t = (jd - 2451545.0) / 36525.0
    l0 = np.radians(np.mod(280.46646 + t * (36000.76983 + t * 0.0003032), 360.0))
    m = np.radians(357.52911 + t * (35999.05029 - 0.0001537 * t))
    e = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    c = (np.sin(m) * (1.914602 - t * (0.004817 + 0.000014 * t))
         + np.sin(2 * m) * (0.019993 - 0.000101 * t) + np.sin(3 * m) * 0.000289)
    omega = np.radians(125.04 - 1934.136 * t)
    app_long = np.radians(np.degrees(l0) + c - 0.00569 - 0.00478 * np.sin(omega))
    eps0 = 23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60.0) / 60.0
    eps = np.radians(eps0 + 0.00256 * np.cos(omega))
    decl = np.arcsin(np.sin(eps) * np.sin(app_long))
    y = np.tan(eps / 2) ** 2
    eot_min = 4.0 * np.degrees(
        y * np.sin(2 * l0) - 2 * e * np.sin(m) + 4 * e * y * np.sin(m) * np.cos(2 * l0)
        - 0.5 * y * y * np.sin(4 * l0) - 1.25 * e * e * np.sin(2 * m))
    return decl, eot_min


def sun_events_utc(lon_deg: float, lat_deg: float, days: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sunrise and sunset in minutes after 00:00 UTC of each day.

    ``days`` are day numbers since 1970-01-01 (``datetime64[D]`` or integers).
    Returns ``(sunrise_min, sunset_min, polar)``: ``polar`` is +1 where the sun
    stays up all day (both times NaN), -1 where it stays down, 0 otherwise.
    Each time is refined twice with the sun's position at that time.
    """
    d = np.asarray(days).astype("datetime64[D]").astype(np.int64).astype(float)
    lat = np.radians(lat_deg)
    out = []
    polar = np.zeros(d.shape, dtype=np.int64)
    for sign in (-1.0, 1.0):              # sunrise, then sunset
        event_min = np.full(d.shape, 720.0 - 4.0 * lon_deg)
        for _ in range(3):
            decl, eot = _solar_terms(_JD_UNIX_EPOCH + d + event_min / 1440.0)
            cos_ha = (np.cos(np.radians(ZENITH_DEG)) / (np.cos(lat) * np.cos(decl))
                      - np.tan(lat) * np.tan(decl))
            ha_deg = np.degrees(np.arccos(np.clip(cos_ha, -1.0, 1.0)))
            event_min = 720.0 - 4.0 * lon_deg - eot + sign * 4.0 * ha_deg
        # polarity from the sun at local solar noon (the refined time may wander off)
        decl, _ = _solar_terms(_JD_UNIX_EPOCH + d + (720.0 - 4.0 * lon_deg) / 1440.0)
        cos_ha = (np.cos(np.radians(ZENITH_DEG)) / (np.cos(lat) * np.cos(decl))
                  - np.tan(lat) * np.tan(decl))
        polar = np.where(cos_ha < -1.0, 1, np.where(cos_ha > 1.0, -1, 0))
        out.append(np.where(polar == 0, event_min, np.nan))
    return out[0], out[1], polar


@dataclass(frozen=True)
class SunTimes:
    """One day's sunrise and sunset (aware datetimes in the zone asked), or a polar day."""

    date: dt.date
    sunrise: dt.datetime | None
    sunset: dt.datetime | None
    polar: str | None = None          # 'midnight_sun', 'polar_night' or None


@lru_cache(maxsize=32)
def zone(name: str) -> dt.tzinfo:
    """A time zone by IANA name (``Europe/Paris``), or a fixed offset ``UTC+02:00``/``UTC``."""
    if name.upper() == "UTC":
        return dt.timezone.utc
    if name.upper().startswith("UTC") and len(name) > 3:
        sign = -1 if name[3] == "-" else 1
        hh, _, mm = name[4:].partition(":")
        return dt.timezone(sign * dt.timedelta(hours=int(hh), minutes=int(mm or 0)))
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def sun_times(lon_deg: float, lat_deg: float, date: dt.date, tz: str = "UTC") -> SunTimes:
    """Sunrise and sunset of ``date`` at (lon, lat), in the time zone ``tz``."""
    rise, set_, polar = sun_events_utc(lon_deg, lat_deg, np.array([date], dtype="datetime64[D]"))
    if polar[0]:
        return SunTimes(date, None, None, "midnight_sun" if polar[0] > 0 else "polar_night")
    midnight = dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc)
    local = zone(tz)
    return SunTimes(date,
                    (midnight + dt.timedelta(minutes=float(rise[0]))).astimezone(local),
                    (midnight + dt.timedelta(minutes=float(set_[0]))).astimezone(local))


def dark_intervals_utc_min(lon_deg: float, lat_deg: float, start_utc_min: float,
                           end_utc_min: float, on_after_sunset_min: float = 0.0,
                           off_before_sunrise_min: float = 0.0) -> np.ndarray:
    """Intervals (n, 2) in UTC minutes since 1970 when street lights burn, within [start, end].

    Lights switch on ``on_after_sunset_min`` after sunset and off
    ``off_before_sunrise_min`` before sunrise; a polar night burns all day, a
    midnight-sun day not at all.
    """
    first = int(np.floor(start_utc_min / 1440.0)) - 1
    last = int(np.floor(end_utc_min / 1440.0)) + 1
    days = np.arange(first, last + 1)
    rise, set_, polar = sun_events_utc(lon_deg, lat_deg, days)
    base = days * 1440.0
    # light (lamps off) intervals per day, then their complement
    lo = np.where(polar == 0, base + rise - off_before_sunrise_min,
                  np.where(polar > 0, base, np.nan))
    hi = np.where(polar == 0, base + set_ + on_after_sunset_min,
                  np.where(polar > 0, base + 1440.0, np.nan))
    keep = ~np.isnan(lo) & (hi > lo)
    light = sorted(zip(lo[keep], hi[keep]))
    merged: list[list[float]] = []
    for a, b in light:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    dark = []
    cursor = float(first * 1440.0)
    for a, b in merged:
        if a > cursor:
            dark.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < (last + 1) * 1440.0:
        dark.append((cursor, float((last + 1) * 1440.0)))
    clipped = [(max(a, start_utc_min), min(b, end_utc_min)) for a, b in dark]
    return np.array([(a, b) for a, b in clipped if b > a], dtype=float).reshape(-1, 2)


def utc_minutes(when: dt.datetime, tz: str) -> float:
    """Minutes since 1970-01-01 UTC of ``when`` (naive datetimes are read in ``tz``)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone(tz))
    return (when.astimezone(dt.timezone.utc)
            - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).total_seconds() / 60.0
