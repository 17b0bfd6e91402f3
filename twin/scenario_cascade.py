"""The cascade parts of a scenario file: the ``cascade:`` section and ``heatwave`` events.

```yaml
cascade:                          # present: a cascade layer applies these rules on the bus
  rules: cascades/city_rules.yaml # a rules file (relative to this scenario file), or a list
                                  # of rules written here (see twin.cascade)
  off: [alerts]                   # rule names or tags switched off: a response option
  max_depth: 8                    # caused events in one chain, at most (default: the file's)
events:
  - at: 1d
    type: heatwave
    temperature_c: 36
    duration: 4d
```

With a ``cascade:`` section the traffic layer's own flood closures are off: closures of
flooded streets come from the rules only (one source of closures).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from twin.cascade import (RuleFileSpec, RuleSpec, distinct_rule_names, load_rules)
from twin.events import Event, Heatwave
from twin.scenario_fields import (Duration, EventTime, _integer, _number, _Problem, _Spec)

SCENARIO_SOURCE = "scenario"        # as twin.scenario.EVENT_SOURCE: events from the timeline


def _rules_file(path: str) -> RuleFileSpec:
    """The rules of ``path``, read once per version of the file (an ensemble validates its
    scenario once per member)."""
    try:
        stat = os.stat(path)
    except OSError:
        return load_rules(path)           # the loader says what is wrong with the path
    return _read_rules(os.path.abspath(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _read_rules(path: str, mtime_ns: int, size: int) -> RuleFileSpec:
    return load_rules(path)


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _Problem("a list of rule names or tags such as [alerts]")
    return tuple(value)


class CascadeSpec(_Spec):
    """The rules a run's cascade layer applies, and which of them are off."""

    rules: Annotated[list[RuleSpec], BeforeValidator(lambda v: [] if v is None else v)] = Field(
        default_factory=list)
    rules_file: Path | None = None            # where the rules were read from (set on load)
    off: Annotated[tuple[str, ...], BeforeValidator(_names)] = ()
    max_depth: Annotated[int | None, BeforeValidator(
        lambda v: v if v is None else _integer(ge=1, le=100)(v))] = None

    _internal_fields: ClassVar[frozenset[str]] = frozenset({"rules_file"})

    @model_validator(mode="before")
    @classmethod
    def _read_file(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if False in data:       # YAML 1.1 reads the key `off` as false
                data = {("off" if k is False else k): v for k, v in data.items()}
            cls._check_keys(data)
            if "rules_file" in data:
                raise _Problem(f"a known field ({', '.join(cls.yaml_keys())})", loc=("rules_file",),
                               got="'rules_file', which only the loader sets", show_input=False)
            if "rules" not in data:
                raise _Problem("`rules:` (a rules file such as cascades/city_rules.yaml, "
                               "or a list of rules)", loc=("rules",), show_input=False)
            if isinstance(data["rules"], str):
                # errors in the rules file are reported with that file's name and line
                spec = _rules_file(data["rules"])
                data = {**data, "rules": list(spec.rules), "rules_file": Path(data["rules"])}
                data.setdefault("max_depth", spec.max_depth)
        return data

    @model_validator(mode="after")
    def _known_names(self) -> "CascadeSpec":
        distinct_rule_names(self.rules, ("rules",))
        names = [r.name for r in self.rules]
        tags = sorted({t for r in self.rules for t in r.tags})
        for i, name in enumerate(self.off):
            if name not in names and name not in tags:
                raise _Problem(f"a rule name ({', '.join(names) or 'none'}) or tag "
                               f"({', '.join(tags) or 'none'})", loc=("off", i),
                               got=f"unknown rule or tag {name!r}", show_input=False)
        return self

    def layer_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~twin.cascade_engine.CascadeLayer`."""
        options: dict[str, Any] = {"rules": list(self.rules), "off": self.off}
        if self.max_depth is not None:
            options["max_depth"] = self.max_depth
        return options


class HeatwaveSpec(_Spec):
    """Hot days from ``at`` for ``duration`` (to the end without): what follows in each
    network is for the cascade rules to say (demand surges, complaints ...)."""

    type: Literal["heatwave"]
    at: EventTime
    temperature_c: Annotated[float, BeforeValidator(_number(ge=-50, le=60))] = 35.0
    duration_s: Duration | None = Field(None, alias="duration")

    def element_refs(self) -> list[tuple[str, str, str]]:
        return []

    def to_events(self, time_s: float) -> list[Event]:
        return [Heatwave(time_s=time_s, source=SCENARIO_SOURCE, temperature_c=self.temperature_c,
                         duration_s=self.duration_s)]
