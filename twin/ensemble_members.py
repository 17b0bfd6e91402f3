"""An ensemble's members: the ``ensemble:`` section resolved against its scenario.

Each member is the scenario with its grid values set, its swept event added and its
seed, validated like a scenario file; errors are reported at the ``ensemble:`` field
that caused them. A member's id is a hash of its resolved parameters and seed, so the
same member has the same id in every run of the ensemble (resuming skips it).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from twin.ensemble_spec import ElementSelection, EnsembleSpec, split_path
from twin.errors import BadInput
from twin.quantities import known_quantities
from twin.randomness import RandomStreams
from twin.scenario import ScenarioError, ScenarioSpec, check_elements
from twin.scenario import _first_error, _load_merged   # the file's data and line map

__all__ = ["Member", "expand_members", "base_hash", "member_id"]


@dataclass(frozen=True)
class Member:
    """One run of the ensemble."""

    member_id: str
    seed: int
    params: dict[str, Any]                 # grid path -> value
    spec: ScenarioSpec = field(repr=False)
    element: str = ""                      # the swept element ('' without a sweep)
    sweep: int = -1                        # which sweep template (-1: none)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def member_id(params: dict[str, Any], event: dict[str, Any] | None, seed: int) -> str:
    """Stable id of a member: a hash of its resolved parameters, swept event and seed."""
    text = _canonical({"params": params, "event": event, "seed": seed})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_FILE_DATA: dict[tuple, tuple[dict[str, Any], dict]] = {}


def _file_data(spec: ScenarioSpec) -> tuple[dict[str, Any], dict]:
    """The scenario file's merged data and line map, parsed once while its files are
    unchanged (an ensemble reads it for its members and again for its hash)."""
    files = [Path(spec.source_path), *spec.based_on]
    key = tuple((str(f), f.stat().st_mtime_ns if f.is_file() else -1) for f in files)
    if key not in _FILE_DATA:
        data, lines, _ = _load_merged(Path(spec.source_path), ())
        _FILE_DATA.clear()                  # one scenario at a time is enough
        _FILE_DATA[key] = (data, lines)
    data, lines = _FILE_DATA[key]
    return copy.deepcopy(data), lines


def _scenario_data(spec: ScenarioSpec) -> tuple[dict[str, Any], dict]:
    """The scenario as written (``extends`` merged), without its ``ensemble`` section."""
    if spec.source_path is not None:
        data, lines = _file_data(spec)
    else:
        data = spec.model_dump(by_alias=True, exclude_none=True,
                               exclude={"source_path", "based_on"})
        lines = {}
    data.pop("ensemble", None)
    return data, lines


def base_hash(spec: ScenarioSpec) -> str:
    """Hash of the scenario without its ensemble section: results of one base only."""
    return hashlib.sha256(_canonical(_scenario_data(spec)[0]).encode()).hexdigest()[:16]


def _error(spec: ScenarioSpec, field_path: str, expected: str, got: str | None = None,
           detail: str | None = None) -> ScenarioError:
    path, line = spec.locate(field_path)
    return ScenarioError(path, field_path, line, expected, got, detail)


def _resolve(spec: ScenarioSpec, key: str) -> list[str | int]:
    """The path ``key`` as written in a scenario file (aliases: ``horizon``), checked
    against the scenario; a ScenarioError at ``ensemble.grid.<key>`` if it does not exist."""
    where = f"ensemble.grid.{key}"
    obj: Any = spec
    canonical: list[str | int] = []
    walked = ""
    for part in split_path(key):
        if isinstance(part, int):
            if not isinstance(obj, (list, tuple)):
                raise _error(spec, where, "a path that exists in the scenario",
                             got=f"{walked or 'the scenario'} is not a list")
            if part >= len(obj):
                raise _error(spec, where, "a path that exists in the scenario",
                             got=f"{walked} has {len(obj)} item(s), no [{part}]")
            obj, walked = obj[part], f"{walked}[{part}]"
        elif isinstance(obj, BaseModel):
            fields = type(obj).model_fields
            internal = getattr(type(obj), "_internal_fields", frozenset()) | {"ensemble"}
            name = part if part in fields else next(
                (n for n, f in fields.items() if f.alias == part), None)
            known = [f.alias or n for n, f in fields.items() if n not in internal]
            if name is None or name in internal:
                raise _error(spec, where, "a path that exists in the scenario",
                             got=f"no field {part!r} in {walked or 'the scenario'} "
                                 f"(it has {', '.join(known)})")
            part = fields[name].alias or name
            obj, walked = getattr(obj, name), f"{walked}.{part}" if walked else part
        elif isinstance(obj, dict) and part in obj:
            obj, walked = obj[part], f"{walked}.{part}"
        else:
            raise _error(spec, where, "a path that exists in the scenario",
                         got=f"{walked} is not set in this scenario, so it has no {part!r}")
        canonical.append(part)
    if isinstance(obj, BaseModel):
        raise _error(spec, where, "a path to a value, not to a whole section",
                     got=f"{walked} is a section")
    return canonical


def _resolve_sweep(spec: ScenarioSpec, key: str) -> list[str | int]:
    """A grid path into a sweep template (``sweep[0].leak_area_m2``): its values go to the
    members of that template."""
    parts = split_path(key)
    templates = spec.ensemble.sweep or []
    if len(parts) < 3 or not isinstance(parts[1], int) or parts[1] >= len(templates):
        raise _error(spec, f"ensemble.grid.{key}", "a path that exists in the scenario",
                     got=f"the ensemble has {len(templates)} sweep template(s), no "
                         f"{key.split('.')[0]}")
    return parts


def _set(data: dict[str, Any], parts: list[str | int], value: Any) -> None:
    """Set ``value`` at ``parts`` in the file's data, making the mappings on the way."""
    obj: Any = data
    for part, nxt in zip(parts[:-1], parts[1:]):
        if isinstance(part, int):
            obj = obj[part]
            continue
        if obj.get(part) is None:
            obj[part] = [] if isinstance(nxt, int) else {}
        obj = obj[part]
    obj[parts[-1]] = value


