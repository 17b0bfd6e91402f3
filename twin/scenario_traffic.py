"""The traffic parts of a scenario file: the ``traffic:`` section and ``street_closure`` events.

```yaml
traffic:                     # present: the run has a traffic layer on the demo city
  period: 1h                 # demand period, aligned to the calendar hour
  gap: 1e-4                  # relative gap of each assignment
  method: auto               # solver: auto, path (gradient projection) or bfw (Frank-Wolfe)
  demand_scale: 1.0          # factor on the whole car demand
  flood_close_lps: 50        # a flood with at least this flow closes its streets
  flood_close_within_m: 30   # ... those within this distance of the water (default: all)
  flood_closure: 6h          # ... for this long (default: until reopened)
  incident_batch: 15min      # incidents this soon after the last solution wait and are
                             # solved together (default 0: each at once)
events:
  - at: 8h
    type: street_closure
    streets: [s324, s325]
    lanes: 1                 # lanes lost per direction; without it the streets close
    duration: 2h
```
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from twin.events import Event, LanesClosed, LanesReopened, StreetClosed, StreetReopened
from twin.scenario_fields import (Duration, ElementId, EventTime, StepDuration, _Problem, _Spec,
                                  _choice, _distinct, _integer, _number, _text)

SCENARIO_SOURCE = "scenario"        # as twin.scenario.EVENT_SOURCE: events from the timeline


def _non_empty(ids: tuple[str, ...]) -> tuple[str, ...]:
    if not ids:
        raise _Problem("at least one street id, such as [s324]")
    return ids


def _optional_number(**bounds: float):
    check = _number(**bounds)
    return lambda value: None if value is None else check(value)


class TrafficSpec(_Spec):
    """How the traffic layer runs (see :class:`twin.networks.traffic.TrafficLayer`)."""

    period_s: StepDuration = Field(3600.0, alias="period")
    gap: Annotated[float, BeforeValidator(_number(gt=0, le=0.1))] = 1e-4
    max_iterations: Annotated[int, BeforeValidator(_integer(ge=1, le=100_000))] = 200
    method: Annotated[str, BeforeValidator(_choice("auto", "path", "bfw"))] = "auto"
    demand_scale: Annotated[float, BeforeValidator(_number(gt=0))] = 1.0
    zone_size_m: Annotated[float, BeforeValidator(_number(gt=50))] = 400.0
    flood_close_lps: Annotated[float | None, BeforeValidator(_optional_number(ge=0))] = 50.0
    flood_close_within_m: Annotated[float | None, BeforeValidator(_optional_number(ge=0))] = None
    flood_closure_s: Duration | None = Field(None, alias="flood_closure")
    top_affected: Annotated[int, BeforeValidator(_integer(ge=1, le=1000))] = 10
    incident_batch_s: Duration | None = Field(None, alias="incident_batch")

    def layer_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~twin.networks.traffic.TrafficLayer`."""
        return {"period_s": self.period_s, "gap": self.gap, "max_iterations": self.max_iterations,
                "method": self.method,
                "demand_scale": self.demand_scale, "zone_size_m": self.zone_size_m,
                "flood_close_lps": self.flood_close_lps,
                "flood_close_within_m": self.flood_close_within_m,
                "flood_closure_s": self.flood_closure_s, "top_affected": self.top_affected,
                "incident_batch_s": self.incident_batch_s or 0.0}


class StreetClosureSpec(_Spec):
    """Streets closed (or ``lanes`` lanes per direction lost) at ``at``; with a ``duration``
    they reopen after it. Fits the scenario's event list like every other event spec."""

    type: Literal["street_closure"]
    at: EventTime
    streets: Annotated[tuple[ElementId, ...],
                       AfterValidator(_non_empty), AfterValidator(_distinct("street", "streets"))]
    lanes: Annotated[int | None, BeforeValidator(
        lambda v: None if v is None else _integer(ge=1, le=10)(v))] = None
    reason: Annotated[str, BeforeValidator(_text)] = "closure"
    duration_s: Duration | None = Field(None, alias="duration")

    def element_refs(self) -> list[tuple[str, str, str]]:
        return [(f"streets[{i}]", "street", s) for i, s in enumerate(self.streets)]

    def to_events(self, time_s: float) -> list[Event]:
        end = None if self.duration_s is None else time_s + self.duration_s
        if self.lanes is None:
            events: list[Event] = [StreetClosed(time_s=time_s, source=SCENARIO_SOURCE,
                                                street_ids=self.streets, reason=self.reason)]
            if end is not None:
                events.append(StreetReopened(time_s=end, source=SCENARIO_SOURCE,
                                             street_ids=self.streets))
            return events
        events = [LanesClosed(time_s=time_s, source=SCENARIO_SOURCE, street_ids=self.streets,
                              lanes=self.lanes, reason=self.reason)]
        if end is not None:
            events.append(LanesReopened(time_s=end, source=SCENARIO_SOURCE,
                                        street_ids=self.streets, lanes=self.lanes))
        return events
