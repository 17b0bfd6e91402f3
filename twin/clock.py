"""The one clock of a run.

Every layer and agent schedules itself on one SimPy environment. Simulation
time is in seconds since the scenario start; :class:`Clock` converts to and
from wall-calendar datetimes. Live mode swaps in SimPy's real-time
environment, nothing else changes.
"""

from __future__ import annotations

import datetime as dt

import simpy
import simpy.rt


class Clock:
    """Seconds-based simulation clock anchored at a calendar start."""

    def __init__(self, start: dt.datetime, realtime: bool = False, speed: float = 1.0,
                 strict: bool = False) -> None:
        self.start = start
        self.realtime = realtime
        if realtime:
            # factor = wall seconds per simulated second
            self.env: simpy.Environment = simpy.rt.RealtimeEnvironment(
                initial_time=0, factor=1.0 / speed, strict=strict)
        else:
            self.env = simpy.Environment(initial_time=0)

    @property
    def now_s(self) -> float:
        """Simulated seconds since start."""
        return float(self.env.now)

    @property
    def now(self) -> dt.datetime:
        """Simulated calendar time."""
        return self.start + dt.timedelta(seconds=self.env.now)

    def to_seconds(self, when: dt.datetime) -> float:
        return (when - self.start).total_seconds()

    def to_datetime(self, seconds: float) -> dt.datetime:
        return self.start + dt.timedelta(seconds=float(seconds))

    def process(self, generator):
        return self.env.process(generator)

    def timeout(self, seconds: float):
        return self.env.timeout(seconds)

    def run(self, until: float) -> None:
        """Advance to ``until`` seconds, processing the events scheduled at ``until`` too."""
        if until > self.env.now:
            self.env.run(until=until)
        while self.env.peek() <= until:
            self.env.step()
