"""The ``ensemble:`` section of a scenario file: what varies across the members of an ensemble.

A scenario plus what varies:

* ``grid``: parameter paths of the scenario (``policies.water.service_pressure_m``,
  ``events[0].leak_area_m2``, ``horizon``) each with a list of values; every combination
  is a member.
* ``sweep``: event templates whose element field is a selection (``pipe: {each: pipe,
  min_diameter_mm: 300}``); each selected element gives one member with that event added
  (every pipe of a zone bursting in turn). A ``sample: N`` draws N of them at random
  (seeded by ``sample_seed``).
* ``seeds`` or ``replications``: each of the above is run once per seed.

The section is checked for shape here (pydantic, located errors like the rest of the
file); :mod:`twin.ensemble_members` resolves it against the scenario and its network.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from twin.scenario_fields import (ElementId, _Problem, _Spec, _choice, _empty_if_none, _integer,
                                  _number)

__all__ = ["EnsembleSpec", "ElementSelection", "SELECTION_KINDS", "PATH_PATTERN",
           "split_path"]

SELECTION_KINDS = ("pipe", "link", "junction", "node", "pump")
PATH_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*(?:\.[A-Za-z_][A-Za-z0-9_]*"
                          r"(?:\[\d+\])*)*")
_PATH_HELP = ("a parameter path of the scenario such as 'policies.water.service_pressure_m', "
              "'events[0].leak_area_m2' or 'seed'")


def split_path(path: str) -> list[str | int]:
    """``'events[0].leak_area_m2'`` -> ``['events', 0, 'leak_area_m2']``."""
    parts: list[str | int] = []
    for piece in path.split("."):
        name, *indices = re.split(r"\[", piece)
        parts.append(name)
        parts.extend(int(i.rstrip("]")) for i in indices)
    return parts


def _zone(value: Any) -> tuple[float, float, float, float]:
    expected = "a box [xmin, ymin, xmax, ymax] in the network's coordinates"
    if not isinstance(value, (list, tuple)) or len(value) != 4 or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise _Problem(expected)
    xmin, ymin, xmax, ymax = (float(v) for v in value)
    if xmin >= xmax or ymin >= ymax:
        raise _Problem(expected + " with xmin < xmax and ymin < ymax")
    return xmin, ymin, xmax, ymax


class ElementSelection(_Spec):
    """Which elements of the network an event template is applied to, one member each."""

    each: Annotated[str, BeforeValidator(_choice(*SELECTION_KINDS))]
    ids: tuple[ElementId, ...] = ()                    # only these (default: all of the kind)
    min_diameter_mm: Annotated[float, BeforeValidator(_number(ge=0))] | None = None
    max_diameter_mm: Annotated[float, BeforeValidator(_number(gt=0))] | None = None
    zone: Annotated[tuple[float, float, float, float], BeforeValidator(_zone)] | None = None
    sample: Annotated[int, BeforeValidator(_integer(ge=1))] | None = None

    @model_validator(mode="after")
    def _diameters_fit(self) -> "ElementSelection":
        if (self.min_diameter_mm is not None and self.max_diameter_mm is not None
                and self.min_diameter_mm > self.max_diameter_mm):
            raise _Problem(f"max_diameter_mm >= min_diameter_mm ({self.min_diameter_mm:g})",
                           loc=("max_diameter_mm",), got=f"{self.max_diameter_mm:g}")
        return self


def _grid(value: Any) -> dict[str, list[Any]]:
    example = "such as `policies.water.service_pressure_m: [15, 20, 25]`"
    if not isinstance(value, dict):
        raise _Problem(f"a mapping of parameter paths to lists of values, {example}")
    if not value:
        raise _Problem(f"at least one parameter path with a list of values, {example}",
                       got="an empty grid", show_input=False)
    for key, values in value.items():
        if not isinstance(key, str) or not PATH_PATTERN.fullmatch(key):
            raise _Problem(_PATH_HELP, loc=(str(key),), got=repr(key), show_input=False)
        if key.split(".")[0].split("[")[0] in ("ensemble", "extends", "name"):
            raise _Problem("a path outside `ensemble`, `extends` and `name`", loc=(key,),
                           got=repr(key), show_input=False)
        if not isinstance(values, list):
            raise _Problem(f"a list of values, {example}", loc=(key,), got=repr(values)[:60],
                           show_input=False)
        if not values:
            raise _Problem("at least one value", loc=(key,), got="an empty list",
                           show_input=False)
    return value


def _sweep(value: Any) -> list[dict[str, Any]]:
    example = ("such as `{type: pipe_burst, at: 6h, leak_area_m2: 0.02, "
               "pipe: {each: pipe, min_diameter_mm: 300}}`")
    if not isinstance(value, list) or not value:
        raise _Problem(f"a list of event templates, {example}")
    for i, item in enumerate(value):
        if not isinstance(item, dict) or "type" not in item:
            raise _Problem(f"an event template with a `type:`, {example}", loc=(i,),
                           show_input=False)
        selections = [k for k, v in item.items() if isinstance(v, dict) and "each" in v]
        if len(selections) != 1:
            raise _Problem(f"exactly one field selecting elements ({{each: pipe, ...}}), {example}",
                           loc=(i,), got=f"{len(selections)} such fields", show_input=False)
        field = selections[0]
        try:
            ElementSelection.model_validate(item[field])
        except ValidationError as exc:       # re-raised at its place inside the template
            err = exc.errors()[0]
            problem = (err.get("ctx") or {}).get("error")
            if isinstance(problem, _Problem):
                raise _Problem(problem.expected, loc=(i, field, *err["loc"], *problem.loc),
                               got=problem.got, show_input=False) from None
            raise _Problem(err["msg"], loc=(i, field, *err["loc"]), show_input=False) from None
    return value


class EnsembleSpec(_Spec):
    """What varies across an ensemble's members; see the module docstring."""

    grid: Annotated[dict[str, list[Any]], BeforeValidator(_grid)] | None = None
    sweep: Annotated[list[dict[str, Any]], BeforeValidator(_sweep)] | None = None
    seeds: tuple[Annotated[int, BeforeValidator(_integer(ge=0))], ...] | None = None
    replications: Annotated[int, BeforeValidator(_integer(ge=1, le=100_000))] = 1
    sample_seed: Annotated[int, BeforeValidator(_integer(ge=0))] = 0
    # the KPI the report ranks members by (worst first) and maps per element
    rank_by: str = "water.demand_not_delivered_m3"
    # per-element extremes kept for each member: '<layer>.<recorded quantity>'
    per_element: Annotated[tuple[str, ...], BeforeValidator(_empty_if_none(()))] = (
        "water.pressure",)
    max_members: Annotated[int, BeforeValidator(_integer(ge=1))] = 200_000

    @model_validator(mode="after")
    def _seeds_once(self) -> "EnsembleSpec":
        if self.seeds is not None and "replications" in self.model_fields_set:
            raise _Problem("either `seeds:` (a list) or `replications:` (a count), not both",
                           loc=("replications",), show_input=False)
        if self.seeds is not None and len(self.seeds) == 0:
            raise _Problem("at least one seed", loc=("seeds",), got="an empty list",
                           show_input=False)
        if self.grid is not None and "seed" in self.grid and (
                self.seeds is not None or self.replications > 1):
            raise _Problem("seeds from one place: `seed` in the grid, or `seeds`/`replications`",
                           loc=("grid", "seed"), show_input=False)
        return self

    def member_seeds(self, scenario_seed: int) -> list[int]:
        """The seeds each member is replicated with."""
        if self.seeds is not None:
            return list(self.seeds)
        return [scenario_seed + i for i in range(self.replications)]


EnsembleField = Annotated[EnsembleSpec | None, Field(default=None)]
