"""Plausibility checks: each decoded item is accepted or quarantined with a reason.

Order of the checks: decoding (malformed, not_numeric, nan: see ``readings.py``), then
unknown_sensor, wrong_unit, out_of_range, future, late, duplicate / out_of_order.

An identical repeat of an accepted reading (same sensor, timestamp and value: an MQTT
redelivery or a gateway resending) is accepted again; the store's primary key absorbs it,
so it is neither stored twice nor quarantined. The same sensor and timestamp with another
value is a ``duplicate``.

``now`` is a callable giving UTC epoch seconds (``time.time`` for live data). With
``now=None`` the clock is the replayed one: the newest accepted timestamp of any sensor
(future/late are not checked before the first accepted reading). A replayed recording with
a gap longer than ``future_tolerance_s`` would be refused after the gap: give a tolerance
longer than the longest gap.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable

from live_bridge.readings import Quarantined, Reading, Reason, raw_text
from live_bridge.registry import SensorRegistry

RECENT_PER_SENSOR = 1024   # accepted timestamps remembered per sensor to tell duplicates


class Checker:
    """Accepts or quarantines readings against a registry, keeping counts per reason.

    ``lateness_s``: readings older than now - lateness_s are ``late`` (None: no check).
    ``future_tolerance_s``: readings later than now + tolerance are ``future`` (None: no check).
    """

    def __init__(self, registry: SensorRegistry, lateness_s: float | None = None,
                 future_tolerance_s: float | None = 300.0,
                 now: Callable[[], float] | None = None):
        self.registry = registry
        self.lateness_s = lateness_s
        self.future_tolerance_s = future_tolerance_s
        self.now = now
        self.accepted = 0
        self.quarantined: Counter[Reason] = Counter()
        self.replay_clock_s: float | None = None
        self._recent: dict[str, dict[float, float]] = {}   # sensor -> {time_s: value}, in time order
        self._newest: dict[str, float] = {}

    def check(self, item: Reading | Quarantined) -> Reading | Quarantined:
        """The item accepted (a Reading) or quarantined (with its reason); updates counts."""
        verdict = item if isinstance(item, Quarantined) else self._verdict(item)
        if isinstance(verdict, Quarantined):
            self.quarantined[verdict.reason] += 1
        else:
            self.accepted += 1
            self._remember(verdict)
        return verdict

    def check_many(self, items: Iterable[Reading | Quarantined],
                   topic: str = "") -> tuple[list[Reading], list[Quarantined]]:
        """Accepted readings and quarantine records, each in arrival order."""
        accepted: list[Reading] = []
        refused: list[Quarantined] = []
        for item in items:
            verdict = self.check(item)
            if isinstance(verdict, Reading):
                accepted.append(verdict)
            else:
                refused.append(verdict if verdict.topic or not topic else
                               Quarantined(verdict.raw, verdict.reason, verdict.detail,
                                           verdict.sensor_id, topic))
        return accepted, refused

    def counts(self) -> dict[str, int]:
        """Accepted and quarantined counts, one key per reason (zeros included)."""
        out = {"accepted": self.accepted, "quarantined": sum(self.quarantined.values())}
        out.update({r.value: self.quarantined[r] for r in Reason})
        return out

    def _verdict(self, r: Reading) -> Reading | Quarantined:
        spec = self.registry.get(r.sensor_id)
        if spec is None:
            return _refuse(r, Reason.UNKNOWN_SENSOR,
                           f"sensor {r.sensor_id!r} is not in the registry ({len(self.registry)} sensors)")
        if _unit_key(r.unit) != _unit_key(spec.unit):
            return _refuse(r, Reason.WRONG_UNIT,
                           f"unit {r.unit!r} where sensor {r.sensor_id!r} measures in {spec.unit!r}")
        if not spec.min <= r.value <= spec.max:
            return _refuse(r, Reason.OUT_OF_RANGE, f"{r.value:g} {r.unit} outside "
                           f"[{spec.min:g}, {spec.max:g}] for {spec.quantity} of {spec.element}")
        now = self.now() if self.now is not None else self.replay_clock_s
        if now is not None:
            if self.future_tolerance_s is not None and r.time_s > now + self.future_tolerance_s:
                return _refuse(r, Reason.FUTURE, f"timestamp {r.time_s - now:.0f} s after now "
                               f"(tolerance {self.future_tolerance_s:g} s)")
            if self.lateness_s is not None and r.time_s < now - self.lateness_s:
                return _refuse(r, Reason.LATE, f"timestamp {now - r.time_s:.0f} s before now "
                               f"(lateness allowed {self.lateness_s:g} s)")
        newest = self._newest.get(r.sensor_id)
        if newest is not None and r.time_s <= newest:
            before = self._recent[r.sensor_id].get(r.time_s)
            if before is None:
                return _refuse(r, Reason.OUT_OF_ORDER, f"timestamp {newest - r.time_s:g} s older "
                               f"than the newest accepted reading of {r.sensor_id!r}")
            if before != r.value:
                return _refuse(r, Reason.DUPLICATE, f"{r.sensor_id!r} already has {before:g} "
                               f"{r.unit} at this timestamp (got {r.value:g})")
        return r

    def _remember(self, r: Reading) -> None:
        recent = self._recent.setdefault(r.sensor_id, {})
        if r.time_s in recent:
            return                                   # an identical repeat
        recent[r.time_s] = r.value
        if len(recent) > 2 * RECENT_PER_SENSOR:      # forget the oldest half
            for t in list(recent)[:RECENT_PER_SENSOR]:
                del recent[t]
        self._newest[r.sensor_id] = r.time_s
        if self.replay_clock_s is None or r.time_s > self.replay_clock_s:
            self.replay_clock_s = r.time_s


def _refuse(r: Reading, reason: Reason, detail: str) -> Quarantined:
    return Quarantined(raw_text(r), reason, detail, r.sensor_id)


def _unit_key(unit: str) -> str:
    """Units compare without case, spaces or superscripts: 'm3/h' == 'm³/h', 'l/h' == 'L/h'."""
    return unit.strip().replace("³", "3").replace("²", "2").replace(" ", "").casefold()


__all__ = ["Checker", "Reason"]
