"""Durable store of readings, quarantined items, alerts and an audit log.

``open_store(url)``: ``sqlite:///path.db`` (embedded, WAL mode; ``sqlite:////abs/path.db``
for an absolute path; ``?synchronous=normal`` trades power-loss durability for speed) or
``postgresql://user@host:port/db`` (any libpq URL; ``?options=-csearch_path%3Dschema``
selects a schema).

Tables (times are UTC epoch seconds):

* ``readings(sensor_id, time_s, value, unit, received_at_s)``, primary key
  ``(sensor_id, time_s)``: a redelivered reading is never stored twice;
* ``quarantine(id, raw, sensor_id, reason, detail, topic, received_at_s)``;
* ``alerts(id, time_s, kind, element, severity, message, details)`` (details: JSON text);
* ``audit_log(id, time_s, kind, actor, payload)`` (payload: JSON text): commands,
  approvals, anything a module wants on record.

A batch of readings and quarantine records is written in one transaction
(:meth:`Store.write_batch`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qs, urlsplit

from twin.errors import BadInput

from live_bridge.readings import Quarantined, Reading

SQLITE_ROWS_PER_INSERT = 5000   # 5 parameters a row, under SQLite's 32,766 parameters


class StoreUrlError(BadInput):
    """A store URL that names no usable database."""


_TABLES = """
CREATE TABLE IF NOT EXISTS readings (
    sensor_id TEXT NOT NULL, time_s DOUBLE PRECISION NOT NULL, value DOUBLE PRECISION NOT NULL,
    unit TEXT NOT NULL, received_at_s DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (sensor_id, time_s)){without_rowid};
