"""The sewer parts of a scenario file: the ``sewer:`` section and the sewer events.

```yaml
sewer:                        # present: the run has a sewer layer (SWMM)
  strategy: equal_filling     # uncontrolled, rule_based or equal_filling
  control_step: 5min
  return_factor: 0.8          # share of the water used that returns to the sewer
  inp: my_city.inp            # optional: any SWMM model instead of the generated one
  storm:                      # optional: a design storm
    return_period_years: 2
    duration: 2h
    at: 1h
    shape: chicago            # or double_triangle
events:
  - {at: 30min, type: blocked_conduit, conduit: Sn12, capacity_fraction: 0.3, duration: 6h}
  - {at: 2h, type: sewer_pump_outage, pump: P1, duration: 1h}
  - {at: 1h, type: design_storm, return_period_years: 5, duration: 1h}
  - {at: 0h, type: rainfall_series, file: rain.csv, unit: mm, start: "1955-10-10"}
```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from twin.events import ConduitBlocked, Event, Rainfall, SewerPumpOutage
from twin.scenario_fields import (Duration, ElementId, EventTime, StepDuration, _choice, _number,
                                  _Problem, _Spec, _text)

SCENARIO_SOURCE = "scenario"


def _existing_file(value: Any) -> Any:
    if not isinstance(value, (str, os.PathLike)) or not Path(value).is_file():
        raise _Problem("the path of an existing file", got=repr(value))
    return value


class SewerStormSpec(_Spec):
    """A design storm of the ``sewer:`` section."""

    return_period_years: Annotated[float, BeforeValidator(_number(ge=1, le=50))] = 2.0
    duration_s: Duration = Field(7200.0, alias="duration")
    at: EventTime = 3600.0
    shape: Annotated[str, BeforeValidator(_choice("chicago", "double_triangle"))] = "chicago"
    peak_fraction: Annotated[float, BeforeValidator(_number(gt=0, le=0.95))] = 0.4

    def to_event(self, time_s: float, step_s: float = 300.0) -> Rainfall:
        from twin.networks.rainfall import design_storm

        rain = design_storm(self.return_period_years, self.duration_s, step_s, self.shape,
                            self.peak_fraction)
        return Rainfall(time_s=time_s, source=SCENARIO_SOURCE, intensities_mm_h=tuple(rain),
                        step_s=step_s, label=f"{self.return_period_years:g}-year {self.shape}")


class SewerSpec(_Spec):
    """How the sewer layer runs (see :class:`twin.networks.sewer.SewerLayer`)."""

    strategy: Annotated[str, BeforeValidator(
        _choice("uncontrolled", "rule_based", "equal_filling"))] = "uncontrolled"
    control_step_s: StepDuration = Field(300.0, alias="control_step")
    return_factor: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.8
    inp: Annotated[Path, BeforeValidator(_existing_file)] | None = None
    storm: SewerStormSpec | None = None

    def layer_options(self, horizon_s: float) -> dict[str, Any]:
        return {"model": self.inp, "strategy": self.strategy, "control_step_s": self.control_step_s,
                "return_factor": self.return_factor, "horizon_s": horizon_s}


class DesignStormSpec(_Spec):
    """A design storm on the timeline."""

    type: Literal["design_storm"]
    at: EventTime
    return_period_years: Annotated[float, BeforeValidator(_number(ge=1, le=50))] = 2.0
    duration_s: Duration = Field(7200.0, alias="duration")
    shape: Annotated[str, BeforeValidator(_choice("chicago", "double_triangle"))] = "chicago"

    def element_refs(self) -> list[tuple[str, str, str]]:
        return []

    def to_events(self, time_s: float) -> list[Event]:
        storm = SewerStormSpec(return_period_years=self.return_period_years,
                               duration=self.duration_s, shape=self.shape)
        return [storm.to_event(time_s)]


class RainfallSeriesSpec(_Spec):
    """A recorded rainfall series (CSV) from ``at`` on."""

    type: Literal["rainfall_series"]
    at: EventTime
    file: Annotated[Path, BeforeValidator(_existing_file)]
    column: Annotated[str, BeforeValidator(_text)] | None = None
    unit: Annotated[str, BeforeValidator(_choice("mm", "mm/h"))] = "mm"
    gaps: Annotated[str, BeforeValidator(_choice("error", "dry"))] = "error"
    start: Annotated[str, BeforeValidator(_text)] | None = None
    end: Annotated[str, BeforeValidator(_text)] | None = None

    def element_refs(self) -> list[tuple[str, str, str]]:
        return []

    def to_events(self, time_s: float) -> list[Event]:
        from twin.networks.rainfall import read_rainfall

        rain = read_rainfall(self.file, self.column, unit=self.unit, gaps=self.gaps,
                             start=self.start, end=self.end)
        step = float(pd_step(rain))
        return [Rainfall(time_s=time_s, source=SCENARIO_SOURCE,
                         intensities_mm_h=tuple(rain.to_numpy()), step_s=step,
                         label=Path(self.file).name)]


def pd_step(series) -> float:
    """The step (s) of a regular rainfall series."""
    if len(series.index) < 2:
        return 300.0
    return (series.index[1] - series.index[0]).total_seconds()


class BlockedConduitSpec(_Spec):
    """A conduit keeps only ``capacity_fraction`` of its capacity, for ``duration``."""

    type: Literal["blocked_conduit"]
    at: EventTime
    conduit: ElementId
    capacity_fraction: Annotated[float, BeforeValidator(_number(ge=0, le=0.99))] = 0.3
    duration_s: Duration | None = Field(None, alias="duration")

    def element_refs(self) -> list[tuple[str, str, str]]:
        return [("conduit", "sewer_conduit", self.conduit)]

    def to_events(self, time_s: float) -> list[Event]:
        return [ConduitBlocked(time_s=time_s, source=SCENARIO_SOURCE, conduit_id=self.conduit,
                               capacity_fraction=self.capacity_fraction,
                               duration_s=self.duration_s)]


class SewerPumpOutageSpec(_Spec):
    """A sewer pump stops, for ``duration`` or to the end."""

    type: Literal["sewer_pump_outage"]
    at: EventTime
    pump: ElementId
    duration_s: Duration | None = Field(None, alias="duration")

    def element_refs(self) -> list[tuple[str, str, str]]:
        return [("pump", "sewer_pump", self.pump)]

    def to_events(self, time_s: float) -> list[Event]:
        return [SewerPumpOutage(time_s=time_s, source=SCENARIO_SOURCE, pump_id=self.pump,
                                duration_s=self.duration_s)]


SEWER_EVENT_SPECS = {"design_storm": DesignStormSpec, "rainfall_series": RainfallSeriesSpec,
                     "blocked_conduit": BlockedConduitSpec,
                     "sewer_pump_outage": SewerPumpOutageSpec}
