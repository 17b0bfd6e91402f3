"""The calibration file: model, element groups, parameters, sensors, observations, method.

A YAML file, validated like scenario files (errors name the file, line and field)::

    name: ltown_synthetic
    model: {inp: L-TOWN.inp, duration: 24h, report_step: 1h, start: 2019-01-01 00:00}
    groups:                       # named sets of elements, by rule (see calibration.groups)
      mains: {pipes: {diameter_mm: [300, 2000]}}
      residential: {pattern: P-Residential}
    parameters:
      - {name: c_mains, kind: roughness, group: mains, bounds: [0.5, 1.5]}
      - {name: q_res, kind: demand, group: residential, bounds: [0.5, 2.0], prior: {sd: 0.3}}
    sensors:                      # measured id -> model element, quantity and unit
      - {id: n1, element: n1, quantity: pressure, unit: m}
    observations:
      - {file: pressures.csv, format: battledim, unit: m}
    exclude: [{start: 2019-01-03, end: 2019-01-04, sensors: [n1]}]
    fit_window: [2019-01-01, 2019-01-02]       # optional; the rest is for validation
    method: least_squares                      # or differential_evolution, or both

Parameters are multipliers (1 = the model as given) except ``leak`` (an emitter
coefficient in m3/s per m^0.5); ``transform: log`` (the default for multipliers)
fits log(x), so the bounds and the uncertainty are relative. A ``prior`` is a normal
in the fitted (transformed) space, centred on ``mean`` (default: the initial value).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from twin.scenario import load_yaml_spec
from twin.scenario_fields import (Duration, _Problem, _Spec, _empty_if_none, _integer, _name,
                                  _number, _start_time)

PARAMETER_KINDS = ("roughness", "demand", "demand_hour", "leak", "bpr_alpha", "bpr_beta",
                   "request_rate")
QUANTITIES = ("pressure", "head", "flow", "level")
# unit -> (quantity family, factor to the model's SI unit: m for heads, L/s for flows)
UNITS: dict[str, tuple[str, float]] = {
    "m": ("length", 1.0), "cm": ("length", 0.01), "ft": ("length", 0.3048),
    "kpa": ("length", 1 / 9.80665), "bar": ("length", 10.197162), "psi": ("length", 0.70307),
    "l/s": ("flow", 1.0), "m3/h": ("flow", 1 / 3.6), "m3/s": ("flow", 1000.0),
    "m3/d": ("flow", 1 / 86.4), "gpm": ("flow", 0.0630901964), "mgd": ("flow", 43.8126364),
    "veh/h": ("count", 1.0),
    "requests/d": ("requests", 1.0),
}
QUANTITY_FAMILY = {"pressure": "length", "head": "length", "level": "length", "flow": "flow",
                   "link_count": "count", "request_count": "requests"}


def _unit(value: Any) -> str:
    if not isinstance(value, str) or value.strip().lower() not in UNITS:
        raise _Problem(f"a unit, one of {', '.join(UNITS)}", got=repr(value))
    return value.strip().lower()


def _window(value: Any) -> tuple[dt.datetime, dt.datetime]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _Problem("[start, end] datetimes", got=repr(value))
    start, end = (_start_time(v) for v in value)
    if end <= start:
        raise _Problem("an end after the start", got=f"{end} <= {start}")
    return start, end


Unit = Annotated[str, BeforeValidator(_unit)]
Window = Annotated[tuple[dt.datetime, dt.datetime], BeforeValidator(_window)]
Number = Annotated[float, BeforeValidator(_number())]
Positive = Annotated[float, BeforeValidator(_number(gt=0))]


class ModelSpec(_Spec):
    """The model the parameters act on: an EPANET file (water), a TNTP folder (traffic) or
    the request service's background demand for ``population`` inhabitants (citizens)."""

    inp: Path | None = None
    tntp: Path | None = None
    population: Annotated[int, BeforeValidator(_integer(ge=1))] | None = None
    duration_s: Duration | None = Field(None, alias="duration")
    report_step_s: Duration = Field(3600.0, alias="report_step")
    start: Annotated[dt.datetime, BeforeValidator(_start_time)] = dt.datetime(2019, 1, 1)
    pattern_start_s: Annotated[float, BeforeValidator(_number(ge=0))] = Field(
        0.0, alias="pattern_start")
    initial_levels_from_observations: bool = True
    # measured pump flows as boundary conditions: each pump with a flow sensor runs when
    # its measured flow says so (its own controls removed), so the objective has no jumps
    # where a pump would switch one report step earlier or later
    pump_status_from_observations: bool = True
    accuracy: Positive = 1e-6                 # water: EPANET's convergence (at most the file's)
    gap: Positive = 1e-6                      # traffic: relative gap of each assignment

    @model_validator(mode="after")
    def _one_model(self) -> "ModelSpec":
        if sum(v is not None for v in (self.inp, self.tntp, self.population)) != 1:
            raise _Problem("exactly one of `inp:` (EPANET), `tntp:` (traffic folder) or "
                           "`population:` (the request service)", show_input=False)
        if self.tntp is None and self.duration_s is None:
            raise _Problem("a duration (e.g. 24h, 28d)", loc=("duration",), show_input=False)
        return self


class PriorSpec(_Spec):
    mean: Number | None = None               # in the fitted space; None: the initial value
    sd: Positive


