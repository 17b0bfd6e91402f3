"""Safe what-if control: try operator actions on forks of the live twin and rank them.

An operator who is about to close a valve or change a pump schedule first tries it
here: the live twin's state at its clock time is snapshotted once, a fork is built
and restored from it per candidate (the do-nothing baseline always among them), each
candidate's actions go onto the fork's bus as ordinary events, every fork runs the
same horizon, and the candidates are ranked by their KPIs.

Ranking (lower rank is better), by default lexicographic with tolerances: a KPI
decides between two candidates only when they differ by more than its tolerance, so a
difference nobody would act on does not decide:

1. water service availability (delivered / required demand), higher first, tolerance
   ``0.001`` (0.1 % of the demand);
2. pressure-deficit node-hours, lower first, tolerance 1 node-hour;
3. leak volume, lower first, tolerance 1 m3;
4. pump energy, lower first, tolerance 1 kWh.

Candidates equal on all four share a rank. With ``weights`` (KPI name -> weight per
unit of cost) candidates are ranked by the weighted cost instead, lowest first; the
cost of availability is the undelivered share in percent. See :func:`rank_candidates`.

Only the water layer exists today. Actions on the sewer (``gate``) or lighting
(``dim``) layers are part of the action vocabulary so that files can name them, but
they are refused with the missing layer named, never simulated by something else.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd
import yaml

from twin.errors import BadInput
from twin.events import Event, PumpOutage, ValveClosed, ValveOpened
from twin.scenario_fields import format_duration, parse_duration
from twin.twin import Twin

__all__ = ["Action", "Candidate", "CandidateResult", "WhatIfResult", "WhatIfError",
           "CandidatesFileError", "ActionRefused", "BASELINE", "DEFAULT_HORIZON_S",
           "RANKING_KPIS", "ACTION_KINDS", "load_candidates", "parse_candidates",
           "action_events", "fork_twin", "run_whatif", "rank_candidates", "plot_whatif"]

BASELINE = "do_nothing"
DEFAULT_HORIZON_S = 6 * 3600.0


class WhatIfError(BadInput):
    """A what-if that cannot be run as asked (the message says what and where)."""


class CandidatesFileError(WhatIfError):
    """A candidates file at fault: ``file:line: field: expected ..., got ...``."""

    def __init__(self, path: str | Path | None, line: int | None, field: str | None,
                 message: str) -> None:
        where = str(path) if path is not None else "<candidates>"
        if line is not None:
            where += f":{line}"
        self.path, self.line, self.field = path, line, field
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class ActionRefused(WhatIfError):
    """An action the twin cannot try: its layer is missing, its element unknown..."""


# --- actions -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    """One operator action on one element.

    ``layer``: 'water' (today), 'sewer', 'lighting'... ; ``kind``: what is done (see
    :data:`ACTION_KINDS`); ``element``: the element id in that layer; ``value``: the
    kind's setting (a throttle's relative opening 0..1, a gate's opening, a dimming
    level), None when the kind has none; ``start_s``: seconds after the fork time;
    ``duration_s``: how long it lasts, None = to the end of the horizon and beyond.
    """

    layer: str
    kind: str
    element: str
    value: float | None = None
    start_s: float = 0.0
    duration_s: float | None = None

    def describe(self) -> str:
        text = f"{self.layer}.{self.kind} {self.element}"
        if self.value is not None:
            text += f" = {self.value:g}"
        if self.start_s:
            text += f" at +{format_duration(self.start_s)}"
        if self.duration_s is not None:
            text += f" for {format_duration(self.duration_s)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "kind": self.kind, "element": self.element,
                "value": self.value, "start_s": self.start_s, "duration_s": self.duration_s}


@dataclass(frozen=True)
class Candidate:
    """A named set of actions tried together on one fork."""

    name: str
    actions: tuple[Action, ...] = ()
    description: str = ""
    where: str = field(default="", compare=False)     # "file:line" when read from a file


def _water_close(a: Action) -> list[Event]:
    """Close (no value) or throttle (value = relative opening) a link, reopen after."""
    setting = 0.0 if a.value is None else float(a.value)
    events: list[Event] = [ValveClosed(time_s=a.start_s, source="whatif", link_id=a.element,
                                       setting=setting)]
    if a.duration_s is not None:
        events.append(ValveOpened(time_s=a.start_s + a.duration_s, source="whatif",
                                  link_id=a.element))
    return events


def _water_open(a: Action) -> list[Event]:
    return [ValveOpened(time_s=a.start_s, source="whatif", link_id=a.element)]


def _water_pump_off(a: Action) -> list[Event]:
    return [PumpOutage(time_s=a.start_s, source="whatif", pump_id=a.element,
                       duration_s=a.duration_s)]


@dataclass(frozen=True)
class _Kind:
    value: str | None                 # what `value` means, None if the kind takes none
    value_range: tuple[float, float, bool] | None   # (low, high, both bounds exclusive)
    events: Callable[[Action], list[Event]] | None  # None: the layer has not landed


#: layer -> action kind -> its meaning. Kinds without ``events`` belong to layers that
#: have not landed: they parse, and are refused when tried.
ACTION_KINDS: dict[str, dict[str, _Kind]] = {
    "water": {
        "close": _Kind(None, None, _water_close),            # a pipe or valve, setting 0
        "throttle": _Kind("relative opening of a pipe, 0 < value < 1", (0.0, 1.0, True),
                          _water_close),
        "open": _Kind(None, None, _water_open),              # ends a closure or throttle
        "pump_off": _Kind(None, None, _water_pump_off),      # a pump stopped for a period
    },
    "sewer": {"gate": _Kind("gate opening 0..1", (0.0, 1.0, False), None)},
    "lighting": {"dim": _Kind("light level 0..1", (0.0, 1.0, False), None)},
}


def action_events(action: Action, twin: Twin) -> list[Event]:
    """The bus events that carry out ``action`` on ``twin`` (times from the fork time).

    Raises :class:`ActionRefused` when the twin has no such layer, the kind is unknown,
    or the layer refuses an event (unknown element, a throttle on a pump...).
    """
    kinds = ACTION_KINDS.get(action.layer)
    if kinds is None:
        raise ActionRefused(f"unknown layer {action.layer!r} in action {action.describe()!r} "
                            f"(known: {', '.join(ACTION_KINDS)})")
    kind = kinds.get(action.kind)
    if kind is None:
        raise ActionRefused(f"unknown {action.layer} action kind {action.kind!r} "
                            f"(known: {', '.join(kinds)})")
    layer = twin.layers.get(action.layer)
    if layer is None or kind.events is None:
        have = ", ".join(twin.layers) or "none"
        raise ActionRefused(f"{action.describe()}: no {action.layer} layer in this twin "
                            f"(layers: {have}); the action cannot be tried")
    events = kind.events(action)
    problems = [p for ev in events for p in layer.check_event(ev)]
    if problems:
        raise ActionRefused(f"{action.describe()}: " + "; ".join(dict.fromkeys(problems)))
    return events


# --- candidates files --------------------------------------------------------------------
_ACTION_KEYS = {"layer", "kind", "element", "value", "start", "duration"}
_CANDIDATE_KEYS = {"name", "description", "actions"}


def load_candidates(path: str | Path) -> tuple[list[Candidate], float | None]:
    """Candidates from a YAML or JSON file, and its ``horizon`` (seconds) if it sets one.

    Format::

        horizon: 6h                      # optional
        candidates:
          - name: isolate_s324
            description: close the broken main
            actions:
              - {kind: close, element: s324}                  # layer: water by default
              - {kind: throttle, element: s69, value: 0.3, start: 30min, duration: 2h}
              - {kind: pump_off, element: pump2, duration: 1h}

    Errors name the file, the line and the field (:class:`CandidatesFileError`).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise CandidatesFileError(path, None, None,
                                  f"expected a readable YAML or JSON file, got {reason}") from None
    return parse_candidates(text, path)


