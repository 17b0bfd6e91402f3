"""The cascade layer: applies the rules of :mod:`twin.cascade` on the bus.

On ``start`` the layer subscribes to every rule's trigger type. For a matching event it
finds the elements the rule targets near the trigger (an STRtree per element table, built
once, from the layers' ``elements()`` and the city's streets), draws delays and
probabilities from its own random stream per rule (same seed, same cascade; adding a rule
changes no other rule's draws), and schedules the caused events on the twin's clock with
``cause_id`` = the trigger and ``source`` = ``"cascade:<rule>"``. A rule with ``lasts``
publishes the inverse (``StreetReopened`` after a ``StreetClosed`` ...) that long after.
Only the events the water and sewer layers react to make those engines stop at their time
(``twin.expect``): alerts, closures or lamp faults switched on or off by a response option
do not change where the hydraulic steps fall.

Loops are cut twice: a chain holds at most ``max_depth`` caused events, and a rule does not
fire again on an element (a street, a cabinet; or at all, for a rule without elements)
while its previous effect there lasts. Rules switched off by the scenario (``off:``) and
rules naming a layer this twin does not have are listed, not applied.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Point

from twin.cascade import (CASCADE_SOURCE, DEFAULT_MAX_DEPTH, LOCATION_FIELDS, Rule, RuleSpec,
                          TargetSpec, compile_rule, event_fields)
from twin.events import (ConduitBlocked, DemandSurge, Event, FireFlow, LanesClosed,
                         LanesReopened, LeakStopped, LightingFault, PipeBurst, PumpOutage,
                         Rainfall, RepairDone, SewerPumpOutage, StreetClosed, StreetFlooded,
                         StreetReopened, ValveClosed, ValveOpened)
from twin.networks.base import Layer

if TYPE_CHECKING:
    from twin.twin import Twin

SOURCE_PREFIX = CASCADE_SOURCE + ":"
# what the water and sewer layers (engines stepped in strides) react to: caused events of
# these types are scheduled through the twin, whose engines stop at their times
ENGINE_EVENTS: tuple[type[Event], ...] = (
    PipeBurst, LeakStopped, ValveClosed, ValveOpened, PumpOutage, DemandSurge, FireFlow,
    Rainfall, ConduitBlocked, SewerPumpOutage, StreetFlooded, RepairDone)


def inverse_events(event: Event) -> list[Event]:
    """What ends ``event``'s effect (time, source and cause to be set by the caller)."""
    if isinstance(event, StreetClosed):
        return [StreetReopened(time_s=0, street_ids=event.street_ids)]
    if isinstance(event, LanesClosed):
        return [LanesReopened(time_s=0, street_ids=event.street_ids, lanes=event.lanes)]
    if isinstance(event, ValveClosed):
        return [ValveOpened(time_s=0, link_id=event.link_id)]
    if isinstance(event, PipeBurst):
        return [LeakStopped(time_s=0, pipe_id=event.pipe_id, started_at_s=event.time_s)]
    if isinstance(event, LightingFault):
        parts = [event.feeder_id or event.cabinet_id] if (event.feeder_id or event.cabinet_id) \
            else []
        return [RepairDone(time_s=0, layer="lighting", element_id=e)
                for e in [*parts, *event.lamp_ids]]
    return []


class _Table:
    """One element table's ids and geometries, with a spatial index."""

    def __init__(self, frame: gpd.GeoDataFrame) -> None:
        geoms = frame.geometry.to_numpy()
        ok = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)
        self.ids = np.asarray([str(i) for i in frame.index[ok]], dtype=object)
        self.geoms = geoms[ok]
        self.pos = {eid: k for k, eid in enumerate(self.ids)}
        self.tree = shapely.STRtree(self.geoms)

    def near(self, where: Any, within_m: float, nearest: int | None) -> list[int]:
        """Positions of the elements within ``within_m`` of ``where``, nearest first."""
        hits = self.tree.query(where, predicate="dwithin", distance=within_m)
        if not len(hits):
            return []
        dist = shapely.distance(self.geoms[hits], where)
        order = np.lexsort((self.ids[hits].astype(str), dist))
        hits = hits[order]
        return [int(k) for k in (hits[:nearest] if nearest else hits)]

    def geometry_of(self, ids: Iterable[str]) -> list[Any]:
        return [self.geoms[self.pos[i]] for i in ids if i in self.pos]


@dataclass
class _Pending:
    due_s: float
    event: Event
    rule: str
    inverse: bool = False


