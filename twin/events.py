"""Events on the twin's bus, and the bus itself.

Layers and agents never call each other: they publish frozen events here and
subscribe to the types they care about. Every event carries the simulated
time, who raised it and, when it was caused by another event, that event's id,
so a report can draw the chain of causes.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import pandas as pd

@dataclass(frozen=True)
class Event:
    time_s: float
    source: str = ""
    cause_id: int | None = None
    event_id: int = field(default=0, compare=False)   # set by the bus on publish

    @property
    def kind(self) -> str:
        return type(self).__name__


# --- water -----------------------------------------------------------------
@dataclass(frozen=True)
class PipeBurst(Event):
    """A leak or break on a pipe; the leak is an orifice of ``leak_area_m2``."""
    pipe_id: str = ""
    leak_area_m2: float = 0.01
    position: float = 0.5            # fraction of the pipe length from its start node
    discharge_coeff: float = 0.75
    x: float | None = None
    y: float | None = None


@dataclass(frozen=True)
class LeakStopped(Event):
    """A repair: ends the leak on ``pipe_id`` that started at ``started_at_s``, or every
    leak on that pipe when ``started_at_s`` is None."""
    pipe_id: str = ""
    started_at_s: float | None = None


@dataclass(frozen=True)
class ValveClosed(Event):
    link_id: str = ""
    setting: float = 0.0             # 0 closes; a fraction 0..1 throttles (pipe/valve status or TCV)


@dataclass(frozen=True)
class ValveOpened(Event):
    link_id: str = ""


@dataclass(frozen=True)
class PumpOutage(Event):
    pump_id: str = ""
    duration_s: float | None = None


@dataclass(frozen=True)
class DemandSurge(Event):
    """Multiply demands (all nodes, or the listed ones) by ``factor`` for ``duration_s``."""
    factor: float = 1.0
    duration_s: float | None = None
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FireFlow(Event):
    node_id: str = ""
    flow_lps: float = 0.0
    duration_s: float = 7200.0


@dataclass(frozen=True)
class StreetFlooded(Event):
    """Water on a street (from a burst or a storm): other layers decide what follows."""
    x: float = 0.0
    y: float = 0.0
    radius_m: float = 50.0
    flow_lps: float = 0.0
    street_ids: tuple[str, ...] = ()
    depth_m: float = 0.0             # estimated water depth on the street (0: not estimated)


# --- mobility, assets, people (used by later layers) ------------------------
@dataclass(frozen=True)
class StreetClosed(Event):
    street_ids: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class StreetReopened(Event):
    street_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class LanesClosed(Event):
    """``lanes`` lanes per direction of streets closed (roadworks, a crash): the streets
    stay open on the lanes left (with none left, one lane used by both directions in
    turn); not a closure for routing."""
    street_ids: tuple[str, ...] = ()
    lanes: int = 1
    reason: str = ""


@dataclass(frozen=True)
class LanesReopened(Event):
    """The ``lanes`` closed by a :class:`LanesClosed` on these streets are open again."""
    street_ids: tuple[str, ...] = ()
    lanes: int = 1


@dataclass(frozen=True)
class RepairDone(Event):
    layer: str = ""
    element_id: str = ""


@dataclass(frozen=True)
class Reading(Event):
    sensor_id: str = ""
    value: float = float("nan")
    unit: str = ""


@dataclass(frozen=True)
class Alert(Event):
    layer: str = ""
    element_id: str = ""
    message: str = ""
    severity: str = "warning"


# --- citizens and crews -------------------------------------------------------
@dataclass(frozen=True)
class RequestFiled(Event):
    """A resident reported an incident (background requests are not published: they are
    in the request table). ``cause_id`` is the incident's event."""
    request_id: str = ""
    service_code: str = ""
    incident_id: str = ""
    channel: str = ""
    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True)
class WorkOrderDone(Event):
    """A crew finished the work order of an incident; the repair events it causes follow.
    ``outcome`` is 'fixed' or 'unable_to_fix'."""
    order_id: str = ""
    request_id: str = ""
    crew_id: str = ""
    incident_id: str = ""
    outcome: str = "fixed"


# --- lighting, waste, sewer, traffic ---------------------------------------------
@dataclass(frozen=True)
class LampFailed(Event):
    """A luminaire went dark (end of life, vandalism, a feeder or cabinet fault)."""
    lamp_id: str = ""
    x: float = 0.0
    y: float = 0.0
    cabinet_id: str = ""
    reason: str = ""


@dataclass(frozen=True)
class CabinetFault(Event):
    """A lighting control cabinet (or one of its feeders/phases) lost supply or tripped."""
    cabinet_id: str = ""
    x: float = 0.0
    y: float = 0.0
    feeder_id: str = ""
    reason: str = ""


@dataclass(frozen=True)
class LightingFault(Event):
    """A fault ordered by a scenario (``lamp_failure``): the lighting layer fails the lamps
    named (or ``random_lamps`` lit ones it draws), or the cabinet / feeder, and publishes
    the resulting LampFailed / CabinetFault with positions."""
    lamp_ids: tuple[str, ...] = ()
    random_lamps: int = 0
    cabinet_id: str = ""
    feeder_id: str = ""
    reason: str = "injected"


