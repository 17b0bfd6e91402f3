"""The request table and its lifecycle."""

from __future__ import annotations

import pandas as pd
import pytest

from twin.agents.requests import (REQUEST_COLUMNS, STATES, InvalidTransition, advance, can_move,
                                  coerce_requests, empty_requests, open311_status, with_city_xy)
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
