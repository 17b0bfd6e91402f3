"""Open311 GeoReport v2 export, validation and import; the Los Angeles MyLA311 log."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import shared_file
from twin.agents.open311 import (OPEN311_FIELDS, Open311Error, read_myla311, read_open311,
                                 requests_json, services_json, validate_request, write_open311)
from twin.agents.requests import coerce_requests, empty_requests
from twin.agents.services import default_catalogue

DATA = Path(__file__).parent / "data" / "open311"
LA_FILE = ("requests311", "MyLA311_Service_Request_Data_2017_Subset.csv")


def _simulated() -> pd.DataFrame:
    """Four requests as the simulation makes them: every column used, NaT/<NA> where not yet."""
    df = empty_requests(4)
    t = pd.Timestamp
    df["service_request_id"] = ["req-000001", "req-000002", "req-000003", "req-000004"]
    df["service_code"] = ["street_light_out", "street_light_out", "water_leak_street", "noise"]
    df["service_name"] = ["Street light out", "Street light out", "Water leak in the street",
                          "Noise"]
    df["description"] = ["Lamp dark, rue Monge", "Lamp out, « urgent »", None, "Bar, music"]
    df["lat"] = [47.3182731, 47.3182911, 47.3254, 47.3222]
    df["long"] = [5.0321187, 5.0321444, 5.0511, 5.0405]
    df["x_m"] = [853_112.25, 853_114.5, 854_530.0, 853_700.125]
    df["y_m"] = [6_690_421.75, 6_690_424.0, 6_691_200.0, 6_690_880.5]
    df["requested_datetime"] = [t("2024-01-10 18:02:11"), t("2024-01-10 19:40:00"),
                                t("2024-07-14 07:05:30"), t("2024-10-27 02:30:00")]
    df["expected_datetime"] = [t("2024-01-13 18:02:11"), t("2024-01-13 19:40:00"),
                               t("2024-07-14 11:05:30"), t("2024-10-28 02:30:00")]
    df["updated_datetime"] = [t("2024-01-11 10:15:00"), t("2024-01-11 10:15:00"),
                              t("2024-07-14 08:00:00"), pd.NaT]
    df["closed_datetime"] = [t("2024-01-11 10:15:00"), t("2024-01-11 10:15:00"), pd.NaT,
                             pd.NaT]
    df["status"] = ["closed", "closed", "open", "open"]
    df["status_notes"] = ["Lamp replaced", "Duplicate of req-000001", "Crew on site", None]
    df["agency_responsible"] = ["Éclairage public", "Éclairage public",
                                "Eau et assainissement", "Police municipale"]
    df["channel"] = ["app", "phone", "sensor", "web"]
    df["state"] = ["closed", "closed", "in_progress", "received"]
    df["priority"] = [2, 2, 1, 2]
    df["incident_id"] = ["lamp-L0412", "lamp-L0412", "burst-P17", None]
    df["duplicate_of"] = [None, "req-000001", None, None]
    df["crew_id"] = ["light-2", None, "water-1", None]
    return coerce_requests(df)                     # column assignment infers plain str


def test_services_list_follows_georeport_v2():
    services = services_json(default_catalogue())
    assert len(services) == 15
    for s in services:
        assert set(s) == {"service_code", "service_name", "description", "metadata", "type",
                          "keywords", "group"}
        assert s["type"] in ("realtime", "batch", "blackbox") and s["metadata"] is False
        assert all(isinstance(s[k], str) for k in ("service_code", "keywords", "group"))
    pothole = next(s for s in services if s["service_code"] == "pothole")
    assert pothole["keywords"] == "nid de poule,road,pavement" and pothole["group"] == "Voirie"


def test_export_validates_against_the_field_list():
    requests = requests_json(_simulated())
    assert [validate_request(r) for r in requests] == [[]] * 4
    first = requests[0]
    assert list(first)[:len(OPEN311_FIELDS)] == list(OPEN311_FIELDS)
    assert first["requested_datetime"] == "2024-01-10T18:02:11+01:00"      # winter: CET
    assert requests[2]["requested_datetime"] == "2024-07-14T07:05:30+02:00"   # summer: CEST
    assert requests[3]["updated_datetime"] is None and requests[2]["description"] is None
    assert first["extended_attributes"]["priority"] == 2
    json.dumps(requests)                                                   # JSON-able


def test_validation_names_each_wrong_field():
    bad = {"service_request_id": "x", "status": "pending", "service_code": 12,
           "requested_datetime": "2024-01-10 18:00", "lat": "47.3", "long": 5.0, "colour": "red"}
    assert validate_request(bad) == [
        "colour: unknown field (expected one of the GeoReport v2 fields)",
        "status: expected 'open' or 'closed', got 'pending'",
        "service_code: expected a string, got int",
        "requested_datetime: expected ISO 8601 with offset (2024-01-10T18:00:00+01:00), "
        "got '2024-01-10 18:00'",
        "lat: expected a number of degrees within ±90, got '47.3'",
    ]
    assert validate_request({"status": "open"}) == [
        "service_request_id: required field missing or null",
        "service_code: required field missing or null",
        "requested_datetime: required field missing or null",
        "lat/long: required when there is no address"]


@pytest.mark.parametrize("name", ["requests.json", "requests.csv"])
def test_round_trip_loses_nothing(tmp_path, name):
    original = _simulated()
    paths = write_open311(tmp_path, default_catalogue(), original)
    back = read_open311(paths[name], default_catalogue())
    assert back.errors == []
    for column in original.columns:                 # field by field, to name what differs
        pd.testing.assert_series_equal(back.requests[column], original[column], obj=column)
    services = json.loads(paths["services.json"].read_text(encoding="utf-8"))
    assert [s["service_code"] for s in services] == list(default_catalogue())


def test_plain_georeport_rows_get_catalogue_defaults():
    result = read_open311(DATA / "bad_requests.json", default_catalogue())
    row = result.requests.set_index("service_request_id").loc["dj-15"]
    assert row["service_name"] == "Graffiti removal" and row["priority"] == 3
    assert row["state"] == "closed" and row["lat"] == 47.3301
    assert row["requested_datetime"] == pd.Timestamp("2024-03-05 10:00:00")   # Z -> Paris
    assert row["closed_datetime"] == pd.Timestamp("2024-03-06 11:00:00")      # = updated


def test_bad_csv_rows_reported_by_line_and_good_rows_kept():
    result = read_open311(DATA / "bad_requests.csv", default_catalogue())
    assert result.requests["service_request_id"].tolist() == ["dj-1", "dj-6", "dj-8"]
    assert [(e.line, e.field) for e in result.errors] == [
        (3, "service_code"), (4, "lat"), (5, "requested_datetime"), (6, "status"), (8, "lat")]
    text = result.report("bad_requests.csv").splitlines()
    assert text[0].startswith("bad_requests.csv:3: service_code: expected one of bulky_items")
    assert text[0].endswith("got 'potholes'")
    assert text[1] == "bad_requests.csv:4: lat: lat/long missing and no address"
    assert text[2] == ("bad_requests.csv:5: requested_datetime: expected ISO 8601 with offset "
                       "(2024-01-10T18:00:00+01:00), got '04/03/2024 18:30'")
    assert text[3] == "bad_requests.csv:6: status: expected one of open, closed, got 'pending'"
    assert text[4] == "bad_requests.csv:8: lat: expected a number within ±90, got 'north'"
    kept = result.requests.set_index("service_request_id")
    assert kept.loc["dj-6", "description"] == 'Water running, "a lot"'
    assert kept.loc["dj-8", "address"] == "12 rue de la Liberté, Dijon"


def test_bad_json_rows_reported_by_index_and_good_rows_kept():
    result = read_open311(DATA / "bad_requests.json", default_catalogue())
    assert result.requests["service_request_id"].tolist() == ["dj-10", "dj-15"]
    assert [(e.line, e.field) for e in result.errors] == [
        (1, "service_code"), (2, "lat"), (3, "requested_datetime"), (4, "status"),
        (5, "request")]


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(Open311Error, match="nowhere.json: file not found"):
        read_open311(tmp_path / "nowhere.json", default_catalogue())
    broken = tmp_path / "broken.json"
    broken.write_text('[{"service_code": }]')
    with pytest.raises(Open311Error, match=r"broken.json:1: invalid JSON"):
        read_open311(broken, default_catalogue())
    no_status = tmp_path / "no_status.csv"
    no_status.write_text("service_request_id,service_code,requested_datetime\n")
    with pytest.raises(Open311Error, match="no_status.csv: missing column\\(s\\) status"):
        read_open311(no_status, default_catalogue())


def test_los_angeles_log_is_accounted_for_and_mapped():
    result = read_myla311(shared_file(*LA_FILE))
    df = result.requests
    assert len(df) + len(result.bad_lines) == 9_999
    assert (len(df), len(result.errors)) == (9_999, 0)
    assert df["lat"].notna().sum() == 8_246                   # README: coordinates on 8,246
    assert df["address"].notna().all()                         # the rest located by address
    assert df["service_code"].value_counts().to_dict() == {
        "bulky_items": 4_432 + 740 + 403, "graffiti": 2_863, "illegal_dumping": 800,
        "other": 256 + 153 + 28 + 1, "dead_animal": 229, "street_light_out": 51 + 43}
    assert df["channel"].value_counts(dropna=False).to_dict() == {
        "phone": 4_188 + 1, "app": 2_131, "proactive": 2_019, "web": 1_621 + 33,
        pd.NA: 5, "counter": 1}
    assert df["status_notes"].value_counts().to_dict() == {
        "Closed": 9_739, "Cancelled": 246, "Referred Out": 9, "Open": 5}
    assert (df["status"] == "open").sum() == 5
    assert df["requested_datetime"].min() == pd.Timestamp("2017-12-27 13:36:22")
    assert df["requested_datetime"].max() == pd.Timestamp("2017-12-31 23:59:58")


def test_los_angeles_median_days_to_close_match_the_readme():
    df = read_myla311(shared_file(*LA_FILE)).requests
    days = (df["closed_datetime"] - df["requested_datetime"]).dt.total_seconds() / 86_400
    assert days.notna().sum() == 9_994
    assert days.median() == pytest.approx(4.14, abs=0.005)
    assert days.quantile(0.9) == pytest.approx(6.88, abs=0.005)
    by_type = days.groupby(df["description"]).median().round(2).dropna().to_dict()
    assert by_type == {
        "Graffiti Removal": 0.0, "Report Water Waste": 0.0, "Dead Animal Removal": 1.94,
        "Other": 2.37, "Bulky Items": 4.95, "Illegal Dumping Pickup": 5.06,
        "Metal/Household Appliances": 5.2, "Electronic Waste": 5.32,
        "Single Streetlight Issue": 6.49, "Homeless Encampment": 20.8,
        "Multiple Streetlight Issue": 22.31}
    by_service = days.groupby(df["service_code"]).median().round(2).to_dict()
    assert by_service["bulky_items"] == pytest.approx(5.0, abs=0.1)


def test_simulate_writes_open311_and_import_reads_it_back(tmp_path, capsys):
    from twin.cli import main

    out = tmp_path / "run"
    assert main(["citizens", "simulate", "--population", "20000", "--days", "7", "--crews",
                 "10", "--out", str(out), "--json"]) == 0
    simulated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    requests = json.loads((out / "open311" / "requests.json").read_text())
    services = json.loads((out / "open311" / "services.json").read_text())
    assert len(requests) == simulated["requests"]
    assert {s["service_code"] for s in services} >= {r["service_code"] for r in requests}
    assert main(["citizens", "import", str(out / "open311" / "requests.json"),
                 "--population", "20000", "--json"]) == 0
    imported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert imported["rows_kept"] == simulated["requests"] and imported["rows_bad"] == 0
    assert sum(v["requests"] for v in imported["by_service"].values()) == simulated["requests"]
    # a week of the simulated city: each service's yearly rate near the catalogue's
    bulky = imported["by_service"]["bulky_items"]
    assert 0.5 < bulky["per_1000_per_year"] / bulky["catalogue_per_1000_per_year"] < 2.0


def test_import_command_reports_bad_rows_by_line(capsys):
    from twin.cli import main

    assert main(["citizens", "import", str(DATA / "bad_requests.csv"), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["rows_bad"] > 0 and summary["rows_kept"] > 0
    for line in summary["bad_lines"]:
        assert f":{line}:" in captured.err
