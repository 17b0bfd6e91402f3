"""A what-if fork of the request service: the storm's backlog carried to a fork, where
twice the crews clear it sooner than the same crews do."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from twin.agents.service_layer import CitizenServices, ServicePolicy
from twin.agents.storm import storm_floods
from twin.city.generator import generate_city
from twin.twin import Twin

DAY = 86400.0


@pytest.fixture(scope="module")
def storm_state():
    city = generate_city(population=40_000, seed=0)
    live = Twin(city=city, start=dt.datetime(2026, 3, 9), seed=4)          # a Monday
    layer = live.add_layer(CitizenServices(ServicePolicy(crews=12)))
    live.schedule(storm_floods(city, 0.5 * DAY, 1.5, 40.0, np.random.default_rng(2)))
    live.run(2 * DAY + 10 * 3600)          # Wednesday 10:00, the storm just over
    state = layer.snapshot()
    open_orders = int(np.isnan(layer.orders.column("done_s")).sum())
    yield city, live, layer, state, open_orders
    live.close()


def _fork(city, live, state, crews: int):
    fork = Twin(city=city, start=live.clock.start + dt.timedelta(seconds=state["time_s"]),
                seed=live.seed)
    layer = fork.add_layer(CitizenServices(ServicePolicy(crews=crews)))
    layer.restore(state)
    return fork, layer


def test_the_fork_starts_with_the_live_backlog(storm_state):
    city, live, live_layer, state, open_orders = storm_state
    assert open_orders >= 20, "the storm left a backlog"
    fork, layer = _fork(city, live, state, crews=12)
    assert len(layer.requests) == len(live_layer.requests)
    assert len(layer.orders) == len(live_layer.orders)
    # times are on the fork's clock: the live "now" is its 0
    live_req = live_layer.requests.column("requested_s")
    np.testing.assert_allclose(layer.requests.column("requested_s"),
                               live_req - state["time_s"], equal_nan=True)
    fork.run(1.0)
    assert layer.dispatcher.backlog() + sum(c.assigned is not None for c in layer.crews) \
        >= open_orders - 12
    before = live_layer.kpis()
    after = layer.kpis()
    assert after["requests"] == before["requests"]       # history carried, nothing new yet
    assert after["km_driven"] == pytest.approx(before["km_driven"])
    fork.close()
    with pytest.raises(RuntimeError, match="between build and the start"):
        layer.restore(state)


def test_more_crews_clear_the_storm_backlog_sooner(storm_state):
    city, live, live_layer, state, open_orders = storm_state
    carried = np.flatnonzero(np.isnan(live_layer.orders.column("done_s")))
    result = {}
    for crews in (12, 24):
        fork, layer = _fork(city, live, state, crews)
        fork.run(3 * DAY)
        done_s = layer.orders.column("done_s")[carried]
        result[crews] = {"carried_done": int(np.isfinite(done_s).sum()),
                         "cleared_s": float(np.max(done_s)) if np.isfinite(done_s).all()
                         else float("inf"),
                         "kpis": layer.kpis()}
        fork.close()
    # every carried order is done in both forks, sooner with twice the crews
    assert result[12]["carried_done"] == result[24]["carried_done"] == len(carried)
    assert result[24]["cleared_s"] < result[12]["cleared_s"]
    assert result[24]["kpis"]["within_promise_share"] >= \
        result[12]["kpis"]["within_promise_share"]
