"""The city's request service on the twin's clock: citizens, channels, triage, crews.

:class:`CitizenServices` is a layer (name ``"citizens"``). ``build`` makes the
households, the street router and the crews; ``start`` puts on the clock one
process that draws each day's background requests, the phone centre, one
process per crew and an hourly recorder; ``apply`` turns incidents published
by the network layers (``StreetFlooded``, ``LampFailed``, ``CabinetFault``,
``ContainerOverflow``, ``SewerFlooding``) into reports by residents nearby (a lamp
out only once it is dark), ``StreetClosed`` / ``StreetReopened`` into the crews'
routes (closed streets are avoided from the event on; a crew on its way whose route
uses them turns where it is, estimated by the time it has driven, and a route made
longer by a closure publishes ``CrewRerouted`` caused by that closure: see
:mod:`twin.agents.crew_moves`) and
``TravelTimesUpdated`` into the crews' travel times (the traffic layer's
``Twin.street_times_s``). Incidents also raise information calls from the households
around them; ``CitizenAlert`` warns an area (:mod:`twin.agents.alerts`: its subscribed
households then mostly neither report nor call), ``ServiceSurge`` multiplies some
services' background requests for a while, and the policy may pre-position crews
(:class:`twin.agents.crews.Preposition`) and give first-contact answers at the phone
centre (:class:`twin.agents.channels.FirstContact`). A fork (:mod:`service_fork`) does
not carry the alerts received, the surges in force nor the closures' causes.
Triage merges duplicates (same incident, or same service within
``duplicate_radius_m`` and ``duplicate_window_h``), sets the priority and the
promised date and makes a work order; a crew's repair publishes the events
that change the network (``LeakStopped`` and ``RepairDone`` for a leak,
``StreetReopened`` for a flooded street, ``RepairDone(layer, element_id)`` for an
asset of another layer: the lamp, cabinet, container or sewer node). Results: :meth:`kpis`,
:meth:`request_table` (Open311 fields) and the recorder's hourly series
(``backlog``, ``open_requests``, ``crews_busy``, ``phone_queue``; ``alert_recipients``
at each alert).

Requests are kept in preallocated numpy columns, not in a DataFrame nor lists,
and a day's requests are walked by one process, so a year of 600,000 costs about
ten times a year of 60,000 (the garbage collector walks no object per
request); :func:`simulate_city` runs a whole city for the ``twin citizens simulate``
command.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd
import shapely

from twin.agents import crew_moves
from twin.agents.alerts import AlertPolicy, AlertService
from twin.agents.channels import (Calendar, Counter, FirstContact, PhoneCentre, PhoneStaffing,
                                  Reminders)
from twin.agents.citizens import CHANNELS, BackgroundDemand, Households, surge_extra
from twin.agents.crews import Crew, Preposition, StreetRouter, make_crews
from twin.agents.dispatch import MIN_SHIFT_LEFT_S, Dispatcher, WorkOrder
from twin.events import (CabinetFault, CitizenAlert, ContainerOverflow, Event,
                         LampFailed, LeakStopped, PipeBurst, RepairDone, RequestFiled,
                         ServiceSurge, SewerFlooding, StreetClosed, StreetFlooded,
                         StreetReopened, TravelTimesUpdated, WorkOrderDone)
from twin.networks.base import Layer

if TYPE_CHECKING:
    import geopandas as gpd

    from twin.agents.services import Service
    from twin.twin import Twin

H = 3600.0
# mean hours on site per skill (assumptions; a lognormal of sigma 0.5 around them)
WORK_HOURS: dict[str, float] = {"water": 3.0, "sewer": 1.5, "lighting": 1.0, "waste": 0.5,
                                "roads": 1.5, "parking": 1.0, "other": 0.75}
SETUP_S = 300.0                   # parking and setting up at a job
OFFICE_SERVICES = ("parking_permit_renewal",)   # answered by the back office, no crew
PHONE_HANDLE_S = {"request": 300.0, "information": 180.0, "status": 120.0}


@dataclass
class ServicePolicy:
    """What a run of the service varies. Units in names; defaults for a mid-size city.

    ``phone_agents`` None: one agent per 60,000 inhabitants, at least 2.
    ``report_probability``: chance that a household within ``report_radius_m`` of an
    incident reports it (times its propensity), at most ``max_reports`` reports.
    ``info_calls_per_phone_request``: calls that ask something and file nothing.
    ``incident_info_call_probability``: chance that a household affected by an incident
    (a flooded or closed street near home, a sewer flooding, a dark cabinet area) calls to
    ask about it ("is my water cut? why is my street closed?"), times its propensity, about
    ``mean_info_call_delay_s`` after the incident, at most once in ``info_call_gap_s``.
    ``status_call_probability``: chance that the requester of a request still open when its
    promise passes calls the next day to ask where it stands (0 here, so the year benchmark
    runs as before; 0.3 by default in a scenario's ``citizens:`` section).
    ``alerts``: the alert service (:class:`twin.agents.alerts.AlertPolicy`);
    ``first_contact``: first-level answers at the phone centre (None: every call takes the
    usual ``PHONE_HANDLE_S``); ``preposition``: crews moved to a staging point.
    """

    policy: str = "priority"
    crews: int = 40
    depots: int = 3
    phone_agents: int | None = None
    counter_desks: int = 2
    reminders: Reminders = field(default_factory=Reminders)
    volume_factor: float = 1.0
    report_probability: float = 0.05
    report_radius_m: float = 150.0
    max_reports: int = 12
    mean_report_delay_s: float = 2400.0
    dark_from_h: float = 18.0          # a lamp out is noticed between dusk and dawn
    dark_until_h: float = 7.0
    duplicate_radius_m: float = 50.0
    duplicate_window_h: float = 72.0
    unable_to_fix_share: float = 0.03
    info_calls_per_phone_request: float = 1.0
    abandoned_retry_share: float = 0.5        # hung-up callers who file online later
    record_step_s: float = 3600.0
    incident_info_call_probability: float = 0.02
    mean_info_call_delay_s: float = 1800.0
    info_call_gap_s: float = 12 * 3600.0
    status_call_probability: float = 0.0
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    first_contact: FirstContact | None = None
    preposition: Preposition | None = None


class _Columns:
    """A table as preallocated numpy columns (``COLUMNS``: name -> (dtype, blank)).

    Columns are doubled when full (numbers in int64/float64, text in object arrays), so
    a year of 600,000 rows adds no Python object per number for the garbage collector to
    walk. Read a column with :meth:`column` (filled rows only).
    """

    COLUMNS: dict[str, tuple[type, Any]] = {}

    def __init__(self, capacity: int = 4096) -> None:
        self._n = 0
        for name, (dtype, blank) in self.COLUMNS.items():
            setattr(self, name, np.full(capacity, blank, dtype=dtype))

    def __len__(self) -> int:
        return self._n

    def column(self, name: str) -> np.ndarray:
        return getattr(self, name)[: self._n]

    def _reserve(self, k: int) -> int:
        row = self._n
        size = len(getattr(self, next(iter(self.COLUMNS))))
        if row + k > size:
            grown = max(2 * size, row + k)
            for name, (dtype, blank) in self.COLUMNS.items():
                col = np.full(grown, blank, dtype=dtype)
                col[:size] = getattr(self, name)
                setattr(self, name, col)
        self._n += k
        return row


class _Requests(_Columns):
    """The request table; a row is a request's number (id = row + 1)."""

    COLUMNS = {
        "service": (np.int64, 0), "household": (np.int64, -1), "x_m": (np.float64, math.nan),
        "y_m": (np.float64, math.nan), "node": (np.int64, -1), "channel": (np.int64, -1),
        "intent_s": (np.float64, math.nan), "requested_s": (np.float64, math.nan),
        "triaged_s": (np.float64, math.nan), "expected_s": (np.float64, math.nan),
        "closed_s": (np.float64, math.nan), "updated_s": (np.float64, math.nan),
        "retry_s": (np.float64, math.nan),     # a caller who hung up files online then
        "state": (object, "new"), "priority": (np.int64, 0), "incident_id": (object, ""),
        "duplicate_of": (np.int64, -1), "crew_id": (object, ""), "notes": (object, "")}

    def add(self, service: int, household: int, x_m: float, y_m: float, node: int,
            channel: int, intent_s: float, incident_id: str = "") -> int:
        row = self._reserve(1)
        self.service[row], self.household[row], self.node[row] = service, household, node
        self.x_m[row], self.y_m[row], self.channel[row] = x_m, y_m, channel
        self.intent_s[row] = self.updated_s[row] = intent_s
        self.incident_id[row] = incident_id
        return row

    def add_many(self, service: np.ndarray, household: np.ndarray, x_m: np.ndarray,
                 y_m: np.ndarray, node: np.ndarray, channel: np.ndarray,
                 intent_s: np.ndarray) -> int:
        """Append a batch of requests; returns the first one's row."""
        k = len(service)
        row = self._reserve(k)
        rows = slice(row, row + k)
        self.service[rows], self.household[rows], self.node[rows] = service, household, node
        self.x_m[rows], self.y_m[rows], self.channel[rows] = x_m, y_m, channel
        self.intent_s[rows] = self.updated_s[rows] = intent_s
        return row


class _Orders(_Columns):
    """Every work order made (row = ``order_id``); the :class:`WorkOrder` objects live only
    while the order is open (backlog, route, crew)."""

    COLUMNS = {
        "request": (np.int64, -1), "skill": (object, ""), "priority": (np.int64, 0),
        "node": (np.int64, -1), "received_s": (np.float64, math.nan),
        "due_s": (np.float64, math.nan), "work_s": (np.float64, math.nan),
        "incident_id": (object, ""), "crew_id": (object, ""), "arrived_s": (np.float64, math.nan),
        "done_s": (np.float64, math.nan)}

    def add(self, order: WorkOrder) -> None:
        row = self._reserve(1)
        for name in self.COLUMNS:
            if name not in ("arrived_s", "done_s"):
                getattr(self, name)[row] = getattr(order, name)

    def frame(self) -> pd.DataFrame:
        out = pd.DataFrame({name: self.column(name) for name in self.COLUMNS})
        out.index.name = "order_id"
        return out.reset_index()


@dataclass
class _Incident:
    event: Event
    service: int
    repairs: list[Event]              # published when the crew has repaired it
    master: int = -1                  # request row carrying the work order
    reports: int = 0
    repaired_s: float | None = None


class CitizenServices(Layer):
    """Households, channels, triage, work orders and crews on the twin's clock.

    ``catalogue``: services by code (default :func:`twin.agents.services.default_catalogue`).
    """

    name = "citizens"

    def __init__(self, policy: ServicePolicy | None = None,
                 catalogue: dict[str, "Service"] | None = None) -> None:
        self.policy = policy or ServicePolicy()
        self._catalogue = catalogue
        self.twin: "Twin | None" = None

    # ------------------------------------------------------------------ build
    def build(self, twin: "Twin") -> None:
        if twin.city is None:
            raise ValueError("citizens layer: the twin has no city (households and streets "
                             "come from it); build the twin with a City")
        from twin.agents.services import default_catalogue

        self.twin, pol = twin, self.policy
        self.catalogue = self._catalogue or default_catalogue()
        self.services: list["Service"] = list(self.catalogue.values())
        self._code_row = {s.service_code: i for i, s in enumerate(self.services)}
        city = twin.city
        self.calendar = Calendar(twin.clock.start)
        self.rng = twin.rng.stream("citizens.requests")
        self._crew_rng = twin.rng.stream("citizens.crews")
        self.households = Households(city, twin.rng.stream("citizens.households"))
        self.demand = BackgroundDemand(self.services, self.households.population,
                                       pol.volume_factor)
        self.router = StreetRouter(city)
        self._home_node = self.router.nearest_node(self.households.x_m, self.households.y_m)
        self.crews = make_crews(pol.crews, self._workload_h(), self._depots(pol.depots))
        self.dispatcher = Dispatcher(pol.policy, self.router)
        self.requests = _Requests()
        self.orders = _Orders()
        self.trips: list[tuple] = []         # (crew, order, from node, to node, depart, arrive, m)
        self.incidents: dict[str, _Incident] = {}
        self._asset_incidents: dict[str, str] = {}   # "layer:element" -> its latest incident
        self._bursts: dict[int, PipeBurst] = {}
        self._by_incident: dict[str, int] = {}
        self._cells: dict[tuple, list[int]] = {}
        self._children: dict[int, list[int]] = {}    # original row -> its duplicates
        self._open = 0
        self._crews_busy = 0                          # crews driving to or working on a job
        self.reminders_sent = self.renewals_online = 0
        self.info_calls = self.lost = 0
        self.alerts = AlertService(pol.alerts, self.households, city,
                                   twin.rng.stream("citizens.alerts"))
        self._effect_rng = twin.rng.stream("citizens.alert_effects")
        self._info_rng = twin.rng.stream("citizens.incident_calls")
        self._call_rng = twin.rng.stream("citizens.first_contact")
        self._surge_rng = twin.rng.stream("citizens.surge")
        self._last_info_s = np.full(len(self.households), -np.inf)
        self.reports_avoided = self.incident_info_calls = self.incident_info_avoided = 0
        self.status_calls = self.surge_requests = 0
        self.call_outcomes = {"resolved": 0, "escalated": 0, "callback": 0}
        self.reroutes: list[tuple] = []     # (crew, order, cause id, extra s): CrewRerouted
        self._closed_by: dict[str, int] = {}          # closed street -> its StreetClosed id
        self._surges: list[tuple[float, float, np.ndarray, float]] = []
        self._skip_first_draw = False                 # a restored fork has today's requests
        self._fork_start: dict[str, Any] | None = None

    def _workload_h(self) -> dict[str, float]:
        """Expected crew hours a year per skill (on site, set-up, ~10 min driving)."""
        work: dict[str, float] = {}
        for s in self.services:
            if s.service_code in OFFICE_SERVICES:
                continue
            per_year = s.rate_per_1000_per_year * self.households.population / 1000.0
            hours = per_year * (WORK_HOURS.get(s.skill, 1.0) + SETUP_S / H + 1 / 6)
            work[s.skill] = work.get(s.skill, 0.0) + hours
        return work

    def _depots(self, n: int) -> list[int]:
        """``n`` depots spread on a circle around the centre (intersection rows)."""
        xy = self.router.xy_m
        centre = xy.mean(axis=0)
        r = 0.35 * float(np.percentile(np.hypot(*(xy - centre).T), 90))
        angle = 2 * np.pi * np.arange(max(n, 1)) / max(n, 1)
        pts = centre + r * np.column_stack([np.cos(angle), np.sin(angle)]) * (n > 1)
        return [int(k) for k in self.router.nearest_node(pts[:, 0], pts[:, 1])]

    # ------------------------------------------------------------------ step
    def start(self, twin: "Twin") -> None:
        twin.bus.subscribe(PipeBurst, self.apply)
        twin.bus.subscribe(StreetFlooded, self.apply)
        twin.bus.subscribe(StreetClosed, self.apply)
        twin.bus.subscribe(StreetReopened, self.apply)
        for kind in (LampFailed, CabinetFault, ContainerOverflow, SewerFlooding,
                     TravelTimesUpdated, CitizenAlert, ServiceSurge):
            twin.bus.subscribe(kind, self.apply)
        if twin.street_times_s is not None:
            self.router.set_street_times(twin.street_times_s)
        env = twin.clock.env
        self.env = env
        staffing = PhoneStaffing(agents=self.policy.phone_agents if self.policy.phone_agents
                                 is not None else max(2, round(self.households.population / 60_000)))
        self.phone = PhoneCentre(env, self.calendar, staffing, twin.rng.stream("citizens.phone"))
        self.counter = Counter(desks=self.policy.counter_desks)
        self.phone.start()
        env.process(self._days())
        from twin.agents import service_fork

        service_fork.resume(self)
        for crew in self.crews:
            crew.process = env.process(self._crew(crew))
        if self.policy.preposition is not None:
            self._at(self.policy.preposition.from_s, crew_moves.preposition, self,
                     self.policy.preposition)
        env.process(self._record())

    def _at(self, time_s: float, action: Callable, *args) -> None:
        """Call ``action(*args)`` when the clock reaches ``time_s`` (no process needed)."""
        ev = self.env.timeout(max(time_s - self.env.now, 0.0))
        ev.callbacks.append(lambda _ev: action(*args))

    def _days(self):
        """Each midnight: draw the day's background requests and put them on the clock."""
        cal = self.calendar
        day = cal.day_number(self.env.now)
        restored_today, self._skip_first_draw = self._skip_first_draw, False
        while True:
            start_s = cal.day_start_s(day)
            if not restored_today:      # a fork carries today's requests from its snapshot
                batch = self.demand.draw_day(cal.date(day), start_s, self.households, self.rng)
                keep = batch.time_s >= self.env.now
                self._schedule_day(batch.time_s[keep], batch.service[keep],
                                   batch.household[keep])
            restored_today = False
            self._surge_day(day, self._surges)
            if self.policy.status_call_probability > 0:
                self._status_calls(start_s - 86400.0, start_s)
            day += 1
            yield self.env.timeout(cal.day_start_s(day) - self.env.now)

    def _surge_day(self, day: int, surges: list) -> None:
        """The extra background requests of ``surges`` on ``day`` (from now on)."""
        start_s = self.calendar.day_start_s(day)
        for surge_start, surge_end, mask, factor in surges:
            extra = surge_extra(start_s, surge_start, surge_end, mask, factor)
            if extra is None:
                continue
            batch = self.demand.draw_day(self.calendar.date(day), start_s, self.households,
                                         self._surge_rng, extra=extra)
            keep = ((batch.time_s >= max(self.env.now, surge_start))
                    & (batch.time_s < surge_end))
            if keep.any():
                self.surge_requests += int(keep.sum())
                self._schedule_day(batch.time_s[keep], batch.service[keep],
                                   batch.household[keep], self._surge_rng)

    def _surge(self, ev: ServiceSurge) -> None:
        """More background requests of some services for a while (the rest of today now,
        the next days at their midnight). A factor of 1 or less changes nothing."""
        codes = set(ev.service_codes) or set(self._code_row)
        mask = np.array([s.service_code in codes for s in self.services], dtype=float)
        end_s = self.env.now + (ev.duration_s if ev.duration_s is not None else math.inf)
        surge = (self.env.now, end_s, mask, float(ev.factor))
        self._surges = [s for s in self._surges if s[1] > self.env.now] + [surge]
        self._surge_day(self.calendar.day_number(self.env.now), [surge])

    def _status_calls(self, since_s: float, until_s: float) -> None:
        """Requesters of requests whose promise passed in [since_s, until_s) and still open
        call the next day (in the centre's hours) to ask where their request stands."""
        req = self.requests
        expected, closed = req.column("expected_s"), req.column("closed_s")
        late = np.flatnonzero((expected >= since_s) & (expected < until_s) & np.isnan(closed)
                              & (req.column("duplicate_of") < 0))
        callers = late[self._call_rng.random(len(late)) < self.policy.status_call_probability]
        for _ in callers:
            when = until_s + float(self._call_rng.uniform(8.0, 18.0)) * H
            self.status_calls += 1
            self._at(self._call_time(when, self._call_rng), self._phone_call, "status",
                     None, None, self._call_rng)

    def _schedule_day(self, times: np.ndarray, services: np.ndarray, homes: np.ndarray,
                      rng: np.random.Generator | None = None) -> None:
        """File the day's requests in the table and walk them on the clock.

        One process walks the day's sorted contacts (requests and information calls), so
        the event heap holds one timeout for them instead of one per request: the heap and
        the objects kept alive for the day stay small when the volume grows tenfold.
        """
        hh, rng = self.households, rng or self.rng
        channels = hh.channel[homes]
        codes = [self.services[k].service_code for k in services]
        channels, sent, moved = self.policy.reminders.apply(channels, codes, rng, CHANNELS)
        self.reminders_sent += sent
        self.renewals_online += moved
        nodes = self._home_node[homes]
        first = self.requests.add_many(services, homes, hh.x_m[homes], hh.y_m[homes], nodes,
                                       channels, times)
        phone_calls = int((channels == CHANNELS.index("phone")).sum())
        n_info = rng.poisson(self.policy.info_calls_per_phone_request * phone_calls)
        info_s = (times[0] + rng.random(n_info) * (times[-1] - times[0]) if len(times)
                  else np.zeros(0))
        # requests before information calls at equal times, as their order of filing
        when_s = np.concatenate([times, info_s])
        what = np.concatenate([np.arange(first, first + len(times)), np.full(len(info_s), -1)])
        order = np.argsort(when_s, kind="stable")
        if len(order):
            self.env.process(self._walk(when_s[order].tolist(), what[order].tolist()))

    def _walk(self, when_s: list[float], rows: list[int]):
        """Contact the city at each time: request ``row``, or an information call (-1)."""
        env = self.env
        for t, row in zip(when_s, rows):
            if t > env.now:
                yield env.timeout(t - env.now)
            if row >= 0:
                self._contact(row)
            else:
                self._info_call()

    def _info_call(self) -> None:
        self.info_calls += 1
        when = self._call_time(self.env.now)
        if self.policy.first_contact is None:      # the plain call (the year benchmark's)
            self._at(when, self.phone.call, "information", self._handle_s("information"))
        else:
            self._at(when, self._phone_call, "information")

    def _phone_call(self, kind: str, answered: Callable[[float, str], None] | None = None,
                    hung_up: Callable[[float], None] | None = None,
                    rng: np.random.Generator | None = None) -> None:
        """A call of ``kind`` rings now; with first-contact answers, the level-1 agent
        resolves it or escalates it (see :class:`twin.agents.channels.FirstContact`);
        ``answered(end_s, outcome)`` when the call ends."""
        first = self.policy.first_contact
        if first is None:
            outcome, handle_s = "resolved", self._handle_s(kind, rng)
        else:
            outcome, handle_s = first.answer(kind, self._call_rng)

        def done(end_s: float) -> None:
            if first is not None:
                self.call_outcomes[outcome] += 1
            if answered is not None:
                answered(end_s, outcome)

        self.phone.call(kind, handle_s, answered=done, hung_up=hung_up)

    def _call_time(self, now: float, rng: np.random.Generator | None = None) -> float:
        """When a caller gets through: now if the centre is open, else some time in the
        first six hours of the next opening (not all at the opening minute)."""
        opens = self.phone.next_open_s(now)
        if opens == now:
            return now
        return self.phone.next_open_s(opens + float((rng or self.rng).random()) * 6 * H)

    def _handle_s(self, kind: str, rng: np.random.Generator | None = None) -> float:
        return float((rng or self.rng).lognormal(math.log(PHONE_HANDLE_S[kind]) - 0.125, 0.5))

    # ------------------------------------------------------------------ channels
    def _contact(self, row: int) -> None:
        """The citizen reaches the city through the request's channel."""
        req, now = self.requests, self.env.now
        channel = CHANNELS[req.channel[row]]
        if channel in ("app", "web"):
            self._receive(row, now)
        elif channel == "phone":
            when = self._call_time(now)
            if when > now:
                self._at(when, self._ring, row)
            else:
                self._ring(row)
        else:
            self._at(self.counter.book(now, self.calendar), self._receive, row, None)

    def _ring(self, row: int) -> None:
        if self.policy.first_contact is None:      # the plain call (the year benchmark's)
            self.phone.call("request", self._handle_s("request"),
                            answered=lambda end_s: self._receive(row, end_s, triaged=True),
                            hung_up=lambda now_s: self._hung_up(row))
            return
        # resolved at first contact: the agent triages it; escalated: the back office does
        self._phone_call("request",
                         answered=lambda end_s, outcome: self._receive(
                             row, end_s, triaged=outcome == "resolved"),
                         hung_up=lambda now_s: self._hung_up(row))

    def _hung_up(self, row: int) -> None:
        if self.rng.random() < self.policy.abandoned_retry_share:
            self.requests.channel[row] = CHANNELS.index("web")
            retry_s = self.env.now + float(self.rng.uniform(0.5, 4.0)) * H
            self.requests.retry_s[row] = retry_s          # a fork files it then too
            self._at(retry_s, self._receive, row, None)
        else:
            self.lost += 1
            self.requests.state[row] = "lost"

    def _receive(self, row: int, when_s: float | None, triaged: bool = False) -> None:
        """The request enters the system: received now, triaged at once or by the back office."""
        req, now = self.requests, self.env.now
        req.requested_s[row] = now if when_s is None else when_s
        req.state[row] = "received"
        req.updated_s[row] = now
        svc = self.services[req.service[row]]
        if triaged or svc.priority == 1:     # phone agents and the urgent keywords triage at once
            self._triage(row)
        else:
            self._at(self._office_time(now), self._triage, row)

    def _office_time(self, now: float) -> float:
        """When the back office (weekdays 8-18) looks at a request that came in at ``now``."""
        weekday, hour = self.calendar.weekday_hour(now)
        if weekday < 5 and 8 <= hour < 18:
            return now + float(self.rng.exponential(1200.0))
        t = (now // H + 1) * H
        while True:
            weekday, hour = self.calendar.weekday_hour(t)
            if weekday < 5 and 8 <= hour < 18:
                return t + float(self.rng.uniform(0, 2 * H))
            t += H

    # ------------------------------------------------------------------ triage
    def _triage(self, row: int) -> None:
        req, now, pol = self.requests, self.env.now, self.policy
        svc = self.services[req.service[row]]
        req.triaged_s[row] = req.updated_s[row] = now
        req.priority[row] = svc.priority
        master = self._duplicate_of(row)
        if master >= 0:         # open (Open311) until its original closes
            req.state[row] = "duplicate"
            req.duplicate_of[row] = master
            req.notes[row] = f"duplicate of request {master + 1}"
            if np.isnan(req.closed_s[master]):
                self._children.setdefault(master, []).append(row)
            else:      # triaged after its original was closed (a slow channel): closed too
                req.state[row] = "closed"
                req.closed_s[row] = now
                req.notes[row] = (f"duplicate of request {master + 1}, already closed: "
                                  f"{req.notes[master]}")
            return
        req.state[row] = "triaged"
        req.expected_s[row] = req.requested_s[row] + svc.promise_h * H
        self._open += 1
        if req.incident_id[row]:
            self._by_incident[req.incident_id[row]] = row
            self.incidents[req.incident_id[row]].master = row
        cell = (int(req.service[row]), int(req.x_m[row] // pol.duplicate_radius_m),
                int(req.y_m[row] // pol.duplicate_radius_m))
        self._cells.setdefault(cell, []).append(row)
        if svc.service_code in OFFICE_SERVICES:
            self._at(now + float(self.rng.exponential(0.3 * svc.promise_h * H)), self._close,
                     row, "closed", "done by the back office")
            return
        mean_work_s = WORK_HOURS.get(svc.skill, 1.0) * H
        order = WorkOrder(len(self.orders), row, svc.skill, svc.priority, int(req.node[row]), now,
                          float(req.expected_s[row]),
                          float(self._crew_rng.lognormal(math.log(mean_work_s) - 0.125, 0.5)),
                          incident_id=req.incident_id[row])
        self.orders.add(order)
        crew = self.dispatcher.add(order)
        if crew is not None and crew.wake is not None and not crew.wake.triggered:
            crew.wake.succeed()

    def _duplicate_of(self, row: int) -> int:
        """The open request ``row`` repeats, or -1: same incident, or same service within
        ``duplicate_radius_m`` and ``duplicate_window_h``."""
        req, pol = self.requests, self.policy
        incident = req.incident_id[row]
        if incident:      # a report of an incident repeats only reports of that incident
            return self._by_incident.get(incident, -1)
        r = pol.duplicate_radius_m
        x, y, s = req.x_m[row], req.y_m[row], req.service[row]
        cx, cy = int(x // r), int(y // r)
        since = req.requested_s[row] - pol.duplicate_window_h * H
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                rows = self._cells.get((s, cx + dx, cy + dy))
                if not rows:
                    continue
                for k in rows:
                    if (req.requested_s[k] >= since
                            and (req.x_m[k] - x) ** 2 + (req.y_m[k] - y) ** 2 <= r * r):
                        return k
        return -1

    def _close(self, row: int, state: str, notes: str) -> None:
        """Close ``row`` (state 'closed' or 'unable_to_fix') and its duplicates with it."""
        req, now = self.requests, self.env.now
        req.state[row] = state
        req.closed_s[row] = req.updated_s[row] = now
        req.notes[row] = notes
        self._open -= 1
        r = self.policy.duplicate_radius_m        # a closed request repeats nothing
        cell = (int(req.service[row]), int(req.x_m[row] // r), int(req.y_m[row] // r))
        rows = self._cells.get(cell)
        if rows is not None and row in rows:
            rows.remove(row)
            if not rows:
                del self._cells[cell]
        for child in self._children.pop(row, ()):
            req.state[child] = "closed"
            req.closed_s[child] = req.updated_s[child] = now
            req.notes[child] = f"duplicate of request {row + 1}, closed with it: {notes}"

    # ------------------------------------------------------------------ crews
    def _shift_left_s(self, crew: Crew) -> float | None:
        weekday, hour = self.calendar.weekday_hour(self.env.now)
        return crew.shift.window_end_s(weekday, hour)

    def _crew(self, crew: Crew):
        env, disp = self.env, self.dispatcher
        planned_window = -1
        while True:
            left = self._shift_left_s(crew)
            if left is None or left < MIN_SHIFT_LEFT_S:
                disp.crew_busy(crew)
                if crew.assigned is not None:        # handed over as the shift ended
                    order, crew.assigned = crew.assigned, None
                    order.taken, order.crew_id = False, ""
                    self._redispatch(order)
                if crew.node != crew.depot:
                    yield from crew_moves.drive(self, crew, None, crew.depot)
                weekday, hour = self.calendar.weekday_hour(env.now)
                wait = (left if left is not None else crew.shift.next_start_s(weekday, hour))
                yield env.timeout(max(wait, 1.0))
                continue
            window_end = round(env.now + left)
            if window_end != planned_window:          # a new shift window starts
                planned_window = window_end
                crew.on_shift_s += left
                disp.plan_route(crew, left)
            order = crew.assigned or disp.next_for(crew)
            crew.assigned = None
            if order is None and crew.staged and crew.node != crew.depot:
                yield from crew_moves.to_staging(self, crew, left)
                continue
            if order is None:
                crew.wake = env.event()
                disp.crew_idle(crew)
                yield crew.wake | env.timeout(left)
                disp.crew_busy(crew)
                crew.wake = None
                continue
            yield from self._job(crew, order)

    def _redispatch(self, order: WorkOrder) -> None:
        crew = self.dispatcher.add(order)
        if crew is not None and crew.wake is not None and not crew.wake.triggered:
            crew.wake.succeed()

    def _job(self, crew: Crew, order: WorkOrder):
        env, req = self.env, self.requests
        row = order.request
        t0 = env.now
        self._crews_busy += 1
        req.state[row], req.crew_id[row], req.updated_s[row] = "scheduled", crew.crew_id, t0
        yield from crew_moves.drive(self, crew, order, order.node)
        self.orders.arrived_s[order.order_id] = env.now
        req.state[row], req.updated_s[row] = "in_progress", env.now
        yield env.timeout(SETUP_S + order.work_s)
        crew.busy_s += env.now - t0
        crew.jobs += 1
        self._crews_busy -= 1
        self.orders.crew_id[order.order_id] = crew.crew_id
        self.orders.done_s[order.order_id] = env.now
        incident = self.incidents.get(order.incident_id) if order.incident_id else None
        fixed = incident is not None or self._crew_rng.random() >= self.policy.unable_to_fix_share
        req.state[row] = "fixed" if fixed else "unable_to_fix"
        if incident is not None:
            self._repaired(incident, order, crew)
        if fixed:
            self._close(row, "closed", f"fixed by crew {crew.crew_id}")
        else:
            self._close(row, "unable_to_fix", f"crew {crew.crew_id} could not fix it")

    def _repaired(self, incident: _Incident, order: WorkOrder, crew: Crew) -> None:
        """Publish the work order's end and the repair events that change the network."""
        now = self.env.now
        incident.repaired_s = now
        done = self.twin.publish(WorkOrderDone(
            time_s=now, source=self.name, cause_id=incident.event.event_id or None,
            order_id=f"wo{order.order_id + 1}", request_id=str(order.request + 1),
            crew_id=crew.crew_id, incident_id=order.incident_id, outcome="fixed"))
        for repair in incident.repairs:
            self.twin.publish(_with(repair, time_s=now, cause_id=done.event_id))

    # ------------------------------------------------------------------ incidents
    def apply(self, event: Event) -> None:
        if isinstance(event, PipeBurst):
            self._bursts[event.event_id] = event
        elif isinstance(event, StreetFlooded):
            self._flooded(event)
            self._incident_calls(event.x, event.y,
                                 max(self.policy.report_radius_m, 3 * event.radius_m))
        elif isinstance(event, StreetClosed):      # crews route around it from now on
            crew_moves.close_streets(self, event)
            if event.street_ids:
                homes, lines = self.alerts.along(event.street_ids,
                                                 self.alerts.policy.street_buffer_m)
                if lines is not None:
                    mid = shapely.centroid(lines)
                    self._incident_calls(mid.x, mid.y, 0.0, homes)
        elif isinstance(event, StreetReopened):
            self.router.reopen(event.street_ids)
            for sid in event.street_ids:
                self._closed_by.pop(str(sid), None)
        elif isinstance(event, CitizenAlert):
            self._alert(event)
        elif isinstance(event, ServiceSurge):
            self._surge(event)
        elif isinstance(event, TravelTimesUpdated):   # crews drive at the new traffic times
            self.router.set_street_times(self.twin.street_times_s)
        elif isinstance(event, LampFailed):
            self._asset_incident(event, "street_light_out", "lighting", "lighting",
                                 event.lamp_id, self.policy.report_radius_m, at_night=True)
        elif isinstance(event, CabinetFault):      # a whole cabinet's lamps are dark
            self._asset_incident(event, "street_light_out", "lighting", "lighting",
                                 event.cabinet_id, 3 * self.policy.report_radius_m, at_night=True)
            self._incident_calls(event.x, event.y, 3 * self.policy.report_radius_m)
        elif isinstance(event, ContainerOverflow):
            self._asset_incident(event, "overflowing_bin", "waste", "waste",
                                 event.container_id, self.policy.report_radius_m / 2)
        elif isinstance(event, SewerFlooding):
            self._asset_incident(event, "sewer_blocked", "sewer", "sewer", event.node_id,
                                 self.policy.report_radius_m)
            self._incident_calls(event.x, event.y, self.policy.report_radius_m)

    # ------------------------------------------------------------------ alerts, calls
    def _alert(self, ev: CitizenAlert) -> None:
        """The city warns the area: record who receives it (see :mod:`twin.agents.alerts`)."""
        if not self.policy.alerts.enabled:
            return
        recipients = self.alerts.send(ev, self.env.now)
        self.twin.recorder.record(self.env.now, self.name, "alert_recipients", "households",
                                  ["all"], [len(recipients)])     # one row per alert sent

    def _incident_calls(self, x: float, y: float, radius_m: float,
                        homes: np.ndarray | None = None) -> None:
        """Households affected by an incident (within ``radius_m`` of (x, y), or ``homes``)
        call to ask about it, some time after it (see ServicePolicy)."""
        pol, rng, hh = self.policy, self._info_rng, self.households
        if pol.incident_info_call_probability <= 0:
            return
        if homes is None:
            homes = hh.near(x, y, radius_m)
        chance = np.minimum(pol.incident_info_call_probability * hh.propensity[homes], 1.0)
        callers = homes[rng.random(len(homes)) < chance]
        delays = rng.exponential(pol.mean_info_call_delay_s, len(callers)) + 60.0
        for h, delay in zip(callers.tolist(), delays.tolist()):
            self._at(self.env.now + delay, self._incident_call, h, x, y)

    def _incident_call(self, household: int, x: float, y: float) -> None:
        now = self.env.now
        if now - self._last_info_s[household] < self.policy.info_call_gap_s:
            return                                # asked already about this area's trouble
        if (self.alerts.warned(household, x, y, now, self.policy.report_radius_m)
                and self._effect_rng.random() >= self.policy.alerts.info_share_after_alert):
            self.incident_info_avoided += 1       # the alert answered the question
            return
        self._last_info_s[household] = now
        self.incident_info_calls += 1
        self._at(self._call_time(now, self._info_rng), self._phone_call, "information",
                 None, None, self._info_rng)

    def _service_row(self, code: str, skill: str) -> int:
        if code in self._code_row:
            return self._code_row[code]
        for k, s in enumerate(self.services):
            if s.skill == skill:
                return k
        raise ValueError(f"citizens: the catalogue has no service {code!r} nor any of "
                         f"skill {skill!r} to report an incident with")

    def _flooded(self, ev: StreetFlooded) -> None:
        """Residents near a flooded street report it; its repair is planned now."""
        burst = self._bursts.get(ev.cause_id) if ev.cause_id else None
        repairs: list[Event] = []
        if burst is not None:
            service = self._service_row("water_leak_street", "water")
            repairs += [LeakStopped(time_s=0, source=self.name, pipe_id=burst.pipe_id,
                                    started_at_s=burst.time_s),
                        RepairDone(time_s=0, source=self.name, layer="water",
                                   element_id=burst.pipe_id)]
        else:
            service = self._service_row("flooded_street", "sewer")
            repairs.append(RepairDone(time_s=0, source=self.name, layer="streets",
                                      element_id=",".join(ev.street_ids)))
        if ev.street_ids:
            repairs.append(StreetReopened(time_s=0, source=self.name, street_ids=ev.street_ids))
        incident_id = f"{ev.kind}-{ev.event_id}"
        self.incidents[incident_id] = _Incident(ev, service, repairs)
        self._schedule_reports(incident_id, ev.x, ev.y, max(self.policy.report_radius_m,
                                                            3 * ev.radius_m))

    def _asset_incident(self, ev: Event, code: str, skill: str, layer: str, element_id: str,
                        radius_m: float, at_night: bool = False) -> None:
        """An asset of a network layer is broken where residents can see it: they report it,
        and the crew's repair publishes ``RepairDone(layer, element_id)`` for that layer.
        A second event on an asset whose incident is still open adds nothing."""
        asset = f"{layer}:{element_id}"
        open_incident = self.incidents.get(self._asset_incidents.get(asset, ""))
        if open_incident is not None and open_incident.repaired_s is None:
            return
        incident_id = f"{asset}#{ev.event_id}"
        self._asset_incidents[asset] = incident_id
        repair = RepairDone(time_s=0, source=self.name, layer=layer, element_id=element_id)
        self.incidents[incident_id] = _Incident(ev, self._service_row(code, skill), [repair])
        self._schedule_reports(incident_id, ev.x, ev.y, radius_m, at_night)

    def _schedule_reports(self, incident_id: str, x: float, y: float, radius_m: float,
                          at_night: bool = False) -> None:
        pol, rng, hh = self.policy, self.rng, self.households
        near = hh.near(x, y, radius_m)
        chance = np.minimum(pol.report_probability * hh.propensity[near], 1.0)
        reporters = near[rng.random(len(near)) < chance]
        delays = rng.exponential(pol.mean_report_delay_s, len(reporters)) + 60.0
        order = np.argsort(delays)[: pol.max_reports]
        for h, delay in zip(reporters[order].tolist(), delays[order].tolist()):
            when = self.env.now + delay
            weekday, hour = self.calendar.weekday_hour(when)
            if at_night and pol.dark_from_h > hour >= pol.dark_until_h:
                # a lamp out is seen once it is dark: the evening walk home
                when += (pol.dark_from_h - hour) * H + float(rng.exponential(3600.0))
                weekday, hour = self.calendar.weekday_hour(when)
            if hour < 6.5:                            # asleep: reports it in the morning
                when += (6.5 - hour) * H + float(rng.exponential(1800.0))
            self._at(when, self._report, incident_id, h)

    def _report(self, incident_id: str, household: int) -> None:
        incident, hh = self.incidents[incident_id], self.households
        if incident.repaired_s is not None:          # nobody reports what is fixed already
            return
        ev = incident.event
        if (self.alerts.warned(household, ev.x, ev.y, self.env.now, self.policy.report_radius_m)
                and self._effect_rng.random() >= self.policy.alerts.report_share_after_alert):
            self.reports_avoided += 1                # the city already knows: told by the alert
            return
        x = ev.x + float(self.rng.normal(0, 10.0))
        y = ev.y + float(self.rng.normal(0, 10.0))
        node = int(self.router.nearest_node(ev.x, ev.y)[0])
        channel = int(hh.channel[household])
        if CHANNELS[channel] == "counter":           # nobody books an appointment for a leak
            channel = CHANNELS.index("phone")
        row = self.requests.add(incident.service, household, x, y, node, channel,
                                self.env.now, incident_id)
        incident.reports += 1
        self.twin.publish(RequestFiled(
            time_s=self.env.now, source=self.name, cause_id=ev.event_id or None,
            request_id=str(row + 1), service_code=self.services[incident.service].service_code,
            incident_id=incident_id, channel=CHANNELS[channel], x=x, y=y))
        self._contact(row)

    # ------------------------------------------------------------------ record
    def _record(self):
        env, rec, step = self.env, self.twin.recorder, self.policy.record_step_s
        skills = sorted({c.skill for c in self.crews})
        elements = skills + ["all"]
        while True:
            backlog = [self.dispatcher.backlog(s) for s in skills]
            rec.record(env.now, self.name, "backlog", "work orders", elements,
                       backlog + [sum(backlog)])
            rec.record(env.now, self.name, "open_requests", "requests", ["all"], [self._open])
            rec.record(env.now, self.name, "crews_busy", "crews", ["all"], [self._crews_busy])
            rec.record(env.now, self.name, "phone_queue", "calls", ["all"],
                       [self.phone.queue_length()])
            yield env.timeout(step)

    # ------------------------------------------------------------------ results
    def _columns(self) -> dict[str, np.ndarray]:
        req = self.requests
        return {name: req.column(name) for name in
                ("service", "channel", "intent_s", "requested_s", "triaged_s", "expected_s",
                 "closed_s", "state", "priority", "duplicate_of")}

    def snapshot(self) -> dict[str, Any]:
        """The service's state now, for a what-if fork (see :mod:`twin.agents.service_fork`)."""
        from twin.agents import service_fork

        return service_fork.snapshot(self)

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` (after build, before the run; the fork's clock 0
        is the snapshot's time)."""
        from twin.agents import service_fork

        service_fork.restore(self, state)

    def kpis(self) -> dict[str, float]:
        """Figures of the run so far; hours, seconds, km and shares as their names say."""
        if not hasattr(self, "env"):
            return {}
        c, now = self._columns(), self.env.now
        filed = ~np.isnan(c["requested_s"]) if len(c["state"]) else np.zeros(0, bool)
        dup = c["duplicate_of"] >= 0
        master = filed & ~dup & ~np.isnan(c["triaged_s"])
        closed = master & ~np.isnan(c["closed_s"])
        close_h = (c["closed_s"] - c["requested_s"])[closed] / H
        first_h = (c["triaged_s"] - c["intent_s"])[filed & ~np.isnan(c["triaged_s"])] / H
        due = master & (closed | (c["expected_s"] <= now))
        in_time = due & (c["closed_s"] <= c["expected_s"])
        urgent = due & (c["priority"] == 1)
        shift_s = sum(cr.on_shift_s for cr in self.crews)
        waits = np.asarray(self.phone.waits_s)
        calls = self.phone.answered + self.phone.abandoned
        out: dict[str, float] = {
            "requests": float(filed.sum()),
            "duplicates": float(dup.sum()),
            "closed": float(closed.sum()),
            "open_at_end": float(self._open),
            "lost_requests": float(self.lost),
            "median_hours_to_close": _median(close_h),
            "mean_hours_to_close": float(close_h.mean()) if close_h.size else math.nan,
            "median_hours_to_first_response": _median(first_h),
            "within_promise_share": float(in_time.sum() / due.sum()) if due.any() else math.nan,
            "urgent_within_promise_share": (float((in_time & urgent).sum() / urgent.sum())
                                            if urgent.any() else math.nan),
            "work_orders": float(len(self.orders)),
            "backlog_end": float(self.dispatcher.backlog()),
            "crew_utilisation": sum(cr.busy_s for cr in self.crews) / shift_s if shift_s else 0.0,
            "km_driven": sum(cr.driven_m for cr in self.crews) / 1000.0,
            "travels_through_closures": float(self.router.closure_passes),
            "phone_calls": float(calls),
            "phone_mean_wait_s": float(waits.mean()) if waits.size else 0.0,
            "phone_p90_wait_s": float(np.percentile(waits, 90)) if waits.size else 0.0,
            "phone_abandoned_share": self.phone.abandoned / calls if calls else 0.0,
            "counter_visits": float(sum(self.counter.booked.values())),
            "reminders_sent": float(self.reminders_sent),
            "renewals_moved_online": float(self.renewals_online),
            "incidents": float(len(self.incidents)),
            "median_hours_incident_to_crew_on_site": _median(self._hours_to_crew()),
            "alerts_sent": float(len(self.alerts.rows)),
            "alert_recipients": float(sum(r["recipients"] for r in self.alerts.rows)),
            "reports_avoided_by_alerts": float(self.reports_avoided),
            "incident_info_calls": float(self.incident_info_calls),
            "incident_info_calls_avoided_by_alerts": float(self.incident_info_avoided),
            "status_calls": float(self.status_calls),
            "surge_requests": float(self.surge_requests),
            "crews_rerouted": float(len(self.reroutes)),
            "reroute_extra_hours": sum(r[3] for r in self.reroutes) / H,
        }
        answered = sum(self.call_outcomes.values())
        out["phone_first_contact_share"] = (self.call_outcomes["resolved"] / answered
                                            if answered else math.nan)
        out["phone_escalated"] = float(self.call_outcomes["escalated"])
        out["phone_callbacks"] = float(self.call_outcomes["callback"])
        for kind, n in sorted(self.phone.calls.items()):
            out[f"phone_calls_{kind}"] = float(n)
        for k, name in enumerate(CHANNELS):
            out[f"requests_channel_{name}"] = float((filed & (c["channel"] == k)).sum())
        for k, s in enumerate(self.services):
            out[f"requests_service_{s.service_code}"] = float((filed & (c["service"] == k)).sum())
        return out

    def _hours_to_crew(self) -> np.ndarray:
        """Hours from each incident to its crew's arrival on site (incidents reached)."""
        orders = self.orders
        ids = orders.column("incident_id")
        rows = np.flatnonzero(~np.isnan(orders.column("arrived_s")) & (ids != ""))
        out = [(orders.arrived_s[r] - self.incidents[ids[r]].event.time_s) / H
               for r in rows if ids[r] in self.incidents]
        return np.asarray(out, dtype=float)

    def elements(self) -> dict[str, "gpd.GeoDataFrame"]:
        """The crews (at their depot or staging point: skill, shift, jobs, km driven) and
        the alerts sent (their centre, radius, kind and recipients), in the city's CRS."""
        import geopandas as gpd

        if not hasattr(self, "router"):
            return {}
        depots = np.array([c.depot for c in self.crews], dtype=np.int64)
        crews = gpd.GeoDataFrame({
            "crew_id": [c.crew_id for c in self.crews], "skill": [c.skill for c in self.crews],
            "shift": [c.shift.name for c in self.crews], "vehicle": [c.vehicle for c in self.crews],
            "staged": [c.staged for c in self.crews], "jobs": [c.jobs for c in self.crews],
            "driven_km": [c.driven_m / 1000.0 for c in self.crews]},
            geometry=gpd.points_from_xy(*self.router.xy_m[depots].T), crs=self.twin.city.crs)
        alerts = self.alert_table()
        alerts = gpd.GeoDataFrame(alerts, geometry=gpd.points_from_xy(alerts["x_m"],
                                                                       alerts["y_m"]),
                                  crs=self.twin.city.crs)
        return {"crews": crews.set_index("crew_id"), "alerts": alerts}

    def alert_table(self) -> pd.DataFrame:
        """The alerts sent: id, time (s), kind, area and recipients."""
        return self.alerts.table()

    def work_orders(self) -> pd.DataFrame:
        """Every work order made: request row, skill, priority, node, times (s), crew."""
        return self.orders.frame()

    def request_table(self) -> pd.DataFrame:
        """Filed requests with the Open311 GeoReport v2 fields and the internal state."""
        from pyproj import Transformer

        from twin.agents.requests import coerce_requests, open311_status

        req, c = self.requests, self._columns()
        rows = np.flatnonzero(~np.isnan(c["requested_s"])) if len(req) else np.zeros(0, int)
        x, y = np.asarray(req.x_m)[rows], np.asarray(req.y_m)[rows]
        lon, lat = Transformer.from_crs(self.twin.city.crs, "EPSG:4326",
                                        always_xy=True).transform(x, y)
        start = pd.Timestamp(self.twin.clock.start)

        def when(name: str) -> pd.Series:
            return start + pd.to_timedelta(np.asarray(getattr(req, name))[rows], unit="s")

        svc = [self.services[k] for k in c["service"][rows]]
        states = c["state"][rows]
        dup = c["duplicate_of"][rows]
        frame = pd.DataFrame({
            "service_request_id": (rows + 1).astype(str),
            "service_code": [s.service_code for s in svc],
            "service_name": [s.service_name for s in svc],
            "description": [s.description for s in svc],
            "lat": lat, "long": lon, "x_m": x, "y_m": y,
            "requested_datetime": when("requested_s"),
            "expected_datetime": when("expected_s"),
            "updated_datetime": when("updated_s"),
            "closed_datetime": when("closed_s"),
            "status": [open311_status(s) for s in states],
            "status_notes": np.asarray(req.notes, dtype=object)[rows],
            "agency_responsible": [s.agency_responsible for s in svc],
            "channel": [CHANNELS[k] for k in c["channel"][rows]],
            "state": states,
            # before triage: the service's own priority (triage confirms it)
            "priority": np.where(c["priority"][rows] > 0, c["priority"][rows],
                                 [s.priority for s in svc]),
            "incident_id": np.asarray(req.incident_id, dtype=object)[rows],
            "duplicate_of": np.where(dup >= 0, (dup + 1).astype(str), ""),
            "crew_id": np.asarray(req.crew_id, dtype=object)[rows],
        })
        return coerce_requests(frame)


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else math.nan


def _with(event: Event, **changes: Any) -> Event:
    from dataclasses import replace

    return replace(event, **changes)


def simulate_city(population: int = 250_000, days: float = 365.0, crews: int = 40,
                  policy: str = "priority", seed: int = 0, city_seed: int = 0,
                  progress: bool = False, storm_days: float = 0.0,
                  storm_floods_per_day: float = 30.0, storm_start_day: float = 1.0,
                  out_dir: str | Path | None = None, **policy_fields: Any) -> dict[str, Any]:
    """Run the request service of a generated city for ``days`` and summarise it.

    ``seconds`` is the wall time of the run itself (building the city, households,
    router and crews is ``setup_seconds``); ``simulated_per_wall`` their ratio.
    ``storm_days`` > 0: a storm floods about ``storm_floods_per_day`` streets a day from
    day ``storm_start_day`` (see :func:`twin.agents.storm.storm_floods`). ``out_dir``:
    write there the report (``report.html``, ``backlog.png``), the recorded series and
    events (:meth:`twin.results.Results.save`, run name "citizens") and ``citizens.json``.
    """
    from twin.agents.storm import storm_floods
    from twin.city.generator import generate_city
    from twin.twin import Twin

    if days <= 0:
        raise ValueError(f"days: expected > 0, got {days}")
    known = {f.name for f in fields(ServicePolicy)}
    unknown = set(policy_fields) - known
    if unknown:
        raise ValueError(f"unknown service policy fields {sorted(unknown)}; "
                         f"expected some of {sorted(known)}")
    t0 = time.perf_counter()
    twin = Twin(city=generate_city(population=population, seed=city_seed), seed=seed)
    layer = twin.add_layer(CitizenServices(ServicePolicy(policy=policy, crews=crews,
                                                         **policy_fields)))
    floods = storm_floods(twin.city, storm_start_day * 86400.0, storm_days,
                          storm_floods_per_day, twin.rng.stream("citizens.storm"))
    twin.schedule(floods)
    t1 = time.perf_counter()
    horizon_s = days * 86400.0
    twin.run(horizon_s, progress=progress, label="citizens")
    seconds = time.perf_counter() - t1
    kpis = layer.kpis()
    out = {key: kpis[key] for key in ("requests", "duplicates", "closed",
                                      "median_hours_to_close", "within_promise_share")}
    out.update({"population": population, "households": len(layer.households), "days": days,
                "crews": crews, "policy": policy, "seed": seed, "storm_floods": len(floods),
                "seconds": round(seconds, 3), "setup_seconds": round(t1 - t0, 3),
                "simulated_per_wall": round(horizon_s / seconds, 1), "kpis": kpis})
    if out_dir is not None:
        out["report"] = str(_write_outputs(twin, out, Path(out_dir)))
    return out


def _write_outputs(twin: "Twin", summary: dict[str, Any], out_dir: Path) -> Path:
    """The run's results, report and summary JSON in ``out_dir``; returns the report path."""
    import json

    from twin.report import write_report
    from twin.results import Results

    meta = {"description": f"{summary['population']:,} inhabitants, {summary['crews']} crews, "
                           f"policy {summary['policy']}, {summary['storm_floods']} storm floods",
            "city": f"generated, {summary['population']:,} inhabitants",
            "start": twin.clock.start.isoformat(), "horizon_s": summary["days"] * 86400.0,
            "seed": summary["seed"], "wall_s": summary["seconds"]}
    results = Results(name="citizens", series=twin.recorder.tidy(), events=twin.bus.to_frame(),
                      kpis=twin.kpis(), meta=meta)
    out_dir.mkdir(parents=True, exist_ok=True)
    results.save(out_dir)
    layer = twin.layers["citizens"]
    from twin.agents.open311 import write_open311

    write_open311(out_dir / "open311", layer.catalogue, layer.request_table())
    (out_dir / "citizens.json").write_text(json.dumps(summary, default=float, indent=2))
    return write_report([results], out_dir, title="urban-twin: citizens and field crews",
                        maps=False)
