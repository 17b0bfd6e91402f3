"""Building blocks of scenario files: the located error, durations and strict field types.

Every validator raises :class:`_Problem` with what was expected; :mod:`twin.scenario`
turns it into a :class:`ScenarioError` naming the file, line and field.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from twin.quantities import known_quantities


# --- the error ---------------------------------------------------------------------------
class ScenarioError(Exception):
    """A scenario problem, located: ``path:line: field: expected ..., got ...``.

    ``field`` is a dotted path such as ``events[1].leak_area_m2`` (None for a
    whole-file problem); ``line`` is 1-based, or None where it is not known.
    """

    def __init__(self, path: str | os.PathLike | None, field: str | None, line: int | None,
                 expected: str, got: str | None = None, detail: str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.field = field or None
        self.line = line
        self.expected = expected
        self.got = got
        self.detail = detail
        super().__init__(str(self))

    def __str__(self) -> str:
        where = str(self.path) if self.path is not None else "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
        what = self.detail or (f"expected {self.expected}" + (f", got {self.got}" if self.got else ""))
        return f"{where}: {self.field}: {what}" if self.field else f"{where}: {what}"


class _Problem(ValueError):
    """Raised inside validators: what was expected, optionally deeper in the data (``loc``)."""

    def __init__(self, expected: str, loc: tuple[str | int, ...] = (), got: str | None = None,
                 show_input: bool = True) -> None:
        super().__init__(expected)
        self.expected = expected
        self.loc = loc
        self.got = got
        self.show_input = show_input


# --- durations and times -----------------------------------------------------------------
_UNIT_SECONDS = {
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_COMPOUND = re.compile(rf"(?:\s*{_NUMBER}\s*[a-z]+)+\s*", re.IGNORECASE)
_PART = re.compile(rf"({_NUMBER})\s*([a-z]+)", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(rf"\s*[+-]?{_NUMBER}\s*")
_ISO_DURATION = re.compile(
    rf"P(?:(?P<w>{_NUMBER})W)?(?:(?P<d>{_NUMBER})D)?"
    rf"(?:T(?=\d|\.)(?:(?P<h>{_NUMBER})H)?(?:(?P<m>{_NUMBER})M)?(?:(?P<s>{_NUMBER})S)?)?",
    re.IGNORECASE)
_DURATION_HELP = ("a duration such as '24h', '7d', '90min', '1h30min', 'PT24H' "
                  "or a number of seconds")


def parse_duration(value: Any) -> float:
    """Seconds in a duration: ``"24h"``, ``"7d"``, ``"1h30min"``, ``"PT24H"``, ``300``...

    Raises ValueError (saying what is accepted) for anything else or a negative value.
    """
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str):
        text = value.strip()
        if _PLAIN_NUMBER.fullmatch(text):
            seconds = float(text)
        elif (iso := _ISO_DURATION.fullmatch(text)) and len(text) > 1 and text[-1].upper() != "T":
            seconds = sum(float(iso[key]) * _UNIT_SECONDS[key.lower()]
                          for key in ("w", "d", "h", "m", "s") if iso[key] is not None)
        elif _COMPOUND.fullmatch(text):
            parts = _PART.findall(text)
            if all(unit.lower() in _UNIT_SECONDS for _, unit in parts):
                seconds = sum(float(n) * _UNIT_SECONDS[unit.lower()] for n, unit in parts)
    if seconds is None or not math.isfinite(seconds):
        raise ValueError(f"expected {_DURATION_HELP}, got {value!r}")
    if seconds < 0:
        raise ValueError(f"expected a duration >= 0, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Compact text for a duration that :func:`parse_duration` reads back: ``"1d6h30min"``."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    days, rest = divmod(float(seconds), 86400.0)
    hours, rest = divmod(rest, 3600.0)
    minutes, secs = divmod(rest, 60.0)
    parts = [f"{int(days)}d" if days else "", f"{int(hours)}h" if hours else "",
             f"{int(minutes)}min" if minutes else "", f"{secs:g}s" if secs else ""]
    return "".join(parts) or "0s"


def _parse_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected an ISO datetime such as '2026-06-15T07:30', got {value!r}")


# --- field types: strict, with messages that say what was expected -------------------------
def _bounds_text(gt: float | None, ge: float | None, le: float | None) -> str:
    if ge is not None and le is not None:
        return f" in {ge:g}..{le:g}"
    return (f" > {gt:g}" if gt is not None else "") + (f" >= {ge:g}" if ge is not None else "") \
        + (f" <= {le:g}" if le is not None else "")


def _number(gt: float | None = None, ge: float | None = None,
            le: float | None = None) -> Callable[[Any], float]:
    expected = "a number" + _bounds_text(gt, ge, le)

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or (gt is not None and value <= gt) \
                or (ge is not None and value < ge) or (le is not None and value > le):
            raise _Problem(expected)
        return float(value)
    return check


def _integer(ge: int | None = None, le: int | None = None) -> Callable[[Any], int]:
    expected = "a whole number" + _bounds_text(None, ge, le)

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) \
                or (ge is not None and value < ge) or (le is not None and value > le):
            raise _Problem(expected)
        return value
    return check


def _duration(positive: bool, whole_seconds: bool = False,
              min_step_s: int | None = None) -> Callable[[Any], float]:
    """A duration check; ``whole_seconds`` (and a step's ``min_step_s``) because EPANET
    counts time in integer seconds."""
    whole_text = (f"a step of at least {min_step_s} s in whole seconds" if min_step_s is not None
                  else "a duration in whole seconds") + " (EPANET uses integer seconds)"

    def check(value: Any) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise _Problem(str(exc).removeprefix("expected ").split(", got ")[0]) from None
        if min_step_s is not None and seconds < min_step_s:
            raise _Problem(whole_text)
        if positive and seconds <= 0:
            raise _Problem("a duration > 0")
        if whole_seconds or min_step_s is not None:
            whole = round(seconds)
            if abs(seconds - whole) > 1e-6:         # tolerate float noise only, as in '0.1h'
                raise _Problem(whole_text)
            seconds = float(whole)
        return seconds
    return check


def _event_time(value: Any) -> float | dt.datetime:
    """An offset from the start (a duration) or an absolute ISO datetime."""
    try:
        return parse_duration(value)
    except ValueError:
        pass
    try:
        return _parse_datetime(value)
    except ValueError:
        raise _Problem("an offset from the start such as '7h30min' "
                       "or an ISO datetime such as '2026-06-15T07:30'") from None


def _start_time(value: Any) -> dt.datetime:
    try:
        return _parse_datetime(value)
    except ValueError:
        raise _Problem("an ISO datetime such as '2026-06-15T00:00'") from None


def _element_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)           # EPANET ids are often numbers: `pipe: 10`
    if not isinstance(value, str) or not value.strip():
        raise _Problem("an element id (text such as 's12' or a whole number)")
    return value.strip()


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Problem("text")
    return value


_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _name(value: Any) -> str:
    """A scenario name; it becomes part of file names, so no '/', '..' or spaces."""
    if not isinstance(value, str) or not _NAME_PATTERN.fullmatch(value.strip()):
        raise _Problem("a name of letters, digits, '.', '_' or '-' that starts with a letter "
                       "or digit, such as 'main_break-2' (it becomes a file name)")
    return value.strip()


def safe_name(stem: str) -> str:
    """A valid scenario name from a file stem: bad characters become '_'."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip("._-")
    return name or "scenario"


def _crs(value: Any) -> str:
    """A coordinate reference system pyproj knows (checked here, not when the run starts)."""
    expected = "a coordinate reference system such as 'EPSG:2154' (as pyproj reads it)"
    if not isinstance(value, str) or not value.strip():
        raise _Problem(expected)
    from pyproj import CRS                      # imported only when a file names a CRS
    from pyproj.exceptions import CRSError
    try:
        CRS.from_user_input(value.strip())
    except CRSError as exc:
        reason = str(exc).rsplit("proj_create: ", 1)[-1].rstrip(")")
        raise _Problem(expected, got=f"{value!r} ({reason})") from None
    return value.strip()


def _distinct(kind: str, field: str) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    """Each id once: a repeated id is reported at its second occurrence."""
    def check(ids: tuple[str, ...]) -> tuple[str, ...]:
        first: dict[str, int] = {}
        for i, element_id in enumerate(ids):
            if element_id in first:
                raise _Problem(f"each {kind} once", loc=(i,),
                               got=f"{element_id!r} again (first as {field}[{first[element_id]}])",
                               show_input=False)
            first[element_id] = i
        return ids
    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Problem("true or false")
    return value


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise _Problem("one of " + ", ".join(repr(o) for o in options))
        return value
    return check


def _quantity_names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise _Problem("a list of quantity names such as [pressure, flow, tank_level]")
    known = known_quantities()
    for i, item in enumerate(value):
        if not isinstance(item, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", item):
            raise _Problem("a snake_case quantity name such as 'pressure'", loc=(i,))
        if item not in known:
            close = difflib.get_close_matches(item, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise _Problem(f"a recordable quantity ({', '.join(known)})", loc=(i,),
                           got=f"unknown quantity {item!r}{hint}", show_input=False)
    return tuple(value)


def _empty_if_none(empty: Any) -> Callable[[Any], Any]:
    return lambda value: empty if value is None else value


ElementId = Annotated[str, BeforeValidator(_element_id)]
Duration = Annotated[float, BeforeValidator(_duration(positive=True))]
HorizonDuration = Annotated[float, BeforeValidator(_duration(positive=True, whole_seconds=True))]
StepDuration = Annotated[float, BeforeValidator(_duration(positive=True, min_step_s=1))]
EventTime = Annotated[Union[float, dt.datetime], BeforeValidator(_event_time)]


class _Spec(BaseModel):
    """Frozen, strict about unknown fields, and says which fields it knows."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    _internal_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def yaml_keys(cls) -> list[str]:
        """The keys this section accepts in a scenario file, in declaration order."""
        return [f.alias or name for name, f in cls.model_fields.items()
                if name not in cls._internal_fields]

    @classmethod
    def _keys(cls) -> tuple[tuple[str, ...], frozenset[str]]:
        """(:meth:`yaml_keys`, every key a field answers to), made once per class: reading
        ``model_fields`` costs pydantic more than validating a small section does, and an
        ensemble validates thousands of members."""
        cached = cls.__dict__.get("_keys_cache")
        if cached is None:
            known = tuple(cls.yaml_keys())
            cached = (known, frozenset(known) | {f.alias or n
                                                 for n, f in cls.model_fields.items()})
            type.__setattr__(cls, "_keys_cache", cached)
        return cached

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_fields(cls, data: Any) -> Any:
        return cls._check_keys(data)

    @classmethod
    def _check_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known, allowed = cls._keys()
            for key in data:
                if key not in allowed:
                    close = difflib.get_close_matches(str(key), known, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise _Problem(f"a known field ({', '.join(known)})", loc=(key,),
                                   got=f"unknown field {key!r}{hint}", show_input=False)
        return data
