"""The service catalogue: what citizens can report, who answers, how fast, how often.

One :class:`Service` per Open311 ``service_code``. The catalogue is declared once
as a table (``_CATALOGUE_ROWS``) and each number says where it comes from:

* **Volume.** ``rate_per_1000_per_year`` sums to 244 requests per 1,000
  inhabitants per year, i.e. 61,000 background requests a year for 250,000
  inhabitants, the middle of the 50,000-70,000 a year that issue 4 gives for a
  mid-size city (Paris' DansMaRue app alone took 59,332 reports in 2015; Dijon,
  260,000 inhabitants, takes about 630 calls a day). Only that total is
  calibrated. The split between services is an assumption: street-cleanliness
  requests (bulky items, illegal dumping, graffiti, dirty street, bins) take
  about two thirds, as in the Los Angeles MyLA311 log of late December 2017
  (bulky items 44 %, graffiti 29 %, illegal dumping 8 % of 9,999 rows, see
  /work/shared/data/requests311/README.md) and as in French "propreté"
  services, with network faults (roads, lighting, water, sewer) a few percent
  each.
* **Promise.** ``promise_h`` is the service-level promise (expected =
  requested + promise_h). Urgent network faults (water in the street, sewer
  overflow, flooding) are answered within hours; the scheduled services follow
  the LA medians of time to close (bulky items 4.95 days, illegal dumping 5.06,
  single street light 6.49, dead animal 1.94, graffiti same day) rounded to a
  French city's usual promise; abandoned vehicles follow the 7 days after which
  French law (Code de la route R417-12) treats parking as abusive.
* **Profiles.** :func:`demand_profile` gives month, weekday and hour factors,
  each of mean 1. Hours and weekdays are measured on the LA log (citizen
  channels, i.e. without "Driver Self Report"), see ``_LA_*`` below and
  :func:`profiles_from_log`, which recomputes them. Months cannot be measured
  on 4.4 days of December: they are documented assumptions (see
  ``_MONTH_PROFILES``), except the lighting one, which follows the length of
  the night at the demo city's latitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.errors import BadInput

SKILLS: tuple[str, ...] = ("water", "sewer", "lighting", "waste", "roads", "parking", "other")
PRIORITIES: tuple[int, ...] = (1, 2, 3)      # 1 urgent, 2 soon, 3 routine


class CatalogueError(BadInput):
    """A service declared with a skill, priority or number out of range."""


@dataclass(frozen=True)
class Service:
    """One kind of request.

    ``promise_h``: hours from ``requested_datetime`` to ``expected_datetime``.
    ``rate_per_1000_per_year``: background requests per 1,000 inhabitants per year.
    ``skill``: which crew answers (one of :data:`SKILLS`); ``priority`` 1 urgent .. 3 routine.
    """

    service_code: str
    service_name: str
    description: str
    agency_responsible: str
    skill: str
    priority: int
    promise_h: float
    rate_per_1000_per_year: float
    keywords: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"service {self.service_code!r}"
        if not self.service_code or not self.service_code.replace("_", "").isalnum():
            raise CatalogueError(f"{where}: service_code: expected letters, digits and '_'")
        if self.skill not in SKILLS:
            raise CatalogueError(f"{where}: skill: expected one of {SKILLS}, got {self.skill!r}")
        if self.priority not in PRIORITIES:
            raise CatalogueError(f"{where}: priority: expected 1, 2 or 3, got {self.priority!r}")
        if not self.promise_h > 0:
            raise CatalogueError(f"{where}: promise_h: expected > 0 hours, got {self.promise_h!r}")
        if not self.rate_per_1000_per_year >= 0:
            raise CatalogueError(f"{where}: rate_per_1000_per_year: expected >= 0, "
                                 f"got {self.rate_per_1000_per_year!r}")


# code, name, description, agency, skill, priority, promise_h, rate /1000/yr, keywords,
# (month profile, weekday profile, hour profile)
_CLEAN, _ROADS, _WATER = "Propreté urbaine", "Voirie", "Eau et assainissement"
_LIGHT, _POLICE, _PARK = "Éclairage public", "Police municipale", "Stationnement"
_CATALOGUE_ROWS: tuple[tuple, ...] = (
    ("bulky_items", "Bulky items pickup", "Furniture or appliances to collect from the kerb",
     _CLEAN, "waste", 3, 120.0, 60.0, ("encombrants", "furniture", "appliance"),
     ("moving", "la_citizen", "la_bulky")),
    ("illegal_dumping", "Illegal dumping", "Rubbish or rubble dumped on public space",
     _CLEAN, "waste", 3, 120.0, 34.0, ("dépôt sauvage", "dumping", "rubbish"),
     ("summer", "la_citizen", "la_citizen")),
    ("graffiti", "Graffiti removal", "Graffiti or tags on a public or street-facing wall",
     _CLEAN, "waste", 3, 72.0, 28.0, ("tag", "graffiti"),
     ("spring_summer", "la_citizen", "la_graffiti")),
    ("dirty_street", "Dirty street", "Litter, leaves or spills on a street or pavement",
     _CLEAN, "waste", 3, 48.0, 20.0, ("propreté", "litter", "cleaning"),
     ("summer", "la_citizen", "la_citizen")),
    ("overflowing_bin", "Overflowing bin", "A public litter bin or bring bank is full",
     _CLEAN, "waste", 2, 24.0, 14.0, ("corbeille", "bin", "container"),
     ("summer", "la_citizen", "la_citizen")),
    ("pothole", "Pothole", "A hole or broken surface on the carriageway or pavement",
     _ROADS, "roads", 2, 72.0, 14.0, ("nid de poule", "road", "pavement"),
     ("freeze_thaw", "la_citizen", "la_citizen")),
    ("street_light_out", "Street light out", "One or several street lamps off or flickering",
     _LIGHT, "lighting", 2, 72.0, 12.0, ("lampadaire", "lamp", "lighting"),
     ("long_nights", "la_citizen", "la_citizen")),
    ("water_leak_street", "Water leak in the street", "Water coming out of the ground or a hydrant",
     _WATER, "water", 1, 4.0, 3.0, ("fuite", "leak", "hydrant"),
     ("frost", "la_citizen", "la_citizen")),
    ("sewer_blocked", "Sewer overflow or blocked drain", "A drain is blocked or a manhole overflows",
     _WATER, "sewer", 1, 8.0, 4.0, ("égout", "avaloir", "drain", "sewer"),
     ("storms", "la_citizen", "la_citizen")),
    ("flooded_street", "Flooded street", "Standing or running water covering a street",
     _WATER, "sewer", 1, 4.0, 2.0, ("inondation", "flood"),
     ("storms", "la_citizen", "la_citizen")),
    ("noise", "Noise", "Noise from a neighbour, a bar, a building site or the street",
     _POLICE, "other", 2, 24.0, 12.0, ("bruit", "noise", "nuisance"),
     ("summer_nights", "weekend_up", "evening_night")),
    ("abandoned_vehicle", "Abandoned vehicle", "A vehicle parked in the same place for over 7 days",
     _POLICE, "parking", 3, 168.0, 8.0, ("véhicule ventouse", "car", "wreck"),
     ("flat", "la_citizen", "la_citizen")),
    ("parking_permit_renewal", "Resident parking permit renewal",
     "Renew a resident parking subscription", _PARK, "parking", 3, 72.0, 16.0,
     ("abonnement résident", "permit", "parking"), ("flat", "la_citizen", "la_citizen")),
    ("dead_animal", "Dead animal removal", "A dead animal on a street or in a park",
     _CLEAN, "waste", 2, 24.0, 3.0, ("animal mort", "carcass"),
     ("summer", "la_citizen", "la_citizen")),
    ("other", "Other", "Any other report or question about public space",
     "Mairie", "other", 3, 240.0, 14.0, ("autre", "other"), ("flat", "la_citizen", "la_citizen")),
)


def default_catalogue() -> dict[str, Service]:
    """The default catalogue of 15 services, by ``service_code`` (see the module docstring)."""
    return {row[0]: Service(*row[:8], keywords=tuple(row[8])) for row in _CATALOGUE_ROWS}


def requests_per_year(catalogue: dict[str, Service], population: int) -> float:
    """Expected background requests per year for ``population`` inhabitants."""
    return population / 1000.0 * sum(s.rate_per_1000_per_year for s in catalogue.values())


# --- profiles ------------------------------------------------------------------
# Measured on the LA MyLA311 log (27-31 Dec 2017, 7,980 citizen-channel rows of 9,999:
# all sources but "Driver Self Report") with profiles_from_log(); rounded to 3 decimals.
# Hours are corrected for the log starting at 13:36 on the 27th (hours 0-12 seen on 4 days,
# 14-23 on 5). Weekdays: Wednesday (partial) scaled by the hour profile, Monday and Tuesday,
# absent from the log, take the mean of the observed weekdays. It is a holiday week: the
# weekend dip (LA's call centre has short weekend hours) may be deeper than usual.
_LA_HOUR = {
    "la_citizen": (0.143, 0.051, 0.027, 0.031, 0.027, 0.068, 0.139, 0.533, 1.382, 1.874,
                   2.051, 2.187, 1.969, 1.876, 2.222, 2.559, 2.078, 1.508, 0.929, 0.728,
                   0.535, 0.407, 0.405, 0.272),
    "la_bulky": (0.108, 0.038, 0.013, 0.032, 0.019, 0.045, 0.134, 0.471, 1.306, 1.853,
                 2.019, 2.274, 1.930, 1.937, 2.252, 2.710, 2.175, 1.579, 0.958, 0.779,
                 0.392, 0.336, 0.387, 0.252),
    "la_graffiti": (0.148, 0.000, 0.074, 0.025, 0.049, 0.271, 0.172, 0.862, 1.231, 1.896,
                    2.044, 1.477, 1.403, 1.634, 2.009, 2.186, 1.891, 1.320, 1.024, 0.906,
                    1.517, 0.847, 0.571, 0.443),
}
# Monday, Tuesday (absent) = mean of Wednesday-Friday; Wednesday 27 Dec is the first full
# working day after Christmas, hence its backlog of calls.
_LA_WEEKDAY = {"la_citizen": (1.221, 1.221, 1.410, 1.215, 1.037, 0.488, 0.408)}
# Assumptions (not measured here): noise complaints peak late evening and at weekends, as
# the NYC 311 noise records are commonly reported to do; used for "noise" only.
_ASSUMED_HOUR = {
    "evening_night": (1.6, 1.3, 0.9, 0.5, 0.3, 0.2, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8,
                      0.8, 0.8, 0.9, 0.9, 1.0, 1.0, 1.1, 1.2, 1.4, 1.7, 2.0, 2.2),
}
_ASSUMED_WEEKDAY = {"weekend_up": (0.85, 0.85, 0.85, 0.9, 1.05, 1.3, 1.2)}
# Month factors, January..December. Assumptions in the direction the literature reports:
# graffiti with warm dry weather; bulky items with house moves (summer, September);
# potholes with freeze-thaw cycles (late winter, spring); water main breaks with cold
# water (winter); sewer and flooding with summer thunderstorms and autumn rain; noise and
# litter with summer evenings outdoors. "long_nights" is computed from the night length.
_MONTH_PROFILES = {
    "flat": (1.0,) * 12,
    "spring_summer": (0.75, 0.8, 0.95, 1.05, 1.15, 1.2, 1.2, 1.1, 1.1, 1.0, 0.85, 0.75),
    "moving": (0.8, 0.8, 0.95, 1.05, 1.1, 1.2, 1.25, 1.1, 1.15, 1.0, 0.8, 0.8),
    "summer": (0.85, 0.85, 0.9, 1.0, 1.05, 1.15, 1.2, 1.15, 1.0, 0.95, 0.9, 1.0),
    "freeze_thaw": (1.5, 1.7, 1.5, 1.2, 0.9, 0.8, 0.7, 0.7, 0.75, 0.8, 0.95, 1.25),
    "frost": (1.4, 1.35, 1.1, 0.9, 0.8, 0.8, 0.85, 0.85, 0.85, 0.9, 1.0, 1.2),
    "storms": (0.8, 0.8, 0.85, 0.9, 1.1, 1.2, 1.15, 1.1, 1.0, 1.1, 1.1, 0.9),
    "summer_nights": (0.75, 0.75, 0.85, 0.95, 1.1, 1.25, 1.35, 1.2, 1.05, 0.95, 0.85, 0.95),
}


def night_hours(month: int, lat_deg: float = 47.32) -> float:
    """Hours between sunset and sunrise on the 15th of ``month`` (1..12) at ``lat_deg``."""
    day_of_year = 30.4 * (month - 1) + 15
    decl = math.radians(-23.44) * math.cos(2 * math.pi * (day_of_year + 10) / 365.0)
    cos_h = -math.tan(math.radians(lat_deg)) * math.tan(decl)
    day_h = 24.0 / math.pi * math.acos(max(-1.0, min(1.0, cos_h)))
    return 24.0 - day_h


def _mean_one(values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr / arr.mean()


def _month_factor(name: str) -> np.ndarray:
    if name == "long_nights":    # street lights are noticed out in proportion to darkness
        return _mean_one([night_hours(m) for m in range(1, 13)])
    return _mean_one(_MONTH_PROFILES[name])


def demand_profile(service: Service | str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(month_factor[12], weekday_factor[7], hour_factor[24])`` for a service, each of mean 1.

    Months run January..December, weekdays Monday..Sunday, hours 0..23 local time. The
    expected count in an hour is ``rate * month[m] * weekday[d] * hour[h] / 8766``.
    """
    code = service.service_code if isinstance(service, Service) else service
    rows = {row[0]: row[9] for row in _CATALOGUE_ROWS}
    if code not in rows:
        raise CatalogueError(f"demand_profile: unknown service_code {code!r}; "
                             f"expected one of {sorted(rows)}")
    month, weekday, hour = rows[code]
    weekdays = {**_LA_WEEKDAY, **_ASSUMED_WEEKDAY}
    hours = {**_LA_HOUR, **_ASSUMED_HOUR}
    return _month_factor(month), _mean_one(weekdays[weekday]), _mean_one(hours[hour])


