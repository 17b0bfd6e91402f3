"""Car-park occupancy recordings: reading, bad rows by line, profiles, and the fitted arrival mix
checked against the Birmingham 2016 recordings."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_file
from twin.errors import BadInput
from twin.networks.parking_data import daily_profile, read_occupancy
from twin.networks.parking_demand import (FITTED_ARRIVALS_PER_SPACE, FITTED_VISITORS,
                                          expected_occupancy, fit_mix, simulate_occupancy)

HEADER = "SystemCodeNumber,Capacity,Occupancy,LastUpdated\n"


def write(tmp_path, text: str, name: str = "rec.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def good_rows(n: int = 40) -> str:
    return "".join(f"CP{i % 2},100,{10 + i},2016-10-{4 + i // 20:02d} {8 + (i % 20) // 2:02d}:"
                   f"{30 * (i % 2):02d}:00\n" for i in range(n))


def test_reads_readings_in_any_column_order(tmp_path):
    text = ("Extra,LastUpdated,Occupancy,SystemCodeNumber,Capacity\r\n"
            'x,2016-10-04 08:00:00,12,"Car Park A",100\r\n'
            "y,2016-10-04 08:30:00,30,Car Park A,100\r\n"
            "z,2016-10-04 08:30:00,5,B,50\r\n")
    rec = read_occupancy(write(tmp_path, "\ufeff" + text))
    r = rec.readings
    assert list(r["carpark_id"]) == ["Car Park A", "Car Park A", "B"]
    assert list(r["occupancy"]) == [12, 30, 5]
    assert list(r["line"]) == [2, 3, 4]
    assert r["share"].tolist() == pytest.approx([0.12, 0.30, 0.10])
    assert rec.bad_rows == []
    s = rec.summary()
    assert s["carparks"] == 2 and s["capacity_total"] == 150 and s["good_rows"] == 3


def test_bad_rows_are_left_out_and_named_by_line(tmp_path):
    bad = ("CP0,100,-3,2016-10-05 09:00:00\n"          # line 42: negative reading
           "CP0,100,130,2016-10-05 09:30:00\n"         # line 43: above capacity
           "CP1,100,abc,2016-10-05 10:00:00\n"         # line 44: not a number
           "CP1,100,5,yesterday\n"                     # line 45: bad time
           "CP1,100\n"                                 # line 46: missing fields
           "CP0,100,10,2016-10-04 08:00:00\n"          # line 47: repeats line 2
           "CP0,120,10,2016-10-06 08:00:00\n")         # line 48: capacity changed
    rec = read_occupancy(write(tmp_path, HEADER + good_rows(40) + bad), max_bad_share=0.2)
    by_line = {b.line: b for b in rec.bad_rows}
    assert sorted(by_line) == [42, 43, 44, 45, 46, 47, 48]
    assert by_line[42].field == "Occupancy" and "negative" in by_line[42].problem
    assert "above capacity" in by_line[43].problem
    assert "not a number" in by_line[44].problem
    assert by_line[45].field == "LastUpdated"
    assert "missing fields" in by_line[46].problem
    assert "line 2" in by_line[47].problem
    assert "capacity changed" in by_line[48].problem
    assert len(rec.readings) == 40
    assert rec.summary()["bad_rows_by_kind"]["negative reading"] == 1


def test_strict_stops_at_the_first_bad_row(tmp_path):
    path = write(tmp_path, HEADER + good_rows(10) + "CP0,100,-1,2016-10-05 09:00:00\n")
    with pytest.raises(BadInput, match=r"rec\.csv:12: Occupancy: negative reading"):
        read_occupancy(path, strict=True)


def test_negative_capacity_is_an_error_with_its_line(tmp_path):
    path = write(tmp_path, HEADER + good_rows(3) + "CP9,-100,5,2016-10-05 09:00:00\n")
    with pytest.raises(BadInput, match=r"rec\.csv:5: Capacity: expected a capacity >= 0"):
        read_occupancy(path)


@pytest.mark.parametrize("text, message", [
    ("", "empty file"),
    ("id,cap,occ,time\nA,1,1,2016-10-04 08:00:00\n", "missing SystemCodeNumber"),
    (HEADER, "no good reading"),
    (HEADER + "A,10,x,2016\nB,10,y,2016\n", "no good reading in 2 rows"),
])
def test_malformed_files_are_clear_errors(tmp_path, text, message):
    with pytest.raises(BadInput, match=message):
        read_occupancy(write(tmp_path, text))


def test_too_many_bad_rows_is_not_this_format(tmp_path):
    rows = good_rows(10) + "".join(f"CP0,100,{-i - 1},2016-10-09 09:00:00\n" for i in range(5))
    with pytest.raises(BadInput, match=r"5 of 15 rows are bad"):
        read_occupancy(write(tmp_path, HEADER + rows))


def test_unknown_car_park_ids_are_named(tmp_path):
    rec = read_occupancy(write(tmp_path, HEADER + good_rows(6)))
    rec.check_ids({"CP0", "CP1"})
    with pytest.raises(BadInput, match=r"rec\.csv:3: SystemCodeNumber: unknown car park 'CP1'"):
        rec.check_ids({"CP0"})


def test_daily_profile_averages_car_parks_per_slot(tmp_path):
    # Tuesday 2016-10-04: CP0 at 20 %, CP1 at 60 % at 08:00 (two readings round to 08:00)
    text = HEADER + ("CP0,100,20,2016-10-04 08:00:00\nCP1,200,120,2016-10-04 08:10:00\n"
                     "CP0,100,40,2016-10-04 08:31:00\n"
                     "CP0,100,90,2016-10-08 08:00:00\n")   # a Saturday
    rec = read_occupancy(write(tmp_path, text))
    weekday = daily_profile(rec, (0,), min_readings=1)
    assert weekday.loc[8.0, "share"] == pytest.approx(0.4)
    assert weekday.loc[8.5, "share"] == pytest.approx(0.4)
    assert weekday.loc[8.0, "carparks"] == 2
    assert daily_profile(rec, (1,), min_readings=1).loc[8.0, "share"] == pytest.approx(0.9)


def test_fit_recovers_a_known_mix():
    hours = np.arange(8.0, 17.0, 0.5)
    truth = expected_occupancy(FITTED_VISITORS, 1.1, hours)
    fit = fit_mix(hours, truth)
    assert fit.rmse < 0.003
    assert fit.arrivals_per_space == pytest.approx(1.1, rel=0.1)


@pytest.fixture(scope="module")
def birmingham():
    return read_occupancy(shared_file("parking", "birmingham", "birmingham_parking_2016.csv"))


def test_birmingham_recording_as_documented(birmingham):
    s = birmingham.summary()
    assert s["rows"] == 35_717 and s["carparks"] == 30 and s["capacity_total"] == 39_956
    assert s["bad_rows_by_kind"]["negative reading"] == 12
    assert s["bad_rows_by_kind"]["above capacity"] == 373
    assert 0.45 < s["mean_occupancy_share"] < 0.52


def test_fitted_profile_matches_the_measured_weekday(birmingham):
    prof = daily_profile(birmingham, (0,))
    hours, measured = prof.index.to_numpy(), prof["share"].to_numpy()
    assert len(hours) >= 17 and measured.max() > 0.6      # 08:00-16:30, midday peak
    fit = fit_mix(hours, measured)
    assert fit.rmse < 0.01
    assert 0.5 < fit.arrivals_per_space < 1.5
    # the layer's defaults are that fit: expected and simulated profiles stay close
    stored = expected_occupancy(FITTED_VISITORS, FITTED_ARRIVALS_PER_SPACE, hours)
    assert np.sqrt(np.mean((stored - measured) ** 2)) < 0.01
    occ = simulate_occupancy(FITTED_VISITORS, 1000 * FITTED_ARRIVALS_PER_SPACE, 1000, 14,
                             np.random.default_rng(3))
    weekdays = occ[[d % 7 < 5 for d in range(14)]].mean(axis=0) / 1000
    simulated = weekdays[np.round(hours / 0.25).astype(int)]
    assert np.sqrt(np.mean((simulated - measured) ** 2)) < 0.02