CREATE TABLE IF NOT EXISTS quarantine (
    id {id}, raw TEXT NOT NULL, sensor_id TEXT, reason TEXT NOT NULL, detail TEXT NOT NULL,
    topic TEXT NOT NULL, received_at_s DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id {id}, time_s DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, element TEXT,
    severity TEXT NOT NULL, message TEXT NOT NULL, details TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_log (
    id {id}, time_s DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, actor TEXT,
    payload TEXT NOT NULL)
"""


class Store:
    """What both back ends share; use :func:`open_store` to get one."""

    url: str
    _param = "?"
    _lock: threading.Lock            # one store may serve several threads

    def write_batch(self, readings: list[Reading], quarantined: Iterable[Quarantined] = (),
                    received_at_s: float | None = None) -> list[Reading]:
        """Store readings and quarantine records in one transaction.

        Returns the readings newly stored (a reading already in the store, or repeated in
        the batch, is left out): exactly what a consumer has not been given before.
        """
        received = time.time() if received_at_s is None else received_at_s
        rows = [(q.raw, q.sensor_id, q.reason.value, q.detail, q.topic, received)
                for q in quarantined]
        with self._tx() as cur:
            new = self._insert_new(cur, readings, received) if readings else []
            if rows:
                cur.executemany(self._sql("INSERT INTO quarantine (raw, sensor_id, reason, "
                                          "detail, topic, received_at_s) VALUES (?,?,?,?,?,?)"), rows)
        return new

    def add_readings(self, readings: Iterable[Reading], received_at_s: float | None = None) -> int:
        """Store readings in one transaction; the number newly stored (duplicates skipped)."""
        return len(self.write_batch(list(readings), (), received_at_s))

    def add_quarantined(self, records: Iterable[Quarantined],
                        received_at_s: float | None = None) -> None:
        self.write_batch([], records, received_at_s)

    def add_alert(self, time_s: float, kind: str, severity: str, message: str,
                  element: str | None = None, details: dict[str, Any] | None = None) -> None:
        """Record an alert raised at ``time_s`` (UTC epoch seconds)."""
        with self._tx() as cur:
            cur.execute(self._sql("INSERT INTO alerts (time_s, kind, element, severity, message, "
                                  "details) VALUES (?,?,?,?,?,?)"),
                        (time_s, kind, element, severity, message,
                         json.dumps(details or {}, default=str)))

    def log(self, kind: str, payload: dict[str, Any], actor: str | None = None,
            time_s: float | None = None) -> None:
        """Append an audit entry: who (actor) did what (kind, payload) and when (now)."""
        with self._tx() as cur:
            cur.execute(self._sql("INSERT INTO audit_log (time_s, kind, actor, payload) "
                                  "VALUES (?,?,?,?)"),
                        (time.time() if time_s is None else time_s, kind, actor,
                         json.dumps(payload, default=str)))

    def count(self) -> int:
        """Number of stored readings."""
        return int(self._query("SELECT COUNT(*) FROM readings")[0][0])

    def time_range(self) -> tuple[float, float] | None:
        """Times of the oldest and newest stored reading (UTC epoch s), None when empty."""
        lo, hi = self._query("SELECT MIN(time_s), MAX(time_s) FROM readings")[0]
        return None if lo is None else (float(lo), float(hi))

    def quarantine_counts(self) -> dict[str, int]:
        """Quarantined items by reason."""
        return {r: int(n) for r, n in self._query(
            "SELECT reason, COUNT(*) FROM quarantine GROUP BY reason ORDER BY reason")}

    def readings(self, sensor_ids: Iterable[str] | None = None, start_s: float | None = None,
                 end_s: float | None = None, wide: bool = False):
        """Stored readings as a DataFrame: tidy (time_s, sensor_id, value, unit,
        received_at_s) ordered by time, or ``wide`` (index time_s, one column per sensor)."""
        import pandas as pd

        where, args = ["1=1"], []
        if sensor_ids is not None:
            ids = list(sensor_ids)
            where.append(f"sensor_id IN ({','.join('?' * len(ids))})" if ids else "1=0")
            args += ids
        if start_s is not None:
            where.append("time_s >= ?")
            args.append(start_s)
        if end_s is not None:
            where.append("time_s <= ?")
            args.append(end_s)
        rows = self._query("SELECT time_s, sensor_id, value, unit, received_at_s FROM readings "
                           f"WHERE {' AND '.join(where)} ORDER BY time_s, sensor_id", args)
        frame = pd.DataFrame(rows, columns=["time_s", "sensor_id", "value", "unit", "received_at_s"])
        if wide:
            return frame.pivot(index="time_s", columns="sensor_id", values="value")
        return frame

    def quarantine(self):
        """Quarantined items as a DataFrame, oldest first."""
        return self._frame("quarantine", ["id", "raw", "sensor_id", "reason", "detail", "topic",
                                          "received_at_s"])

    def alerts(self):
        """Alerts as a DataFrame (details decoded from JSON), oldest first."""
        frame = self._frame("alerts", ["id", "time_s", "kind", "element", "severity", "message",
                                       "details"])
        frame["details"] = frame["details"].map(json.loads)
        return frame

    def log_entries(self, kind: str | None = None):
        """Audit entries as a DataFrame (payload decoded from JSON), oldest first."""
        frame = self._frame("audit_log", ["id", "time_s", "kind", "actor", "payload"])
        frame["payload"] = frame["payload"].map(json.loads)
        return frame if kind is None else frame[frame["kind"] == kind].reset_index(drop=True)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # back-end specific -------------------------------------------------------------
    _conn: Any

    def _insert_new(self, cur: Any, readings: list[Reading], received: float) -> list[Reading]:
        raise NotImplementedError

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    def _sql(self, text: str) -> str:
        return text if self._param == "?" else text.replace("?", self._param)

    def _query(self, text: str, args: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:                   # autocommit: a read sees the last commit
            cur = self._conn.cursor()
            try:
                cur.execute(self._sql(text), list(args))
                return cur.fetchall()
            finally:
                cur.close()

    def _frame(self, table: str, columns: list[str]):
        import pandas as pd

        rows = self._query(f"SELECT {', '.join(columns)} FROM {table} ORDER BY id")
        return pd.DataFrame(rows, columns=columns)

    def _create_tables(self, id_type: str, without_rowid: str) -> None:
        with self._tx() as cur:
            for statement in _TABLES.format(id=id_type, without_rowid=without_rowid).split(";"):
                cur.execute(statement)


def _newly_stored(readings: list[Reading], keys: set[tuple[str, float]]) -> list[Reading]:
    """The readings whose (sensor, time) the insert returned, each key once, in order."""
    new = []
    for r in readings:
        key = (r.sensor_id, r.time_s)
        if key in keys:
            keys.discard(key)
            new.append(r)
    return new


class SqliteStore(Store):
    """The embedded store: one SQLite file in WAL mode."""

    def __init__(self, path: str, url: str, synchronous: str = "full"):
        self.url = url
        self._lock = threading.Lock()
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._create_tables("INTEGER PRIMARY KEY AUTOINCREMENT", " WITHOUT ROWID")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                self._conn.rollback()
                raise
            self._conn.commit()

    def _insert_new(self, cur: sqlite3.Cursor, readings: list[Reading],
                    received: float) -> list[Reading]:
        keys: set[tuple[str, float]] = set()
        for i in range(0, len(readings), SQLITE_ROWS_PER_INSERT):
            chunk = readings[i:i + SQLITE_ROWS_PER_INSERT]
            args = [x for r in chunk for x in (r.sensor_id, r.time_s, r.value, r.unit, received)]
            cur.execute("INSERT INTO readings (sensor_id, time_s, value, unit, received_at_s) "
                        "VALUES " + ",".join(["(?,?,?,?,?)"] * len(chunk))
                        + " ON CONFLICT DO NOTHING RETURNING sensor_id, time_s", args)
            keys.update(cur.fetchall())
        return _newly_stored(readings, keys)


class PostgresStore(Store):
    """The deployment store: PostgreSQL through psycopg 3."""

    _param = "%s"

    def __init__(self, url: str):
        import psycopg

        self.url = url
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(url, autocommit=True)   # transactions: _tx()
        except psycopg.OperationalError as exc:
            raise StoreUrlError(f"cannot connect to {_redact(url)}: {exc}".strip()) from None
        self._create_tables("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            yield cur

    def _insert_new(self, cur: Any, readings: list[Reading], received: float) -> list[Reading]:
        cur.execute("INSERT INTO readings (sensor_id, time_s, value, unit, received_at_s) "
                    "SELECT s, t, v, u, %s FROM unnest(%s::text[], %s::float8[], %s::float8[], "
                    "%s::text[]) AS x(s, t, v, u) ON CONFLICT DO NOTHING RETURNING sensor_id, time_s",
                    (received, [r.sensor_id for r in readings], [r.time_s for r in readings],
                     [r.value for r in readings], [r.unit for r in readings]))
        return _newly_stored(readings, set(cur.fetchall()))


def open_store(url: str) -> Store:
    """A store for ``sqlite:///path.db`` or ``postgresql://...`` (see the module docstring)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
            raise StoreUrlError(f"store URL {url!r}: expected sqlite:///relative/path.db or "
                                "sqlite:////absolute/path.db")
        sync = parse_qs(parts.query).get("synchronous", ["full"])[-1].lower()
        if sync not in ("off", "normal", "full", "extra"):
            raise StoreUrlError(f"store URL {url!r}: synchronous must be off, normal, full "
                                f"or extra, got {sync!r}")
        return SqliteStore(parts.path[1:], url, sync)
    if parts.scheme in ("postgresql", "postgres"):
        return PostgresStore(url)
    raise StoreUrlError(f"store URL {url!r}: expected sqlite:///path.db or postgresql://...")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
