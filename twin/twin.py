"""The Twin: one city, one clock, one random source, one recorder, one bus, its layers."""

from __future__ import annotations

import bisect
import datetime as dt

import simpy.core
from typing import TYPE_CHECKING, Iterable

from twin.clock import Clock
from twin.events import Bus, Event
from twin.randomness import RandomStreams
from twin.recorder import Recorder

if TYPE_CHECKING:
    import pandas as pd

    from twin.city.model import City
    from twin.networks.base import Layer


class Twin:
    """A city on one clock. Composition only: layers and agents are plugged in."""

    def __init__(self, city: "City | None" = None, start: dt.datetime | None = None,
                 seed: int = 0, realtime: bool = False, speed: float = 1.0) -> None:
        self.city = city
        self.clock = Clock(start or dt.datetime(2026, 1, 1), realtime=realtime, speed=speed)
        self.seed = int(seed)
        self.rng = RandomStreams(seed)
        self.recorder = Recorder()
        self.bus = Bus()
        self.layers: dict[str, "Layer"] = {}
        # per-street travel time (s) under current traffic, indexed by street_id; set and
        # updated by the traffic layer (TravelTimesUpdated on the bus); None without one,
        # and then movers use length / speed limit
        self.street_times_s: "pd.Series | None" = None
        # per-street traffic flow (veh/h, both directions) of the current period, same owner
        self.street_flows_veh_h: "pd.Series | None" = None
        self._started = False
        self._expected: list[float] = []      # times at which something is due to change

    @property
    def crs(self):
        return None if self.city is None else self.city.crs

    def add_layer(self, layer: "Layer") -> "Layer":
        if layer.name in self.layers:
            raise ValueError(f"a layer named {layer.name!r} is already in this twin")
        self.layers[layer.name] = layer
        layer.build(self)
        return layer

    def publish(self, event: Event) -> Event:
        return self.bus.publish(event)

    def schedule(self, events: Iterable[Event]) -> None:
        """Publish each event on the bus when the clock reaches its ``time_s``."""
        for event in sorted(events, key=lambda e: e.time_s):
            self.expect(event.time_s)
            self.clock.process(self._at(event))

    def expect(self, time_s: float) -> None:
        """Note that something changes at ``time_s``: layers with engines of their own stop
        there (a hydraulic step is cut short) instead of stepping over it."""
        bisect.insort(self._expected, float(time_s))

    def next_expected_after(self, time_s: float) -> float | None:
        """The first noted time strictly after ``time_s``, or None."""
        i = bisect.bisect_right(self._expected, float(time_s))
        return self._expected[i] if i < len(self._expected) else None

    def _at(self, event: Event):
        # URGENT: at equal times an event is published before any layer steps, even one
        # scheduled after the run started
        delay = event.time_s - self.clock.now_s
        if delay > 0:
            due = self.clock.env.event()
            due._ok, due._value = True, None
            self.clock.env.schedule(due, priority=simpy.core.URGENT, delay=delay)
            yield due
        self.publish(event)

    def check_events(self, events: Iterable[Event]) -> list[str]:
        problems: list[str] = []
        for event in events:
            for layer in self.layers.values():
                problems.extend(layer.check_event(event))
        return problems

    def start(self) -> None:
        if not self._started:
            for layer in self.layers.values():
                layer.start(self)
            self._started = True

    def run(self, until_s: float, progress: bool = False, label: str = "simulating") -> None:
        """Advance the clock to ``until_s`` seconds, optionally with a progress bar."""
        self.start()
        if progress:
            from tqdm.auto import tqdm

            # disable=None: drawn on a terminal only, so logs and CI output stay clean
            bar = tqdm(total=round(until_s / 3600, 2), unit="h", desc=label, leave=False,
                       disable=None, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                                                "{n:.1f}/{total:.1f} simulated h [{elapsed}<{remaining}]")
            step = max(until_s / 200, 60.0)
            target = self.clock.now_s
            try:
                while target < until_s:
                    target = min(target + step, until_s)
                    self.clock.run(until=target)
                    bar.update(round(target / 3600, 2) - bar.n)
            finally:
                bar.close()
        else:
            self.clock.run(until=until_s)

    def kpis(self) -> dict[str, dict[str, float]]:
        return {name: layer.kpis() for name, layer in self.layers.items()}

    def close(self) -> None:
        for layer in self.layers.values():
            layer.close()
