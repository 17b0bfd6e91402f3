"""The ``parking:`` section of a scenario file: a parking layer on the demo city.

```yaml
parking:                      # present: the run has a parking layer
  pricing: responsive         # fixed (default) or responsive (the 60-80 % rule)
  pricing_every: day          # responsive prices change each day or each week
  base_price: 1.5             # EUR per hour on street
  elasticity: -0.4            # visitor demand ~ (price / base) ** elasticity
  reminders: true             # permit renewal reminders
  reminder_lead: 3w           # sent this long before expiry
  reminder_share: 1.0         # share of holders reminded (below 1: both groups in one run)
  zone_size_m: 700            # zones group blocks on a grid of this size
  bay_length_m: 5.5
  demand: od                  # visitors from the OD demand's trips (od) or from jobs (jobs)
  visitors_per_job_day: 0.8   # with demand: jobs
  sensor_step: 15min          # occupancy sensors' reading interval
  publish_readings: false     # also publish each reading on the bus
  capacities: {pz3: 800, cp1: 500}   # bays / spaces by zone or car-park id
```
Zone and car-park ids are checked when the city is built (``twin.run``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from twin.scenario_fields import (Duration, StepDuration, _boolean, _choice, _integer, _number,
                                  _Problem, _Spec)


def _capacities(value: Any) -> dict[str, int]:
    """A mapping of zone or car-park id to a whole number of places >= 0."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Problem("a mapping of zone or car-park id to capacity, such as {pz3: 800}")
    check = _integer(ge=0)
    out: dict[str, int] = {}
    for key, capacity in value.items():
        if not isinstance(key, str) or not key.strip():
            raise _Problem("zone or car-park ids as text keys (such as pz3 or cp1)", loc=(str(key),))
        try:
            out[key.strip()] = check(capacity)
        except _Problem:
            raise _Problem("a capacity: a whole number of places >= 0", loc=(key,),
                           got=repr(capacity)) from None
    return out


class ParkingSpec(_Spec):
    """How the parking layer runs (see :class:`twin.networks.parking.ParkingLayer`)."""

    pricing: Annotated[str, BeforeValidator(_choice("fixed", "responsive"))] = "fixed"
    pricing_every: Annotated[str, BeforeValidator(_choice("day", "week"))] = "day"
    base_price_eur_h: Annotated[float, BeforeValidator(_number(gt=0))] = Field(1.5,
                                                                              alias="base_price")
    elasticity: Annotated[float, BeforeValidator(_number(ge=-3, le=0))] = -0.4
    reminders: Annotated[bool, BeforeValidator(_boolean)] = True
    reminder_lead_s: Duration = Field(3 * 7 * 86400.0, alias="reminder_lead")
    reminder_share: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 1.0
    zone_size_m: Annotated[float, BeforeValidator(_number(gt=50))] = 700.0
    bay_length_m: Annotated[float, BeforeValidator(_number(gt=2, le=20))] = 5.5
    demand: Annotated[str, BeforeValidator(_choice("od", "jobs"))] = "od"
    visitors_per_job_day: Annotated[float, BeforeValidator(_number(ge=0))] = 0.8
    sensor_step_s: StepDuration = Field(900.0, alias="sensor_step")
    publish_readings: Annotated[bool, BeforeValidator(_boolean)] = False
    capacities: Annotated[dict[str, int], BeforeValidator(_capacities)] = Field(default_factory=dict)

    def layer_options(self, horizon_s: float) -> dict[str, Any]:
        """Keyword arguments of :class:`~twin.networks.parking.ParkingLayer` (capacities are
        set once the layer is built, where their ids can be checked)."""
        from twin.networks.parking import ParkingParams, PricingPolicy
        from twin.networks.parking_supply import SupplyRules

        return {"pricing": PricingPolicy(mode=self.pricing, every=self.pricing_every,
                                         base_price_eur_h=self.base_price_eur_h,
                                         elasticity=self.elasticity),
                "params": ParkingParams(visitors_per_job_day=self.visitors_per_job_day,
                                        sensor_step_s=self.sensor_step_s),
                "supply_rules": SupplyRules(zone_size_m=self.zone_size_m,
                                            bay_length_m=self.bay_length_m),
                "demand": self.demand, "reminders": self.reminders, "reminder_lead_weeks": self.reminder_lead_s / 604800,
                "reminder_share": self.reminder_share, "horizon_s": horizon_s,
                "publish_readings": self.publish_readings}