def profiles_from_log(created: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(weekday_factor[7], hour_factor[24])`` of mean 1 measured on request creation times.

    Each hour's count is divided by the number of days on which that hour lies inside the
    log's span (a log that starts mid-afternoon has seen its mornings once less). Weekdays:
    each day's count is divided by the share of the hour profile the log covers on that day;
    weekdays absent from the log take the mean of the observed Monday-Friday (or of all
    observed days when none of them is a working day).
    """
    times = pd.to_datetime(created).dropna().sort_values()
    if times.empty:
        raise BadInput("profiles_from_log: no creation time to measure")
    start, end = times.iloc[0], times.iloc[-1]
    days = pd.date_range(start.normalize(), end.normalize(), freq="D")
    # coverage[d, h]: fraction of hour h of day d inside [start, end]
    coverage = np.zeros((len(days), 24))
    for i, day in enumerate(days):
        for h in range(24):
            lo = max(day + pd.Timedelta(hours=h), start)
            hi = min(day + pd.Timedelta(hours=h + 1), end)
            coverage[i, h] = max((hi - lo) / pd.Timedelta(hours=1), 0.0)
    hour_counts = np.bincount(times.dt.hour.to_numpy(), minlength=24).astype(float)
    exposure = coverage.sum(axis=0)
    hour_rate = np.divide(hour_counts, exposure, out=np.zeros(24), where=exposure > 0)
    hour_factor = _mean_one(hour_rate)

    day_counts = times.dt.normalize().value_counts().reindex(days, fill_value=0).to_numpy()
    day_share = coverage @ (hour_factor / 24.0)       # share of an average day covered
    day_level = day_counts / np.where(day_share > 0, day_share, np.nan)
    weekday_level = np.full(7, np.nan)
    for wd in range(7):
        mask = (days.day_of_week == wd) & (day_share > 0)
        if mask.any():
            weekday_level[wd] = np.average(day_level[mask], weights=day_share[mask])
    working = weekday_level[:5][~np.isnan(weekday_level[:5])]
    fill = working.mean() if working.size else np.nanmean(weekday_level)
    weekday_level = np.where(np.isnan(weekday_level), fill, weekday_level)
    return _mean_one(weekday_level), hour_factor