def _located(exc: ValidationError, spec: ScenarioSpec, lines: dict, grid: dict[str, Any],
             n_events: int, sweep: int) -> ScenarioError:
    """A member's validation error, reported at the ensemble field that caused it."""
    source = Path(spec.source_path) if spec.source_path else Path("<scenario>")
    err = _first_error(exc, source, lines)
    name = err.field or ""
    prefix = f"events[{n_events}]"
    for key, value in grid.items():
        if key.startswith(f"sweep[{sweep}]"):     # the swept event's field, as a grid path
            key_field = prefix + key[len(f"sweep[{sweep}]"):]
        else:
            key_field = key
        if name == key_field or name.startswith(key_field + ".") or \
                name.startswith(key_field + "["):
            return _error(spec, f"ensemble.grid.{key}", err.expected,
                          got=repr(value))
    if sweep >= 0 and (name == prefix or name.startswith(prefix + ".")):
        return _error(spec, f"ensemble.sweep[{sweep}]" + name[len(prefix):], err.expected,
                      err.got)
    return _error(spec, "ensemble", f"members that are valid scenarios ({err})")


def expand_members(spec: ScenarioSpec, networks=None) -> list[Member]:
    """Every member of the scenario's ensemble, validated, in a fixed order."""
    ens: EnsembleSpec | None = spec.ensemble
    if ens is None:
        raise BadInput(f"{spec.source_path or 'the scenario'}: no `ensemble:` section "
                       "(a grid, a sweep of events or replications) to run")
    data, lines = _scenario_data(spec)
    grid = {tuple(_resolve_sweep(spec, key) if key.startswith("sweep[") else _resolve(spec, key)):
            (key, values) for key, values in (ens.grid or {}).items()}
    combos = [dict(zip((k for k, _ in grid.values()), values))
              for values in itertools.product(*(v for _, v in grid.values()))]
    frames = None
    needs_network = bool(ens.sweep) or any(p[0] == "events" for p in grid)
    if needs_network:
        from twin.ensemble_water import network_elements

        frames = network_elements(spec, networks)
    events: list[tuple[int, str, dict[str, Any]]] = []        # (template, element, event)
    field_names: dict[int, str] = {}                          # template -> its selection field
    for i, template in enumerate(ens.sweep or []):
        field_name = field_names[i] = next(k for k, v in template.items()
                                           if isinstance(v, dict) and "each" in v)
        selection = ElementSelection.model_validate(template[field_name])
        try:
            from twin.ensemble_water import select_elements

            ids = select_elements(selection, frames, RandomStreams(ens.sample_seed).stream(
                f"ensemble.sweep[{i}]"))
        except ValueError as exc:
            raise _error(spec, f"ensemble.sweep[{i}].{field_name}",
                         "a selection of elements of the network", got=str(exc)) from None
        events.extend((i, eid, {**template, field_name: eid}) for eid in ids)
    seeds = [None] if "seed" in (ens.grid or {}) else ens.member_seeds(spec.seed)
    count = len(combos) * max(len(events), 1) * len(seeds)
    if count > ens.max_members:
        raise _error(spec, "ensemble", f"at most max_members = {ens.max_members} members",
                     got=f"{count} ({len(combos)} grid points x {max(len(events), 1)} swept "
                         f"events x {len(seeds)} seeds); raise max_members to run them")
    n_events = len(data.get("events") or [])
    recorded = sorted({name.partition(".")[2] for name in ens.per_element}
                      & set(known_quantities()))
    known = None
    if frames is not None:
        links, nodes = frames["links"], frames["nodes"]
        known = {"pipe": set(links.index[links["link_type"] == "Pipe"]),
                 "link": set(links.index), "pump": set(links.index[links["link_type"] == "Pump"]),
                 "node": set(nodes.index)}
    members = []
    # members that differ only in the swept element share one validated scenario: the
    # first is validated from its data, the others are copies with the element changed
    validated: dict[tuple, tuple[ScenarioSpec, str]] = {}
    for n_combo, combo in enumerate(combos):
        for (sweep, element, event), seed in itertools.product(events or [(-1, "", None)],
                                                               seeds):
            members.append(_member(spec, data, lines, grid, combo, n_combo, sweep, element,
                                   event, seed, recorded, known, n_events, validated,
                                   field_names.get(sweep)))
    ids = [m.member_id for m in members]
    if len(set(ids)) != len(ids):
        raise _error(spec, "ensemble", "members that differ from each other",
                     got="the same parameters twice (a value repeated in the grid or seeds)")
    return members


