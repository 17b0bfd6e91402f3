"""Sensor readings and their JSON payload codec.

A payload is one reading as a JSON object, or a batch as a JSON array of such objects::

    {"sensor_id": "n54", "timestamp": "2018-01-01T00:05:00Z", "value": 51.2, "unit": "m"}

``timestamp`` is ISO 8601 (a naive timestamp means UTC) or a number of UTC epoch
seconds; ``value`` must be a JSON number. Decoding never raises: an item that cannot
become a :class:`Reading` becomes a :class:`Quarantined` record with its :class:`Reason`.
The checks that need the sensor registry (unit, range, order, ...) live in ``checks.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any, Iterable

RAW_TEXT_LIMIT = 65536     # characters of a bad payload kept in the quarantine record
REQUIRED_FIELDS = ("sensor_id", "timestamp", "value", "unit")


class Reason(str, Enum):
    """Why an item was quarantined (the machine-readable reason stored with it)."""

    MALFORMED = "malformed"            # not JSON, not an object, a field missing or mistyped
    UNKNOWN_SENSOR = "unknown_sensor"  # sensor_id not in the registry
    NOT_NUMERIC = "not_numeric"        # value is not a JSON number
    NAN = "nan"                        # value is NaN or infinite
    OUT_OF_RANGE = "out_of_range"      # outside the registry's [min, max]
    WRONG_UNIT = "wrong_unit"          # unit differs from the registry's
    DUPLICATE = "duplicate"            # sensor and timestamp already accepted with another value
    OUT_OF_ORDER = "out_of_order"      # older than the newest accepted reading of the sensor
    LATE = "late"                      # older than now - lateness
    FUTURE = "future"                  # later than now + tolerance

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement: ``value`` in ``unit`` at ``time_s`` (UTC epoch seconds)."""

    sensor_id: str
    time_s: float
    value: float
    unit: str

    def to_dict(self) -> dict[str, Any]:
        """The payload object of this reading (timestamp as ISO 8601 UTC)."""
        return {"sensor_id": self.sensor_id, "timestamp": format_time(self.time_s),
                "value": self.value, "unit": self.unit}


@dataclass(frozen=True, slots=True)
class Quarantined:
    """An item refused by decoding or by the checks, kept with its raw text and reason."""

    raw: str
    reason: Reason
    detail: str
    sensor_id: str | None = None
    topic: str = ""


def parse_time(value: Any) -> float:
    """UTC epoch seconds from an ISO 8601 string (naive = UTC) or an epoch number.

    Raises ``ValueError`` with what was expected.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected an ISO 8601 timestamp or epoch seconds, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"expected finite epoch seconds, got {value!r}")
        return float(value)
    if isinstance(value, str):
        return _parse_iso(value)
    raise ValueError(f"expected an ISO 8601 timestamp or epoch seconds, got {type(value).__name__}")


@lru_cache(maxsize=8192)   # many sensors share each timestamp
def _parse_iso(text: str) -> float:
    try:
        stamp = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"expected an ISO 8601 timestamp such as 2018-01-01T00:05:00Z, "
                         f"got {text[:60]!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.timestamp()


@lru_cache(maxsize=8192)
def format_time(time_s: float) -> str:
    """ISO 8601 UTC text of epoch seconds, ``Z``-suffixed (microseconds only when needed)."""
    stamp = dt.datetime.fromtimestamp(time_s, dt.timezone.utc)
    spec = "microseconds" if stamp.microsecond else "seconds"
    return stamp.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def encode_readings(readings: Iterable[Reading]) -> bytes:
    """A batch payload: a JSON array of reading objects."""
    return json.dumps([r.to_dict() for r in readings], separators=(",", ":")).encode()


def encode_reading(reading: Reading) -> bytes:
    """A single-reading payload: one JSON object."""
    return json.dumps(reading.to_dict(), separators=(",", ":")).encode()


def decode_payload(payload: bytes | str, topic: str = "") -> list[Reading | Quarantined]:
    """Every item of a payload (an object or an array of objects), decoded or quarantined."""
    try:
        text = payload.decode() if isinstance(payload, (bytes, bytearray)) else str(payload)
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raw = payload if isinstance(payload, str) else bytes(payload).decode(errors="replace")
        return [Quarantined(raw[:RAW_TEXT_LIMIT], Reason.MALFORMED,
                            f"payload is not JSON: {exc}", None, topic)]
    if isinstance(data, list):
        return [decode_item(item, topic) for item in data]
    return [decode_item(data, topic)]


def decode_item(item: Any, topic: str = "") -> Reading | Quarantined:
    """One decoded JSON value as a Reading, or the reason it cannot be one."""
    if not isinstance(item, dict):
        return _refuse(item, Reason.MALFORMED,
                       f"expected a JSON object with {', '.join(REQUIRED_FIELDS)}, "
                       f"got {type(item).__name__}", None, topic)
    sensor_id = item.get("sensor_id")
    known_id = sensor_id if isinstance(sensor_id, str) and sensor_id else None
    missing = [f for f in REQUIRED_FIELDS if f not in item]
    if missing:
        return _refuse(item, Reason.MALFORMED, f"missing field(s): {', '.join(missing)}",
                       known_id, topic)
    if known_id is None:
        return _refuse(item, Reason.MALFORMED,
                       f"sensor_id: expected a non-empty string, got {sensor_id!r}", None, topic)
    unit = item["unit"]
    if not isinstance(unit, str):
        return _refuse(item, Reason.MALFORMED, f"unit: expected a string, got {unit!r}",
                       known_id, topic)
    try:
        time_s = parse_time(item["timestamp"])
    except ValueError as exc:
        return _refuse(item, Reason.MALFORMED, f"timestamp: {exc}", known_id, topic)
    value = item["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _refuse(item, Reason.NOT_NUMERIC,
                       f"value: expected a JSON number, got {_short(value)}", known_id, topic)
    value = float(value)
    if not math.isfinite(value):
        return _refuse(item, Reason.NAN, f"value: {value} is not a finite number", known_id, topic)
    return Reading(known_id, time_s, value, unit)


def raw_text(item: Reading | dict | Any) -> str:
    """The JSON text kept for an item in the quarantine table."""
    if isinstance(item, Reading):
        item = item.to_dict()
    try:
        return json.dumps(item, separators=(",", ":"))[:RAW_TEXT_LIMIT]
    except (TypeError, ValueError):
        return repr(item)[:RAW_TEXT_LIMIT]


def _refuse(item: Any, reason: Reason, detail: str, sensor_id: str | None,
            topic: str) -> Quarantined:
    return Quarantined(raw_text(item), reason, detail, sensor_id, topic)


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, list, dict, type(None))) else repr(value)
    return f"{type(value).__name__} {text[:40]}"
