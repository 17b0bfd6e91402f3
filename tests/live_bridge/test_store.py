"""The store on SQLite and PostgreSQL: idempotent inserts, one transaction, reading back."""

from __future__ import annotations

import pytest

from live_bridge.readings import Quarantined, Reading, Reason
from live_bridge.store import StoreUrlError, open_store

T0 = 1546300800.0    # 2019-01-01T00:00:00Z


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/store.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    with open_store(url) as s:
        yield s


def readings(n: int, sensors: int = 3) -> list[Reading]:
    return [Reading(f"s{i % sensors}", T0 + 300 * (i // sensors), 10.0 + i, "m") for i in range(n)]


def test_idempotent_inserts_and_newly_stored(store):
    batch = readings(300)
    assert store.add_readings(batch) == 300
    assert store.add_readings(batch) == 0                        # a redelivery stores nothing
    more = readings(330)
    new = store.write_batch(more[290:] + more[300:305])          # overlap + repeats in one batch
    assert new == more[300:]                                     # each new reading once, in order
    assert store.count() == 330


def test_readings_back_tidy_and_wide(store):
    store.add_readings(readings(12, sensors=3))
    tidy = store.readings()
    assert list(tidy.columns) == ["time_s", "sensor_id", "value", "unit", "received_at_s"]
    assert len(tidy) == 12 and tidy["time_s"].is_monotonic_increasing
    wide = store.readings(wide=True)
    assert wide.shape == (4, 3) and wide.loc[T0 + 300, "s1"] == 14.0
    part = store.readings(sensor_ids=["s2"], start_s=T0 + 300, end_s=T0 + 600)
    assert part["value"].tolist() == [15.0, 18.0]


def test_quarantine_alerts_and_audit_log(store):
    q = [Quarantined('{"value": "x"}', Reason.NOT_NUMERIC, "value: expected a JSON number", "s1",
                     "twin/readings/s1"),
         Quarantined("{bad", Reason.MALFORMED, "payload is not JSON", None, "twin/readings/x"),
         Quarantined("{bad2", Reason.MALFORMED, "payload is not JSON", None, "twin/readings/x")]
    assert store.write_batch(readings(3), q) == readings(3)
    assert store.quarantine_counts() == {"malformed": 2, "not_numeric": 1}
    assert store.quarantine()["topic"].tolist()[0] == "twin/readings/s1"
    store.add_alert(T0, "pressure_drop", "high", "n54 fell 12 m", element="n54",
                    details={"drop_m": 12.0})
    alerts = store.alerts()
    assert alerts.loc[0, "details"] == {"drop_m": 12.0} and alerts.loc[0, "element"] == "n54"
    store.log("whatif_approved", {"scenario": "close v1", "status": "approved"}, actor="ops1")
    store.log("whatif_requested", {"scenario": "close v2"}, actor=None)
    entries = store.log_entries("whatif_approved")
    assert len(entries) == 1 and entries.loc[0, "actor"] == "ops1"
    assert entries.loc[0, "payload"]["status"] == "approved"


def test_failed_batch_leaves_nothing(store):
    bad = readings(5) + [Reading("s9", T0, None, "m")]          # NOT NULL value fails the insert
    with pytest.raises(Exception):
        store.write_batch(bad, [Quarantined("x", Reason.NAN, "d")])
    assert store.count() == 0 and store.quarantine_counts() == {}


@pytest.mark.parametrize("url", ["sqlite://relative.db", "mysql://x", "sqlite:///",
                                 "sqlite:///a.db?synchronous=sometimes"])
def test_bad_urls(url):
    with pytest.raises(StoreUrlError, match="store URL"):
        open_store(url)


def test_sqlite_is_wal_and_survives_reopen(tmp_path):
    url = f"sqlite:///{tmp_path}/d/store.db"
    with open_store(url) as s:
        s.add_readings(readings(6))
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with open_store(url) as s:
        assert s.count() == 6 and s.add_readings(readings(6)) == 0
