"""Cascade rules as data: which event in one layer causes what in another.

A planner edits a YAML file of rules (or lists them inline in a scenario's ``cascade:``
section); :class:`~twin.cascade_engine.CascadeLayer` applies them on the bus. A rule:

```yaml
rules:
  - name: sewer_surcharge_floods_street    # unique; the caused events' source is
                                           # "cascade:<name>"
    description: ...                       # optional, for the planner and the report
    when: SewerFlooding                    # the trigger: an event type of twin.events
    from: sewer                            # optional: only when published by this layer
                                           # (or "scenario"; "cascade" for caused events)
    if: {volume_m3: {gt: 5}}               # optional: conditions on the trigger's fields:
                                           # gt, ge, lt, le, eq, ne, in; `field: value` is eq
    near: {layer: waste, table: containers, within_m: 60}
                                           # optional: only if such an element is that near
    then: StreetFlooded                    # the event type caused
    target: {layer: city, table: streets, within_m: 40, nearest: 2}
                                           # optional: the elements within_m of the trigger
                                           # (the `nearest` n of them) fill the caused event's
                                           # id field (street_ids, cabinet_id ...; `field:`
                                           # names it): one event for a tuple field, one per
                                           # element for a single id
    set:                                   # the caused event's other fields
      depth_m: {from: volume_m3, times: 0.0025, at_most: 0.5}  # derived: at_least/at_most
      reason: flooded                      # a constant; {from: field} copies a field
    delay: 10min                           # fixed; {mean: 10min} exponential;
                                           # {min: 5min, max: 20min} uniform
    probability: 0.8                       # per target element (per trigger without target)
    lasts: 6h                              # optional: the inverse (StreetReopened,
                                           # ValveOpened, RepairDone ...) this long after;
                                           # fills duration_s where the event has one; and
                                           # the rule does not fire again on the same
                                           # element while the effect lasts
    hours: ["06:00", "13:00"]              # optional: only for triggers at these local times
    tags: [alerts]                         # a scenario's `cascade: off: [alerts]` drops them
max_depth: 8                               # optional: caused events in one chain, at most
```

The trigger's location is its ``x``/``y`` or else the geometry of the element it names
(``street_ids`` -> city streets, ``pipe_id`` -> water links, ``cabinet_id`` -> lighting
cabinets ...). A caused event with ``x``/``y`` fields gets the trigger's location (or its
element's, one event per element) unless ``set`` gives them.

Everything is checked when the file is read (:func:`load_rules`): unknown event types,
layers, element tables or fields, negative delays, probabilities outside 0..1, repeated
names, each reported with file, line, field and rule name. :func:`cause_chains` adds to a
run's event table the root, depth and rule of every event, for the cascade report.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import re
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable

import numpy as np
import pandas as pd
from pydantic import BeforeValidator, Field, model_validator

from twin.events import EVENT_TYPES, Event
from twin.scenario_fields import (Duration, _integer, _number, _Problem, _Spec, _text,
                                  format_duration, parse_duration)

__all__ = ["RuleSpec", "RuleFileSpec", "Rule", "Delay", "LAYER_TABLES", "load_rules",
           "compile_rule", "cause_chains", "distinct_rule_names", "CASCADE_SOURCE"]

CASCADE_SOURCE = "cascade"
DEFAULT_MAX_DEPTH = 8

# the element tables each layer's ``elements()`` offers (in the city's CRS), by layer
LAYER_TABLES: dict[str, tuple[str, ...]] = {
    "water": ("nodes", "links"),
    "sewer": ("nodes", "links", "subcatchments"),
    "traffic": ("links", "zones"),
    "parking": ("zones", "car_parks"),
    "lighting": ("lamps", "feeders", "cabinets"),
    "waste": ("containers", "sites"),
    "citizens": (),
    "city": ("streets", "blocks"),
    CASCADE_SOURCE: (),
}
SOURCES = (*LAYER_TABLES, "scenario")     # what `from:` may name

# the caused event's field a target table fills by default: the first the event type has
TABLE_ID_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("city", "streets"): ("street_ids",),
    ("water", "nodes"): ("node_id", "nodes"),
    ("water", "links"): ("pipe_id", "link_id", "pump_id"),
    ("sewer", "nodes"): ("node_id", "outfall_id"),
    ("sewer", "links"): ("conduit_id", "pump_id"),
    ("lighting", "lamps"): ("lamp_ids", "lamp_id"),
    ("lighting", "feeders"): ("feeder_id",),
    ("lighting", "cabinets"): ("cabinet_id",),
    ("waste", "containers"): ("container_id",),
}

# where a trigger without x/y is: the element its field names, looked up in these tables
LOCATION_FIELDS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("street_ids", (("city", "streets"),)),
    ("pipe_id", (("water", "links"),)),
    ("link_id", (("water", "links"),)),
    ("node_id", (("water", "nodes"), ("sewer", "nodes"))),
    ("nodes", (("water", "nodes"),)),
    ("conduit_id", (("sewer", "links"),)),
    ("outfall_id", (("sewer", "nodes"),)),
    ("cabinet_id", (("lighting", "cabinets"),)),
    ("lamp_id", (("lighting", "lamps"),)),
    ("lamp_ids", (("lighting", "lamps"),)),
    ("container_id", (("waste", "containers"),)),
)

_RESERVED = ("time_s", "source", "cause_id", "event_id")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "in": lambda a, b: a in b,
}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")


# --- field kinds of the event types ----------------------------------------------------
def _kind(annotation: Any) -> str:
    """'number', 'text', 'ids', 'numbers' or 'other' for an event field's type."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _kind(args[0]) if len(args) == 1 else "other"
    if annotation in (float, int):
        return "number"
    if annotation is str:
        return "text"
    if origin is tuple:
        return "ids" if args and args[0] is str else "numbers" if args and args[0] in (
            float, int) else "other"
    return "other"


