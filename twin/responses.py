"""A scenario's response options (its ``responses:`` section) as scenarios of their own.

Each option is the scenario as written with the option's parameters set, named
``<scenario>-<option>``, with the same seed: the runs differ only by the city's response.
Problems are located at ``responses.<option>.set.<path>`` of the file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from twin.ensemble_members import _error, _scenario_data, _set   # as the ensemble grid's
from twin.ensemble_spec import split_path
from twin.scenario import ScenarioSpec, _first_error

__all__ = ["ResponseRun", "response_specs"]


@dataclass(frozen=True)
class ResponseRun:
    """One option of the ``responses:`` section, ready to run."""

    option: str
    description: str
    settings: dict[str, Any]
    spec: ScenarioSpec


def response_specs(spec: ScenarioSpec) -> list[ResponseRun]:
    """Every option of ``spec.responses`` as a validated scenario (none without the section)."""
    if not spec.responses:
        return []
    data, lines = _scenario_data(spec)            # as written, without its ensemble
    data.pop("responses", None)
    runs = []
    for option, response in spec.responses.items():
        where = f"responses.{option}"
        option_data = copy.deepcopy(data)
        for key, value in response.settings.items():
            try:
                _set(option_data, split_path(key), copy.deepcopy(value))
            except (IndexError, KeyError, TypeError, AttributeError):
                raise _error(spec, f"{where}.set.{key}", "a path that exists in the scenario",
                             got=f"{key!r}: the scenario has no such place") from None
        option_data["name"] = f"{spec.name}-{option}"
        try:
            option_spec = ScenarioSpec.model_validate(option_data)
        except ValidationError as exc:
            source = Path(spec.source_path) if spec.source_path else Path("<scenario>")
            err = _first_error(exc, source, lines)
            field = err.field or ""
            key = next((k for k in response.settings if field == k or field.startswith(
                (k + ".", k + "[")) or k.startswith((field + ".", field + "["))), None)
            if key is not None:
                raise _error(spec, f"{where}.set.{key}", err.expected, err.got) from None
            raise _error(spec, where, f"an option that makes a valid scenario ({err})") from None
        option_spec = option_spec.model_copy(update={"source_path": spec.source_path,
                                                     "based_on": spec.based_on})
        option_spec._lines = spec._lines
        runs.append(ResponseRun(option, response.description, dict(response.settings),
                                option_spec))
    return runs
