"""The request table: one row per citizen request, and the lifecycle its rows follow.

Columns are declared once in :data:`REQUEST_COLUMNS` (name -> pandas dtype). The
Open311 GeoReport v2 fields keep their Open311 names; the twin's own fields
(city coordinates in metres, channel, internal state, priority, the network
incident reported, the duplicate's original, the crew) follow them. Datetimes
are tz-naive local time of the city, ``NaT`` while a step has not happened;
missing text is ``<NA>`` (an empty string counts as missing).

Lifecycle (``state``)::

    received -> triaged -> scheduled -> in_progress -> fixed -> closed
        |          |           ^  |          |
        |          |           +--+          +-> scheduled (interrupted: end of shift)
        +----------+-> duplicate -> closed  (closes with its original)
        +----------+-----------+-------------+-> unable_to_fix -> closed
        +----------+-> closed                (answered at once: information, online renewal)

The Open311 ``status`` is "closed" once the request is ``closed`` or ``unable_to_fix``
and "open" before (a duplicate stays open until its original closes).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from twin.errors import BadInput

REQUEST_COLUMNS: dict[str, str] = {
    "service_request_id": "string",
    "service_code": "string",
    "service_name": "string",
    "description": "string",
    "lat": "float64",                      # WGS84 degrees
    "long": "float64",                     # WGS84 degrees
    "x_m": "float64",                      # city CRS, metres
    "y_m": "float64",
    "requested_datetime": "datetime64[ns]",
    "expected_datetime": "datetime64[ns]",
    "updated_datetime": "datetime64[ns]",
    "closed_datetime": "datetime64[ns]",
    "status": "string",                    # Open311: "open" | "closed"
    "status_notes": "string",
    "agency_responsible": "string",
    "channel": "string",                   # CHANNELS, <NA> when the source does not say
    "state": "string",                     # STATES
    "priority": "int64",                   # 1 urgent .. 3 routine
    "incident_id": "string",               # the network incident reported, if known
    "duplicate_of": "string",              # service_request_id of the original
    "crew_id": "string",
    "address": "string",                   # as given by the source, when there is one
}
DATETIME_COLUMNS: tuple[str, ...] = tuple(c for c, t in REQUEST_COLUMNS.items()
                                          if t.startswith("datetime"))
CHANNELS: tuple[str, ...] = ("app", "web", "phone", "counter", "proactive", "sensor")
OPEN311_STATUSES: tuple[str, ...] = ("open", "closed")
STATES: tuple[str, ...] = ("received", "duplicate", "triaged", "scheduled", "in_progress",
                           "fixed", "closed", "unable_to_fix")
TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"duplicate", "triaged", "closed", "unable_to_fix"}),
    "duplicate": frozenset({"closed", "triaged"}),          # triaged: wrongly merged
    "triaged": frozenset({"duplicate", "scheduled", "closed", "unable_to_fix"}),
    "scheduled": frozenset({"scheduled", "triaged", "in_progress", "unable_to_fix"}),
    "in_progress": frozenset({"fixed", "scheduled", "unable_to_fix"}),
    "fixed": frozenset({"closed"}),
    "unable_to_fix": frozenset({"closed"}),
    "closed": frozenset(),
}
_CLOSED_STATES = frozenset({"closed", "unable_to_fix"})


class InvalidTransition(BadInput):
    """A request asked to move between two states the lifecycle does not link."""

    def __init__(self, request_id: str, from_state: str, to_state: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS.get(from_state, ()))) or "none: it is final"
        super().__init__(f"request {request_id}: cannot move from {from_state!r} to "
                         f"{to_state!r} (allowed from {from_state!r}: {allowed})")
        self.request_id, self.from_state, self.to_state = request_id, from_state, to_state


def _check_state(state: str) -> None:
    if state not in TRANSITIONS:
        raise BadInput(f"state: expected one of {STATES}, got {state!r}")


def can_move(from_state: str, to_state: str) -> bool:
    """Whether the lifecycle allows ``from_state -> to_state`` (both must be in STATES)."""
    _check_state(from_state)
    _check_state(to_state)
    return to_state in TRANSITIONS[from_state]


def open311_status(state: str) -> str:
    """The Open311 status shown for an internal state: "open" or "closed"."""
    _check_state(state)
    return "closed" if state in _CLOSED_STATES else "open"


def empty_requests(n: int = 0) -> pd.DataFrame:
    """A request table of ``n`` blank rows with every column at its dtype."""
    data = {}
    for col, dtype in REQUEST_COLUMNS.items():
        if dtype == "int64":
            data[col] = pd.Series(np.zeros(n, dtype="int64"))
        else:
            data[col] = pd.Series([None] * n, dtype=dtype)
    return pd.DataFrame(data)


def coerce_requests(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the columns of REQUEST_COLUMNS in order and at their dtypes.

    Missing columns are added empty, extra columns dropped, "" in text columns becomes
    <NA>. Datetimes must already be tz-naive local time. Raises BadInput naming a column
    that cannot be converted.
    """
    out = empty_requests(len(df))
    out.index = df.index
    for col, dtype in REQUEST_COLUMNS.items():
        if col not in df.columns:
            continue
        try:
            values = df[col].astype(dtype)
        except (TypeError, ValueError) as exc:
            raise BadInput(f"request table: column {col!r}: expected {dtype}: {exc}") from exc
        if dtype == "string":
            values = values.mask(values == "")
        out[col] = values
    return out.reset_index(drop=True)


def advance(df: pd.DataFrame, request_ids: Iterable[str], to_state: str,
            at: pd.Timestamp, notes: str | None = None) -> None:
    """Move the listed requests to ``to_state`` at ``at``, in place.

    Sets ``state``, the Open311 ``status``, ``updated_datetime`` and, when the request
    becomes closed, ``closed_datetime``; ``notes`` (when given) goes to ``status_notes``.
    Raises InvalidTransition for the first request that cannot make that move (no row is
    changed then) and BadInput for an unknown request id.
    """
    _check_state(to_state)
    ids = pd.Index(list(request_ids))
    rows = pd.Index(df["service_request_id"]).get_indexer(ids)
    if (rows < 0).any():
        missing = ids[rows < 0][0]
        raise BadInput(f"advance: unknown service_request_id {missing!r}")
    labels = df.index[rows]
    for rid, state in zip(ids, df.loc[labels, "state"]):
        if not can_move(state, to_state):
            raise InvalidTransition(rid, state, to_state)
    df.loc[labels, "state"] = to_state
    df.loc[labels, "status"] = open311_status(to_state)
    df.loc[labels, "updated_datetime"] = pd.Timestamp(at)
    if to_state in _CLOSED_STATES:
        df.loc[labels, "closed_datetime"] = pd.Timestamp(at)
    if notes is not None:
        df.loc[labels, "status_notes"] = notes


def with_city_xy(df: pd.DataFrame, crs: str) -> pd.DataFrame:
    """A copy of ``df`` with ``x_m``/``y_m`` projected from ``lat``/``long`` into ``crs``."""
    from pyproj import Transformer

    out = df.copy()
    to_city = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = to_city.transform(out["long"].to_numpy(float), out["lat"].to_numpy(float))
    out["x_m"], out["y_m"] = x, y
    return out