@functools.lru_cache(maxsize=None)
def event_fields(event_type: type[Event]) -> dict[str, tuple[str, bool]]:
    """An event type's own fields: name -> (kind, may be None); do not change the result
    (it is shared)."""
    hints = typing.get_type_hints(event_type)
    out = {}
    for f in dataclasses.fields(event_type):
        if f.name in _RESERVED:
            continue
        annotation = hints[f.name]
        optional = type(None) in typing.get_args(annotation)
        out[f.name] = (_kind(annotation), optional)
    return out


# --- delays and derived values ---------------------------------------------------------
@dataclass(frozen=True)
class Delay:
    """How long after its trigger a caused event happens: fixed, exponential or uniform."""

    kind: str = "fixed"          # 'fixed', 'exponential' or 'uniform'
    a_s: float = 0.0             # the delay, the mean, or the minimum
    b_s: float = 0.0             # the maximum (uniform)

    def draw(self, rng: np.random.Generator) -> float:
        if self.kind == "exponential":
            return float(rng.exponential(self.a_s)) if self.a_s > 0 else 0.0
        if self.kind == "uniform":
            return float(rng.uniform(self.a_s, self.b_s))
        return self.a_s

    def text(self) -> str:
        if self.kind == "exponential":
            return f"mean {format_duration(self.a_s)}"
        if self.kind == "uniform":
            return f"{format_duration(self.a_s)}..{format_duration(self.b_s)}"
        return format_duration(self.a_s)


_DELAY_HELP = ("a duration >= 0 such as '10min', {mean: 10min} (exponential) or "
               "{min: 5min, max: 20min} (uniform)")


def _seconds(value: Any, loc: tuple) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        raise _Problem(_DELAY_HELP, loc=loc, got=repr(value), show_input=False) from None


def _delay(value: Any) -> Delay:
    if isinstance(value, Delay):
        return value
    if isinstance(value, dict):
        keys = set(value)
        if keys == {"mean"}:
            return Delay("exponential", _seconds(value["mean"], ("mean",)))
        if keys == {"min", "max"}:
            lo, hi = _seconds(value["min"], ("min",)), _seconds(value["max"], ("max",))
            if hi < lo:
                raise _Problem("max >= min", loc=("max",), got=f"{value['max']} < {value['min']}",
                               show_input=False)
            return Delay("uniform", lo, hi)
        raise _Problem(_DELAY_HELP, got=f"keys {sorted(map(str, keys))}", show_input=False)
    return Delay("fixed", _seconds(value, ()))


