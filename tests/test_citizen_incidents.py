"""Incidents end to end: a network incident reported by residents, repaired by a crew.

The water layer is the one network that exists: a main bursts under a street, the street
floods, residents nearby report it (their duplicates merge into one work order), a crew drives
there on the street graph, repairs it, the leak stops in the water layer and the request is
closed. A storm week (many floods at once) makes the backlog rise, then fall.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from twin.agents.service_layer import CitizenServices, ServicePolicy
from twin.city.generator import generate_city
from twin.events import (LeakStopped, PipeBurst, RepairDone, RequestFiled, StreetFlooded,
                         StreetReopened, WorkOrderDone)
from twin.networks.water import WaterLayer
from twin.twin import Twin

H = 3600.0


@pytest.fixture(scope="module")
def burst_run():
    city = generate_city(population=20_000, seed=0)
    pipe = str(city.streets.index[len(city.streets) // 2])     # one pipe per street, same id
    twin = Twin(city=city, start=dt.datetime(2026, 3, 10), seed=3)   # a Tuesday
    water = twin.add_layer(WaterLayer(None, horizon_s=24 * H, hydraulic_step_s=900,
                                      planned_bursts=[(pipe, 0.5)],
                                      record=("pressure", "demand")))
    services = twin.add_layer(CitizenServices(ServicePolicy(crews=14)))
    twin.schedule([PipeBurst(time_s=9 * H, pipe_id=pipe, leak_area_m2=0.004)])
    twin.run(24 * H)
    yield twin, water, services, pipe
    twin.close()


def test_burst_reported_merged_repaired_and_leak_stopped(burst_run):
    twin, water, services, pipe = burst_run
    log = twin.bus.log
    burst = next(e for e in log if isinstance(e, PipeBurst))
    flood = next(e for e in log if isinstance(e, StreetFlooded))
    assert flood.cause_id == burst.event_id
    incident_id = f"StreetFlooded-{flood.event_id}"

    # residents report it, several times; every report but the first is its duplicate
    reports = [e for e in log if isinstance(e, RequestFiled) and e.incident_id == incident_id]
    assert len(reports) >= 3
    assert {e.service_code for e in reports} == {"water_leak_street"}
    table = services.request_table()
    mine = table[table["incident_id"] == incident_id]
    originals = mine[mine["duplicate_of"].isna()]
    assert len(originals) == 1
    original = originals.iloc[0]
    assert (mine["duplicate_of"].dropna() == original["service_request_id"]).all()
    assert len(mine) - 1 == int(mine["duplicate_of"].notna().sum()) >= 2
    orders = [o for o in services.work_orders().itertuples() if o.incident_id == incident_id]
    assert len(orders) == 1                         # one work order for all the reports

    # a crew of the water skill drove there on the streets
    order = orders[0]
    crew = next(c for c in services.crews if c.crew_id == order.crew_id)
    assert crew.skill == "water"
    trip = next(t for t in services.trips if t[1] == order.order_id)
    _, _, a, b, depart_s, arrive_s, metres = trip
    path = services.router.path(a, b)
    graph = twin.city.graph
    assert all(graph.has_edge(u, v) for u, v in zip(path[:-1], path[1:]))
    along_m = sum(graph.edges[u, v]["length_m"] for u, v in zip(path[:-1], path[1:]))
    assert metres == pytest.approx(along_m)
    assert arrive_s > depart_s or metres == 0

    # the repair publishes the events that stop the leak, caused by the work order
    done = next(e for e in log if isinstance(e, WorkOrderDone))
    stop = next(e for e in log if isinstance(e, LeakStopped))
    assert done.incident_id == incident_id and done.crew_id == crew.crew_id
    assert stop.cause_id == done.event_id and stop.pipe_id == pipe
    assert stop.started_at_s == burst.time_s
    assert any(isinstance(e, RepairDone) and e.element_id == pipe for e in log)
    assert any(isinstance(e, StreetReopened) for e in log) == bool(flood.street_ids)
    assert burst.time_s < reports[0].time_s < stop.time_s

    # the water layer: the leak flowed, then stopped
    assert not water.leaks and len(water.closed_leaks) == 1
    leak_node = water.leak_node_ids()[pipe]
    outflow = twin.recorder.wide("water", "demand")[leak_node]
    assert outflow[(outflow.index > burst.time_s) & (outflow.index < stop.time_s)].max() > 1.0
    assert outflow[outflow.index >= stop.time_s + H].abs().max() < 1e-3

    # the request and its duplicates are closed when the crew is done
    assert original["state"] == "closed" and original["status"] == "closed"
    assert (mine["status"] == "closed").all()
    closed_s = (original["closed_datetime"] - original["requested_datetime"]).total_seconds()
    assert 0 < closed_s
    assert original["crew_id"] == crew.crew_id


def test_storm_week_backlog_rises_then_falls():
    """Sixty streets flood in two days; a week later the backlog is back down."""
    city = generate_city(population=40_000, seed=1)
    twin = Twin(city=city, start=dt.datetime(2026, 10, 5), seed=4)   # a Monday
    services = twin.add_layer(CitizenServices(ServicePolicy(crews=12, policy="priority")))
    rng = np.random.default_rng(7)
    streets = city.streets.sample(60, random_state=2)
    mid = streets.geometry.interpolate(0.5, normalized=True)
    times = 24 * H + np.sort(rng.uniform(0, 48 * H, len(streets)))
    twin.schedule([StreetFlooded(time_s=float(t), source="storm", x=p.x, y=p.y, radius_m=40.0,
                                 street_ids=(sid,))
                   for t, p, sid in zip(times, mid, streets.index)])
    twin.run(14 * 24 * H)
    # flooded streets are the sewer crews' work: their backlog carries the storm
    backlog = twin.recorder.wide("citizens", "backlog")["sewer"]
    before = backlog[backlog.index < 24 * H].max()
    peak_at, peak = backlog.idxmax(), backlog.max()
    assert 24 * H < peak_at < 4 * 24 * H            # during the storm days
    assert peak >= before + 20
    assert backlog[backlog.index >= 6 * 24 * H].max() <= 2      # and cleared after it
    k = services.kpis()
    assert k["incidents"] == 60
    reopened = [e for e in twin.bus.log if isinstance(e, StreetReopened)]
    assert len(reopened) >= 55                      # nearly all reported and repaired
