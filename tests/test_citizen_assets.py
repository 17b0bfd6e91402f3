"""Assets of the other network layers reported by residents and repaired by crews.

Events published by the lighting, waste and sewer layers (a lamp out, a cabinet down,
an overflowing container, a flooded manhole) become reports by residents nearby, merged
into one work order per asset, for a crew of the asset's skill; the repair publishes
``RepairDone`` for that layer and element. Crews drive at the traffic layer's times when
``Twin.street_times_s`` is set and ``TravelTimesUpdated`` is published.
"""

from __future__ import annotations

import datetime as dt

import pytest

from twin.agents.crews import StreetRouter
from twin.agents.service_layer import CitizenServices, ServicePolicy
from twin.city.generator import generate_city
from twin.events import (CabinetFault, ContainerOverflow, LampFailed, RepairDone, RequestFiled,
                         SewerFlooding, TravelTimesUpdated, WorkOrderDone)
from twin.twin import Twin

H = 3600.0


@pytest.fixture(scope="module")
def city():
    return generate_city(population=20_000, seed=0)


def _point(city, k):
    p = city.intersections.geometry.iloc[k]
    return float(p.x), float(p.y)


@pytest.fixture(scope="module")
def asset_run(city):
    twin = Twin(city=city, start=dt.datetime(2026, 3, 10), seed=5)     # a Tuesday
    services = twin.add_layer(CitizenServices(ServicePolicy(crews=14, report_probability=0.2)))
    n = len(city.intersections)
    lx, ly = _point(city, n // 3)
    cx, cy = _point(city, n // 2)
    wx, wy = _point(city, 2 * n // 3)
    sx, sy = _point(city, n // 5)
    twin.schedule([
        LampFailed(time_s=10 * H, source="lighting", lamp_id="L17", x=lx, y=ly, cabinet_id="C1"),
        # the same lamp again while its incident is open: nothing new
        LampFailed(time_s=11 * H, source="lighting", lamp_id="L17", x=lx, y=ly, cabinet_id="C1"),
        CabinetFault(time_s=21 * H, source="lighting", cabinet_id="C4", x=cx, y=cy),
        ContainerOverflow(time_s=9 * H, source="waste", container_id="W9", x=wx, y=wy),
        SewerFlooding(time_s=14 * H, source="sewer", node_id="J12", x=sx, y=sy, volume_m3=30.0),
    ])
    twin.run(4 * 24 * H)
    yield twin, services
    twin.close()


@pytest.mark.parametrize("layer, element, code, skill", [
    ("lighting", "L17", "street_light_out", "lighting"),
    ("lighting", "C4", "street_light_out", "lighting"),
    ("waste", "W9", "overflowing_bin", "waste"),
    ("sewer", "J12", "sewer_blocked", "sewer"),
])
def test_asset_reported_merged_and_repaired(asset_run, layer, element, code, skill):
    twin, services = asset_run
    log = twin.bus.log
    prefix = f"{layer}:{element}#"
    reports = [e for e in log if isinstance(e, RequestFiled) and e.incident_id.startswith(prefix)]
    assert len(reports) >= 2, "residents report it, several of them"
    assert {e.service_code for e in reports} == {code}
    assert len({e.incident_id for e in reports}) == 1       # one incident per asset
    orders = [o for o in services.work_orders().itertuples()
              if o.incident_id == reports[0].incident_id]
    assert len(orders) == 1, "duplicates merged into one work order"
    crew = next(c for c in services.crews if c.crew_id == orders[0].crew_id)
    assert crew.skill == skill
    done = next(e for e in log if isinstance(e, WorkOrderDone)
                and e.incident_id == reports[0].incident_id)
    repair = next(e for e in log if isinstance(e, RepairDone) and e.layer == layer
                  and e.element_id == element)
    assert repair.cause_id == done.event_id and repair.time_s == done.time_s
    table = services.request_table().set_index("service_request_id")
    assert (table.loc[[r.request_id for r in reports], "status"] == "closed").all()


def test_lamp_out_is_reported_after_dark(asset_run):
    twin, services = asset_run
    reports = [e for e in twin.bus.log if isinstance(e, RequestFiled)
               and e.incident_id.startswith("lighting:L17#")]
    # the lamp failed at 10:00: nobody sees it before dusk (18:00)
    assert min(e.time_s for e in reports) >= 18 * H
    # the second failure event of the same lamp opened no second incident
    assert len({e.incident_id for e in reports}) == 1


def test_crews_drive_at_traffic_times(city):
    router = StreetRouter(city)
    a, b = 0, len(router.node_ids) - 1
    free_s, free_m = router.travel(a, b)
    path = router.path(a, b)
    on_path = {city.graph.edges[u, v]["street_id"] for u, v in zip(path[:-1], path[1:])}
    # congestion triples the time of every street on the fastest route
    base = city.streets["length_m"] / (city.streets["speed_kph"] / 3.6)
    times = base.where(~base.index.isin(on_path), base * 3.0)
    assert router.set_street_times(times) > 0
    slow_s, slow_m = router.travel(a, b)
    assert free_s < slow_s <= 3.0 * free_s + 1e-6
    assert slow_m >= free_m                       # some detour may now be faster
    assert router.set_street_times(None) > 0      # back to free flow
    assert router.travel(a, b)[0] == pytest.approx(free_s)


def test_travel_times_updated_event_reaches_crews(city):
    twin = Twin(city=city, start=dt.datetime(2026, 3, 10), seed=1)
    services = twin.add_layer(CitizenServices(ServicePolicy(crews=8)))
    twin.run(H)
    router = services.router
    a, b = 0, len(router.node_ids) - 1
    before = router.travel(a, b)[0]
    base = city.streets["length_m"] / (city.streets["speed_kph"] / 3.6)
    twin.street_times_s = base * 2.0
    twin.publish(TravelTimesUpdated(time_s=twin.clock.now_s, source="traffic",
                                    street_ids=tuple(base.index[:3])))
    # every street twice as slow for a car: the van's fastest time doubles
    assert router.travel(a, b)[0] == pytest.approx(2.0 * before, rel=1e-9)
    twin.close()


def test_crews_follow_the_traffic_layer(city):
    """With the traffic layer on the same clock, the crews' times follow each hour's
    equilibrium: slower at the 08:00 peak than at 03:00, and never faster than free flow."""
    from twin.networks.traffic import TrafficLayer

    twin = Twin(city=city, start=dt.datetime(2026, 3, 10), seed=2)
    twin.add_layer(TrafficLayer())
    services = twin.add_layer(CitizenServices(ServicePolicy(crews=8)))
    router = services.router
    a, b = 0, len(router.node_ids) - 1
    free_s = StreetRouter(city).travel(a, b)[0]
    twin.run(3.5 * H)
    night_s = router.travel(a, b)[0]
    twin.run(8.5 * H)
    peak_s = router.travel(a, b)[0]
    updates = [e for e in twin.bus.log if isinstance(e, TravelTimesUpdated)]
    assert len(updates) >= 8                          # one per hourly equilibrium
    assert free_s <= night_s + 1e-6 < peak_s
    twin.close()