@dataclass(frozen=True)
class Derived:
    """A caused field computed from a trigger field: ``clip(plus + times * value)``."""

    field: str
    times: float | None = None
    plus: float | None = None
    at_least: float | None = None
    at_most: float | None = None

    @property
    def arithmetic(self) -> bool:
        return any(v is not None for v in (self.times, self.plus, self.at_least, self.at_most))

    def value(self, trigger: Event) -> Any:
        v = getattr(trigger, self.field)
        if not self.arithmetic or v is None:
            return v
        v = (self.plus or 0.0) + (1.0 if self.times is None else self.times) * float(v)
        if self.at_least is not None:
            v = max(v, self.at_least)
        if self.at_most is not None:
            v = min(v, self.at_most)
        return v


# --- the rule spec (YAML) ------------------------------------------------------------------
def _rule_name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value.strip()):
        raise _Problem("a rule name of letters, digits, '_', '.' or '-' starting with a letter")
    return value.strip()


_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def _hours(value: Any) -> tuple[int, int] | None:
    """``["06:00", "13:00"]``: the trigger's local time of day, as minutes [from, to)."""
    if value is None:
        return None
    expected = ('two times of day ["HH:MM", "HH:MM"] in quotes, from and to (the window '
                'may pass midnight: ["22:00", "06:00"])')
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _Problem(expected)
    minutes = []
    for i, text in enumerate(value):
        m = _CLOCK.fullmatch(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise _Problem(expected, loc=(i,), got=repr(text), show_input=False)
        minutes.append(int(m[1]) * 60 + int(m[2]))
    if minutes[0] == minutes[1]:
        raise _Problem(expected + ", not empty", got=repr(list(value)), show_input=False)
    return minutes[0], minutes[1]


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) and t for t in value):
        raise _Problem("a list of tags (text) such as [alerts]")
    return tuple(value)


