"""The request service's response options and load: first-contact answers at the phone
centre, pre-positioned crews, and a surge of background requests (same seed each time)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from twin.agents.channels import FirstContact
from twin.agents.crews import Preposition
from twin.agents.service_layer import CitizenServices, ServicePolicy
from twin.city.generator import generate_city
from twin.events import ServiceSurge, StreetFlooded
from twin.twin import Twin

H = 3600.0


def _first_contact_run(city, seed: int, share: float) -> dict:
    """A busy phone centre (one agent, twice the usual volume, a working week) and too few
    crews, so requests run late and their requesters call to ask."""
    twin = Twin(city=city, start=dt.datetime(2026, 3, 9), seed=seed)
    first = FirstContact(share={k: share for k in ("request", "information", "status")})
    layer = twin.add_layer(CitizenServices(ServicePolicy(
        crews=8, phone_agents=1, volume_factor=2.0, status_call_probability=0.5,
        first_contact=first)))
    twin.run(5 * 24 * H)
    return layer.kpis()


def test_more_first_contact_answers_shorten_phone_waits():
    city = generate_city(population=60_000, seed=0)
    for seed in (0, 1):
        low, high = _first_contact_run(city, seed, 0.3), _first_contact_run(city, seed, 0.8)
        assert low["phone_first_contact_share"] == pytest.approx(0.3, abs=0.1)
        assert high["phone_first_contact_share"] == pytest.approx(0.8, abs=0.1)
        assert low["phone_escalated"] > 2 * high["phone_escalated"]
        assert high["phone_mean_wait_s"] < low["phone_mean_wait_s"]
        assert high["phone_p90_wait_s"] < low["phone_p90_wait_s"]
        assert high["phone_abandoned_share"] < low["phone_abandoned_share"]
        assert low["phone_calls"] > 200                       # busy indeed
        assert low["status_calls"] > 5 and low["phone_calls_status"] > 0


def test_service_surge_multiplies_the_listed_services_only():
    city = generate_city(population=200_000, seed=0)
    codes = ("dirty_street", "overflowing_bin", "illegal_dumping")

    def made(surge: bool) -> dict[str, int]:
        """Requests made by service (filed or not: a busier phone loses a few more)."""
        twin = Twin(city=city, start=dt.datetime(2026, 7, 6), seed=2)
        layer = twin.add_layer(CitizenServices(ServicePolicy(crews=16)))
        if surge:        # from noon, for two days
            twin.schedule([ServiceSurge(time_s=12 * H, source="heat", service_codes=codes,
                                        factor=4.0, duration_s=48 * H)])
        twin.run(4 * 24 * H)
        counts = np.bincount(layer.requests.column("service"), minlength=len(layer.services))
        made = {s.service_code: int(n) for s, n in zip(layer.services, counts)}
        return made | {"surge": int(layer.kpis()["surge_requests"])}

    base, surged = made(False), made(True)
    assert base.pop("surge") == 0
    extra = surged.pop("surge")     # drawn for 2 of 4 days at 3 times the usual rate
    listed = sum(base[c] for c in codes)
    listed_surged = sum(surged[c] for c in codes)
    # 2 of 4 days at 4x: about 1 + 3 * 2/4 = 2.5 times as many (Poisson noise aside)
    assert 2.0 < listed_surged / listed < 3.0
    assert 0.75 < extra / (3 * listed * 2 / 4) < 1.25
    others = [c for c in base if c not in codes]
    # the others are drawn as before (their draws move a little: the surge's requests go
    # through the same channels, which draw from the same stream)
    ratio = sum(surged[c] for c in others) / sum(base[c] for c in others)
    assert 0.9 < ratio < 1.1


@pytest.fixture(scope="module")
def far_city():
    return generate_city(population=100_000, seed=1)


def _storm_corner(city, seed: int, staged: bool):
    """Eight floods, three hours apart, in the corner of the city farthest from its centre;
    with ``staged``, three sewer crews wait there from 02:00."""
    xy = np.column_stack([city.streets.geometry.centroid.x, city.streets.geometry.centroid.y])
    corner = xy[np.argmax(np.hypot(*(xy - xy.mean(axis=0)).T))]
    near = city.streets.iloc[np.argsort(np.hypot(*(xy - corner).T))[:8]]
    twin = Twin(city=city, start=dt.datetime(2026, 10, 6), seed=seed)
    plan = (Preposition(crews=3, skill="sewer", at=(float(corner[0]), float(corner[1])),
                        from_s=2 * H) if staged else None)
    layer = twin.add_layer(CitizenServices(ServicePolicy(crews=30, preposition=plan)))
    mid = near.geometry.interpolate(0.5, normalized=True)
    times = 7 * H + 3 * H * np.arange(len(near))
    twin.schedule([StreetFlooded(time_s=float(t), source="storm", x=p.x, y=p.y, radius_m=40.0,
                                 street_ids=(sid,)) for t, p, sid in zip(times, mid, near.index)])
    twin.run(3 * 24 * H)
    return layer


def _incident_drives_s(layer) -> list[float]:
    orders = layer.work_orders()
    ids = set(orders.loc[orders["incident_id"] != "", "order_id"])
    return [t[5] - t[4] for t in layer.trips if t[1] in ids]


def test_prepositioned_crews_reach_incidents_near_the_staging_point_sooner(far_city):
    for seed in (0, 1, 2):
        home, staged = _storm_corner(far_city, seed, False), _storm_corner(far_city, seed, True)
        sewer = [c for c in staged.crews if c.skill == "sewer"]
        assert sum(c.staged for c in sewer) == 3
        assert len({c.shift.name for c in sewer if c.staged}) == 3     # every shift manned
        k_home, k_staged = home.kpis(), staged.kpis()
        assert k_staged["median_hours_incident_to_crew_on_site"] < (
            k_home["median_hours_incident_to_crew_on_site"])
        assert np.median(_incident_drives_s(staged)) < 0.5 * np.median(_incident_drives_s(home))
