"""The core: one clock, named random streams, the bus, the recorder, the Twin."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from twin.clock import Clock
from twin.events import Alert, Bus, Event, PipeBurst, StreetFlooded
from twin.networks.base import Layer
from twin.randomness import RandomStreams
from twin.recorder import Recorder
from twin.twin import Twin


def test_clock_converts_and_runs_events_at_until():
    clock = Clock(dt.datetime(2026, 6, 15))
    seen = []

    def proc():
        yield clock.timeout(3600)
        seen.append(clock.now_s)

    clock.process(proc())
    clock.run(until=3600)            # the event due exactly at `until` is processed
    assert seen == [3600.0]
    assert clock.now == dt.datetime(2026, 6, 15, 1, 0)
    assert clock.to_seconds(dt.datetime(2026, 6, 15, 2, 30)) == 9000


def test_random_streams_are_named_and_reproducible():
    a, b = RandomStreams(7), RandomStreams(7)
    assert np.array_equal(a.stream("water").random(5), b.stream("water").random(5))
    # asking for another stream first does not change a stream's draws
    b2 = RandomStreams(7)
    b2.stream("traffic").random(100)
    assert np.array_equal(RandomStreams(7).stream("water").random(5), b2.stream("water").random(5))
    assert not np.array_equal(a.stream("water").random(5), a.stream("lighting").random(5))
    assert not np.array_equal(RandomStreams(7).stream("x").random(5),
                              RandomStreams(8).stream("x").random(5))


def test_bus_numbers_events_and_reaches_subclass_subscribers():
    bus = Bus()
    got = []
    bus.subscribe(Event, lambda e: got.append(("any", e.kind)))
    bus.subscribe(PipeBurst, lambda e: got.append(("burst", e.pipe_id)))
    first = bus.publish(PipeBurst(time_s=10, pipe_id="p1"))
    second = bus.publish(StreetFlooded(time_s=11, cause_id=first.event_id))
    assert (first.event_id, second.event_id) == (1, 2)
    assert got == [("burst", "p1"), ("any", "PipeBurst"), ("any", "StreetFlooded")]  # specific first
    frame = bus.to_frame()
    assert list(frame["kind"]) == ["PipeBurst", "StreetFlooded"]
    assert frame.loc[1, "cause_id"] == 1


def test_recorder_tidy_and_wide():
    rec = Recorder()
    rec.record(0, "water", "pressure", "m", ["a", "b"], [1.0, 2.0])
    rec.record(300, "water", "pressure", "m", ["a", "b"], [1.5, 2.5])
    wide = rec.wide("water", "pressure")
    assert wide.loc[300.0, "b"] == 2.5
    tidy = rec.tidy()
    assert len(tidy) == 4
    assert set(tidy.columns) == {"layer", "time_s", "element", "quantity", "value", "unit"}
    assert tidy.query("element == 'a' and time_s == 300")["value"].item() == 1.5
    with pytest.raises(ValueError, match="started with 2 elements"):
        rec.record(600, "water", "pressure", "m", ["a"], [1.0])


class _Counter(Layer):
    name = "counter"

    def build(self, twin):
        self.rng = twin.rng.stream(self.name)
        self.ticks = []

    def start(self, twin):
        twin.bus.subscribe(Alert, self.apply)
        twin.clock.process(self._run(twin))

    def _run(self, twin):
        while True:
            self.ticks.append((twin.clock.now_s, float(self.rng.random())))
            yield twin.clock.timeout(60)

    def apply(self, event):
        self.alert_at = event.time_s


def test_twin_runs_layers_on_one_clock_with_seeded_streams():
    def once(seed):
        tw = Twin(seed=seed)
        layer = tw.add_layer(_Counter())
        tw.schedule([Alert(time_s=120, message="x")])
        tw.run(300, progress=True)
        return layer

    a, b, c = once(1), once(1), once(2)
    assert [t for t, _ in a.ticks] == [0, 60, 120, 180, 240, 300]
    assert a.ticks == b.ticks and a.ticks != c.ticks
    assert a.alert_at == 120
    with pytest.raises(ValueError, match="already"):
        tw = Twin()
        tw.add_layer(_Counter())
        tw.add_layer(_Counter())


def test_realtime_clock_gives_the_same_results(net3_inp):
    """Live mode is the same clock following the wall clock: same layer, same numbers."""
    from twin.networks.water import WaterLayer, load_inp

    def run(realtime):
        tw = Twin(seed=0, realtime=realtime, speed=36_000.0)   # 10 simulated hours a second
        tw.add_layer(WaterLayer(load_inp(net3_inp), horizon_s=2 * 3600))
        tw.run(2 * 3600)
        return tw.recorder.wide("water", "pressure")

    live, fast = run(True), run(False)
    assert live.shape == fast.shape == (3, 97)
    assert np.array_equal(live.to_numpy(), fast.to_numpy())