@dataclass(frozen=True)
class ContainerOverflow(Event):
    """A waste container is full and waste is left beside it."""
    container_id: str = ""
    x: float = 0.0
    y: float = 0.0
    fill_fraction: float = 1.0


@dataclass(frozen=True)
class SewerFlooding(Event):
    """A sewer node surcharged to the surface: water on the street above it."""
    node_id: str = ""
    x: float = 0.0
    y: float = 0.0
    volume_m3: float = 0.0


@dataclass(frozen=True)
class OverflowSpill(Event):
    """A combined-sewer overflow started spilling to the receiving water."""
    outfall_id: str = ""
    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True)
class Rainfall(Event):
    """Rain on the sewer's catchments from ``time_s``: one intensity (mm/h) per ``step_s``
    seconds, at the listed rain gages (all of them when empty)."""
    intensities_mm_h: tuple[float, ...] = ()
    step_s: float = 300.0
    gages: tuple[str, ...] = ()
    label: str = ""


@dataclass(frozen=True)
class ConduitBlocked(Event):
    """A sewer conduit partly blocked (roots, fat, debris): it carries at most
    ``capacity_fraction`` of its full-pipe flow, for ``duration_s`` or to the end."""
    conduit_id: str = ""
    capacity_fraction: float = 0.5
    duration_s: float | None = None


@dataclass(frozen=True)
class SewerPumpOutage(Event):
    """A sewer pumping station's pump stops, for ``duration_s`` or to the end."""
    pump_id: str = ""
    duration_s: float | None = None


@dataclass(frozen=True)
class TravelTimesUpdated(Event):
    """The traffic layer re-equilibrated: ``Twin.street_times_s`` holds the new per-street
    travel times; ``street_ids`` lists the streets whose time changed most."""
    street_ids: tuple[str, ...] = ()
    tstt_change_veh_h: float = 0.0


# --- the city's response and city-wide conditions (hypervision) --------------------
@dataclass(frozen=True)
class CitizenAlert(Event):
    """The city warns the residents of an area by SMS / app push (``kind``: 'water_cut',
    'street_closed', 'collection_postponed', 'flood_warning', 'heat', ...). The area is the
    disc of ``radius_m`` around (x, y), plus the households along ``street_ids``."""
    kind: str = ""
    x: float = 0.0
    y: float = 0.0
    radius_m: float = 0.0
    street_ids: tuple[str, ...] = ()
    message: str = ""
    recipients: int = 0              # filled by the citizens layer's record, 0 when published


@dataclass(frozen=True)
class CrewRerouted(Event):
    """A field crew's route changed because of a closure (``cause_id``): the streets it now
    avoids and the extra driving time."""
    crew_id: str = ""
    order_id: str = ""
    street_ids: tuple[str, ...] = ()
    extra_s: float = 0.0


@dataclass(frozen=True)
class Heatwave(Event):
    """Hot days from ``time_s`` for ``duration_s``: a peak air temperature of
    ``temperature_c``; what follows in each network is for the cascade rules to say."""
    temperature_c: float = 35.0
    duration_s: float | None = None


@dataclass(frozen=True)
class ServiceSurge(Event):
    """Residents file more background requests of the listed Open311 services (all of them
    when empty) by ``factor`` for ``duration_s`` (a heatwave's odour and pressure
    complaints, say)."""
    service_codes: tuple[str, ...] = ()
    factor: float = 1.0
    duration_s: float | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in (PipeBurst, LeakStopped, ValveClosed, ValveOpened, PumpOutage,
                                  DemandSurge, FireFlow, StreetFlooded, StreetClosed,
                                  StreetReopened, RepairDone, Reading, Alert, RequestFiled,
                                  WorkOrderDone, LampFailed, CabinetFault, ContainerOverflow,
                                  SewerFlooding, OverflowSpill, TravelTimesUpdated,
                                  LanesClosed, LanesReopened, Rainfall, ConduitBlocked,
                                  SewerPumpOutage, LightingFault, CitizenAlert,
                                  CrewRerouted, Heatwave, ServiceSurge)
}


class Bus:
    """Synchronous publish/subscribe channel with a complete log."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Callable[[Event], Any]]] = defaultdict(list)
        self.log: list[Event] = []

    def subscribe(self, event_type: type[Event], handler: Callable[[Event], Any]) -> None:
        self._handlers[event_type].append(handler)

    def publish(self, event: Event) -> Event:
        """Log ``event`` with the next id of this run, hand it to subscribers, return it."""
        event = replace(event, event_id=len(self.log) + 1)
        self.log.append(event)
        for cls in type(event).__mro__:
            for handler in self._handlers.get(cls, ()):
                handler(event)
        return event

    def to_frame(self) -> pd.DataFrame:
        """One row per event: id, time, kind, source, cause and its fields as JSON-able text."""
        rows = []
        for ev in self.log:
            fields = {f.name: getattr(ev, f.name) for f in dataclasses.fields(ev)
                      if f.name not in ("time_s", "source", "cause_id", "event_id")}
            # the class name: an event's own ``kind`` field (CitizenAlert) would shadow it
            rows.append({"event_id": ev.event_id, "time_s": ev.time_s, "kind": type(ev).__name__,
                         "source": ev.source, "cause_id": ev.cause_id,
                         "details": repr(fields)})
        return pd.DataFrame(rows, columns=["event_id", "time_s", "kind", "source", "cause_id",
                                           "details"])