def _mapping(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Problem("a mapping of `field: ...` lines")
    return {str(k): v for k, v in value.items()}


class TargetSpec(_Spec):
    """Elements of a layer's table near the trigger (``target:`` and ``near:``)."""

    layer: Annotated[str, BeforeValidator(_text)]
    table: Annotated[str, BeforeValidator(_text)]
    within_m: Annotated[float, BeforeValidator(_number(gt=0))]
    nearest: Annotated[int | None, BeforeValidator(
        lambda v: v if v is None else _integer(ge=1)(v))] = None
    field: Annotated[str | None, BeforeValidator(lambda v: v if v is None else _text(v))] = None

    @model_validator(mode="after")
    def _known_table(self) -> "TargetSpec":
        if self.layer not in LAYER_TABLES:
            raise _Problem(f"a layer name ({', '.join(LAYER_TABLES)})", loc=("layer",),
                           got=_unknown("layer", self.layer, LAYER_TABLES))
        tables = LAYER_TABLES[self.layer]
        if self.table not in tables:
            expected = (f"an element table of the {self.layer} layer ({', '.join(tables)})"
                        if tables else f"a layer with element tables (the {self.layer} layer "
                                       f"has none)")
            raise _Problem(expected, loc=("table",), got=_unknown("table", self.table, tables))
        return self


class RuleSpec(_Spec):
    """One cascade rule as written (see the module docstring); :func:`compile_rule` checks it
    against the event types and gives the :class:`Rule` the engine applies."""

    name: Annotated[str, BeforeValidator(_rule_name)]
    description: Annotated[str, BeforeValidator(_text)] = ""
    when: Annotated[str, BeforeValidator(_text)]
    from_: Annotated[str | None, BeforeValidator(lambda v: v if v is None else _text(v))] = Field(
        None, alias="from")
    if_: Annotated[dict[str, Any], BeforeValidator(_mapping)] = Field(
        default_factory=dict, alias="if")
    near: TargetSpec | None = None
    then: Annotated[str, BeforeValidator(_text)]
    target: TargetSpec | None = None
    set_: Annotated[dict[str, Any], BeforeValidator(_mapping)] = Field(
        default_factory=dict, alias="set")
    delay: Annotated[Delay, BeforeValidator(_delay)] = Delay()
    probability: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 1.0
    lasts_s: Duration | None = Field(None, alias="lasts")
    hours: Annotated[tuple[int, int] | None, BeforeValidator(_hours)] = None
    tags: Annotated[tuple[str, ...], BeforeValidator(_tags)] = ()

    @model_validator(mode="after")
    def _consistent(self) -> "RuleSpec":
        compile_rule(self)
        return self


def distinct_rule_names(rules: list[RuleSpec], loc: tuple = ()) -> list[RuleSpec]:
    """``rules``, or a :class:`_Problem` at the second rule of a repeated name."""
    first: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.name in first:
            raise _Problem("each rule name once", loc=(*loc, i, "name"),
                           got=f"{rule.name!r} again (first as rules[{first[rule.name]}])",
                           show_input=False)
        first[rule.name] = i
    return rules


Rules = Annotated[list[RuleSpec], BeforeValidator(lambda v: [] if v is None else v)]


class RuleFileSpec(_Spec):
    """A rules file: ``rules:`` and an optional ``max_depth``."""

    rules: Rules = Field(default_factory=list)
    max_depth: Annotated[int, BeforeValidator(_integer(ge=1, le=100))] = DEFAULT_MAX_DEPTH

    @model_validator(mode="after")
    def _unique(self) -> "RuleFileSpec":
        distinct_rule_names(self.rules, ("rules",))
        return self


def load_rules(path: str | os.PathLike) -> RuleFileSpec:
    """Read and check a rules file; a :class:`~twin.scenario_fields.ScenarioError` names the
    file, line, field and rule at fault."""
    from twin.scenario import load_yaml_spec      # the scenario loader uses this module

    return load_yaml_spec(path, RuleFileSpec)


# --- the compiled rule ---------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any

    def holds(self, event: Event) -> bool:
        v = getattr(event, self.field)
        if v is None:
            return False
        try:
            return bool(_OPERATORS[self.op](v, self.value))
        except TypeError:
            return False


@dataclass(frozen=True)
class Rule:
    """A checked rule, ready to apply."""

    name: str
    when: type[Event]
    then: type[Event]
    from_: str | None
    conditions: tuple[Condition, ...]
    near: TargetSpec | None
    target: TargetSpec | None
    target_field: str | None           # the caused field the target's ids fill
    per_element: bool                  # one caused event per target element
    constants: dict[str, Any]
    derived: dict[str, Derived]
    located: bool                      # the caused event's x/y come from the trigger/element
    delay: Delay
    probability: float
    lasts_s: float | None
    tags: tuple[str, ...]
    description: str = ""
    hours: tuple[int, int] | None = None   # minutes of the day [from, to) of the trigger

    def in_hours(self, minute_of_day: float) -> bool:
        """Whether a trigger at this local minute of the day may fire the rule."""
        if self.hours is None:
            return True
        start, end = self.hours
        return start <= minute_of_day < end if start <= end else \
            (minute_of_day >= start or minute_of_day < end)

    def layers(self) -> set[str]:
        """The layers the rule needs (trigger source, target, near), the city included."""
        named = {self.from_} if self.from_ in LAYER_TABLES else set()
        named |= {t.layer for t in (self.target, self.near) if t is not None}
        return named - {CASCADE_SOURCE}

    def matches(self, event: Event) -> bool:
        if self.from_ is not None:
            src = event.source
            if not (src == self.from_ or src.startswith(self.from_ + ":")
                    or src.startswith(self.from_ + ".")):
                return False
        return all(c.holds(event) for c in self.conditions)

    def id_fields(self) -> set[str]:
        """Caused fields that name elements (filled by the target or copied from the
        trigger): a caused event whose element fields are all empty is not published."""
        out = {self.target_field} if self.target_field else set()
        return out | {f for f, d in self.derived.items() if f.endswith(("_id", "_ids"))
                      and not d.arithmetic}


def _unknown(what: str, value: str, known: Any) -> str:
    close = difflib.get_close_matches(str(value), list(known), n=1)
    return f"unknown {what} {value!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _event_type(value: str, loc: str, rule: str) -> type[Event]:
    if value not in EVENT_TYPES:
        raise _Problem(f"an event type of twin.events ({', '.join(EVENT_TYPES)})", loc=(loc,),
                       got=f"{_unknown('event type', value, EVENT_TYPES)} in rule {rule!r}",
                       show_input=False)
    return EVENT_TYPES[value]


def _field_of(fields: dict, name: str, loc: tuple, rule: str, cls: type[Event]) -> tuple[str, bool]:
    if name not in fields:
        raise _Problem(f"a field of {cls.__name__} ({', '.join(fields) or 'none'})", loc=loc,
                       got=f"{_unknown('field', name, fields)} in rule {rule!r}",
                       show_input=False)
    return fields[name]


def _constant_ok(kind: str, optional: bool, value: Any) -> Any:
    """``value`` as the field's type, or raise ValueError."""
    if value is None and optional:
        return None
    if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value):
        return value
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "ids" and isinstance(value, (list, tuple, str)):
        items = (value,) if isinstance(value, str) else tuple(value)
        if all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in items):
            return tuple(str(i) for i in items)
    if kind == "numbers" and isinstance(value, (list, tuple)) and all(
            isinstance(i, (int, float)) and not isinstance(i, bool) for i in value):
        return tuple(float(i) for i in value)
    raise ValueError(kind)