class CascadeLayer(Layer):
    """Cause events from events, by rules given as data (:mod:`twin.cascade`).

    Parameters
    ----------
    rules : the rules (specs as read from a file, or compiled rules).
    off : rule names or tags switched off (a response option: ``["alerts"]``).
    max_depth : caused events in one chain, at most.
    """

    name = CASCADE_SOURCE

    def __init__(self, rules: Sequence[RuleSpec | Rule], *, off: Iterable[str] = (),
                 max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.rules = [compile_rule(r) if isinstance(r, RuleSpec) else r for r in rules]
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            repeated = sorted(n for n in set(names) if names.count(n) > 1)
            raise ValueError(f"cascade: rule names repeat: {repeated}")
        known = set(names) | {t for r in self.rules for t in r.tags}
        self.off = tuple(off)
        unknown = [o for o in self.off if o not in known]
        if unknown:
            raise ValueError(f"cascade: off: unknown rule or tag {unknown[0]!r} (rules "
                             f"{', '.join(names)}; tags {', '.join(sorted(known - set(names)))})")
        if max_depth < 1:
            raise ValueError(f"cascade: max_depth must be >= 1, got {max_depth}")
        self.max_depth = int(max_depth)
        self.status: dict[str, str] = {}
        self.triggered: Counter[str] = Counter()
        self.caused: Counter[str] = Counter()
        self.stopped_at_depth = 0
        self.repeats_skipped = 0
        self.unlocated = 0
        self.twin: "Twin | None" = None
        self._by_type: dict[type, list[Rule]] = {}
        self._busy: dict[tuple[str, str], float] = {}
        self._pending: list[_Pending] = []
        self._tables: dict[tuple[str, str], _Table | None] = {}
        self._frames: dict[str, dict[str, gpd.GeoDataFrame]] = {}
        self._rngs: dict[str, np.random.Generator] = {}
        self._duration_field: dict[str, bool] = {r.name: "duration_s" in event_fields(r.then)
                                                 for r in self.rules}
        self._lasts_s = {r.name: r.lasts_s for r in self.rules}
        self._closed_by: dict[str, int] = {}          # street -> the closure in force
        self._restored: dict[str, Any] | None = None

    # ------------------------------------------------------------------ build / start
    def build(self, twin: "Twin") -> None:
        self.twin = twin

    def _missing_layer(self, rule: Rule) -> str | None:
        for layer in sorted(rule.layers()):
            present = self.twin.city is not None if layer == "city" else (
                layer == "scenario" or layer in self.twin.layers)
            if not present:
                return layer
        return None

    def start(self, twin: "Twin") -> None:
        off = set(self.off)
        for rule in self.rules:
            missing = self._missing_layer(rule)
            if rule.name in off or off & set(rule.tags):
                self.status[rule.name] = "off"
            elif missing is not None:
                self.status[rule.name] = f"inactive: no {missing} layer"
            else:
                self.status[rule.name] = "active"
                self._by_type.setdefault(rule.when, []).append(rule)
                self._rngs[rule.name] = twin.rng.stream(f"{CASCADE_SOURCE}:{rule.name}")
        caused_types = {r.then for r in self.rules if self.status[r.name] == "active"}
        if StreetClosed in caused_types:
            caused_types |= {StreetReopened}      # to know which closure a street is under
        for cls in set(self._by_type) | caused_types:
            twin.bus.subscribe(cls, self.apply)
        if self._restored is not None:
            self._resume(self._restored)

    # ------------------------------------------------------------------ events
    def apply(self, event: Event) -> None:
        if isinstance(event, (StreetClosed, StreetReopened)):
            self._closures(event)
        if event.source.startswith(SOURCE_PREFIX):
            self._published(event)
        for rule in self._by_type.get(type(event), ()):
            if rule.matches(event):
                self._fire(rule, event)

    def _published(self, event: Event) -> None:
        """One of ours that the twin scheduled came out: take it off the pending list."""
        for k, p in enumerate(self._pending):
            if p.event == event:
                del self._pending[k]
                if not p.inverse:
                    self._took_effect(p.rule, event)
                return

    def _took_effect(self, rule: str, event: Event) -> None:
        """Count a caused event and schedule its end when the rule says so."""
        self.caused[rule] += 1
        lasts = self._lasts_s[rule]
        if lasts is None:
            return
        due = event.time_s + lasts
        ends = [replace(e, time_s=due, source=event.source, cause_id=event.event_id)
                for e in inverse_events(event)]
        self._schedule([_Pending(due, e, rule, inverse=True) for e in ends])

    def _schedule(self, pending: list[_Pending]) -> None:
        """Events a hydraulic engine reacts to go through ``twin.schedule`` (the engines
        stop at their time); the others are published by this layer's own processes, so
        that switching alerts or closures on and off leaves the hydraulics' steps alone."""
        self._pending.extend(pending)
        self.twin.schedule([p.event for p in pending if isinstance(p.event, ENGINE_EVENTS)])
        for p in pending:
            if not isinstance(p.event, ENGINE_EVENTS):
                self.twin.clock.process(self._publish_later(p))

    def _publish_later(self, p: _Pending):
        yield self.twin.clock.timeout(max(p.due_s - self.twin.clock.now_s, 0.0))
        if not any(q is p for q in self._pending):
            return
        self._pending = [q for q in self._pending if q is not p]
        event = p.event
        if isinstance(event, StreetReopened) and event.cause_id is not None:
            # only what is still under our closure: a street the crews reopened and someone
            # else closed again stays closed
            mine = tuple(s for s in event.street_ids if self._closed_by.get(s) == event.cause_id)
            if not mine:
                return
            event = replace(event, street_ids=mine)
        published = self.twin.publish(event)
        if not p.inverse:
            self._took_effect(p.rule, published)

    def _closures(self, event: Event) -> None:
        """Which closure holds each street closed now (for the ends of ours)."""
        if isinstance(event, StreetClosed):
            self._closed_by.update({s: event.event_id for s in event.street_ids})
        elif isinstance(event, StreetReopened):
            for s in event.street_ids:
                self._closed_by.pop(s, None)

    def _depth(self, event: Event) -> int:
        """Caused events in ``event``'s chain, itself included."""
        log = self.twin.bus.log
        depth, e, hops = 0, event, 0
        while e is not None and hops <= len(log):
            depth += e.source.startswith(SOURCE_PREFIX)
            c = e.cause_id
            e = log[c - 1] if c is not None and 0 < c <= len(log) and log[c - 1].event_id == c \
                else None
            hops += 1
        return depth

    def _busy_now(self, rule: Rule, key: str) -> bool:
        return self._busy.get((rule.name, key), -math.inf) >= self.twin.clock.now_s

    def _fire(self, rule: Rule, trigger: Event) -> None:
        if rule.hours is not None:
            when = self.twin.clock.to_datetime(trigger.time_s)
            if not rule.in_hours(when.hour * 60 + when.minute + when.second / 60.0):
                return
        if self._depth(trigger) >= self.max_depth:
            self.stopped_at_depth += 1
            return
        where = self._where(trigger) if (rule.target or rule.near or rule.located) else None
        if rule.near is not None:
            table = self._table(rule.near)
            if where is None or table is None or not table.near(where, rule.near.within_m, 1):
                return
        self.triggered[rule.name] += 1
        rng = self._rngs[rule.name]
        if rule.target is None:
            if rng.random() < rule.probability:
                self._emit(rule, trigger, {}, where, rng)
            return
        table = self._table(rule.target)
        if where is None or table is None:
            self.unlocated += 1
            return
        hits = table.near(where, rule.target.within_m, rule.target.nearest)
        draws = rng.random(len(hits))
        chosen = [k for k, u in zip(hits, draws) if u < rule.probability]
        if rule.per_element:
            for k in chosen:
                self._emit(rule, trigger, {rule.target_field: str(table.ids[k])},
                           table.geoms[k], rng)
        elif chosen:
            self._emit(rule, trigger, {rule.target_field: tuple(str(table.ids[k]) for k in chosen)},
                       where, rng)

    def _emit(self, rule: Rule, trigger: Event, ids: dict[str, Any], where: Any,
              rng: np.random.Generator) -> None:
        fields = {**rule.constants, **{f: d.value(trigger) for f, d in rule.derived.items()},
                  **ids}
        keys = self._free_elements(rule, fields)
        if keys is None:
            return
        if rule.located and where is not None:
            point = where if isinstance(where, Point) else where.centroid
            fields["x"], fields["y"] = float(point.x), float(point.y)
        if rule.lasts_s is not None and self._duration_field[rule.name] \
                and "duration_s" not in fields:
            fields["duration_s"] = rule.lasts_s
        due = self.twin.clock.now_s + rule.delay.draw(rng)
        caused = rule.then(time_s=due, source=SOURCE_PREFIX + rule.name,
                           cause_id=trigger.event_id or None, **fields)
        lasting = rule.lasts_s if rule.lasts_s is not None else (fields.get("duration_s") or 0.0)
        for key in keys:
            self._busy[(rule.name, key)] = due + lasting
        self._schedule([_Pending(due, caused, rule.name)])

    def _free_elements(self, rule: Rule, fields: dict[str, Any]) -> list[str] | None:
        """The element keys the caused event takes, the busy ones dropped from ``fields``;
        None when nothing is left to cause."""
        id_fields = rule.id_fields()
        if not id_fields:
            if self._busy_now(rule, ""):
                self.repeats_skipped += 1
                return None
            return [""]
        keys: list[str] = []
        for f in id_fields:
            value = fields.get(f)
            if isinstance(value, tuple):
                free = tuple(v for v in value if not self._busy_now(rule, v))
                self.repeats_skipped += len(value) - len(free)
                fields[f] = free
                keys += free
            elif value:
                if self._busy_now(rule, value):
                    self.repeats_skipped += 1
                    fields[f] = ""
                else:
                    keys.append(value)
        return keys or None

    # ------------------------------------------------------------------ places
    def _frames_of(self, layer: str) -> dict[str, gpd.GeoDataFrame]:
        if layer not in self._frames:
            if layer == "city":
                city = self.twin.city
                self._frames[layer] = ({} if city is None
                                       else {"streets": city.streets, "blocks": city.blocks})
            else:
                owner = self.twin.layers.get(layer)
                self._frames[layer] = owner.elements() if owner is not None else {}
        return self._frames[layer]

    def _table(self, spec: TargetSpec | tuple[str, str]) -> _Table | None:
        key = (spec.layer, spec.table) if isinstance(spec, TargetSpec) else spec
        if key not in self._tables:
            frame = self._frames_of(key[0]).get(key[1])
            self._tables[key] = _Table(frame) if frame is not None and len(frame) else None
        return self._tables[key]

    def _where(self, event: Event) -> Any:
        """The trigger's place: its x/y, or the geometry of the element(s) it names."""
        x, y = getattr(event, "x", None), getattr(event, "y", None)
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y) \
                and (x, y) != (0.0, 0.0):
            return Point(float(x), float(y))
        publisher = event.source.split(":")[0].split(".")[0]
        for field, tables in LOCATION_FIELDS:
            value = getattr(event, field, None)
            if not value:
                continue
            ids = value if isinstance(value, tuple) else (value,)
            # ids can repeat across layers (water and sewer nodes): the publisher's first
            for key in sorted(tables, key=lambda t: t[0] != publisher):
                table = self._table(key)
                geoms = table.geometry_of(ids) if table is not None else []
                if geoms:
                    return geoms[0] if len(geoms) == 1 else shapely.GeometryCollection(geoms)
        return None

    # ------------------------------------------------------------------ outputs
    def kpis(self) -> dict[str, float]:
        states = Counter(s.split(":")[0] for s in self.status.values())
        out = {"rules_active": float(states["active"]), "rules_off": float(states["off"]),
               "rules_inactive": float(states["inactive"]),
               "events_caused": float(sum(self.caused.values())),
               "triggers": float(sum(self.triggered.values())),
               "stopped_at_max_depth": float(self.stopped_at_depth),
               "repeats_skipped": float(self.repeats_skipped),
               "triggers_without_place": float(self.unlocated)}
        out.update({f"caused_by_{r.name}": float(self.caused[r.name]) for r in self.rules})
        return out

    def elements(self) -> dict[str, gpd.GeoDataFrame]:
        """``rules``: one row per rule (what, status, triggers and events caused); no
        geometry."""
        rows = [{"rule": r.name, "when": r.when.__name__, "from_layer": r.from_ or "",
                 "then": r.then.__name__, "tags": ",".join(r.tags),
                 "status": self.status.get(r.name, "not started"),
                 "delay": r.delay.text(), "probability": r.probability,
                 "lasts_s": np.nan if r.lasts_s is None else r.lasts_s,
                 "triggers": self.triggered[r.name], "caused": self.caused[r.name],
                 "description": r.description} for r in self.rules]
        frame = gpd.GeoDataFrame(rows, geometry=[None] * len(rows),
                                 crs=None if self.twin is None else self.twin.crs)
        return {"rules": frame}

    # ------------------------------------------------------------------ forks
    def snapshot(self) -> dict[str, Any]:
        """Caused events still to come and the rules' busy elements, times from now."""
        now = self.twin.clock.now_s
        return {"pending": [(p.due_s - now, p.event, p.rule, p.inverse) for p in self._pending],
                "busy": {k: until - now for k, until in self._busy.items() if until >= now},
                "triggered": dict(self.triggered), "caused": dict(self.caused)}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` (call after build, before the run starts)."""
        self._restored = state

    def _resume(self, state: dict[str, Any]) -> None:
        now = self.twin.clock.now_s
        self.triggered.update(state["triggered"])
        self.caused.update(state["caused"])
        self._busy = {tuple(k): now + left for k, left in state["busy"].items()}
        # the fork's bus numbers its events anew: the old causes are not in its log
        self._schedule([_Pending(now + left, replace(ev, time_s=now + left, cause_id=None), rule,
                                 inverse) for left, ev, rule, inverse in state["pending"]])
        self._restored = None
