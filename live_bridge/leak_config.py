"""The BattLeDIM dataset configuration (``dataset_configuration_*.yalm``).

The file is YAML: ``times`` (StartTime, EndTime), ``leakages`` (one string per
leak: ``linkID, startTime, endTime, leakDiameter (m), leakType, peakTime``;
a leading ``- #`` item is the column header), the sensor layout
(``pressure_sensors``, ``flow_sensors``, ``level_sensors``, ``amrs``) and
optionally the network file name. Errors name the file, the entry and what is
wrong.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from twin.errors import BadInput

TIME_FORMAT = "%Y-%m-%d %H:%M"


class LeakConfigError(BadInput):
    """A BattLeDIM configuration file that cannot be used."""


@dataclass(frozen=True)
class LeakSpec:
    """One leak of the ground truth: a pipe leaking through an orifice of ``diameter_m``.

    ``incipient`` leaks grow linearly from nothing at ``start`` to full size at
    ``peak``; ``abrupt`` ones are full size from ``start``. The leak stops at ``end``.
    """

    link_id: str
    start: dt.datetime
    end: dt.datetime
    diameter_m: float
    kind: str            # "incipient" | "abrupt"
    peak: dt.datetime

    @property
    def area_m2(self) -> float:
        return 3.141592653589793 * self.diameter_m ** 2 / 4.0


@dataclass(frozen=True)
class LeakConfig:
    start: dt.datetime
    end: dt.datetime
    leaks: tuple[LeakSpec, ...] = ()
    pressure_sensors: tuple[str, ...] = ()
    flow_sensors: tuple[str, ...] = ()
    level_sensors: tuple[str, ...] = ()
    amrs: tuple[str, ...] = ()
    network_file: str | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def year(self) -> int:
        return self.start.year


def _time(value, where: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    text = str(value).strip()
    for fmt in (TIME_FORMAT, "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise LeakConfigError(f"{where}: expected a time as YYYY-MM-DD HH:MM, got {text!r}")


def _names(raw: dict, key: str, src: str) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list):
        raise LeakConfigError(f"{src}: {key}: expected a list of ids, got {type(value).__name__}")
    return tuple(str(v).strip() for v in value if v is not None)


def parse_leak_line(text: str, where: str) -> LeakSpec:
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 6:
        raise LeakConfigError(
            f"{where}: expected 'linkID, startTime, endTime, leakDiameter (m), leakType, "
            f"peakTime' (6 fields), got {len(parts)} in {text!r}")
    link, start, end, diameter, kind, peak = parts
    try:
        d = float(diameter)
    except ValueError:
        raise LeakConfigError(f"{where}: leakDiameter must be a number of metres, "
                              f"got {diameter!r}") from None
    if not d > 0:
        raise LeakConfigError(f"{where}: leakDiameter must be > 0 m, got {d}")
    kind = kind.lower()
    if kind not in ("incipient", "abrupt"):
        raise LeakConfigError(f"{where}: leakType must be incipient or abrupt, got {kind!r}")
    t0, t1, tp = _time(start, f"{where} startTime"), _time(end, f"{where} endTime"), \
        _time(peak, f"{where} peakTime")
    if t1 < t0:
        raise LeakConfigError(f"{where}: endTime {t1:%Y-%m-%d %H:%M} is before startTime "
                              f"{t0:%Y-%m-%d %H:%M}")
    if kind == "incipient" and not (t0 <= tp):
        raise LeakConfigError(f"{where}: peakTime is before startTime")
    return LeakSpec(link, t0, t1, d, kind, tp)


def load_leak_config(path: str | Path) -> LeakConfig:
    """Read and check a BattLeDIM configuration file."""
    path = Path(path)
    if not path.is_file():
        raise LeakConfigError(f"configuration file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        raise LeakConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise LeakConfigError(f"{path}: expected a mapping with times, leakages and sensors")
    times = raw.get("times")
    if not isinstance(times, dict) or "StartTime" not in times or "EndTime" not in times:
        raise LeakConfigError(f"{path}: times: expected StartTime and EndTime")
    start = _time(times["StartTime"], f"{path}: times.StartTime")
    end = _time(times["EndTime"], f"{path}: times.EndTime")
    if end <= start:
        raise LeakConfigError(f"{path}: times.EndTime must be after StartTime")
    leaks = []
    items = raw.get("leakages") or []
    if not isinstance(items, list):
        raise LeakConfigError(f"{path}: leakages: expected a list of leak lines")
    for i, item in enumerate(items):
        if item is None:           # the '- # linkID, startTime, ...' header item
            continue
        leaks.append(parse_leak_line(item, f"{path}: leakages[{i}]"))
    network = raw.get("Network") or {}
    known = {"times", "leakages", "pressure_sensors", "flow_sensors", "level_sensors",
             "amrs", "Network", "Comments"}
    return LeakConfig(
        start=start, end=end, leaks=tuple(leaks),
        pressure_sensors=_names(raw, "pressure_sensors", str(path)),
        flow_sensors=_names(raw, "flow_sensors", str(path)),
        level_sensors=_names(raw, "level_sensors", str(path)),
        amrs=_names(raw, "amrs", str(path)),
        network_file=network.get("filename") if isinstance(network, dict) else None,
        source=str(path), extra={k: v for k, v in raw.items() if k not in known})


def check_against_network(config: LeakConfig, node_ids, link_ids, pipe_ids) -> None:
    """Every sensor and leak in ``config`` names an element of the network."""
    nodes, links, pipes = set(node_ids), set(link_ids), set(pipe_ids)
    problems = []
    for leak in config.leaks:
        if leak.link_id not in pipes:
            problems.append(f"leak on {leak.link_id!r}: no such pipe in the network")
    for kind, ids, pool in (("pressure sensor", config.pressure_sensors, nodes),
                            ("AMR", config.amrs, nodes),
                            ("level sensor", config.level_sensors, nodes),
                            ("flow sensor", config.flow_sensors, links)):
        for sid in ids:
            if sid not in pool:
                problems.append(f"{kind} {sid!r}: no such element in the network")
    if problems:
        raise LeakConfigError(f"{config.source}: " + "; ".join(problems[:10])
                              + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""))