_KIND_TEXT = {"number": "a number", "text": "text", "ids": "a list of ids",
              "numbers": "a list of numbers", "other": "a value"}


def _condition(name: str, spec: Any, fields: dict, rule: RuleSpec, cls) -> list[Condition]:
    kind, _ = _field_of(fields, name, ("if", name), rule.name, cls)
    ops = spec if isinstance(spec, dict) else {"eq": spec}
    out = []
    for op, value in ops.items():
        if op not in _OPERATORS:
            raise _Problem(f"a comparison ({', '.join(_OPERATORS)})", loc=("if", name, str(op)),
                           got=f"{_unknown('comparison', op, _OPERATORS)} in rule {rule.name!r}",
                           show_input=False)
        numeric = op in ("gt", "ge", "lt", "le")
        if numeric and kind != "number":
            raise _Problem(f"eq, ne or in for the {kind} field {name!r}", loc=("if", name, op),
                           got=f"{op} in rule {rule.name!r}", show_input=False)
        items = value if op == "in" else [value]
        if op == "in" and not isinstance(value, (list, tuple)):
            raise _Problem("a list of values", loc=("if", name, op), got=repr(value),
                           show_input=False)
        want = "number" if kind in ("number", "numbers") else "text"
        try:
            items = [_constant_ok(want, False, v) for v in items]
        except ValueError:
            raise _Problem(f"{_KIND_TEXT[want]} (the field {name!r} holds {_KIND_TEXT[kind]})",
                           loc=("if", name, op), got=f"{value!r} in rule {rule.name!r}",
                           show_input=False) from None
        out.append(Condition(name, op, tuple(items) if op == "in" else items[0]))
    return out


def _derived(name: str, spec: dict, kind: str, trig_fields: dict, rule: RuleSpec,
             cls) -> Derived:
    allowed = {"from", "times", "plus", "at_least", "at_most"}
    for key in spec:
        if key not in allowed:
            raise _Problem(f"a known key of a derived value ({', '.join(sorted(allowed))})",
                           loc=("set", name, str(key)),
                           got=f"{_unknown('key', key, allowed)} in rule {rule.name!r}",
                           show_input=False)
    if "from" not in spec or not isinstance(spec["from"], str):
        raise _Problem("`from: <a field of the trigger>`", loc=("set", name),
                       got=f"no `from:` in rule {rule.name!r}", show_input=False)
    source = spec["from"]
    src_kind, _ = _field_of(trig_fields, source, ("set", name, "from"), rule.name, cls)
    numbers = {}
    for key in ("times", "plus", "at_least", "at_most"):
        if key in spec:
            try:
                numbers[key] = float(_constant_ok("number", False, spec[key]))
            except ValueError:
                raise _Problem("a number", loc=("set", name, key), got=repr(spec[key]),
                               show_input=False) from None
    derived = Derived(source, **numbers)
    fits = (src_kind == kind or (src_kind == "text" and kind == "ids")) and not (
        derived.arithmetic and kind != "number")
    if not fits:
        raise _Problem(f"a trigger field holding {_KIND_TEXT[kind]} for {name!r}"
                       + (" (times/plus/at_least/at_most need numbers)" if derived.arithmetic
                          else ""),
                       loc=("set", name, "from"),
                       got=f"{source!r} ({_KIND_TEXT[src_kind]}) in rule {rule.name!r}",
                       show_input=False)
    return derived


