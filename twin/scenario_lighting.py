"""The lighting parts of a scenario file: the ``lighting:`` section and ``lamp_failure`` events.

```yaml
lighting:                    # present: the run has a street-lighting layer on the demo city
  strategy: dimming          # full, dimming (fixed program) or adaptive (traffic)
  dim_level: 0.5             # the program's level between dim_from and dim_to
  dim_from: "23:00"
  dim_to: "05:00"
  tariff_eur_per_kwh: 0.20
  co2_kg_per_kwh: 0.056
  random_failures: true      # wear-out by the lamps' lifetime law, cabinet/phase faults
  repair_after: 72h          # the maintenance contract's delay (default: crews or nobody)
events:
  - at: 22h
    type: lamp_failure
    lamp: SL00042            # or lamps: [...], or random: 5, or cabinet: CAB003 (phase: 2)
```
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from twin.events import Event, LightingFault
from twin.scenario_fields import (Duration, ElementId, EventTime, StepDuration, _boolean,
                                  _choice, _integer, _number, _Problem, _Spec, _text)

SCENARIO_SOURCE = "scenario"        # as twin.scenario.EVENT_SOURCE: events from the timeline


def _clock(value: Any) -> str:
    from twin.networks.lighting_strategies import clock_minutes

    text = str(value) if isinstance(value, (str, int)) else ""
    try:
        clock_minutes(text)
    except ValueError:
        raise _Problem("a time of day 'HH:MM' in quotes, such as \"23:00\"") from None
    return text


def _whole_minutes(value: float) -> float:
    if value < 60 or value % 60:
        raise _Problem("whole minutes, at least 1min (e.g. 15min)")
    return value


class LightingSpec(_Spec):
    """How the lighting layer runs (see :class:`twin.networks.lighting.LightingLayer`)."""

    strategy: Annotated[str, BeforeValidator(_choice("full", "dimming", "adaptive"))] = "full"
    dim_level: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.5
    dim_from: Annotated[str, BeforeValidator(_clock)] = "23:00"
    dim_to: Annotated[str, BeforeValidator(_clock)] = "05:00"
    tariff_eur_per_kwh: Annotated[float, BeforeValidator(_number(ge=0))] = 0.20
    co2_kg_per_kwh: Annotated[float, BeforeValidator(_number(ge=0))] = 0.056
    timezone: Annotated[str, BeforeValidator(_text)] = "Europe/Paris"
    random_failures: Annotated[bool, BeforeValidator(_boolean)] = True
    cabinet_faults_per_year: Annotated[float, BeforeValidator(_number(ge=0))] = 0.2
    repair_after_s: Duration | None = Field(None, alias="repair_after")
    step_s: StepDuration = Field(900.0, alias="step")
    noise: Annotated[bool, BeforeValidator(_boolean)] = True

    @model_validator(mode="after")
    def _step_in_minutes(self) -> "LightingSpec":
        if self.step_s < 60 or self.step_s % 60:
            raise _Problem("whole minutes, at least 1min (e.g. 15min)", loc=("step",),
                           got=f"{self.step_s:g} s")
        return self

    def layer_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~twin.networks.lighting.LightingLayer`."""
        from twin.networks.lighting_strategies import DimmingProgram

        return {"program": DimmingProgram(self.strategy, self.dim_level, self.dim_from,
                                          self.dim_to),
                "tariff_eur_per_kwh": self.tariff_eur_per_kwh,
                "co2_kg_per_kwh": self.co2_kg_per_kwh, "timezone": self.timezone,
                "random_failures": self.random_failures,
                "cabinet_faults_per_year": self.cabinet_faults_per_year,
                "repair_after_h": None if self.repair_after_s is None
                else self.repair_after_s / 3600.0,
                "step_s": self.step_s, "noise": self.noise}


class LampFailureSpec(_Spec):
    """Lamps fail at ``at``: one (``lamp``), several (``lamps``), ``random`` N lit ones, or a
    whole ``cabinet`` (one ``phase`` of it when given)."""

    type: Literal["lamp_failure"]
    at: EventTime
    lamp: ElementId | None = None
    lamps: tuple[ElementId, ...] = ()
    random: Annotated[int | None, BeforeValidator(
        lambda v: None if v is None else _integer(ge=1, le=100_000)(v))] = None
    cabinet: ElementId | None = None
    phase: Annotated[int | None, BeforeValidator(
        lambda v: None if v is None else _integer(ge=1, le=3)(v))] = None
    reason: Annotated[str, BeforeValidator(_text)] = "injected"

    @model_validator(mode="after")
    def _one_target(self) -> "LampFailureSpec":
        given = [k for k in ("lamp", "lamps", "random", "cabinet") if getattr(self, k)]
        if len(given) != 1:
            raise _Problem("exactly one of lamp:, lamps:, random: or cabinet:",
                           got=", ".join(given) if given else "none of them", show_input=False)
        if self.phase is not None and self.cabinet is None:
            raise _Problem("phase: only with cabinet:", loc=("phase",), show_input=False)
        return self

    def element_refs(self) -> list[tuple[str, str, str]]:
        refs = [("lamp", "lamp", self.lamp)] if self.lamp else []
        refs += [(f"lamps[{i}]", "lamp", lid) for i, lid in enumerate(self.lamps)]
        refs += [("cabinet", "cabinet", self.cabinet)] if self.cabinet else []
        return refs

    def to_events(self, time_s: float) -> list[Event]:
        lamps = ((self.lamp,) if self.lamp else ()) + tuple(self.lamps)
        feeder = f"{self.cabinet}-L{self.phase}" if self.cabinet and self.phase else ""
        return [LightingFault(time_s=time_s, source=SCENARIO_SOURCE, lamp_ids=lamps,
                              random_lamps=self.random or 0, cabinet_id=self.cabinet or "",
                              feeder_id=feeder, reason=self.reason)]
