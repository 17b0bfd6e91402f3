"""The ``responses:`` section of a scenario file: the city's response options to compare.

Each option is the scenario with a few parameters changed, named by their path in the file
(the paths of an ensemble grid: ``sewer.strategy``, ``citizens.alerts.send``,
``events[0].duration``). ``twin run FILE --out DIR`` runs the scenario as written and then
each option with the same seed, and the report sets them side by side.

```yaml
responses:
  no_alerts:                               # a name of the option (it becomes a file name)
    description: the city sends no SMS / app alerts
    set: {citizens.alerts.send: false}
  sewer_equal_filling:
    description: strategy B for the storage tanks
    set: {sewer.strategy: equal_filling}
```

The section is checked for shape here; :func:`twin.responses.response_specs` applies each
option to the scenario and validates the result like a scenario file, reporting a problem
at ``responses.<option>.set.<path>``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from twin.ensemble_spec import PATH_PATTERN
from twin.scenario_fields import _Problem, _Spec, _name, _text

__all__ = ["ResponseOption", "ResponsesField", "RESERVED_ROOTS"]

# fields of a scenario an option may not change: they say what the scenario is
RESERVED_ROOTS = ("responses", "ensemble", "extends", "name")


def _settings(value: Any) -> dict[str, Any]:
    example = "such as `{sewer.strategy: equal_filling}`"
    if not isinstance(value, dict) or not value:
        raise _Problem(f"a mapping of parameter paths to values, {example}")
    for key in value:
        if not isinstance(key, str) or not PATH_PATTERN.fullmatch(key):
            raise _Problem("a parameter path of the scenario such as 'sewer.strategy' or "
                           "'events[0].duration'", loc=(str(key),), got=repr(key),
                           show_input=False)
        if key.split(".")[0].split("[")[0] in RESERVED_ROOTS:
            raise _Problem(f"a path outside {', '.join(RESERVED_ROOTS)}", loc=(key,),
                           got=repr(key), show_input=False)
    return value


class ResponseOption(_Spec):
    """One response option: what it changes in the scenario, and a line for the report."""

    description: Annotated[str, BeforeValidator(_text)] = ""
    settings: Annotated[dict[str, Any], BeforeValidator(_settings)] = Field(alias="set")


def _options(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise _Problem("a mapping of option names to `{description: ..., set: {path: value}}`")
    for key in value:
        try:
            _name(key)
        except _Problem as problem:
            raise _Problem(problem.expected, loc=(str(key),), got=repr(key),
                           show_input=False) from None
    return value


ResponsesField = Annotated[dict[str, ResponseOption] | None, BeforeValidator(_options),
                           Field(default=None)]