def parse_candidates(text: str, path: str | Path | None = None
                     ) -> tuple[list[Candidate], float | None]:
    """:func:`load_candidates` on text already read (``path`` only names it in errors)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise CandidatesFileError(path, mark.line + 1 if mark else None, None,
                                  f"expected valid YAML or JSON, got a syntax error: "
                                  f"{exc.problem or exc.context}") from None

    def fail(n: yaml.Node | None, fld: str | None, message: str) -> CandidatesFileError:
        return CandidatesFileError(path, n.start_mark.line + 1 if n is not None else None,
                                   fld, message)

    def mapping(n: yaml.Node, fld: str | None, allowed: set[str]) -> dict[str, yaml.Node]:
        if not isinstance(n, yaml.MappingNode):
            raise fail(n, fld, "expected a mapping")
        out: dict[str, yaml.Node] = {}
        for key, value in n.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            sub = f"{fld}.{name}" if fld else name
            if name not in allowed:
                raise fail(key, sub, f"unknown field (expected one of: {', '.join(sorted(allowed))})")
            if name in out:
                raise fail(key, sub, "set twice")
            out[name] = value
        return out

    def scalar(n: yaml.Node, fld: str) -> Any:
        if not isinstance(n, yaml.ScalarNode):
            raise fail(n, fld, "expected a single value")
        return yaml.SafeLoader("").construct_object(n)

    def text_field(n: yaml.Node, fld: str) -> str:
        value = scalar(n, fld)
        if value is None or isinstance(value, (bool, list, dict)) or str(value).strip() == "":
            raise fail(n, fld, f"expected a non-empty text, got {value!r}")
        return str(value).strip()

    def duration(n: yaml.Node, fld: str) -> float:
        try:
            return parse_duration(scalar(n, fld))
        except ValueError as exc:
            raise fail(n, fld, str(exc)) from None

    if node is None:
        raise fail(None, None, "expected a mapping with `candidates:`, got an empty file")
    top = mapping(node, None, {"candidates", "horizon"})
    horizon_s = duration(top["horizon"], "horizon") if "horizon" in top else None
    if horizon_s is not None and horizon_s <= 0:
        raise fail(top["horizon"], "horizon", "expected a duration > 0")
    items = top.get("candidates")
    if not isinstance(items, yaml.SequenceNode) or not items.value:
        raise fail(items or node, "candidates", "expected a non-empty list of candidates")
    candidates: list[Candidate] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items.value):
        fld = f"candidates[{i}]"
        c = mapping(item, fld, _CANDIDATE_KEYS)
        if "name" not in c:
            raise fail(item, f"{fld}.name", "missing: each candidate needs a name")
        name = text_field(c["name"], f"{fld}.name")
        line = c["name"].start_mark.line + 1
        if name == BASELINE:
            raise fail(c["name"], f"{fld}.name", f"{BASELINE!r} is the baseline every what-if "
                                                 "includes; choose another name")
        if name in seen:
            raise fail(c["name"], f"{fld}.name", f"{name!r} again (first on line {seen[name]})")
        seen[name] = line
        acts = c.get("actions")
        if not isinstance(acts, yaml.SequenceNode) or not acts.value:
            raise fail(acts or item, f"{fld}.actions", "expected a non-empty list of actions")
        actions = tuple(_parse_action(a, f"{fld}.actions[{j}]", mapping, scalar, text_field,
                                      duration, fail)
                        for j, a in enumerate(acts.value))
        description = text_field(c["description"], f"{fld}.description") \
            if "description" in c else ""
        where = f"{path if path is not None else '<candidates>'}:{line}"
        candidates.append(Candidate(name, actions, description, where))
    return candidates, horizon_s


def _parse_action(n, fld, mapping, scalar, text_field, duration, fail) -> Action:
    a = mapping(n, fld, _ACTION_KEYS)
    for required in ("kind", "element"):
        if required not in a:
            raise fail(n, f"{fld}.{required}", "missing")
    layer = text_field(a["layer"], f"{fld}.layer") if "layer" in a else "water"
    kinds = ACTION_KINDS.get(layer)
    if kinds is None:
        raise fail(a["layer"], f"{fld}.layer",
                   f"expected one of {', '.join(ACTION_KINDS)}, got {layer!r}")
    kind_name = text_field(a["kind"], f"{fld}.kind")
    kind = kinds.get(kind_name)
    if kind is None:
        raise fail(a["kind"], f"{fld}.kind",
                   f"expected a {layer} action ({', '.join(kinds)}), got {kind_name!r}")
    value = None
    if kind.value is None and "value" in a:
        raise fail(a["value"], f"{fld}.value", f"a {kind_name!r} action takes no value")
    if kind.value is not None:
        if "value" not in a:
            raise fail(n, f"{fld}.value", f"missing: expected the {kind.value}")
        raw = scalar(a["value"], f"{fld}.value")
        low, high, strict = kind.value_range
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw)
        ok = ok and ((low < raw < high) if strict else (low <= raw <= high))
        if not ok:
            raise fail(a["value"], f"{fld}.value", f"expected the {kind.value}, got {raw!r}")
        value = float(raw)
    start_s = duration(a["start"], f"{fld}.start") if "start" in a else 0.0
    duration_s = duration(a["duration"], f"{fld}.duration") if "duration" in a else None
    return Action(layer, kind_name, text_field(a["element"], f"{fld}.element"), value,
                  start_s, duration_s)


# --- forks -------------------------------------------------------------------------------
def fork_twin(live: Twin, horizon_s: float, state: Mapping[str, Any] | None = None) -> Twin:
    """A new twin continuing ``live`` from its current state for ``horizon_s`` seconds.

    Built from the same model and options as the live water layer, restored from
    ``state`` (a water-layer snapshot; default: one taken now). The fork's clock starts
    at 0 = the live clock time; its calendar start is the live calendar time. Twins with
    layers other than water cannot be forked yet (those layers have no fork recipe).
    """
    from twin.networks.water import WaterLayer

    others = [name for name in live.layers if name != "water"]
    if others:
        raise WhatIfError(f"cannot fork layer(s) {', '.join(others)}: the what-if forks the "
                          "water layer only")
    water = live.layers.get("water")
    if not isinstance(water, WaterLayer) or water.engine is None:
        raise WhatIfError("the what-if needs a twin with an open water layer")
    if not horizon_s > 0:
        raise WhatIfError(f"the what-if horizon must be > 0 s, got {horizon_s}")
    state = copy.deepcopy(dict(state) if state is not None else water.snapshot())
    fork = Twin(city=live.city, start=live.clock.start + dt.timedelta(seconds=state["time_s"]),
                seed=live.seed)
    layer = WaterLayer(water.wn, horizon_s=horizon_s, hydraulic_step_s=water.hydraulic_step_s,
                       report_step_s=water.report_step_s, engine=water.engine_name,
                       service_pressure_m=water.service_pressure_m,
                       planned_bursts=water.planned_bursts, clock_offset_s=water.clock_offset_s,
                       record=water.record_quantities, crs=water.crs)
    fork.add_layer(layer)
    layer.restore(state)
    return fork


# --- results and ranking ------------------------------------------------------------------
#: (KPI, better when, tolerance, unit) in the order the default ranking compares them
RANKING_KPIS: tuple[tuple[str, str, float, str], ...] = (
    ("water_service_availability", "higher", 0.001, "-"),
    ("pressure_deficit_node_hours", "lower", 1.0, "node-h"),
    ("leak_volume_m3", "lower", 1.0, "m3"),
    ("pump_energy_kwh", "lower", 1.0, "kWh"),
)
_INFO_KPIS = (("min_pressure_m", "m"), ("demand_delivered_m3", "m3"), ("leak_peak_lps", "L/s"))


@dataclass
class CandidateResult:
    """One fork's run: the candidate, the events it put on the bus, KPIs, alerts, series."""

    candidate: Candidate
    events: list[Event]
    kpis: dict[str, float]
    alerts: list[str] = field(default_factory=list)
    pressure_m: pd.DataFrame | None = None           # index time_s from the fork time
    tank_level_m: pd.DataFrame | None = None
    wall_s: float = 0.0


