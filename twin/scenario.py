"""Declarative what-if scenarios: a YAML file in, a validated :class:`ScenarioSpec` out.

A scenario names a city (the generated demo city or an EPANET ``.inp`` file), a
start, a horizon, a hydraulic step, a seed, a timeline of events, policies and
the outputs wanted. A what-if file can ``extends:`` a baseline and only add or
override fields: mappings are merged key by key, ``events`` lists are joined.

Every problem is reported as a :class:`ScenarioError` naming the file, the line,
the dotted field (``events[1].leak_area_m2``) and what was expected. Lines come
from composing the YAML into nodes first and recording where each key and list
item starts; pydantic's error locations are then mapped onto those paths.
Element ids (pipes, links, pumps, nodes) can only be checked once the network is
built: :meth:`ScenarioSpec.element_refs` lists them and :func:`check_elements`
checks them against the ids the network knows.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Union

import yaml
from pydantic import (AfterValidator, BeforeValidator, Field, PrivateAttr, ValidationError,
                      model_validator)

from twin.ensemble_spec import EnsembleField
from twin.scenario_responses import ResponsesField
from twin.events import (DemandSurge, Event, FireFlow, LeakStopped, PipeBurst, PumpOutage,
                         ValveClosed, ValveOpened)
from twin.scenario_fields import (Duration, ElementId, EventTime, HorizonDuration, ScenarioError,
                                  StepDuration, _Problem, _Spec, _boolean, _choice, _crs,
                                  _distinct, _empty_if_none, _integer, _name, _number,
                                  _quantity_names, _start_time, _text, format_duration,
                                  parse_duration, safe_name)
from twin.scenario_waste import WasteSpec
from twin.scenario_parking import ParkingSpec
from twin.scenario_traffic import StreetClosureSpec, TrafficSpec
from twin.scenario_lighting import LampFailureSpec, LightingSpec
from twin.scenario_sewer import (BlockedConduitSpec, DesignStormSpec, RainfallSeriesSpec,
                                 SewerPumpOutageSpec, SewerSpec)
from twin.scenario_cascade import CascadeSpec, HeatwaveSpec
from twin.scenario_citizens import CitizensSpec

__all__ = ["ScenarioError", "ScenarioSpec", "CitySpec", "DemoCitySpec", "OutputsSpec",
           "EventSpec", "PipeBurstSpec", "ValveClosureSpec", "PumpOutageSpec",
           "DemandSurgeSpec", "FireFlowSpec", "ElementRef", "load_scenario", "check_elements",
           "parse_duration", "format_duration", "main_validate", "EVENT_SPECS"]

DEFAULT_START = dt.datetime(2026, 6, 15, 0, 0)
EVENT_SOURCE = "scenario"
_Location = tuple[Path, int]


# --- events ------------------------------------------------------------------------------
class EventSpec(_Spec):
    """One timeline entry: ``at`` (offset or ISO datetime) and a snake_case ``type``."""

    type: str
    at: EventTime

    def element_refs(self) -> list[tuple[str, str, str]]:
        """(field, kind, element id) for each network element this event names."""
        return []

    def to_events(self, time_s: float) -> list[Event]:
        """The bus events for this entry when it happens at ``time_s``."""
        raise NotImplementedError


class PipeBurstSpec(EventSpec):
    """A pipe breaks; with a ``duration`` the leak is stopped (repaired) after it."""

    type: Literal["pipe_burst"]
    pipe: ElementId
    leak_area_m2: Annotated[float, BeforeValidator(_number(gt=0))] = 0.05
    position: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.5
    duration_s: Duration | None = Field(None, alias="duration")

    def element_refs(self) -> list[tuple[str, str, str]]:
        return [("pipe", "pipe", self.pipe)]

    def to_events(self, time_s: float) -> list[Event]:
        events: list[Event] = [PipeBurst(time_s=time_s, source=EVENT_SOURCE, pipe_id=self.pipe,
                                         leak_area_m2=self.leak_area_m2, position=self.position)]
        if self.duration_s is not None:
            events.append(LeakStopped(time_s=time_s + self.duration_s, source=EVENT_SOURCE,
                                      pipe_id=self.pipe, started_at_s=time_s))
        return events


class ValveClosureSpec(EventSpec):
    """A link is closed (setting 0) or throttled; with a ``duration`` it reopens after it."""

    type: Literal["valve_closure"]
    link: ElementId
    setting: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.0
    duration_s: Duration | None = Field(None, alias="duration")

    def element_refs(self) -> list[tuple[str, str, str]]:
        return [("link", "link", self.link)]

    def to_events(self, time_s: float) -> list[Event]:
        events: list[Event] = [ValveClosed(time_s=time_s, source=EVENT_SOURCE, link_id=self.link,
                                           setting=self.setting)]
        if self.duration_s is not None:
            events.append(ValveOpened(time_s=time_s + self.duration_s, source=EVENT_SOURCE,
                                      link_id=self.link))
        return events


class PumpOutageSpec(EventSpec):
    """A pump stops; without a ``duration`` it stays off to the end of the run."""

    type: Literal["pump_outage"]
    pump: ElementId
    duration_s: Duration | None = Field(None, alias="duration")

    def element_refs(self) -> list[tuple[str, str, str]]:
        return [("pump", "pump", self.pump)]

    def to_events(self, time_s: float) -> list[Event]:
        return [PumpOutage(time_s=time_s, source=EVENT_SOURCE, pump_id=self.pump,
                           duration_s=self.duration_s)]


class DemandSurgeSpec(EventSpec):
    """Demands (all nodes, or ``nodes``) times ``factor``; without ``duration``, to the end."""

    type: Literal["demand_surge"]
    factor: Annotated[float, BeforeValidator(_number(gt=0))]
    duration_s: Duration | None = Field(None, alias="duration")
    nodes: Annotated[tuple[ElementId, ...], AfterValidator(_distinct("node", "nodes"))] = ()

    def element_refs(self) -> list[tuple[str, str, str]]:
        return [(f"nodes[{i}]", "node", node) for i, node in enumerate(self.nodes)]

    def to_events(self, time_s: float) -> list[Event]:
        return [DemandSurge(time_s=time_s, source=EVENT_SOURCE, factor=self.factor,
                            duration_s=self.duration_s, nodes=self.nodes)]


class FireFlowSpec(EventSpec):
    """Fire fighting draws ``flow_lps`` at a node for ``duration`` (default 2 h)."""

    type: Literal["fire_flow"]
    node: ElementId
    flow_lps: Annotated[float, BeforeValidator(_number(gt=0))]
    duration_s: Duration = Field(7200.0, alias="duration")

    def element_refs(self) -> list[tuple[str, str, str]]:
        return [("node", "node", self.node)]

    def to_events(self, time_s: float) -> list[Event]:
        return [FireFlow(time_s=time_s, source=EVENT_SOURCE, node_id=self.node,
                         flow_lps=self.flow_lps, duration_s=self.duration_s)]


EVENT_SPECS: dict[str, type[EventSpec]] = {
    "pipe_burst": PipeBurstSpec, "valve_closure": ValveClosureSpec,
    "pump_outage": PumpOutageSpec, "demand_surge": DemandSurgeSpec, "fire_flow": FireFlowSpec,
    "street_closure": StreetClosureSpec,
    "lamp_failure": LampFailureSpec,
    "design_storm": DesignStormSpec, "rainfall_series": RainfallSeriesSpec,
    "blocked_conduit": BlockedConduitSpec, "sewer_pump_outage": SewerPumpOutageSpec,
    "heatwave": HeatwaveSpec,
}
AnyEventSpec = Annotated[Union[PipeBurstSpec, ValveClosureSpec, PumpOutageSpec, DemandSurgeSpec,
                               FireFlowSpec, StreetClosureSpec, LampFailureSpec, DesignStormSpec,
                               RainfallSeriesSpec, BlockedConduitSpec, SewerPumpOutageSpec,
                               HeatwaveSpec],
                        Field(discriminator="type")]


# --- the scenario ------------------------------------------------------------------------
class DemoCitySpec(_Spec):
    """The generated demo city."""

    population: Annotated[int, BeforeValidator(_integer(ge=1000, le=300_000))] = 50_000
    seed: Annotated[int, BeforeValidator(_integer(ge=0))] = 0


class CitySpec(_Spec):
    """Either ``demo`` (generated) or ``inp`` (an EPANET file), plus an optional ``crs``."""

    demo: DemoCitySpec | None = None
    inp: Path | None = None
    crs: Annotated[str, BeforeValidator(_crs)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if isinstance(data, dict):
            cls._check_keys(data)                             # unknown keys first
            if "demo" in data and data["demo"] is None:      # `demo:` alone: all defaults
                data = {**data, "demo": {}}
            if ("demo" in data) == ("inp" in data):
                raise _Problem("exactly one of `demo:` (a generated city) or `inp:` "
                               "(an EPANET file)", got="both" if "demo" in data else "neither",
                               show_input=False)
            inp = data.get("inp")
            if "inp" in data and (not isinstance(inp, (str, os.PathLike))
                                  or not Path(inp).is_file()):
                raise _Problem("the path of an existing EPANET .inp file", loc=("inp",),
                               got=_short_repr(str(inp)))
            if "demo" in data and data.get("crs") is not None:
                raise _Problem("crs only with inp: (the demo city is in EPSG:2154)",
                               loc=("crs",), got=_short_repr(data["crs"]), show_input=False)
        return data


class OutputsSpec(_Spec):
    """What a run should record and produce."""

    quantities: Annotated[tuple[str, ...], BeforeValidator(_quantity_names)] = (
        "pressure", "flow", "tank_level")
    report: Annotated[bool, BeforeValidator(_boolean)] = True
    maps: Annotated[bool, BeforeValidator(_boolean)] = True


class WaterPolicySpec(_Spec):
    """How the water layer runs: service pressure for KPIs, EPANET library."""

    service_pressure_m: Annotated[float, BeforeValidator(_number(gt=0))] = 20.0
    engine: Annotated[str, BeforeValidator(_choice("wntr", "owa"))] = "wntr"


class PoliciesSpec(_Spec):
    """Policies by layer; each section is validated like the rest of the file."""

    water: Annotated[WaterPolicySpec, BeforeValidator(_empty_if_none({}))] = WaterPolicySpec()


class ElementRef(NamedTuple):
    """A network element named by the scenario: where, and which."""

    field: str
    line: int | None
    kind: str
    element_id: str


class ScenarioSpec(_Spec):
    """A validated scenario. Times are seconds from ``start``; events are in file order."""

    _internal_fields: ClassVar[frozenset[str]] = frozenset({"source_path", "based_on"})

    name: Annotated[str, BeforeValidator(_name)]
    description: Annotated[str, BeforeValidator(_text)] = ""
    city: CitySpec = CitySpec(demo=DemoCitySpec())
    start: Annotated[dt.datetime, BeforeValidator(_start_time)] = DEFAULT_START
    horizon_s: HorizonDuration = Field(alias="horizon")
    step_s: StepDuration = Field(300.0, alias="step")
    seed: Annotated[int, BeforeValidator(_integer(ge=0))] = 0
    events: Annotated[list[AnyEventSpec], BeforeValidator(_empty_if_none([]))] = Field(
        default_factory=list)
    policies: Annotated[PoliciesSpec, BeforeValidator(_empty_if_none({}))] = PoliciesSpec()
    outputs: Annotated[OutputsSpec, BeforeValidator(_empty_if_none({}))] = OutputsSpec()
    # optional: waste collection on the demo city (twin.scenario_waste)
    waste: Annotated[WasteSpec | None, BeforeValidator(_empty_if_none({}))] = None
    # optional: a parking layer on the demo city (twin.scenario_parking)
    parking: Annotated[ParkingSpec | None, BeforeValidator(_empty_if_none({}))] = None
    # optional: a traffic layer on the demo city (twin.scenario_traffic)
    traffic: Annotated[TrafficSpec | None, BeforeValidator(_empty_if_none({}))] = None
    # optional: street lighting on the demo city (twin.scenario_lighting)
    lighting: Annotated[LightingSpec | None, BeforeValidator(_empty_if_none({}))] = None
    # optional: a sewer layer (SWMM), storms and control strategy (twin.scenario_sewer)
    sewer: Annotated[SewerSpec | None, BeforeValidator(_empty_if_none({}))] = None
    # optional: citizens' requests, phone centre, alerts and crews (twin.scenario_citizens)
    citizens: Annotated[CitizensSpec | None, BeforeValidator(_empty_if_none({}))] = None
    # optional: cascade rules between the layers (twin.scenario_cascade, twin.cascade)
    cascade: Annotated[CascadeSpec | None, BeforeValidator(_empty_if_none({}))] = None
    ensemble: EnsembleField             # what varies across an ensemble's members (twin ensemble)
    responses: ResponsesField           # the city's response options run beside it (twin run)
    source_path: Path | None = None
    based_on: tuple[Path, ...] = ()          # the files this one extends, nearest first

    _lines: dict[str, _Location] = PrivateAttr(default_factory=dict)

    @classmethod
    def yaml_keys(cls) -> list[str]:
        """The top-level keys of a scenario file; ``extends`` is resolved by the loader."""
        return [*super().yaml_keys(), "extends"]

    @model_validator(mode="after")
    def _times_fit(self) -> "ScenarioSpec":
        if self.step_s > self.horizon_s:
            raise _Problem(f"a step no longer than the horizon ({format_duration(self.horizon_s)})",
                           loc=("step",), got=format_duration(self.step_s))
        for i, event in enumerate(self.events):
            if isinstance(event.at, dt.datetime) and \
                    (event.at.tzinfo is None) != (self.start.tzinfo is None):
                raise _Problem("a datetime with a UTC offset, as `start` has one"
                               if self.start.tzinfo else
                               "a datetime without a UTC offset, as `start` has none",
                               loc=("events", i, "at"), got=event.at.isoformat())
            offset_s = self.event_time_s(event)
            if not 0 <= offset_s <= self.horizon_s:
                relation = (f"{format_duration(-offset_s)} before the start" if offset_s < 0
                            else f"{format_duration(offset_s)} after the start")
                raise _Problem(f"a time within the scenario: 0 to {format_duration(self.horizon_s)}"
                               f" after the start {self.start.isoformat(sep=' ')}",
                               loc=("events", i, "at"), got=relation)
        return self

    def event_time_s(self, event: EventSpec) -> float:
        """Seconds from ``start`` at which ``event`` happens."""
        if isinstance(event.at, dt.datetime):
            return (event.at - self.start).total_seconds()
        return float(event.at)

    def to_events(self) -> list[Event]:
        """The bus events of the timeline (end events included), sorted by time."""
        events = [ev for spec in self.events for ev in spec.to_events(self.event_time_s(spec))]
        return sorted(events, key=lambda ev: ev.time_s)

    def locate(self, field: str) -> tuple[Path | None, int | None]:
        """File and line where ``field`` (or its nearest written parent) is set."""
        path = field
        while path:
            if path in self._lines:
                return self._lines[path]
            path = _parent(path)
        return self.source_path, None

    def element_refs(self) -> list[ElementRef]:
        """Every network element id the scenario names, to check once the network exists."""
        refs = []
        for i, event in enumerate(self.events):
            for sub, kind, element_id in event.element_refs():
                field = f"events[{i}].{sub}"
                refs.append(ElementRef(field, self.locate(field)[1], kind, element_id))
        return refs


def check_elements(spec: ScenarioSpec, known: dict[str, set[str]]) -> None:
    """Raise :class:`ScenarioError` for the first element id the network does not have.

    ``known`` maps a kind ('pipe', 'link', 'pump', 'node') to the network's ids;
    kinds missing from it are not checked.
    """
    refs = ((f"events[{i}].{sub}", kind, element_id) for i, event in enumerate(spec.events)
            for sub, kind, element_id in event.element_refs())
    for field, kind, element_id in refs:       # located only when wrong (ensembles check
        ids = known.get(kind)                  # thousands of members)
        if ids is None or element_id in ids:
            continue
        ref = ElementRef(field, spec.locate(field)[1], kind, element_id)
        examples = ", ".join(repr(i) for i in sorted(ids, key=_natural_key)[:3])
        examples += ", ..." if len(ids) > 3 else ""
        plural = ref.kind + "s"
        inventory = (f"the network has {len(ids)} {plural}; e.g. {examples}" if ids
                     else f"the network has no {plural}")
        lowered = {i.lower(): i for i in ids}
        close = ([lowered[ref.element_id.lower()]] if ref.element_id.lower() in lowered
                 else difflib.get_close_matches(ref.element_id, list(ids), n=1))
        hint = f"; did you mean {close[0]!r}?" if close else ""
        path, line = spec.locate(ref.field)
        raise ScenarioError(path, ref.field, line, expected=f"a {ref.kind} id of the network",
                            got=f"unknown {ref.kind} {ref.element_id!r}",
                            detail=f"unknown {ref.kind} {ref.element_id!r} ({inventory}){hint}")


# --- loading -----------------------------------------------------------------------------
def load_scenario(path: str | os.PathLike) -> ScenarioSpec:
    """Read, merge (``extends``) and validate a scenario file; raise :class:`ScenarioError`."""
    path = Path(path)
    data, lines, chain = _load_merged(path, ())
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, path, lines) from None
    spec = spec.model_copy(update={"source_path": path, "based_on": tuple(chain[1:])})
    spec._lines = lines
    return spec


def load_yaml_spec(path: str | os.PathLike, model: type[_Spec]) -> Any:
    """Read any YAML file of the project (a calibration or ensemble config...) into the
    pydantic ``model``, with the same located errors as scenarios (file, line, field)."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(path, None, None, "an existing YAML file", got="no such file")
    data, lines = _parse_yaml(path)
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise _first_error(exc, path, lines) from None


