"""The sensor registry: which twin element each sensor measures, in which unit and range.

A registry file is CSV (a header row) or YAML (a list of mappings, or ``sensors:`` holding
one) with the fields ``sensor_id, layer, element, quantity, unit, min, max`` and optionally
``period_s`` (the nominal sampling period, s). ``min``/``max`` are in ``unit``; an empty
one means no bound. Errors name the file, the line and the field.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Iterator

from twin.errors import BadInput

REQUIRED = ("sensor_id", "layer", "element", "quantity", "unit", "min", "max")
OPTIONAL = ("period_s",)


class RegistryError(BadInput):
    """A sensor registry file or record that cannot be used."""

    def __init__(self, source: str, line: int | None, field: str | None, message: str):
        where = source + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")
        self.source, self.line, self.field = source, line, field


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One sensor: it measures ``quantity`` of ``element`` in ``layer``, in ``unit``."""

    sensor_id: str
    layer: str
    element: str
    quantity: str
    unit: str
    min: float              # lowest plausible value, in unit (-inf: no bound)
    max: float              # highest plausible value, in unit (inf: no bound)
    period_s: float | None = None


class SensorRegistry:
    """Sensors by id. Build with :meth:`load` (a file) or :meth:`from_records` (dicts)."""

    def __init__(self, sensors: Iterable[SensorSpec]):
        self._by_id: dict[str, SensorSpec] = {}
        for spec in sensors:
            if spec.sensor_id in self._by_id:
                raise RegistryError("registry", None, "sensor_id",
                                    f"{spec.sensor_id!r} appears twice")
            self._by_id[spec.sensor_id] = spec

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SensorRegistry":
        """Read a ``.csv`` or ``.yaml``/``.yml`` registry file."""
        path = Path(path)
        if not path.is_file():
            raise RegistryError(str(path), None, None, "registry file not found")
        text = path.read_text(encoding="utf-8-sig")
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return cls.from_records(*_csv_records(text, str(path)), source=str(path))
        if suffix in (".yaml", ".yml"):
            return cls.from_records(*_yaml_records(text, str(path)), source=str(path))
        raise RegistryError(str(path), None, None,
                            f"expected a .csv, .yaml or .yml file, got {suffix or 'no suffix'!r}")

    @classmethod
    def from_records(cls, records: list[dict[str, Any]], lines: list[int] | None = None,
                     source: str = "records") -> "SensorRegistry":
        """Registry from dicts; ``lines`` (one per record) locates errors in ``source``."""
        specs: list[SensorSpec] = []
        seen: dict[str, str] = {}
        for i, record in enumerate(records):
            where = (source, lines[i]) if lines else (f"{source}[{i}]", None)
            spec = _spec(record, *where)
            if spec.sensor_id in seen:
                raise RegistryError(*where, "sensor_id", f"{spec.sensor_id!r} appears twice "
                                    f"(first at {seen[spec.sensor_id]})")
            seen[spec.sensor_id] = f"line {where[1]}" if lines else where[0]
            specs.append(spec)
        return cls(specs)

    def get(self, sensor_id: str) -> SensorSpec | None:
        return self._by_id.get(sensor_id)

    def __getitem__(self, sensor_id: str) -> SensorSpec:
        return self._by_id[sensor_id]

    def __contains__(self, sensor_id: object) -> bool:
        return sensor_id in self._by_id

    def __iter__(self) -> Iterator[SensorSpec]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def ids(self) -> list[str]:
        return list(self._by_id)

    def to_frame(self):
        """The registry as a pandas DataFrame, one row per sensor, indexed by sensor_id."""
        import pandas as pd

        columns = [f.name for f in fields(SensorSpec)]
        return pd.DataFrame([asdict(s) for s in self], columns=columns).set_index("sensor_id")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the registry as CSV (``.csv``) or YAML (``.yaml``/``.yml``)."""
        path = Path(path)
        rows = [_record(s) for s in self]
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            path.write_text(yaml.safe_dump({"sensors": rows}, sort_keys=False))
        else:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=list(REQUIRED + OPTIONAL), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            path.write_text(buf.getvalue())
        return path


def _record(spec: SensorSpec) -> dict[str, Any]:
    row = asdict(spec)
    for bound in ("min", "max"):
        if math.isinf(row[bound]):
            row[bound] = ""
    row["period_s"] = "" if row["period_s"] is None else row["period_s"]
    return row


def _spec(record: Any, source: str, line: int | None) -> SensorSpec:
    if not isinstance(record, dict):
        raise RegistryError(source, line, None,
                            f"expected a mapping of {', '.join(REQUIRED)}, got {type(record).__name__}")
    unknown = sorted(set(map(str, record)) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise RegistryError(source, line, unknown[0],
                            f"unknown field (expected {', '.join(REQUIRED + OPTIONAL)})")
    values: dict[str, Any] = {}
    for name in REQUIRED[:5]:
        value = record.get(name)
        if value is None or not str(value).strip():
            raise RegistryError(source, line, name, "expected a non-empty text, got nothing")
        values[name] = str(value).strip()
    values["min"] = _number(record.get("min"), -math.inf, source, line, "min")
    values["max"] = _number(record.get("max"), math.inf, source, line, "max")
    if values["min"] > values["max"]:
        raise RegistryError(source, line, "min",
                            f"min {values['min']:g} is above max {values['max']:g}")
    period = _number(record.get("period_s"), None, source, line, "period_s")
    if period is not None and not (math.isfinite(period) and period > 0):
        raise RegistryError(source, line, "period_s", f"expected seconds > 0, got {period:g}")
    return SensorSpec(**values, period_s=period)


def _number(value: Any, empty: float | None, source: str, line: int | None,
            field: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return empty
    if isinstance(value, bool):
        raise RegistryError(source, line, field, f"expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RegistryError(source, line, field, f"expected a number, got {value!r}") from None
    if math.isnan(number):
        raise RegistryError(source, line, field, "expected a number, got NaN")
    return number


def _csv_records(text: str, source: str) -> tuple[list[dict[str, Any]], list[int]]:
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    records, lines = [], []
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue                            # blank line
        if None in row:                         # more cells than header columns
            row = {k: v for k, v in row.items() if k is not None} | {"(extra cells)": "x"}
        records.append({k.strip(): v for k, v in row.items()})
        lines.append(reader.line_num)
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [f for f in REQUIRED if f not in header]
    if missing:
        raise RegistryError(source, 1, missing[0], "column missing from the header "
                            f"(expected {', '.join(REQUIRED)})")
    return records, lines


def _yaml_records(text: str, source: str) -> tuple[list[Any], list[int]]:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RegistryError(source, mark.line + 1 if mark else None, None,
                            f"malformed YAML: {getattr(exc, 'problem', exc)}") from None
    node = root
    if isinstance(data, dict) and "sensors" in data:
        data = data["sensors"]
        node = next(v for k, v in root.value if k.value == "sensors")
    if not isinstance(data, list):
        raise RegistryError(source, 1, "sensors", "expected a list of sensors")
    return data, [item.start_mark.line + 1 for item in node.value]
