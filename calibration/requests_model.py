"""The request service's background demand as a model: expected requests per day and
service for ``model.population`` inhabitants, from the catalogue's rates and profiles.

A ``request_rate`` parameter multiplies the yearly rate of a group of services (``services:
all`` or ``services: [codes]``); sensors are service codes with ``request_count`` in
requests/d. The expectation of day d of service s is
``rate_s * population / 1000 / 8766 * 24 * month_s[m] * weekday_s[d]``, as
:class:`twin.agents.citizens.BackgroundDemand` draws its Poisson counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from calibration.config import CalibrationSpec
from twin.agents.citizens import HOURS_PER_YEAR
from twin.agents.services import default_catalogue, demand_profile
from twin.errors import BadInput


class RequestsModel:
    output_name = "calibrated_catalogue.csv"

    def __init__(self, spec: CalibrationSpec) -> None:
        m = spec.model
        self.catalogue = default_catalogue()
        self.population = int(m.population)
        self.days = pd.date_range(pd.Timestamp(m.start).floor("D"),
                                  periods=max(1, int(round(m.duration_s / 86400.0))), freq="D")
        self.sensor_ids = [s.id for s in spec.sensors]
        for s in spec.sensors:
            if s.quantity != "request_count":
                raise BadInput(f"sensor {s.id!r}: the request model measures request_count, "
                               f"not {s.quantity}")
            if (s.element or s.id) not in self.catalogue:
                raise BadInput(f"sensor {s.id!r}: no service {s.element or s.id!r} in the "
                               f"catalogue ({', '.join(self.catalogue)})")
        self.codes = [s.element or s.id for s in spec.sensors]
        self.parameters = list(spec.parameters)
        self.groups: dict[str, list[str]] = {}
        for name, rule in spec.groups.items():
            if not isinstance(rule, dict) or set(rule) != {"services"}:
                raise BadInput(f"group {name!r}: the request model's groups are `services: all`"
                               f" or `services: [codes]`, got {rule!r}")
            codes = list(self.catalogue) if rule["services"] == "all" else \
                [str(c) for c in rule["services"]]
            unknown = sorted(set(codes) - set(self.catalogue))
            if unknown:
                raise BadInput(f"group {name!r}: unknown service code(s) {', '.join(unknown)}")
            self.groups[name] = codes
        for par in self.parameters:
            if par.kind != "request_rate":
                raise BadInput(f"parameter {par.name!r}: the request model fits request_rate, "
                               f"not {par.kind}")
        months = self.days.month.to_numpy() - 1
        weekdays = self.days.day_of_week.to_numpy()
        base = np.empty((len(self.days), len(self.codes)))
        for k, code in enumerate(self.codes):
            month, weekday, _ = demand_profile(code)
            per_day = self.catalogue[code].rate_per_1000_per_year * self.population / 1000.0 \
                / HOURS_PER_YEAR * 24.0
            base[:, k] = per_day * month[months] * weekday[weekdays]
        self.base = base

    def multipliers(self, x: np.ndarray) -> np.ndarray:
        mult = np.ones(len(self.codes))
        for par, value in zip(self.parameters, np.asarray(x, dtype=float)):
            codes = self.groups.get(par.group, list(self.catalogue)) if par.group != "all" \
                else list(self.catalogue)
            mult[[c in codes for c in self.codes]] *= value
        return mult

    def simulate(self, x: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(self.base * self.multipliers(x)[None, :], index=self.days,
                            columns=self.sensor_ids)

    def save(self, x: np.ndarray, path) -> None:
        """The catalogue's services with their calibrated yearly rates."""
        rows = []
        mult = dict(zip(self.codes, self.multipliers(x)))
        for code, s in self.catalogue.items():
            m = mult.get(code, 1.0)
            rows.append({"service_code": code, "rate_per_1000_per_year": s.rate_per_1000_per_year,
                         "multiplier": m, "calibrated_rate_per_1000_per_year":
                         s.rate_per_1000_per_year * m})
        pd.DataFrame(rows).to_csv(path, index=False)
