"""The request table and its lifecycle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import shared_file
from twin.agents.open311 import read_myla311
from twin.agents.requests import (REQUEST_COLUMNS, STATES, InvalidTransition, advance, can_move,
                                  coerce_requests, empty_requests, open311_status, with_city_xy)
from twin.agents.services import (SKILLS, CatalogueError, Service, default_catalogue,
                                  demand_profile, profiles_from_log, requests_per_year)
from twin.errors import BadInput


def _table() -> pd.DataFrame:
    df = empty_requests(2)
    df["service_request_id"] = ["r1", "r2"]
    df["service_code"] = "street_light_out"
    df["state"] = "received"
    df["status"] = "open"
    df["priority"] = 2
    df["requested_datetime"] = pd.Timestamp("2024-01-10 18:00")
    return df


def test_empty_table_has_every_column_at_its_dtype():
    df = empty_requests(3)
    assert list(df.columns) == list(REQUEST_COLUMNS)
    assert {c: str(t) for c, t in df.dtypes.items()} == REQUEST_COLUMNS
    assert df["closed_datetime"].isna().all() and df["crew_id"].isna().all()


def test_allowed_and_refused_transitions():
    assert can_move("received", "triaged")
    assert can_move("received", "duplicate")
    assert can_move("in_progress", "fixed")
    assert can_move("fixed", "closed")
    assert not can_move("received", "fixed")
    assert not can_move("closed", "received")
    assert not can_move("duplicate", "in_progress")
    with pytest.raises(BadInput, match="state: expected one of"):
        can_move("received", "done")


def test_open311_status_of_each_state():
    closed = {s for s in STATES if open311_status(s) == "closed"}
    assert closed == {"closed", "unable_to_fix"}


def test_advance_follows_the_lifecycle_and_stamps_times():
    df = _table()
    t1, t2 = pd.Timestamp("2024-01-10 18:05"), pd.Timestamp("2024-01-11 09:30")
    advance(df, ["r1", "r2"], "triaged", t1)
    advance(df, ["r2"], "duplicate", t1, notes="duplicate of r1")
    for state in ("scheduled", "in_progress", "fixed"):
        advance(df, ["r1"], state, t2)
    advance(df, ["r1", "r2"], "closed", t2, notes="lamp replaced")
    assert df["state"].tolist() == ["closed", "closed"]
    assert df["status"].tolist() == ["closed", "closed"]
    assert (df["closed_datetime"] == t2).all()
    assert df["status_notes"].tolist() == ["lamp replaced", "lamp replaced"]


def test_refused_transition_names_request_and_both_states_and_changes_nothing():
    df = _table()
    advance(df, ["r1"], "triaged", pd.Timestamp("2024-01-10 18:05"))
    before = df.copy()
    with pytest.raises(InvalidTransition) as err:
        advance(df, ["r2", "r1"], "scheduled", pd.Timestamp("2024-01-10 19:00"))
    message = str(err.value)
    assert "request r2" in message and "'received'" in message and "'scheduled'" in message
    assert "allowed from 'received': closed, duplicate, triaged, unable_to_fix" in message
    pd.testing.assert_frame_equal(df, before)
    with pytest.raises(BadInput, match="unknown service_request_id 'r9'"):
        advance(df, ["r9"], "triaged", pd.Timestamp("2024-01-10 19:00"))


def test_coerce_orders_columns_and_blanks_empty_text():
    raw = pd.DataFrame({"priority": [1], "service_request_id": ["a"], "description": [""],
                        "extra": [5]})
    df = coerce_requests(raw)
    assert list(df.columns) == list(REQUEST_COLUMNS)
    assert df.loc[0, "priority"] == 1 and df["description"].isna().all()
    with pytest.raises(BadInput, match="column 'lat': expected float64"):
        coerce_requests(pd.DataFrame({"lat": ["north"]}))


def test_city_coordinates_from_lat_long():
    df = _table()
    df["lat"], df["long"] = 47.322, 5.041                       # Dijon centre
    xy = with_city_xy(df, "EPSG:2154")                          # Lambert-93, metres
    assert xy.loc[0, "x_m"] == pytest.approx(854_000, abs=2_000)
    assert xy.loc[0, "y_m"] == pytest.approx(6_690_000, abs=5_000)


# --- the catalogue that produces background requests ----------------------------------
def test_catalogue_gives_a_mid_size_city_its_yearly_volume():
    catalogue = default_catalogue()
    assert 12 <= len(catalogue) <= 16
    assert requests_per_year(catalogue, 250_000) == pytest.approx(61_000)
    assert 50_000 <= requests_per_year(catalogue, 250_000) <= 70_000
    assert {s.skill for s in catalogue.values()} <= set(SKILLS)
    urgent = {c for c, s in catalogue.items() if s.priority == 1}
    assert urgent == {"water_leak_street", "sewer_blocked", "flooded_street"}
    assert max(catalogue[c].promise_h for c in urgent) <= 8
    assert catalogue["bulky_items"].promise_h == 120          # LA median 4.95 days


def test_a_wrong_service_names_itself_and_the_field():
    with pytest.raises(CatalogueError, match="service 'snow': skill: expected one of"):
        Service("snow", "Snow", "", "Voirie", "snow", 2, 24.0, 1.0)
    with pytest.raises(CatalogueError, match="service 'ice': priority: expected 1, 2 or 3"):
        Service("ice", "Ice", "", "Voirie", "roads", 0, 24.0, 1.0)


def test_profiles_have_mean_one_and_the_documented_seasons():
    for code in default_catalogue():
        month, weekday, hour = demand_profile(code)
        assert (month.shape, weekday.shape, hour.shape) == ((12,), (7,), (24,))
        for factor in (month, weekday, hour):
            assert factor.mean() == pytest.approx(1.0) and (factor >= 0).all()
    assert demand_profile("pothole")[0].argmax() == 1                 # February: freeze-thaw
    light = demand_profile("street_light_out")[0]
    assert light.argmax() in (11, 0) and light.argmin() in (5, 6)     # longest, shortest nights
    graffiti = demand_profile("graffiti")[0]
    assert graffiti[5:8].mean() > 1.15 > 0.85 > graffiti[[0, 1, 11]].mean()
    assert demand_profile("noise")[2].argmax() == 23
    with pytest.raises(CatalogueError, match="unknown service_code 'snow'"):
        demand_profile("snow")


def test_hour_and_weekday_profiles_are_those_of_the_los_angeles_log():
    df = read_myla311(shared_file("requests311",
                                  "MyLA311_Service_Request_Data_2017_Subset.csv")).requests
    residents = df[df["channel"].ne("proactive").fillna(True)]
    assert len(residents) == 7_980
    weekday, hour = profiles_from_log(residents["requested_datetime"])
    _, weekday_used, hour_used = demand_profile("pothole")
    np.testing.assert_allclose(hour, hour_used, atol=2e-3)
    np.testing.assert_allclose(weekday, weekday_used, atol=2e-3)
    assert 9 <= hour.argmax() <= 17                                    # 15:00
    assert hour[9:18].mean() > 1.8 and hour[0:6].mean() < 0.1
    assert weekday[5:].mean() < 0.5 < weekday[:5].mean()               # weekend dip
    bulky = residents[residents["description"] == "Bulky Items"]["requested_datetime"]
    np.testing.assert_allclose(profiles_from_log(bulky)[1], demand_profile("bulky_items")[2],
                               atol=2e-3)
