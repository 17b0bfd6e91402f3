"""When drivers arrive at a parking place and how long they stay, by trip purpose.

Each :class:`Purpose` has a daily arrival profile (a normal bump around ``peak_h``,
wrapped over midnight), a relative volume by day type (weekday, Saturday, Sunday) and a
lognormal length of stay. An :class:`ArrivalMix` weighs purposes into one arrival
process: arrivals are a non-homogeneous Poisson process whose rate at a time is the
mix's density at that hour of that day times the place's daily volume.

The expected occupancy of a place without a capacity limit is that of an M(t)/G/inf
queue, ``occ(t) = integral of rate(s) * P(stay > t - s) ds`` (:func:`expected_occupancy`);
:func:`fit_mix` fits a mix's parameters to a measured daily occupancy profile (for
example a car park's weekday profile, :mod:`twin.networks.parking_data`).

The default visitor mix (:data:`FITTED_VISITORS`) was fitted on the weekday profile of
the Birmingham car parks of October-December 2016 (see ``benchmarks/parking_week.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

DAY_S = 86_400.0
DAY_TYPES = ("weekday", "saturday", "sunday")


def day_type(weekday: int) -> int:
    """0 for Monday-Friday, 1 for Saturday, 2 for Sunday (``weekday`` as in datetime)."""
    return 0 if weekday < 5 else weekday - 4


@dataclass(frozen=True)
class Purpose:
    """One reason to park: arrival bump, volume by day type, lognormal stay."""

    name: str
    peak_h: float               # hour of the day arrivals peak
    spread_h: float             # standard deviation of the arrival hour
    median_stay_h: float        # median length of stay
    stay_sigma: float           # lognormal shape of the stay
    day_factors: tuple[float, float, float] = (1.0, 1.0, 1.0)   # weekday, Saturday, Sunday

    def density_per_h(self, hour: np.ndarray | float) -> np.ndarray:
        """Share of the day's arrivals per hour at ``hour`` (wrapped normal, integrates to 1)."""
        h = np.asarray(hour, dtype=float)
        out = np.zeros_like(h)
        for shift in (-24.0, 0.0, 24.0):
            z = (h - self.peak_h + shift) / self.spread_h
            out = out + np.exp(-0.5 * z * z)
        return out / (self.spread_h * np.sqrt(2 * np.pi))

    def stay_survival(self, hours: np.ndarray) -> np.ndarray:
        """P(stay > ``hours``)."""
        from scipy.special import ndtr

        h = np.maximum(np.asarray(hours, dtype=float), 1e-9)
        return 1.0 - ndtr((np.log(h) - np.log(self.median_stay_h)) / self.stay_sigma)

    def sample_stay_s(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return 3600.0 * self.median_stay_h * np.exp(self.stay_sigma * rng.standard_normal(n))


@dataclass(frozen=True)
class ArrivalMix:
    """Purposes and their shares of a weekday's arrivals (shares sum to 1)."""

    purposes: tuple[Purpose, ...]
    shares: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.purposes) != len(self.shares) or not self.purposes:
            raise ValueError("ArrivalMix: one share per purpose")
        if any(s < 0 for s in self.shares) or abs(sum(self.shares) - 1.0) > 1e-6:
            raise ValueError(f"ArrivalMix: shares must be >= 0 and sum to 1, got {self.shares}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.purposes)

    def rates_per_h(self, hour: float, dtype: int) -> np.ndarray:
        """Arrivals per hour by purpose at ``hour`` on a day of type ``dtype``, for one
        arrival per weekday in total."""
        return np.array([s * p.day_factors[dtype] * float(p.density_per_h(hour))
                         for p, s in zip(self.purposes, self.shares)])

    def daily_factor(self, dtype: int) -> float:
        """A day of type ``dtype``'s arrivals relative to a weekday's."""
        return float(sum(s * p.day_factors[dtype] for p, s in zip(self.purposes, self.shares)))

    def sample_stays_s(self, rng: np.random.Generator, purpose_idx: np.ndarray) -> np.ndarray:
        """A stay for each arrival of the given purposes."""
        out = np.empty(len(purpose_idx))
        for k, p in enumerate(self.purposes):
            sel = purpose_idx == k
            if sel.any():
                out[sel] = p.sample_stay_s(rng, int(sel.sum()))
        return out


# --- defaults -----------------------------------------------------------------------------
# Visitors of a city centre: commuters (long stays) and shoppers / errands (short stays).
# Peaks, spreads and shares fitted on the Birmingham weekday profile (30 car parks,
# Oct-Dec 2016; benchmarks/parking_week.py): RMSE 0.0023 of the occupancy share at the
# half hours 08:00-16:30, with 0.85 arrivals per space a weekday. Median stays are priors
# (see fit_mix). Saturday and Sunday volumes by purpose fitted on the weekend profiles
# (fit_day_factors): RMSE 0.017 on Saturdays, 0.023 on Sundays.
FITTED_VISITORS = ArrivalMix(
    purposes=(Purpose("commute", peak_h=8.67, spread_h=1.95, median_stay_h=8.5, stay_sigma=0.35,
                      day_factors=(1.0, 0.65, 0.54)),
              Purpose("shopping", peak_h=14.11, spread_h=1.73, median_stay_h=2.5,
                      stay_sigma=0.6, day_factors=(1.0, 2.55, 2.12))),
    shares=(0.756, 0.244))
FITTED_ARRIVALS_PER_SPACE = 0.85     # a weekday, with FITTED_VISITORS (Birmingham car parks)

# Evening visitors (restaurants, friends): not seen by the car-park recordings, which stop
# at 16:30; an assumption of the same order as household surveys' evening leisure trips.
EVENING = Purpose("evening", peak_h=19.5, spread_h=1.8, median_stay_h=2.5, stay_sigma=0.5,
                  day_factors=(1.0, 1.4, 1.0))

# Residents' cars coming home: most leave in the morning and come back late in the
# afternoon; many do not move on a given day (a stay of a day or more). Assumption.
RESIDENT = Purpose("resident", peak_h=18.0, spread_h=2.5, median_stay_h=17.0, stay_sigma=0.5,
                   day_factors=(1.0, 0.85, 0.75))


def with_evening(mix: ArrivalMix, evening_share: float = 0.15) -> ArrivalMix:
    """``mix`` with an evening purpose taking ``evening_share`` of the arrivals."""
    shares = tuple(s * (1 - evening_share) for s in mix.shares) + (evening_share,)
    return ArrivalMix(purposes=mix.purposes + (EVENING,), shares=shares)


# --- expected occupancy and fitting -------------------------------------------------------
def expected_occupancy(mix: ArrivalMix, daily_arrivals: float, hours: np.ndarray,
                       dtype: int = 0, step_h: float = 1 / 12, warmup_days: int = 3) -> np.ndarray:
    """Expected vehicles present at ``hours`` (of the day) with ``daily_arrivals`` a weekday,
    every day of type ``dtype``, no capacity limit (M(t)/G/inf)."""
    grid = np.arange(-warmup_days * 24.0, 24.0, step_h) + step_h / 2
    hod = np.mod(grid, 24.0)
    # arrivals per hour on the grid, by purpose
    rates = [s * p.day_factors[dtype] * p.density_per_h(hod) for p, s in zip(mix.purposes, mix.shares)]
    out = np.empty(len(np.atleast_1d(hours)))
    for i, t in enumerate(np.atleast_1d(hours)):
        past = grid < t
        age = t - grid[past]
        present = sum(float(np.sum(r[past] * p.stay_survival(age)))
                      for p, r in zip(mix.purposes, rates))
        out[i] = daily_arrivals * present * step_h
    return out


@dataclass(frozen=True)
class MixFit:
    """A fitted mix, the arrivals per space per weekday, and how well it fits."""

    mix: ArrivalMix
    arrivals_per_space: float
    hours: np.ndarray
    measured_share: np.ndarray
    fitted_share: np.ndarray

    @property
    def rmse(self) -> float:
        return float(np.sqrt(np.mean((self.fitted_share - self.measured_share) ** 2)))


def fit_mix(hours: np.ndarray, share: np.ndarray, start: ArrivalMix = FITTED_VISITORS,
            dtype: int = 0) -> MixFit:
    """Fit a two-purpose mix (long and short stays) and the daily arrivals per space so the
    expected occupancy share matches ``share`` at ``hours`` (least squares).

    Fitted: the arrivals per space, the long-stay share, and each purpose's peak hour and
    spread. The median stays are kept from ``start``: a daytime profile alone cannot tell
    many short stays from fewer long ones (both fit within 0.003), so the stays are the
    prior knowledge here (UK city-centre surveys: a few hours for shoppers, a working day
    for commuters).
    """
    from scipy.optimize import least_squares

    if len(start.purposes) != 2:
        raise ValueError("fit_mix: the starting mix needs two purposes (long and short stays)")
    hours = np.asarray(hours, dtype=float)
    share = np.asarray(share, dtype=float)
    if len(hours) < 8 or len(hours) != len(share):
        raise ValueError(f"fit_mix: need at least 8 (hour, share) points, got {len(hours)}")
    long, short = start.purposes

    def build(theta: np.ndarray) -> tuple[ArrivalMix, float]:
        per_space, long_share, lp, ls, sp, ss = (float(v) for v in theta)
        mix = ArrivalMix(purposes=(replace(long, peak_h=lp, spread_h=ls),
                                   replace(short, peak_h=sp, spread_h=ss)),
                         shares=(long_share, 1 - long_share))
        return mix, per_space

    def residual(theta: np.ndarray) -> np.ndarray:
        mix, per_space = build(theta)
        return expected_occupancy(mix, per_space, hours, dtype, step_h=0.25) - share

    x0 = np.array([1.0, start.shares[0], long.peak_h, long.spread_h, short.peak_h,
                   short.spread_h])
    lo = np.array([0.05, 0.0, 5.0, 0.5, 9.0, 0.5])
    hi = np.array([10.0, 1.0, 11.0, 3.0, 17.0, 5.0])
    sol = least_squares(residual, np.clip(x0, lo, hi), bounds=(lo, hi), x_scale="jac")
    mix, per_space = build(sol.x)
    fitted = expected_occupancy(mix, per_space, hours, dtype, step_h=0.25)
    return MixFit(mix=mix, arrivals_per_space=float(per_space), hours=hours,
                  measured_share=share, fitted_share=fitted)


def fit_day_factors(mix: ArrivalMix, arrivals_per_space: float, hours: np.ndarray,
                    share: np.ndarray, dtype: int) -> tuple[ArrivalMix, float]:
    """Each purpose's volume on days of type ``dtype`` relative to a weekday, fitted to the
    measured ``share`` profile of those days (non-negative least squares: occupancy is
    linear in each purpose's volume). Returns the mix with those factors and the RMSE."""
    from scipy.optimize import nnls

    hours = np.asarray(hours, dtype=float)
    columns = []
    for k in range(len(mix.purposes)):
        alone = ArrivalMix(purposes=(replace(mix.purposes[k], day_factors=(1.0, 1.0, 1.0)),),
                           shares=(1.0,))
        columns.append(mix.shares[k] * expected_occupancy(alone, arrivals_per_space, hours, dtype,
                                                          step_h=0.25))
    a = np.column_stack(columns)
    factors, _ = nnls(a, np.asarray(share, dtype=float))
    purposes = []
    for p, f in zip(mix.purposes, factors):
        day = list(p.day_factors)
        day[dtype] = float(f)
        purposes.append(replace(p, day_factors=tuple(day)))
    rmse = float(np.sqrt(np.mean((a @ factors - share) ** 2)))
    return ArrivalMix(purposes=tuple(purposes), shares=mix.shares), rmse


def simulate_occupancy(mix: ArrivalMix, daily_arrivals: float, capacity: int, days: int,
                       rng: np.random.Generator, first_weekday: int = 0,
                       step_h: float = 0.25, warmup_days: int = 2) -> np.ndarray:
    """Vehicles present at the start of each ``step_h`` over ``days`` days (from midnight of
    a day with weekday ``first_weekday``), drawing Poisson arrivals and lognormal stays of
    ``mix``; arrivals finding the ``capacity`` full are lost. Shape (days, steps a day)."""
    per_day = int(round(24 / step_h))
    total = (days + warmup_days) * per_day
    present = np.empty(total, dtype=np.int64)
    dep = np.empty(0)
    for k in range(total):
        t_h = k * step_h - warmup_days * 24
        dep = dep[dep > t_h]
        present[k] = len(dep)
        dtype = day_type((first_weekday + int(np.floor(t_h / 24))) % 7)
        rates = mix.rates_per_h((t_h % 24) + step_h / 2, dtype) * daily_arrivals
        counts = rng.poisson(rates * step_h)
        purpose = np.repeat(np.arange(len(rates)), counts)
        arrive = t_h + rng.uniform(0, step_h, len(purpose))
        stays = mix.sample_stays_s(rng, purpose) / 3600
        room = max(capacity - len(dep), 0)
        order = np.argsort(arrive)[:room]
        dep = np.concatenate([dep, arrive[order] + stays[order]])
    return present[warmup_days * per_day:].reshape(days, per_day)