def main_validate(path: str | os.PathLike) -> int:
    """CLI helper: 0 and a one-line summary if the scenario is valid, else 2 and the error."""
    try:
        spec = load_scenario(path)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{path}: ok: {spec.name!r}, {len(spec.events)} event(s) over "
          f"{format_duration(spec.horizon_s)} from {spec.start.isoformat(sep=' ')}, "
          f"step {format_duration(spec.step_s)}")
    return 0


_INT_PATTERN = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
                          r"|[-+]?0x[0-9a-fA-F_]+)$")
# YAML 1.2 floats (``5e-3``, ``1E3``, ``.5``, ``-2.5e+4``): a dot or an exponent is needed,
# so ``10`` stays an int; no base-60 (``7:30``).
_FLOAT_PATTERN = re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)"
                            r"(?:[eE][-+]?[0-9]+)?"
                            r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
                            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")


class _ScenarioLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 base-60 numbers, so ``7:30`` stays text, not 450;
    floats as in YAML 1.2, so ``5e-3`` is a number, not text."""

    yaml_implicit_resolvers = {
        first: [(tag, _INT_PATTERN if tag.endswith(":int") else
                 _FLOAT_PATTERN if tag.endswith(":float") else regexp)
                for tag, regexp in resolvers]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _parse_yaml(path: Path) -> tuple[Any, dict[str, _Location]]:
    """The file's data and, for each dotted path, the line where it is written."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ScenarioError(path, None, None, "a readable scenario file (UTF-8 YAML)",
                            got=reason) from None
    loader = _ScenarioLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[str, _Location] = {}
        if node is not None:
            _record_lines(node, "", path, lines)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ScenarioError(path, None, mark.line + 1 if mark else None, "valid YAML",
                            got=f"a syntax error: {exc.problem or exc.context}") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise ScenarioError(path, None, None, "valid YAML", got=f"an error: {exc}") from None
    finally:
        loader.dispose()
    return data, lines


