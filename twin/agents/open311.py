"""Open311 GeoReport v2: export the request table, check it, import real logs.

Export: :func:`services_json` (GET services.json), :func:`requests_json` (GET
requests.json) and :func:`write_open311`. Datetimes leave as ISO 8601 with the
city's UTC offset (``2024-01-10T18:00:00+01:00``), as the specification asks. The
twin's own fields (city metres, closed time, channel, state, priority, incident,
duplicate, crew) travel in ``extended_attributes``, the GeoReport v2 extension
used by several cities, so an export read back loses nothing.

Import: :func:`read_open311` reads a GeoReport v2 JSON list, or a CSV with the same
field names (and the extension fields as extra columns); :func:`read_myla311` reads
the Los Angeles MyLA311 open-data CSV. Bad rows are skipped and reported with their
line (CSV physical line, the header being line 1; JSON array index from 0), the
field and the reason; the good rows are kept.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import pandas as pd

from twin.agents.requests import (CHANNELS, OPEN311_STATUSES, REQUEST_COLUMNS, STATES,
                                  coerce_requests, open311_status)
from twin.agents.services import Service, default_catalogue
from twin.errors import BadInput

OPEN311_FIELDS: tuple[str, ...] = (
    "service_request_id", "status", "status_notes", "service_name", "service_code",
    "description", "agency_responsible", "service_notice", "requested_datetime",
    "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "lat",
    "long", "media_url")
REQUIRED_FIELDS: tuple[str, ...] = ("service_request_id", "status", "service_code",
                                    "requested_datetime")
EXTENSION_FIELDS: tuple[str, ...] = ("x_m", "y_m", "closed_datetime", "channel", "state",
                                     "priority", "incident_id", "duplicate_of", "crew_id")
_TIME_FIELDS = ("requested_datetime", "updated_datetime", "expected_datetime",
                "closed_datetime")
_ISO_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
DEFAULT_TZ = "Europe/Paris"


class Open311Error(BadInput):
    """A file that cannot be read at all (missing, not JSON, no required column)."""


class RowError(NamedTuple):
    """One bad value: ``line`` is the CSV line (header = 1) or the JSON array index."""

    line: int
    field: str
    message: str

    def format(self, source: str | Path = "") -> str:
        return f"{source}:{self.line}: {self.field}: {self.message}"


@dataclass
class ImportResult:
    """The rows kept (a request table) and the errors of the rows skipped."""

    requests: pd.DataFrame
    errors: list[RowError] = field(default_factory=list)

    @property
    def bad_lines(self) -> list[int]:
        return sorted({e.line for e in self.errors})

    def report(self, source: str | Path = "") -> str:
        return "\n".join(e.format(source) for e in self.errors)


# --- export ------------------------------------------------------------------------
def services_json(catalogue: dict[str, Service]) -> list[dict]:
    """The GeoReport v2 service list; ``group`` is the agency, ``keywords`` comma-separated."""
    return [{"service_code": s.service_code, "service_name": s.service_name,
             "description": s.description, "metadata": False, "type": "realtime",
             "keywords": ",".join(s.keywords), "group": s.agency_responsible}
            for s in catalogue.values()]


def _iso(times: pd.Series, tz: str) -> list[str | None]:
    """tz-naive local datetimes -> ISO 8601 with offset, to the second (NaT -> None).

    A time in the hour skipped by the spring clock change is moved an hour later; one
    in the repeated autumn hour is read as summer time.
    """
    local = pd.to_datetime(times).dt.floor("s").dt.tz_localize(
        tz, ambiguous=np.ones(len(times), dtype=bool), nonexistent="shift_forward")
    wall = local.dt.tz_localize(None)
    offset_min = (wall - local.dt.tz_convert("UTC").dt.tz_localize(None)).dt.total_seconds() // 60
    stamp = np.datetime_as_string(wall.to_numpy(dtype="datetime64[s]"), unit="s")
    return [None if pd.isna(m) else f"{t}{'-' if m < 0 else '+'}{int(abs(m)) // 60:02d}:"
            f"{int(abs(m)) % 60:02d}" for t, m in zip(stamp, offset_min)]


def _plain(values: pd.Series) -> list[Any]:
    """JSON-able values: <NA>/NaN -> None, numpy scalars -> Python ones."""
    return values.astype(object).where(values.notna(), None).tolist()


def requests_json(df: pd.DataFrame, tz: str = DEFAULT_TZ, extensions: bool = True) -> list[dict]:
    """The GeoReport v2 request list for a request table (local times in ``tz``).

    Fields the twin does not hold (service_notice, address_id, zipcode, media_url) are
    null. With ``extensions`` the twin's own fields go in ``extended_attributes``.
    """
    df = coerce_requests(df)
    cols = {c: (_iso(df[c], tz) if c in _TIME_FIELDS else _plain(df[c]))
            for c in (*OPEN311_FIELDS, *EXTENSION_FIELDS) if c in df.columns}
    out = []
    for i in range(len(df)):
        row = {f: (cols[f][i] if f in cols else None) for f in OPEN311_FIELDS}
        if extensions:
            row["extended_attributes"] = {f: cols[f][i] for f in EXTENSION_FIELDS}
        out.append(row)
    return out


def _flat_rows(requests: list[dict]) -> list[dict]:
    return [{**{k: v for k, v in r.items() if k != "extended_attributes"},
             **r.get("extended_attributes", {})} for r in requests]


def write_open311(folder: str | Path, catalogue: dict[str, Service], df: pd.DataFrame,
                  tz: str = DEFAULT_TZ) -> dict[str, Path]:
    """Write ``services.json``, ``requests.json`` and ``requests.csv`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    requests = requests_json(df, tz)
    paths = {name: folder / name for name in ("services.json", "requests.json", "requests.csv")}
    paths["services.json"].write_text(json.dumps(services_json(catalogue), ensure_ascii=False,
                                                 indent=1), encoding="utf-8")
    paths["requests.json"].write_text(json.dumps(requests, ensure_ascii=False, indent=1),
                                      encoding="utf-8")
    with paths["requests.csv"].open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*OPEN311_FIELDS, *EXTENSION_FIELDS])
        writer.writeheader()
        writer.writerows(_flat_rows(requests))
    return paths


def validate_request(obj: Any) -> list[str]:
    """What is wrong with one GeoReport v2 request object (an empty list when nothing)."""
    if not isinstance(obj, dict):
        return [f"request: expected an object, got {type(obj).__name__}"]
    problems = [f"{k}: unknown field (expected one of the GeoReport v2 fields)"
                for k in obj if k not in OPEN311_FIELDS and k != "extended_attributes"]
    problems += [f"{k}: required field missing or null" for k in REQUIRED_FIELDS
                 if obj.get(k) is None]
    for k in OPEN311_FIELDS:
        v = obj.get(k)
        if v is None:
            continue
        if k in ("lat", "long"):
            limit = 90 if k == "lat" else 180
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not abs(v) <= limit:
                problems.append(f"{k}: expected a number of degrees within ±{limit}, got {v!r}")
        elif not isinstance(v, str):
            problems.append(f"{k}: expected a string, got {type(v).__name__}")
        elif k in _TIME_FIELDS and not re.match(_ISO_RE, v):
            problems.append(f"{k}: expected ISO 8601 with offset "
                            f"(2024-01-10T18:00:00+01:00), got {v!r}")
        elif k == "status" and v not in OPEN311_STATUSES:
            problems.append(f"status: expected 'open' or 'closed', got {v!r}")
    if obj.get("address") is None and (obj.get("lat") is None or obj.get("long") is None):
        problems.append("lat/long: required when there is no address")
    if not isinstance(obj.get("extended_attributes", {}), dict):
        problems.append("extended_attributes: expected an object")
    return problems


# --- import: row checks shared by the readers --------------------------------------
class _Rows:
    """Raw rows (text or JSON values, one ``line`` each) checked column by column."""

    def __init__(self, raw: pd.DataFrame, lines: list[int]) -> None:
        self.raw = raw.reset_index(drop=True)
        self.lines = np.asarray(lines, dtype=int)
        self.errors: list[RowError] = []

    def bad(self, mask: pd.Series, field: str, message: Callable[[Any], str]) -> None:
        for i in np.flatnonzero(np.asarray(mask, dtype=bool)):
            value = self.raw[field].iloc[i] if field in self.raw else None
            self.errors.append(RowError(int(self.lines[i]), field, message(value)))

    def text(self, col: str, required: bool = False) -> pd.Series:
        values = self.raw.get(col, pd.Series([None] * len(self.raw), dtype=object))
        out = pd.Series([None if _missing(v) else str(v) for v in values], dtype="string")
        if required:
            self.bad(out.isna(), col, lambda v: "required value missing")
        return out

    def choice(self, col: str, allowed: tuple[str, ...], required: bool = False) -> pd.Series:
        values = self.text(col, required)
        self.bad(values.notna() & ~values.isin(allowed), col,
                 lambda v: f"expected one of {', '.join(allowed)}, got {v!r}")
        return values

    def number(self, col: str, limit: float = math.inf) -> pd.Series:
        text = self.text(col)
        values = pd.to_numeric(text, errors="coerce").astype("float64")
        self.bad(text.notna() & ~(values.abs() <= limit), col,
                 lambda v: f"expected a number{'' if limit == math.inf else f' within ±{limit:g}'}"
                           f", got {v!r}")
        return values.where(values.abs() <= limit)

    def times(self, col: str, parse: Callable[[pd.Series], pd.Series], expected: str,
              required: bool = False) -> pd.Series:
        text = self.text(col, required)
        values = parse(text)
        self.bad(text.notna() & values.isna(), col, lambda v: f"expected {expected}, got {v!r}")
        return values

    def coords(self, address: pd.Series) -> tuple[pd.Series, pd.Series]:
        lat, lon = self.number("lat", 90), self.number("long", 180)
        given = self.text("lat").notna() | self.text("long").notna()
        self.bad(~given & address.isna(), "lat", lambda v: "lat/long missing and no address")
        self.bad(self.text("lat").isna() & self.text("long").notna(), "lat",
                 lambda v: "lat missing while long is given")
        self.bad(self.text("long").isna() & self.text("lat").notna(), "long",
                 lambda v: "long missing while lat is given")
        return lat, lon

    def result(self, table: pd.DataFrame) -> ImportResult:
        bad = np.isin(self.lines, [e.line for e in self.errors])
        kept = coerce_requests(table.loc[~bad])
        return ImportResult(kept, sorted(self.errors))


def _missing(v: Any) -> bool:
    return v is None or v == "" or (isinstance(v, float) and math.isnan(v))


def _read_csv(path: Path) -> tuple[pd.DataFrame, list[int], list[RowError]]:
    """Rows of a CSV as text, the physical line each starts on, and rows of the wrong width."""
    rows, lines, errors = [], [], []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise Open311Error(f"{path}: empty file, expected a header line")
        start = reader.line_num + 1
        for record in reader:
            if record and len(record) != len(header):
                errors.append(RowError(start, "", f"expected {len(header)} fields, "
                                                  f"got {len(record)}"))
            elif record:
                rows.append(record)
                lines.append(start)
            start = reader.line_num + 1
    return pd.DataFrame(rows, columns=header, dtype=object), lines, errors


def _require_columns(path: Path, columns, needed) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise Open311Error(f"{path}: missing column(s) {', '.join(missing)}")


def _parse_iso(tz: str) -> Callable[[pd.Series], pd.Series]:
    def parse(text: pd.Series) -> pd.Series:
        ok = text.str.match(_ISO_RE).fillna(False).astype(bool)
        times = pd.to_datetime(text.where(ok), format="ISO8601", utc=True, errors="coerce")
        return times.dt.tz_convert(tz).dt.tz_localize(None).astype("datetime64[ns]")
    return parse


def _json_rows(path: Path) -> tuple[pd.DataFrame, list[int], list[RowError]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise Open311Error(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    if not isinstance(data, list):
        raise Open311Error(f"{path}: expected a JSON list of requests, got "
                           f"{type(data).__name__}")
    rows, lines, errors = [], [], []
    for i, obj in enumerate(data):
        ext = obj.get("extended_attributes") if isinstance(obj, dict) else None
        if not isinstance(obj, dict) or not isinstance(ext or {}, dict):
            errors.append(RowError(i, "extended_attributes" if isinstance(obj, dict) else "request",
                                   "expected an object"))
            continue
        rows.append({**{k: v for k, v in obj.items() if k != "extended_attributes"},
                     **{k: v for k, v in (ext or {}).items() if k in EXTENSION_FIELDS}})
        lines.append(i)
    return pd.DataFrame(rows, dtype=object), lines, errors


def read_open311(path: str | Path, catalogue: dict[str, Service],
                 tz: str = DEFAULT_TZ) -> ImportResult:
    """Read a GeoReport v2 request list (``.json``) or a CSV with the same field names.

    Kept rows become a request table with local times in ``tz``. Without the twin's
    extension fields, ``state`` follows ``status`` (received / closed), ``priority``,
    ``service_name`` and ``agency_responsible`` come from ``catalogue`` when absent, and a
    closed request's ``closed_datetime`` is its ``updated_datetime``.
    """
    path = Path(path)
    if not path.is_file():
        raise Open311Error(f"{path}: file not found")
    is_json = path.suffix.lower() == ".json" or path.read_text(encoding="utf-8-sig")[:1] == "["
    raw, lines, errors = _json_rows(path) if is_json else _read_csv(path)
    if not is_json:
        _require_columns(path, raw.columns, REQUIRED_FIELDS)
    rows = _Rows(raw, lines)
    rows.errors += errors
    iso = "ISO 8601 with offset (2024-01-10T18:00:00+01:00)"
    t = pd.DataFrame({c: rows.text(c) for c in REQUEST_COLUMNS if REQUEST_COLUMNS[c] == "string"})
    t["service_request_id"] = rows.text("service_request_id", required=True)
    rows.bad(t["service_request_id"].duplicated() & t["service_request_id"].notna(),
             "service_request_id", lambda v: f"{v!r} already used on an earlier row")
    t["service_code"] = rows.choice("service_code", tuple(catalogue), required=True)
    t["status"] = rows.choice("status", OPEN311_STATUSES, required=True)
    t["channel"] = rows.choice("channel", CHANNELS)
    t["state"] = rows.choice("state", STATES)
    for c in _TIME_FIELDS:
        t[c] = rows.times(c, _parse_iso(tz), iso, required=(c == "requested_datetime"))
    t["lat"], t["long"] = rows.coords(t["address"])
    t["x_m"], t["y_m"] = rows.number("x_m"), rows.number("y_m")
    priority = rows.number("priority")
    rows.bad(priority.notna() & ~priority.isin([1, 2, 3]), "priority",
             lambda v: f"expected 1, 2 or 3, got {v!r}")
    stated = t["state"].where(t["state"].isin(STATES)).dropna().map(open311_status)
    rows.bad((stated != t["status"].loc[stated.index]).reindex(t.index, fill_value=False),
             "state", lambda v: f"state {v!r} contradicts the row's status")

    known = t["service_code"].where(t["service_code"].isin(list(catalogue)))
    from_catalogue = {a: known.map(lambda c, a=a: getattr(catalogue[c], a), na_action="ignore")
                      for a in ("service_name", "agency_responsible", "priority")}
    for a in ("service_name", "agency_responsible"):
        t[a] = t[a].fillna(from_catalogue[a].astype("string"))
    t["priority"] = priority.fillna(from_catalogue["priority"].astype(float)).fillna(3)
    t["state"] = t["state"].fillna(t["status"].map({"open": "received", "closed": "closed"}))
    closed_no_time = (t["status"] == "closed") & t["closed_datetime"].isna()
    t.loc[closed_no_time, "closed_datetime"] = t.loc[closed_no_time, "updated_datetime"]
    return rows.result(t)


def import_summary(result: ImportResult, catalogue: dict[str, Service],
                   population: int | None = None) -> dict[str, Any]:
    """What an imported log says, beside the catalogue: rows kept and bad, the period,
    requests by service (per 1,000 inhabitants a year when ``population`` is given, next
    to the catalogue's rate) and by channel, share closed, median hours to close."""
    df = result.requests
    start, end = df["requested_datetime"].min(), df["requested_datetime"].max()
    years = ((end - start) / pd.Timedelta(days=365)) if len(df) > 1 else float("nan")
    by_service: dict[str, dict[str, float]] = {}
    for code, n in df["service_code"].value_counts().items():
        row: dict[str, float] = {"requests": int(n)}
        if population and years and years > 0:
            row["per_1000_per_year"] = float(n) / years / population * 1000.0
            if code in catalogue:
                row["catalogue_per_1000_per_year"] = catalogue[code].rate_per_1000_per_year
        by_service[str(code)] = row
    closed = df["closed_datetime"].notna()
    hours = (df.loc[closed, "closed_datetime"] - df.loc[closed, "requested_datetime"]) \
        / pd.Timedelta(hours=1)
    return {
        "rows_kept": int(len(df)), "rows_bad": len(result.bad_lines),
        "bad_lines": result.bad_lines[:50],
        "first": None if pd.isna(start) else str(start), "last": None if pd.isna(end) else str(end),
        "years": None if pd.isna(years) else float(years),
        "by_service": by_service,
        "by_channel": {str(k): int(v) for k, v in df["channel"].value_counts().items()},
        "closed_share": float(closed.mean()) if len(df) else float("nan"),
        "median_hours_to_close": float(hours.median()) if len(hours) else float("nan"),
    }


# --- the Los Angeles MyLA311 log ---------------------------------------------------
# RequestType -> our service_code. Types not listed map to "other". Appliances and
# electronic waste are kerbside pickups booked like bulky items in LA; "Report Water
# Waste" reports someone wasting water (a sprinkler), not a leak, hence "other".
MYLA311_TYPES: dict[str, str] = {
    "Bulky Items": "bulky_items", "Metal/Household Appliances": "bulky_items",
    "Electronic Waste": "bulky_items", "Graffiti Removal": "graffiti",
    "Illegal Dumping Pickup": "illegal_dumping", "Dead Animal Removal": "dead_animal",
    "Single Streetlight Issue": "street_light_out",
    "Multiple Streetlight Issue": "street_light_out",
    "Homeless Encampment": "other", "Report Water Waste": "other", "Feedback": "other",
    "Other": "other",
}
# RequestSource -> channel. "Driver Self Report" (sanitation crews reporting what they
# see) is raised by the city, not a resident: "proactive". Unlisted sources -> <NA>.
MYLA311_CHANNELS: dict[str, str] = {
    "Call": "phone", "Voicemail": "phone", "Mobile App": "app", "Self Service": "web",
    "Email": "web", "Walk-in": "counter", "Driver Self Report": "proactive",
}
# Status -> (Open311 status, state); the LA status itself goes to status_notes.
MYLA311_STATUSES: dict[str, tuple[str, str]] = {
    "Closed": ("closed", "closed"), "Cancelled": ("closed", "closed"),
    "Referred Out": ("closed", "closed"), "Open": ("open", "received"),
    "Pending": ("open", "received"), "In Progress": ("open", "in_progress"),
}
MYLA311_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"


def _parse_la(text: pd.Series) -> pd.Series:
    return pd.to_datetime(text, format=MYLA311_TIME_FORMAT, errors="coerce")


def read_myla311(path: str | Path) -> ImportResult:
    """Read the Los Angeles MyLA311 open-data CSV into a request table.

    SRNumber -> service_request_id; RequestType -> service_code (``MYLA311_TYPES``, the
    LA type kept in ``description``); Status -> status/state (``MYLA311_STATUSES``, the LA
    status kept in ``status_notes``); RequestSource -> channel (``MYLA311_CHANNELS``);
    CreatedDate, UpdatedDate, ServiceDate, ClosedDate -> requested, updated, expected,
    closed datetimes (LA local time); Owner -> agency_responsible; Latitude/Longitude ->
    lat/long, which may be missing when the row has an Address (kept as ``address``).
    """
    path = Path(path)
    if not path.is_file():
        raise Open311Error(f"{path}: file not found")
    raw, lines, errors = _read_csv(path)
    needed = ("SRNumber", "CreatedDate", "UpdatedDate", "ServiceDate", "ClosedDate",
              "RequestType", "Status", "RequestSource", "Owner", "Address", "Latitude",
              "Longitude")
    _require_columns(path, raw.columns, needed)
    rename = {"SRNumber": "service_request_id", "Owner": "agency_responsible",
              "Address": "address", "Latitude": "lat", "Longitude": "long"}
    rows = _Rows(raw.rename(columns=rename), lines)
    rows.errors += errors
    la = "MM/DD/YYYY hh:mm:ss AM/PM"
    catalogue = default_catalogue()
    t = pd.DataFrame({"service_request_id": rows.text("service_request_id", required=True)})
    rtype = rows.text("RequestType", required=True)
    status = rows.choice("Status", tuple(MYLA311_STATUSES), required=True)
    t["service_code"] = rtype.map(lambda v: MYLA311_TYPES.get(v, "other"), na_action="ignore")
    t["service_name"] = t["service_code"].map(lambda c: catalogue[c].service_name,
                                              na_action="ignore")
    t["priority"] = t["service_code"].map(lambda c: catalogue[c].priority,
                                          na_action="ignore").fillna(3)
    t["description"] = rtype
    t["status"] = status.map(lambda s: MYLA311_STATUSES[s][0], na_action="ignore")
    t["state"] = status.map(lambda s: MYLA311_STATUSES[s][1], na_action="ignore")
    t["status_notes"] = status
    t["channel"] = rows.text("RequestSource").map(MYLA311_CHANNELS.get, na_action="ignore")
    t["agency_responsible"] = rows.text("agency_responsible")
    t["address"] = rows.text("address")
    t["lat"], t["long"] = rows.coords(t["address"])
    for col, source in (("requested_datetime", "CreatedDate"), ("updated_datetime",
                        "UpdatedDate"), ("expected_datetime", "ServiceDate"),
                        ("closed_datetime", "ClosedDate")):
        t[col] = rows.times(source, _parse_la, la, required=(source == "CreatedDate"))
    return rows.result(t)
