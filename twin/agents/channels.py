"""How requests reach the city: phone centre, counter, app and web; proactive reminders.

* :class:`PhoneCentre`: agents on shifts (a SimPy ``PriorityResource`` whose
  off-shift seats are held by high-priority "away" requests, so an agent ends
  the call in hand before leaving); callers wait with an exponential patience
  and hang up when it runs out.
* :class:`Counter`: appointments of fixed length booked ahead, first free slot.
* App and web are immediate: no object needed.
* :class:`Reminders`: a message before a resident parking permit expires; it
  turns a share of the coming phone and counter renewals into online ones.

:class:`Calendar` converts simulated seconds to weekday, hour and day number.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import simpy


class Calendar:
    """Weekday (0 = Monday), hour of day and day number of a simulated time."""

    def __init__(self, start: dt.datetime) -> None:
        self.start = start
        self._offset_s = start.hour * 3600 + start.minute * 60 + start.second
        self._weekday0 = start.weekday()

    def day_number(self, time_s: float) -> int:
        """Whole days since midnight of the start day."""
        return int((time_s + self._offset_s) // 86400)

    def weekday_hour(self, time_s: float) -> tuple[int, float]:
        s = time_s + self._offset_s
        day = int(s // 86400)
        return (self._weekday0 + day) % 7, (s - day * 86400) / 3600.0

    def day_start_s(self, day_number: int) -> float:
        """Simulated seconds at midnight of day ``day_number`` (negative for the start day
        when the run starts after midnight)."""
        return day_number * 86400.0 - self._offset_s

    def date(self, day_number: int) -> dt.date:
        return self.start.date() + dt.timedelta(days=day_number)


@dataclass(frozen=True)
class PhoneStaffing:
    """Agents on the phone by hour: ``agents`` on weekdays in ``weekday_hours``,
    ``saturday_agents`` on Saturdays in ``saturday_hours``; closed otherwise."""

    agents: int = 4
    weekday_hours: tuple[float, float] = (8.0, 18.0)
    saturday_agents: int = 1
    saturday_hours: tuple[float, float] = (9.0, 12.0)

    def __post_init__(self) -> None:
        if self.agents < 0 or self.saturday_agents < 0:
            raise ValueError(f"phone staffing: agents must be >= 0, got {self.agents}, "
                             f"{self.saturday_agents}")

    def agents_at(self, weekday: int, hour: float) -> int:
        if weekday < 5 and self.weekday_hours[0] <= hour < self.weekday_hours[1]:
            return self.agents
        if weekday == 5 and self.saturday_hours[0] <= hour < self.saturday_hours[1]:
            return self.saturday_agents
        return 0


class PhoneCentre:
    """Calls answered by agents on shifts; callers hang up after their patience.

    Times in seconds. Figures: ``waits_s`` (answered calls' waiting times), ``abandoned``,
    ``answered``, by call kind in ``calls``.
    """

    def __init__(self, env: simpy.Environment, calendar: Calendar, staffing: PhoneStaffing,
                 rng: np.random.Generator, mean_patience_s: float = 180.0) -> None:
        self.env, self.calendar, self.staffing, self.rng = env, calendar, staffing, rng
        self.mean_patience_s = float(mean_patience_s)
        seats = max(staffing.agents, staffing.saturday_agents, 1)
        self.seats = simpy.PriorityResource(env, capacity=seats)
        self._away: list = []                 # requests holding seats of agents off shift
        self.waits_s: list[float] = []
        self.abandoned = 0
        self.answered = 0
        self.calls: dict[str, int] = {}

    def start(self) -> None:
        self.env.process(self._shifts())

    def _shifts(self):
        while True:
            weekday, hour = self.calendar.weekday_hour(self.env.now)
            self._staff(self.staffing.agents_at(weekday, hour))
            yield self.env.timeout((1.0 - (hour % 1.0)) * 3600.0 or 3600.0)

    def _staff(self, agents: int) -> None:
        present = self.seats.capacity - len(self._away)
        for _ in range(present - agents):          # leave once the call in hand ends
            self._away.append(self.seats.request(priority=-1))
        for _ in range(agents - present):          # the latest to leave comes back first
            held = self._away.pop()
            if held.triggered:
                self.seats.release(held)
            else:
                held.cancel()

    def is_open(self, time_s: float) -> bool:
        return self.staffing.agents_at(*self.calendar.weekday_hour(time_s)) > 0

    def next_open_s(self, time_s: float) -> float:
        """``time_s`` if the centre is staffed then, else the start of the next staffed hour."""
        if self.is_open(time_s):
            return time_s
        t = (time_s // 3600.0 + 1) * 3600.0
        for _ in range(24 * 8):
            if self.is_open(t):
                return t
            t += 3600.0
        raise ValueError("phone centre: never staffed; expected agents > 0 in some hour")

    def queue_length(self) -> int:
        return sum(1 for r in self.seats.queue if r.priority >= 0)

    def call(self, kind: str, handle_s: float,
             answered: Callable[[float], None] | None = None,
             hung_up: Callable[[float], None] | None = None) -> None:
        """A caller rings now; ``answered(end_s)`` when the call ends, else ``hung_up(now)``."""
        self.calls[kind] = self.calls.get(kind, 0) + 1
        self.env.process(self._call(handle_s, answered, hung_up))

    def _call(self, handle_s, answered, hung_up):
        env = self.env
        t0 = env.now
        seat = self.seats.request(priority=0)
        patience = env.timeout(self.rng.exponential(self.mean_patience_s))
        yield seat | patience
        if not seat.triggered:
            seat.cancel()
            self.abandoned += 1
            if hung_up is not None:
                hung_up(env.now)
            return
        self.answered += 1
        self.waits_s.append(env.now - t0)
        yield env.timeout(handle_s)
        self.seats.release(seat)
        if answered is not None:
            answered(env.now)


@dataclass
class Counter:
    """The town hall counter: ``desks`` desks, appointments of ``slot_s`` seconds in
    ``windows`` (hours) on ``days``, booked at least ``lead_days`` ahead."""

    desks: int = 2
    slot_s: float = 1200.0
    windows: tuple[tuple[float, float], ...] = ((9.0, 12.0), (13.5, 17.0))
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    lead_days: int = 1
    booked: dict[int, int] = field(default_factory=dict)    # day number -> slots taken

    def __post_init__(self) -> None:
        if self.desks < 1:
            raise ValueError(f"counter: desks must be >= 1, got {self.desks}")
        self._starts_h = [lo + k * self.slot_s / 3600.0 for lo, hi in self.windows
                          for k in range(int((hi - lo) * 3600.0 // self.slot_s))]

    def book(self, time_s: float, calendar: Calendar) -> float:
        """Simulated seconds of the first free appointment ``lead_days`` or more ahead."""
        day = calendar.day_number(time_s) + self.lead_days
        per_day = self.desks * len(self._starts_h)
        for _ in range(366):
            weekday = calendar.date(day).weekday()
            taken = self.booked.get(day, 0)
            if weekday in self.days and taken < per_day:
                self.booked[day] = taken + 1
                return calendar.day_start_s(day) + self._starts_h[taken // self.desks] * 3600.0
            day += 1
        raise ValueError("counter: no free appointment within a year")


@dataclass(frozen=True)
class Reminders:
    """A message ``lead_days`` before a permit expires; ``uptake`` of the phone and counter
    renewers then renew online (app or web) instead."""

    enabled: bool = True
    service_codes: tuple[str, ...] = ("parking_permit_renewal",)
    lead_days: float = 14.0
    uptake: float = 0.6

    def apply(self, channels: np.ndarray, codes: list[str], rng: np.random.Generator,
              names: tuple[str, ...]) -> tuple[np.ndarray, int, int]:
        """New channel indices of requests (``codes``), reminders sent, renewals moved online."""
        if not self.enabled:
            return channels, 0, 0
        reminded = np.array([c in self.service_codes for c in codes], dtype=bool)
        offline = reminded & np.isin(channels, [names.index("phone"), names.index("counter")])
        switch = offline & (rng.random(len(channels)) < self.uptake)
        online = np.where(rng.random(len(channels)) < 2 / 3, names.index("app"), names.index("web"))
        return np.where(switch, online, channels), int(reminded.sum()), int(switch.sum())


CALL_KINDS: tuple[str, ...] = ("request", "information", "status")


@dataclass(frozen=True)
class FirstContact:
    """First-level answers at the phone centre, from the administrative database.

    A level-1 agent resolves ``share[kind]`` of the calls of each kind (an information
    question, the status of an existing request, a simple administrative request) at first
    contact, in about ``level1_s[kind]`` seconds. The rest are escalated: the agent consults
    level 2 while the caller holds (``escalated_s[kind]`` seconds in all), or, for
    ``callback_share`` of them, takes the details in ``level1_s`` and the back office calls
    back later (an escalated request is then triaged by the back office). Times are the means
    of lognormal handling times (sigma 0.5). Default times are assumptions of the order of
    French town-hall contact centres (two to four minutes answered, many more escalated).
    """

    share: dict[str, float] = field(default_factory=lambda: {
        "request": 0.5, "information": 0.7, "status": 0.8})
    level1_s: dict[str, float] = field(default_factory=lambda: {
        "request": 240.0, "information": 120.0, "status": 90.0})
    escalated_s: dict[str, float] = field(default_factory=lambda: {
        "request": 540.0, "information": 420.0, "status": 360.0})
    callback_share: float = 0.0

    def __post_init__(self) -> None:
        for name in ("share", "level1_s", "escalated_s"):
            table = getattr(self, name)
            unknown = set(table) - set(CALL_KINDS)
            if unknown:
                raise ValueError(f"first_contact: {name}: unknown call kinds {sorted(unknown)};"
                                 f" expected some of {CALL_KINDS}")
        if not all(0 <= v <= 1 for v in self.share.values()) or not 0 <= self.callback_share <= 1:
            raise ValueError("first_contact: shares must be between 0 and 1")

    def answer(self, kind: str, rng: np.random.Generator) -> tuple[str, float]:
        """How a call of ``kind`` ends ('resolved', 'escalated' or 'callback') and the agent's
        seconds on it."""
        if rng.random() < self.share.get(kind, 0.0):
            outcome, mean_s = "resolved", self.level1_s.get(kind, 180.0)
        elif rng.random() < self.callback_share:
            outcome, mean_s = "callback", self.level1_s.get(kind, 180.0)
        else:
            outcome, mean_s = "escalated", self.escalated_s.get(kind, 480.0)
        return outcome, float(rng.lognormal(np.log(mean_s) - 0.125, 0.5))