class ParameterSpec(_Spec):
    name: Annotated[str, BeforeValidator(_name)]
    kind: Literal["roughness", "demand", "demand_hour", "leak", "bpr_alpha", "bpr_beta",
                  "request_rate"]
    group: Annotated[str, BeforeValidator(_name)] = "all"
    bounds: tuple[Positive, Positive]
    initial: Positive | None = None
    transform: Literal["log", "none"] | None = None
    prior: PriorSpec | None = None
    hour: Annotated[int, BeforeValidator(_integer(ge=0, le=23))] | None = None
    true_value: Positive | None = None        # for synthetic studies: shown in the report

    @model_validator(mode="after")
    def _consistent(self) -> "ParameterSpec":
        lo, hi = self.bounds
        if not lo < hi:
            raise _Problem("bounds [lower, upper] with lower < upper", loc=("bounds",),
                           got=f"[{lo}, {hi}]")
        start = self.initial_value
        if not lo <= start <= hi:
            raise _Problem(f"an initial value within the bounds [{lo}, {hi}]",
                           loc=("initial",), got=str(start))
        if (self.kind == "demand_hour") != (self.hour is not None):
            raise _Problem("`hour:` (0-23) with kind demand_hour, and only then",
                           loc=("hour",), show_input=False)
        return self

    @property
    def initial_value(self) -> float:
        if self.initial is not None:
            return float(self.initial)
        lo, hi = self.bounds
        default = 1.0 if self.kind != "leak" else math.sqrt(lo * hi)
        return min(max(default, lo), hi)

    @property
    def log(self) -> bool:
        return (self.transform or "log") == "log"


class SensorSpec(_Spec):
    id: Annotated[str, BeforeValidator(_name)]
    element: Annotated[str, BeforeValidator(_name)] | None = None
    quantity: Literal["pressure", "head", "flow", "level", "link_count", "request_count"]
    unit: Unit
    sigma: Positive | None = None             # measurement noise in `unit`: the weight

    @model_validator(mode="after")
    def _unit_fits(self) -> "SensorSpec":
        family = UNITS[self.unit][0]
        if family != QUANTITY_FAMILY[self.quantity]:
            raise _Problem(f"a unit of {QUANTITY_FAMILY[self.quantity]} for a "
                           f"{self.quantity} sensor", loc=("unit",),
                           got=f"{self.unit!r}, a unit of {family}")
        return self


class ObservationFile(_Spec):
    """``battledim``: ``;``-separated, decimal comma, a Timestamp column then one column
    per sensor; ``wide``: a CSV with a time column then one column per sensor; ``tidy``:
    columns time, sensor, value, unit; ``open311`` (GeoReport v2 JSON or CSV) and
    ``myla311``: a request log, counted per day and service_code (the sensor ids).
    ``sensors``: the columns to use (default: all, and each must be a sensor of the
    file's `sensors:` list)."""

    file: Path
    format: Literal["battledim", "wide", "tidy", "open311", "myla311"] = "wide"
    unit: Unit | None = None      # the file's unit (wide formats); converted to the sensor's
    sensors: tuple[str, ...] | None = None


class ExcludeSpec(_Spec):
    start: Annotated[dt.datetime, BeforeValidator(_start_time)]
    end: Annotated[dt.datetime, BeforeValidator(_start_time)]
    sensors: tuple[str, ...] = ()     # empty: every sensor
    reason: str = ""


class CalibrationSpec(_Spec):
    name: Annotated[str, BeforeValidator(_name)]
    description: str = ""
    model: ModelSpec
    groups: Annotated[dict[str, dict[str, Any]], BeforeValidator(_empty_if_none({}))] = Field(
        default_factory=dict)
    parameters: list[ParameterSpec]
    sensors: list[SensorSpec]
    observations: list[ObservationFile]
    exclude: Annotated[list[ExcludeSpec], BeforeValidator(_empty_if_none([]))] = Field(
        default_factory=list)
    fit_window: Window | None = None
    method: Literal["least_squares", "differential_evolution", "both"] = "least_squares"
    max_evaluations: Annotated[int, BeforeValidator(_integer(ge=1))] = 400
    seed: Annotated[int, BeforeValidator(_integer(ge=0))] = 0
    source_path: Path | None = None

    @model_validator(mode="after")
    def _references(self) -> "CalibrationSpec":
        names = [p.name for p in self.parameters]
        for i, p in enumerate(self.parameters):
            if names.index(p.name) != i:
                raise _Problem("distinct parameter names", loc=("parameters", i, "name"),
                               got=f"{p.name!r} again")
            if p.group != "all" and p.group not in self.groups:
                raise _Problem(f"a group defined under `groups:` ({', '.join(self.groups)})",
                               loc=("parameters", i, "group"), got=repr(p.group))
        ids = [s.id for s in self.sensors]
        for i, s in enumerate(self.sensors):
            if ids.index(s.id) != i:
                raise _Problem("distinct sensor ids", loc=("sensors", i, "id"), got=repr(s.id))
        for i, ex in enumerate(self.exclude):
            unknown = sorted(set(ex.sensors) - set(ids))
            if unknown:
                raise _Problem("sensor ids listed under `sensors:`", loc=("exclude", i, "sensors"),
                               got=", ".join(unknown))
            if ex.end <= ex.start:
                raise _Problem("an end after the start", loc=("exclude", i, "end"),
                               got=f"{ex.end} <= {ex.start}")
        return self


def load_calibration(path: str | os.PathLike) -> CalibrationSpec:
    """Read and validate a calibration file; relative paths are taken from its folder."""
    path = Path(path)
    spec = load_yaml_spec(path, CalibrationSpec)
    base = path.resolve().parent

    def here(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else base / p)

    model = spec.model.model_copy(update={"inp": here(spec.model.inp),
                                          "tntp": here(spec.model.tntp)})
    files = [o.model_copy(update={"file": here(o.file)}) for o in spec.observations]
    return spec.model_copy(update={"model": model, "observations": files, "source_path": path})