def _member(spec: ScenarioSpec, data: dict[str, Any], lines: dict, grid: dict, combo: dict,
            n_combo: int, sweep: int, element: str, event: dict[str, Any] | None,
            seed: int | None, recorded: list[str], known: dict[str, set[str]] | None,
            n_events: int, validated: dict[tuple, tuple[ScenarioSpec, str]],
            field_name: str | None) -> Member:
    """One member, validated (or copied from a validated sibling that differs only in the
    swept element)."""
    for parts, (key, _) in grid.items():
        if parts[0] == "sweep" and parts[1] == sweep:     # a value of the swept template
            event = copy.deepcopy(event)
            _set(event, list(parts[2:]), combo[key])
    sibling = validated.get((n_combo, sweep, seed)) if event is not None else None
    if sibling is not None:
        first, attr = sibling
        swept = first.events[-1].model_copy(update={attr: element})
        member_spec = first.model_copy(update={"events": [*first.events[:-1], swept]})
    else:
        member_data = copy.deepcopy(data)
        for parts, (key, _) in grid.items():
            if parts[0] != "sweep":
                _set(member_data, list(parts), combo[key])
        if event is not None:
            member_data["events"] = [*(member_data.get("events") or []), copy.deepcopy(event)]
        if seed is not None:
            member_data["seed"] = seed
        # a member records only what its per-element extremes need, and writes no report
        member_data["outputs"] = {**(member_data.get("outputs") or {}), "report": False,
                                  "maps": False, "quantities": recorded}
        try:
            member_spec = ScenarioSpec.model_validate(member_data)
        except ValidationError as exc:
            raise _located(exc, spec, lines, combo, n_events, sweep) from None
        member_spec = member_spec.model_copy(update={"source_path": spec.source_path,
                                                     "based_on": spec.based_on})
        member_spec._lines = lines
        if event is not None:
            fields = type(member_spec.events[-1]).model_fields
            attr = next((n for n, f in fields.items() if field_name in (n, f.alias)), None)
            if attr is not None:
                validated[(n_combo, sweep, seed)] = (member_spec, attr)
    if known is not None:
        try:
            check_elements(member_spec, known)
        except ScenarioError as exc:
            raise _error(spec, f"ensemble.grid.{next(iter(combo), '')}"
                         if not event else f"ensemble.sweep[{sweep}]",
                         "element ids of the network", got=exc.detail or exc.got) from None
    return Member(member_id(combo, event, member_spec.seed), member_spec.seed, combo,
                  member_spec, element, sweep)