def _record_lines(node: yaml.Node, path: str, file: Path, lines: dict[str, _Location]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            child, line = _join(path, key), key_node.start_mark.line + 1
            if key in seen:
                raise ScenarioError(file, child, line, "each key once per mapping",
                                    got=f"{key!r} again (first set on line {seen[key]})")
            seen[key] = line
            lines[child] = (file, line)
            _record_lines(value_node, child, file, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[f"{path}[{i}]"] = (file, item.start_mark.line + 1)
            _record_lines(item, f"{path}[{i}]", file, lines)


def _load_merged(path: Path, stack: tuple[Path, ...],
                 referenced_at: tuple[Path, int | None] | None = None
                 ) -> tuple[dict[str, Any], dict[str, _Location], list[Path]]:
    """Data and line map of ``path`` merged over the files it extends; and that chain."""
    resolved = path.resolve()
    if resolved in stack:
        cycle = " -> ".join(p.name for p in (*stack, resolved))
        ref_file, ref_line = referenced_at or (path, None)
        raise ScenarioError(ref_file, "extends", ref_line, "a chain of files without a cycle",
                            got=cycle)
    if not path.is_file():
        if referenced_at is not None:
            raise ScenarioError(referenced_at[0], "extends", referenced_at[1],
                                "an existing scenario file (relative to this file's folder)",
                                got=f"{str(path)!r}, which does not exist")
        raise ScenarioError(path, None, None, "an existing scenario file", got="no such file")
    data, lines = _parse_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError(path, None, 1 if data is not None else None,
                            "a mapping of scenario fields (name:, city:, horizon:, ...)",
                            got="an empty file" if data is None else type(data).__name__)
    if internal := sorted(ScenarioSpec._internal_fields & set(data)):
        raise ScenarioError(path, internal[0], lines[internal[0]][1],
                            f"a known field ({', '.join(ScenarioSpec.yaml_keys())})",
                            got=f"{internal[0]!r}, which only the loader sets")
    data.setdefault("name", safe_name(path.stem))
    city = data.get("city")
    if isinstance(city, dict) and isinstance(city.get("inp"), str):
        data["city"] = {**city, "inp": os.path.abspath(path.parent / city["inp"])}
    cascade = data.get("cascade")
    if isinstance(cascade, dict) and isinstance(cascade.get("rules"), str):
        data["cascade"] = {**cascade, "rules": os.path.abspath(path.parent / cascade["rules"])}
    if "extends" not in data:
        return data, lines, [path]
    extends = data.pop("extends")
    extends_line = lines["extends"][1]
    if not isinstance(extends, str) or not extends.strip():
        raise ScenarioError(path, "extends", extends_line, "the file name of a scenario to extend",
                            got=repr(extends))
    base_data, base_lines, chain = _load_merged(path.parent / extends.strip(), (*stack, resolved),
                                                (path, extends_line))
    merged_lines = dict(base_lines)
    _merge_into(base_data, data, lines, merged_lines, "")
    return base_data, merged_lines, [path, *chain]


def _merge_into(merged: dict[str, Any], over: dict[str, Any], over_lines: dict[str, _Location],
                lines: dict[str, _Location], prefix: str) -> None:
    """Deep-merge ``over`` into ``merged`` (in place), keeping the line map in step."""
    for key, value in over.items():
        path = _join(prefix, key)
        old = merged.get(key)
        if path in over_lines:
            lines[path] = over_lines[path]
        if isinstance(old, dict) and isinstance(value, dict):
            if path == "city":                  # switching kind drops the other kind
                for kind, other in (("inp", "demo"), ("demo", "inp")):
                    if kind in value and other in old:
                        old = {k: v for k, v in old.items() if k != other}
                        _drop_subtree(lines, f"city.{other}")
                if "demo" in value and "crs" not in value:   # the base's crs went with its inp
                    old = {k: v for k, v in old.items() if k != "crs"}
                    _drop_subtree(lines, "city.crs")
            merged[key] = dict(old)
            _merge_into(merged[key], value, over_lines, lines, path)
        elif path == "events" and isinstance(old, list) and isinstance(value, list):
            merged[key] = old + value
            for sub, location in over_lines.items():
                if (m := re.match(r"events\[(\d+)\](.*)", sub)):
                    lines[f"events[{int(m[1]) + len(old)}]{m[2]}"] = location
        else:
            merged[key] = value
            _drop_subtree(lines, path)
            lines.update({sub: loc for sub, loc in over_lines.items() if _within(sub, path)})


def _first_error(exc: ValidationError, source: Path,
                 lines: dict[str, _Location]) -> ScenarioError:
    """The earliest (by line) of pydantic's errors, as a located :class:`ScenarioError`."""
    found = []
    for error in exc.errors():
        field, expected, got = _describe(error)
        path, line = source, None
        probe = field
        while probe:
            if probe in lines:
                path, line = lines[probe]
                break
            probe = _parent(probe)
        found.append(ScenarioError(path, field, line, expected, got))
    return min(found, key=lambda e: (e.line is None, e.line or 0))


def _describe(error: dict[str, Any]) -> tuple[str, str, str | None]:
    """(dotted field, expected, got) for one pydantic error."""
    kind, loc, ctx = error["type"], list(error["loc"]), error.get("ctx") or {}
    got: str | None = _short_repr(error.get("input"))
    problem = ctx.get("error")
    if isinstance(problem, _Problem):
        loc += problem.loc
        expected = problem.expected
        got = problem.got if problem.got is not None else (got if problem.show_input else None)
    elif kind == "union_tag_invalid":
        loc.append("type")
        expected = f"an event type: one of {', '.join(EVENT_SPECS)}"
        close = difflib.get_close_matches(str(ctx.get("tag")), list(EVENT_SPECS), n=1)
        got = repr(ctx.get("tag")) + (f" (did you mean {close[0]!r}?)" if close else "")
    elif kind == "union_tag_not_found":
        loc.append("type")
        expected, got = f"a `type:` key, one of {', '.join(EVENT_SPECS)}", None
    elif kind == "missing":
        expected, got = "a value (this field is required)", None
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        expected = "a mapping of `key: value` lines"
    elif kind in ("list_type", "tuple_type"):
        expected = "a list"
    elif kind == "string_type" and "[key]" in loc:
        at = loc.index("[key]")
        loc = [*loc[:at - 1], str(loc[at - 1])] if at else []
        expected = "text keys"
    elif kind == "string_type":
        expected = "text"
    elif kind == "extra_forbidden":
        expected, got = "no such field", None
    else:
        expected = error["msg"][:1].lower() + error["msg"][1:]
    return _dotted(_drop_event_tags(loc)), expected, got


def _drop_event_tags(loc: list[Any]) -> list[Any]:
    """Remove the union tag pydantic inserts: ('events', 1, 'pipe_burst', 'pipe') -> ..."""
    return [part for i, part in enumerate(loc)
            if not (i >= 2 and loc[i - 2] == "events" and isinstance(loc[i - 1], int)
                    and part in EVENT_SPECS)]


def _dotted(loc: list[Any]) -> str:
    path = ""
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, str(part))
    return path


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def _within(sub: str, path: str) -> bool:
    return sub == path or sub.startswith(path + ".") or sub.startswith(path + "[")


def _drop_subtree(lines: dict[str, _Location], path: str) -> None:
    for sub in [s for s in lines if _within(s, path)]:
        del lines[sub]


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _natural_key(element_id: str) -> list[Any]:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", element_id)]