@dataclass
class WhatIfResult:
    """Ranked candidates. ``table``: one row per candidate, best first, with units in
    column names and a ``rank`` (1 = best; equal rows share a rank)."""

    at_s: float
    at: dt.datetime
    horizon_s: float
    table: pd.DataFrame
    results: dict[str, CandidateResult]
    weights: dict[str, float] | None = None

    @property
    def ranking(self) -> list[str]:
        return list(self.table["candidate"])

    def to_json(self) -> dict[str, Any]:
        """Plain data: ``ranking`` (best first), per-candidate KPIs, rank and actions."""
        rows = self.table.set_index("candidate")
        return {
            "at_s": self.at_s, "at": self.at.isoformat(), "horizon_s": self.horizon_s,
            "ranking": self.ranking, "weights": self.weights,
            "ranking_rule": ("weighted cost" if self.weights else
                             "lexicographic: " + ", ".join(f"{k} ({b})" for k, b, _, _ in RANKING_KPIS)),
            "candidates": {
                name: {"rank": int(rows.loc[name, "rank"]),
                       "actions": [a.to_dict() for a in r.candidate.actions],
                       "description": r.candidate.description,
                       "kpis": {k: _jsonable(v) for k, v in r.kpis.items()},
                       "alerts": r.alerts}
                for name, r in self.results.items()},
        }


