"""One lamp end to end: it fails, residents report it (duplicates merged), a crew of the
lighting skill is dispatched, drives there on the streets, repairs it, the lamp burns
again the next night, and every report of it is closed."""

from __future__ import annotations

import datetime as dt

import pytest

from twin.agents.service_layer import CitizenServices, ServicePolicy
from twin.city.generator import generate_city
from twin.events import LampFailed, RepairDone, RequestFiled, WorkOrderDone
from twin.networks.lighting import LightingLayer
from twin.twin import Twin

H = 3600.0


@pytest.fixture(scope="module")
def lamp_run():
    city = generate_city(population=20_000, seed=0)
    twin = Twin(city=city, start=dt.datetime(2026, 11, 3), seed=11)      # a Tuesday
    lighting = twin.add_layer(LightingLayer(random_failures=False, cabinet_faults_per_year=0.0,
                                            repair_after_h=None, noise=False, detect=False))
    services = twin.add_layer(CitizenServices(ServicePolicy(crews=14, report_probability=0.3)))
    lamps = lighting.net.lamps
    # a lamp on a busy street near the middle of the city: residents pass by it
    centre = lamps[["x", "y"]].mean()
    lamp_id = str(((lamps["x"] - centre.x) ** 2 + (lamps["y"] - centre.y) ** 2).idxmin())
    checks = {}

    def observe():
        yield twin.clock.timeout(20 * H)          # 20:00 on day 1: it is dark
        checks["lit_before"] = lighting.lamp_is_lit(lamp_id)
        lighting.fail_lamp(lamp_id, reason="end of life")
        yield twin.clock.timeout(H)               # 21:00
        checks["lit_after_failure"] = lighting.lamp_is_lit(lamp_id)
        yield twin.clock.timeout(24 * H)          # 21:00 on day 2
        checks["lit_next_night"] = lighting.lamp_is_lit(lamp_id)

    twin.start()
    twin.clock.process(observe())
    twin.run(2 * 24 * H)
    yield twin, lighting, services, lamp_id, checks
    twin.close()


def test_lamp_reported_repaired_and_on_again(lamp_run):
    twin, lighting, services, lamp_id, checks = lamp_run
    log = twin.bus.log
    assert checks["lit_before"] and not checks["lit_after_failure"]

    failed = next(e for e in log if isinstance(e, LampFailed) and e.lamp_id == lamp_id)
    reports = [e for e in log if isinstance(e, RequestFiled)
               and e.incident_id.startswith(f"lighting:{lamp_id}#")]
    assert len(reports) >= 2, "several residents report the dark lamp"
    assert all(r.cause_id == failed.event_id and r.service_code == "street_light_out"
               for r in reports)

    table = services.request_table().set_index("service_request_id")
    mine = table.loc[[r.request_id for r in reports]]
    originals = mine[mine["duplicate_of"].isna()]
    assert len(originals) == 1, "duplicates merged into one request"
    assert mine["duplicate_of"].notna().sum() == len(reports) - 1

    orders = [o for o in services.work_orders().itertuples()
              if o.incident_id == reports[0].incident_id]
    assert len(orders) == 1
    crew = next(c for c in services.crews if c.crew_id == orders[0].crew_id)
    assert crew.skill == "lighting"
    trip = next(t for t in services.trips if t[1] == orders[0].order_id)
    _, _, a, b, depart_s, arrive_s, metres = trip
    assert metres > 0 and arrive_s > depart_s >= failed.time_s

    done = next(e for e in log if isinstance(e, WorkOrderDone)
                and e.incident_id == reports[0].incident_id)
    repair = next(e for e in log if isinstance(e, RepairDone) and e.element_id == lamp_id)
    assert repair.layer == "lighting" and repair.cause_id == done.event_id
    assert failed.time_s < done.time_s < 45 * H
    assert lamp_id not in lighting.lamps_out().index
    assert checks["lit_next_night"], "the lamp burns again the next night"
    assert (mine["status"] == "closed").all(), "every report of it is closed"
