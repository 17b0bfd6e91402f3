"""The ``waste:`` section of a scenario file: waste collection on the demo city.

```yaml
waste:                        # present: the run has a waste layer
  strategy: sensor            # fixed (weekly schedule, default) or sensor (fill forecasts)
  threshold: 0.8              # sensor: collect what will pass this fill before the next tour
  max_days: 14                # sensor: collect anything not collected for this long
  sensor_share: 1.0           # share of containers with a fill sensor
  sensor_interval: 6h         # time between two readings of a sensor
  trucks: 3                   # fleet size (default: sized from the city's waste)
  truck_capacity_l: 60000     # loose litres a truck takes before unloading
  shift_start: 6              # hour the daily shift starts
  shift_hours: 7
  solver_iterations: 1000     # PyVRP's daily budget (reproducible)
  faults: {missing_p: 0.05, stuck_per_week: 0.01, drift_per_week: 0.005}
```
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from twin.scenario_fields import (StepDuration, _choice, _empty_if_none, _integer, _number,
                                  _Spec)


class WasteFaultsSpec(_Spec):
    """Fill-sensor fault rates (see :mod:`twin.networks.waste_fill`)."""

    noise_sigma: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.03
    missing_p: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.05
    stuck_per_week: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.01
    drift_per_week: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.005
    drift_sigma_per_day: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.02


class WasteSpec(_Spec):
    """How the waste layer runs (see :class:`twin.networks.waste.WasteLayer`)."""

    strategy: Annotated[str, BeforeValidator(_choice("fixed", "sensor"))] = "fixed"
    threshold: Annotated[float, BeforeValidator(_number(gt=0, le=1.5))] = 0.8
    max_days: Annotated[float, BeforeValidator(_number(gt=0))] = 14.0
    sensor_share: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 1.0
    sensor_interval_s: StepDuration = Field(6 * 3600.0, alias="sensor_interval")
    trucks: Annotated[int, BeforeValidator(_integer(ge=1))] | None = None
    truck_capacity_l: Annotated[float, BeforeValidator(_number(gt=0))] = 60_000.0
    shift_start_h: Annotated[float, BeforeValidator(_number(ge=0, le=23))] = Field(
        6.0, alias="shift_start")
    shift_hours: Annotated[float, BeforeValidator(_number(gt=0, le=16))] = 7.0
    solver_iterations: Annotated[int, BeforeValidator(_integer(ge=10))] = 1000
    faults: Annotated[WasteFaultsSpec, BeforeValidator(_empty_if_none({}))] = WasteFaultsSpec()

    def layer_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~twin.networks.waste.WasteLayer`."""
        from twin.networks.waste_build import WasteConfig
        from twin.networks.waste_fill import SensorFaults

        config = WasteConfig(trucks=self.trucks, truck_capacity_l=self.truck_capacity_l,
                             shift_start_h=self.shift_start_h, shift_hours=self.shift_hours,
                             sensor_share=self.sensor_share)
        return {"strategy": self.strategy, "config": config, "threshold": self.threshold,
                "max_days": self.max_days, "sensor_interval_h": self.sensor_interval_s / 3600.0,
                "faults": SensorFaults(**self.faults.model_dump()),
                "solver_iterations": self.solver_iterations}