def _jsonable(v: float) -> float | None:
    return None if isinstance(v, float) and not math.isfinite(v) else float(v)


def _cost(kpi: str, value: float) -> float:
    """A KPI as a cost, lower is better, in the unit weights apply to."""
    if kpi == "water_service_availability":
        return (1.0 - value) * 100.0          # % of the demand not delivered
    return value


def rank_candidates(kpis: Mapping[str, Mapping[str, float]],
                    weights: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Rank candidates (name -> water KPIs) best first; see the module docstring.

    ``weights``: KPI name -> weight per unit of its cost (availability: per % of demand
    not delivered; node-hours, m3, kWh for the others); the weighted sum ``score`` is
    ranked lowest first, ties then broken by the default order. Without weights the
    ranking is lexicographic over :data:`RANKING_KPIS` with their tolerances.
    """
    if weights:
        unknown = [k for k in weights if not any(k in row for row in kpis.values())]
        if unknown:
            known = sorted({k for row in kpis.values() for k in row})
            raise WhatIfError(f"unknown KPI(s) in weights: {', '.join(unknown)} "
                              f"(known: {', '.join(known)})")
    rows = []
    for name, k in kpis.items():
        row = {"candidate": name,
               "water_service_availability_pct": 100.0 * k.get("water_service_availability", math.nan),
               "pressure_deficit_node_hours": k.get("pressure_deficit_node_hours", math.nan),
               "leak_volume_m3": k.get("leak_volume_m3", math.nan),
               "pump_energy_kwh": k.get("pump_energy_kwh", math.nan)}
        for info, _unit in _INFO_KPIS:
            row[info] = k.get(info, math.nan)
        if weights:
            row["score"] = sum(w * _cost(kpi, float(k.get(kpi, math.nan)))
                               for kpi, w in weights.items())
        rows.append(row)

    def compare(a: dict, b: dict) -> int:
        if weights and a["score"] != b["score"]:
            return -1 if a["score"] < b["score"] else 1
        for kpi, better, tol, _ in RANKING_KPIS:
            va = _cost(kpi, float(kpis[a["candidate"]].get(kpi, math.nan)))
            vb = _cost(kpi, float(kpis[b["candidate"]].get(kpi, math.nan)))
            if kpi == "water_service_availability":
                tol *= 100.0                  # the cost is in percent
            if math.isnan(va) or math.isnan(vb):
                if math.isnan(va) != math.isnan(vb):
                    return 1 if math.isnan(va) else -1
            elif abs(va - vb) > tol:
                return -1 if va < vb else 1
        return 0

    rows.sort(key=functools.cmp_to_key(compare))     # stable: ties keep the given order
    ranks = []
    for i, row in enumerate(rows):
        ranks.append(ranks[-1] if i and compare(rows[i - 1], row) == 0 else i + 1)
    table = pd.DataFrame(rows)
    table["rank"] = ranks
    return table


def run_whatif(live: Twin, candidates: Sequence[Candidate], horizon_s: float = DEFAULT_HORIZON_S,
               weights: Mapping[str, float] | None = None,
               future_events: Iterable[Event] = ()) -> WhatIfResult:
    """Fork ``live`` once per candidate (plus the do-nothing baseline), run, rank.

    ``future_events``: events already known to happen later (a planned repair), with
    times from the fork time; every fork gets them, the baseline too. Every action is
    checked on a fork before anything runs: one refused action refuses the what-if
    (:class:`ActionRefused`), so an operator never compares a candidate that silently
    did less than it says.
    """
    import time

    from twin.events import Alert

    names = [c.name for c in candidates]
    if BASELINE in names:
        raise WhatIfError(f"{BASELINE!r} is the baseline every what-if includes; "
                          "rename that candidate")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise WhatIfError(f"two candidates are named {dup!r}")
    water = live.layers.get("water")
    if water is None:
        raise WhatIfError("the what-if needs a twin with a water layer")
    state = water.snapshot()
    at_s = float(state["time_s"])
    future = [ev for ev in future_events if 0 <= ev.time_s <= horizon_s]
    every = [Candidate(BASELINE, (), "the live state continued, no action"), *candidates]
    forks: list[tuple[Candidate, Twin, list[Event]]] = []
    try:
        for cand in every:         # build and check all before running any
            fork = fork_twin(live, horizon_s, state)
            forks.append((cand, fork, []))
            for i, action in enumerate(cand.actions):
                if action.start_s > horizon_s:
                    raise ActionRefused(f"{_at(cand)}candidate {cand.name!r} action {i + 1} "
                                        f"({action.describe()}): starts after the horizon "
                                        f"({format_duration(horizon_s)})")
                try:
                    forks[-1][2].extend(action_events(action, fork))
                except ActionRefused as exc:
                    raise ActionRefused(f"{_at(cand)}candidate {cand.name!r} action {i + 1}: "
                                        f"{exc}") from None
        results: dict[str, CandidateResult] = {}
        for cand, fork, events in forks:
            t0 = time.perf_counter()
            fork.schedule([*future, *events])
            fork.run(horizon_s)
            rec = fork.recorder
            alerts = [ev.message for ev in fork.bus.log if isinstance(ev, Alert)]
            results[cand.name] = CandidateResult(
                cand, events, fork.layers["water"].kpis(), alerts,
                pressure_m=_wide(rec, "pressure"), tank_level_m=_wide(rec, "tank_level"),
                wall_s=time.perf_counter() - t0)
    finally:
        for _, fork, _ in forks:
            fork.close()
    table = rank_candidates({n: r.kpis for n, r in results.items()}, weights)
    return WhatIfResult(at_s=at_s, at=live.clock.to_datetime(at_s), horizon_s=float(horizon_s),
                        table=table, results=results, weights=dict(weights) if weights else None)


def _at(candidate: Candidate) -> str:
    return f"{candidate.where}: " if candidate.where else ""


def _wide(recorder, quantity: str) -> pd.DataFrame | None:
    try:
        frame = recorder.wide("water", quantity)
    except (KeyError, ValueError):
        return None
    return frame if len(frame) else None


def format_table(result: WhatIfResult) -> str:
    """The ranking as fixed-width text for a terminal."""
    t = result.table
    cols = ["rank", "candidate", "water_service_availability_pct", "pressure_deficit_node_hours",
            "leak_volume_m3", "pump_energy_kwh", "min_pressure_m"] + (["score"] if "score" in t else [])
    heads = {"water_service_availability_pct": "availability_%",
             "pressure_deficit_node_hours": "deficit_node_h"}
    text = t[cols].rename(columns=heads).to_string(index=False, float_format=lambda v: f"{v:.2f}")
    return text


def plot_whatif(result: WhatIfResult, path: str | Path) -> Path:
    """Bar charts of the ranking KPIs per candidate (one panel each) into ``path`` (PNG)."""
    from matplotlib.figure import Figure     # no pyplot: no global state, no GUI backend

    t = result.table
    panels = [("water_service_availability_pct", "service availability (%)"),
              ("pressure_deficit_node_hours", "pressure deficit (node-h)"),
              ("leak_volume_m3", "leak volume (m3)"), ("pump_energy_kwh", "pump energy (kWh)")]
    fig = Figure(figsize=(11, 3.2 + 0.15 * len(t)))
    axes = fig.subplots(1, len(panels), sharey=True)
    labels = [f"{r}. {c}" for r, c in zip(t["rank"], t["candidate"])][::-1]
    for ax, (col, title) in zip(axes, panels):
        values = t[col].to_numpy()[::-1]
        colors = ["#888888" if c == BASELINE else "#1f77b4" for c in t["candidate"][::-1]]
        ax.barh(labels, values, color=colors)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
        if col == "water_service_availability_pct":
            low = float(min(values.min(), 100.0))
            ax.set_xlim(max(0.0, low - max(1.0, 0.1 * (100 - low))), 100.0)
    fig.suptitle(f"what-if at {result.at:%Y-%m-%d %H:%M}, next {format_duration(result.horizon_s)}"
                 " (grey: do nothing)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
