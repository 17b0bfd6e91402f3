"""Services the live-bridge tests talk to: the real Mosquitto and PostgreSQL, or a skip."""

from __future__ import annotations

import socket
import uuid

import pytest

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
BROKER = ("127.0.0.1", 1883)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@pytest.fixture
def broker_1883():
    if not port_open(*BROKER):
        pytest.skip("no MQTT broker on 127.0.0.1:1883 "
                    "(start one: mosquitto -d -c /etc/mosquitto/mosquitto.conf)")
    return BROKER


@pytest.fixture
def pg_url():
    """A throwaway schema in database `test`, dropped afterwards; its store URL."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG_URL}: {exc}")
    schema = f"lb_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()
