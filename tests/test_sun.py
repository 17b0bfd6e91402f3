"""The astronomical clock against published almanac times (timeanddate.com / USNO), +-2 min."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from twin.sun import dark_intervals_utc_min, sun_times, utc_minutes

PARIS = (2.3522, 48.8566)
TROMSO = (18.9553, 69.6492)


def _minutes(when: dt.datetime) -> float:
    return when.hour * 60 + when.minute + when.second / 60


@pytest.mark.parametrize("date, lonlat, tz, sunrise, sunset", [
    (dt.date(2026, 6, 21), PARIS, "Europe/Paris", "05:47", "21:58"),     # summer solstice
    (dt.date(2026, 12, 21), PARIS, "Europe/Paris", "08:41", "16:56"),    # winter solstice
    (dt.date(2026, 6, 21), (-77.0369, 38.9072), "America/New_York", "05:43", "20:37"),  # Washington
])
def test_sunrise_sunset_match_the_almanac(date, lonlat, tz, sunrise, sunset):
    s = sun_times(*lonlat, date, tz)
    for got, want in ((s.sunrise, sunrise), (s.sunset, sunset)):
        hh, mm = map(int, want.split(":"))
        assert abs(_minutes(got) - (hh * 60 + mm)) <= 2.0, (got, want)


def test_polar_day_and_night():
    assert sun_times(*TROMSO, dt.date(2026, 6, 21)).polar == "midnight_sun"
    assert sun_times(*TROMSO, dt.date(2026, 12, 21)).polar == "polar_night"
    # midsummer in Tromso: the lights never switch on; midwinter: they burn all day
    start = utc_minutes(dt.datetime(2026, 6, 20), "UTC")
    assert len(dark_intervals_utc_min(*TROMSO, start, start + 3 * 1440)) == 0
    start = utc_minutes(dt.datetime(2026, 12, 20), "UTC")
    dark = dark_intervals_utc_min(*TROMSO, start, start + 3 * 1440)
    assert dark.tolist() == [[start, start + 3 * 1440]]


def test_dark_intervals_follow_sunset_and_sunrise_with_offsets():
    start = utc_minutes(dt.datetime(2026, 12, 21, 12), "Europe/Paris")
    dark = dark_intervals_utc_min(*PARIS, start, start + 1440, 10, 10)
    assert dark.shape == (1, 2)
    s21, s22 = sun_times(*PARIS, dt.date(2026, 12, 21)), sun_times(*PARIS, dt.date(2026, 12, 22))
    on = utc_minutes(s21.sunset, "UTC") + 10
    off = utc_minutes(s22.sunrise, "UTC") - 10
    assert np.allclose(dark[0], [on, off], atol=0.01)
    # a Paris winter night, 16:56 to 08:42 (15 h 46 min), less the two 10 min offsets
    assert abs((off - on) / 60 - (15 + 26 / 60)) < 2 / 60