def compile_rule(spec: RuleSpec) -> Rule:
    """The :class:`Rule` of a spec, checked against the event types; raises :class:`_Problem`
    (located by the loader) for unknown types, layers, fields and ill-typed values."""
    when = _event_type(spec.when, "when", spec.name)
    then = _event_type(spec.then, "then", spec.name)
    if spec.from_ is not None and spec.from_ not in SOURCES:
        raise _Problem(f"a layer name ({', '.join(SOURCES)})", loc=("from",),
                       got=f"{_unknown('layer', spec.from_, SOURCES)} in rule {spec.name!r}",
                       show_input=False)
    trig_fields, caused_fields = event_fields(when), event_fields(then)
    conditions = [c for name, s in spec.if_.items()
                  for c in _condition(name, s, trig_fields, spec, when)]
    target_field = None
    per_element = False
    if spec.target is not None:
        key = (spec.target.layer, spec.target.table)
        candidates = ((spec.target.field,) if spec.target.field
                      else TABLE_ID_FIELDS.get(key, ()))
        target_field = next((f for f in candidates if f in caused_fields), None)
        if target_field is None or caused_fields[target_field][0] not in ("ids", "text"):
            got = (f"{spec.target.field!r}" if spec.target.field
                   else f"none of {', '.join(candidates) or 'its id fields'}")
            raise _Problem(f"an id field of {then.__name__} for the {spec.target.layer} "
                           f"{spec.target.table} to fill (`target: field:`)",
                           loc=("target", "field") if spec.target.field else ("target",),
                           got=f"{got} in rule {spec.name!r}", show_input=False)
        per_element = caused_fields[target_field][0] == "text"
    constants, derived = {}, {}
    for name, value in spec.set_.items():
        if name in _RESERVED:
            raise _Problem(f"a field the rule may set (not {', '.join(_RESERVED)})",
                           loc=("set", name), got=f"{name!r} in rule {spec.name!r}",
                           show_input=False)
        kind, optional = _field_of(caused_fields, name, ("set", name), spec.name, then)
        if name == target_field:
            raise _Problem(f"{name!r} set by the target only", loc=("set", name),
                           got=f"both in rule {spec.name!r}", show_input=False)
        if isinstance(value, dict):
            derived[name] = _derived(name, value, kind, trig_fields, spec, when)
            continue
        try:
            constants[name] = _constant_ok(kind, optional, value)
        except ValueError:
            raise _Problem(_KIND_TEXT[kind] + " or {from: <trigger field>}", loc=("set", name),
                           got=f"{value!r} in rule {spec.name!r}", show_input=False) from None
    located = "x" in caused_fields and "y" in caused_fields and not (
        {"x", "y"} & (set(constants) | set(derived)))
    return Rule(name=spec.name, when=when, then=then, from_=spec.from_,
                conditions=tuple(conditions), near=spec.near, target=spec.target,
                target_field=target_field, per_element=per_element, constants=constants,
                derived=derived, located=located, delay=spec.delay,
                probability=spec.probability, lasts_s=spec.lasts_s, tags=spec.tags,
                hours=spec.hours,
                description=spec.description)


# --- chains in a run's events ------------------------------------------------------------
def cause_chains(events: pd.DataFrame) -> pd.DataFrame:
    """``events`` (a run's event table: event_id, time_s, kind, source, cause_id, details)
    with ``root_id`` (the first event of its chain present in the table), ``depth`` (causes
    between it and the root: 0 for a root) and ``rule`` (the cascade rule that caused it,
    from ``source`` 'cascade:<rule>'; empty for events a layer or the scenario raised)."""
    out = events.copy()
    ids = out["event_id"].astype("int64").to_numpy()
    causes = pd.to_numeric(out["cause_id"], errors="coerce").to_numpy(dtype=float)
    root: dict[int, int] = {}
    depth: dict[int, int] = {}
    for k in np.argsort(ids, kind="stable"):
        eid, cause = int(ids[k]), causes[k]
        c = int(cause) if not math.isnan(cause) else None
        if c is not None and c in root and c != eid:
            root[eid], depth[eid] = root[c], depth[c] + 1
        else:
            root[eid], depth[eid] = eid, 0
    out["root_id"] = [root[int(i)] for i in ids]
    out["depth"] = [depth[int(i)] for i in ids]
    prefix = CASCADE_SOURCE + ":"
    out["rule"] = [s[len(prefix):] if isinstance(s, str) and s.startswith(prefix) else ""
                   for s in out["source"]]
    return out
