"""What the dashboard's endpoints answer, apart from HTTP (so it is testable on its own).

:class:`Dashboard` reads the live bridge's store (readings, alerts, audit log), the
shadow twin's :class:`~live_bridge.dashboard.feed.LiveFeed` (simulated values) and the
:class:`~live_bridge.dashboard.geo.NetworkMap`. Everything is read-only except three
operator actions that need the operator token (``TWIN_OPERATOR_TOKEN`` or the file named by
``TWIN_OPERATOR_TOKEN_FILE``) and are logged in the store's audit log: acknowledging an
alert, running a what-if (it files proposals) and approving a proposal.

Bad input raises a :class:`DashboardError` whose ``status`` is the HTTP status to answer.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import threading
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from twin.errors import BadInput

from live_bridge.approval import ApprovalGate, ApprovalRefused, operator_token
from live_bridge.dashboard.feed import LiveFeed
from live_bridge.dashboard.geo import NetworkMap, nearest, sensor_positions
from live_bridge.registry import SensorRegistry

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
DAY_S = 86400.0


class DashboardError(BadInput):
    """Bad input to the dashboard; ``status`` is the HTTP status that says so."""

    status = 400


class NotFound(DashboardError):
    status = 404


class Unauthorized(DashboardError):
    status = 401


class Forbidden(DashboardError):
    status = 403


class Conflict(DashboardError):
    status = 409


@dataclass(frozen=True)
class DashboardSettings:
    """Windows: the longest a request may ask for and the default (ending at the newest data)."""

    max_window_s: float = 31 * DAY_S
    default_window_s: float = 2 * DAY_S
    token_file: str | None = None
    environ: Mapping[str, str] | None = None


def parse_time(text: str | None, name: str) -> float | None:
    """``text`` (ISO 8601, naive = UTC, or UTC epoch seconds) as UTC epoch seconds."""
    from live_bridge.readings import parse_time as parse_reading_time

    if text is None or text == "":
        return None
    try:
        value: str | float = float(text)
    except ValueError:
        value = text
    try:
        return parse_reading_time(value)
    except ValueError as exc:
        raise DashboardError(f"{name}: {exc}") from None


def iso(time_s: float) -> str:
    return dt.datetime.fromtimestamp(time_s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finite(values: np.ndarray, digits: int = 6) -> list[float | None]:
    """JSON-ready numbers: NaN and infinities as None."""
    values = np.round(np.asarray(values, float), digits)
    out = values.tolist()
    if not np.isfinite(values).all():
        out = [v if math.isfinite(v) else None for v in out]
    return out


class Dashboard:
    """The dashboard's answers (see module doc)."""

    def __init__(self, store, registry: SensorRegistry, network: NetworkMap,
                 feed: LiveFeed | None = None, gate: ApprovalGate | None = None,
                 whatif=None, settings: DashboardSettings = DashboardSettings()) -> None:
        self.store, self.registry, self.network = store, registry, network
        self.feed, self.whatif_desk, self.settings = feed, whatif, settings
        self.gate = gate or ApprovalGate(store, token_file=settings.token_file,
                                         environ=settings.environ)
        self.positions = sensor_positions(network, [
            {"sensor_id": s.sensor_id, "element": s.element, "layer": s.layer,
             "quantity": s.quantity} for s in registry])
        self.whatif_result: dict[str, Any] | None = None
        self.proposals: dict[str, str] = {}           # candidate -> proposal id
        self.changes = 0                              # operator actions so far (for updates)
        self._lock = threading.Lock()

    # -- state for live updates ------------------------------------------------------
    def version(self) -> dict[str, Any]:
        """What changed lately: the feed's steps, the alerts, the operator actions."""
        steps = self.feed.version if self.feed is not None else 0
        return {"steps": steps, "alerts": len(self.store.alerts()), "changes": self.changes,
                "latest": self.latest_s()}

    def latest_s(self) -> float | None:
        """The newest data: the feed's last step, else the newest stored reading."""
        span = self.feed.time_range() if self.feed is not None else None
        if span is None:
            span = self.store.time_range()
        return None if span is None else span[1]

    def status(self) -> dict[str, Any]:
        span = self.store.time_range()
        feed_span = self.feed.time_range() if self.feed is not None else None
        return {"store": getattr(self.store, "url", None), "sensors": len(self.registry),
                "readings": self.store.count(), "elements": self.network.count(),
                "readings_from": iso(span[0]) if span else None,
                "readings_to": iso(span[1]) if span else None,
                "simulated": self.feed is not None,
                "simulated_steps": self.feed.steps if self.feed is not None else 0,
                "simulated_to": iso(feed_span[1]) if feed_span else None,
                "latest": iso(self.latest_s()) if self.latest_s() is not None else None,
                "whatif": self.whatif_desk is not None,
                "max_window_days": self.settings.max_window_s / DAY_S,
                "version": self.version()}

    # -- networks and sensors ----------------------------------------------------------
    def networks(self) -> dict[str, Any]:
        return {"layers": [{"name": n, "elements": sum(len(f) for f in k.values())}
                           for n, k in self.network.layers.items()],
                "bounds": self.network.bounds(), "crs": str(self.network.crs or "")}

    def network_layer(self, layer: str) -> dict:
        try:
            return self.network.geojson(layer)
        except KeyError:
            raise NotFound(f"unknown network layer {layer!r}; this dashboard has: "
                           f"{', '.join(self.network.names()) or 'none'}") from None

    def sensors(self) -> list[dict[str, Any]]:
        """Every sensor with where it is drawn (x, y; None when its element is not mapped)."""
        out = []
        for s in self.registry:
            xy = self.positions.get(s.sensor_id)
            out.append({"sensor_id": s.sensor_id, "layer": s.layer, "element": s.element,
                        "quantity": s.quantity, "unit": s.unit,
                        "x": xy[0] if xy else None, "y": xy[1] if xy else None})
        return out

    def sensor(self, sensor_id: str) -> dict[str, Any]:
        spec = self.registry.get(sensor_id)
        if spec is None:
            raise NotFound(f"unknown sensor {sensor_id!r} (not in the sensor registry of "
                           f"{len(self.registry)} sensors)")
        return next(s for s in self.sensors() if s["sensor_id"] == sensor_id)

    def window(self, start: str | None, end: str | None) -> tuple[float, float]:
        """A checked time window; defaults end at the newest data and span the default."""
        start_s, end_s = parse_time(start, "start"), parse_time(end, "end")
        if end_s is None:
            latest = self.latest_s()
            end_s = latest if latest is not None else dt.datetime.now(dt.timezone.utc).timestamp()
            if start_s is not None and start_s > end_s:
                end_s = start_s + self.settings.default_window_s
        if start_s is None:
            start_s = end_s - self.settings.default_window_s
        if start_s > end_s:
            raise DashboardError(f"time window reversed: start {iso(start_s)} is after end "
                                 f"{iso(end_s)}")
        if end_s - start_s > self.settings.max_window_s:
            raise DashboardError(
                f"time window too large: {(end_s - start_s) / DAY_S:.1f} days from "
                f"{iso(start_s)} to {iso(end_s)}; at most {self.settings.max_window_s / DAY_S:g} "
                "days per request")
        return start_s, end_s

    def series(self, sensor_id: str, start: str | None, end: str | None) -> dict[str, Any]:
        """Measured (the store) and simulated (the shadow twin) values of one sensor."""
        spec = self.sensor(sensor_id)
        start_s, end_s = self.window(start, end)
        frame = self.store.readings([sensor_id], start_s=start_s, end_s=end_s)
        times = frame["time_s"].to_numpy(float)
        measured = frame["value"].to_numpy(float)
        simulated = np.full(len(times), np.nan)
        if self.feed is not None and self.feed.has_sensor(sensor_id):
            t_sim, _, sim = self.feed.series(sensor_id, start_s, end_s)
            pos = np.searchsorted(t_sim, times)
            ok = (pos < len(t_sim)) & (t_sim[np.minimum(pos, len(t_sim) - 1)] == times) \
                if len(t_sim) else np.zeros(len(times), bool)
            simulated[ok] = sim[pos[ok]]
        return {**spec, "start": iso(start_s), "end": iso(end_s), "time_s": times.tolist(),
                "measured": _finite(measured), "simulated": _finite(simulated),
                "residual": _finite(measured - simulated)}

    def residuals(self, start: str | None, end: str | None) -> dict[str, Any]:
        """Hourly residual scores of every sensor over the window, for the map's slider."""
        start_s, end_s = self.window(start, end)
        if self.feed is None:
            return {"start": iso(start_s), "end": iso(end_s), "hours_s": [], "sensor_ids": [],
                    "score": [], "residual": [],
                    "note": "no shadow twin in this dashboard: start it with --inp to see "
                            "residuals"}
        h = self.feed.hourly(start_s, end_s)
        return {"start": iso(start_s), "end": iso(end_s), "hours_s": h.hours_s.tolist(),
                "sensor_ids": h.sensor_ids,
                "score": [_finite(row, 3) for row in h.score],
                "residual": [_finite(row) for row in h.residual]}

    # -- alerts ------------------------------------------------------------------------
    def alerts(self, status: str = "open") -> list[dict[str, Any]]:
        """Alerts, most severe first, then newest first; ``status``: open, acknowledged, all."""
        if status not in ("open", "acknowledged", "all"):
            raise DashboardError(f"status: expected open, acknowledged or all, got {status!r}")
        acked = self._acknowledged()
        out = []
        for row in self.store.alerts().itertuples(index=False):
            a = self._alert_dict(row, acked)
            if status == "all" or (status == "open") != a["acknowledged"]:
                out.append(a)
        out.sort(key=lambda a: (SEVERITY_ORDER.get(a["severity"], 9), -a["time_s"], -a["id"]))
        return out

    def alert(self, alert_id: int) -> dict[str, Any]:
        for row in self.store.alerts().itertuples(index=False):
            if int(row.id) == alert_id:
                return self._alert_dict(row, self._acknowledged())
        raise NotFound(f"unknown alert {alert_id} (the store holds "
                       f"{len(self.store.alerts())} alerts)")

    def acknowledge(self, alert_id: int, operator: str, token: str | None) -> dict[str, Any]:
        alert = self.alert(alert_id)
        self._check_token(token, operator, f"acknowledging alert {alert_id}")
        if alert["acknowledged"]:
            raise Conflict(f"alert {alert_id} is already acknowledged")
        self.store.log("alert_ack", {"alert_id": alert_id, "element": alert["element"],
                                     "kind": alert["kind"]}, operator)
        self.changes += 1
        return self.alert(alert_id)

    def _acknowledged(self) -> set[int]:
        log = self.store.log_entries("alert_ack")
        return {int(p["alert_id"]) for p in log["payload"]} if len(log) else set()

    def _alert_dict(self, row, acked: set[int]) -> dict[str, Any]:
        element = None if row.element is None else str(row.element)
        details = row.details if isinstance(row.details, dict) else {}
        if element is not None and element in self.registry:
            sensors, xy = [element], self.positions.get(element)
        else:
            # a leak is on a pipe; other alerts name nodes or assets first
            kinds = ("links", "nodes") if row.kind == "leak" else ("nodes", "links")
            xy = self.network.position(element, None, kinds) if element is not None else None
            sensors = [sid for sid, _ in nearest(xy, self.positions, k=3)] if xy else []
        return {"id": int(row.id), "time_s": float(row.time_s), "time": iso(float(row.time_s)),
                "kind": row.kind, "element": element, "severity": row.severity,
                "message": row.message, "details": details, "acknowledged": int(row.id) in acked,
                "sensors": sensors, "x": xy[0] if xy else None, "y": xy[1] if xy else None}

    # -- what-if and approvals ---------------------------------------------------------
    def whatif_state(self) -> dict[str, Any]:
        proposals = []
        for name, pid in self.proposals.items():
            p = self.gate.proposals[pid]
            proposals.append({"proposal_id": pid, "candidate": name, "status": p.status,
                              "decided_by": p.decided_by, "rank": p.rank,
                              "actions": p.actions})
        return {"available": self.whatif_desk is not None, "result": self.whatif_result,
                "proposals": proposals}

    def run_whatif(self, operator: str, token: str | None, alert_id: int | None = None,
                   horizon_hours: float | None = None) -> dict[str, Any]:
        """Rank candidate actions from the live state and file each as a proposal."""
        from live_bridge.dashboard.whatif_desk import SuspectedLeak

        if self.whatif_desk is None or self.feed is None:
            raise Conflict("no what-if in this dashboard: start it with --inp (the network "
                           "the shadow twin follows)")
        leak = None
        if alert_id is not None:
            alert = self.alert(alert_id)
            if alert["kind"] != "leak" or self.network.position(alert["element"], "water",
                                                                 ("links",)) is None:
                raise DashboardError(f"alert {alert_id} is a {alert['kind']} alert on "
                                     f"{alert['element']}, not a leak on a water pipe")
            flow = alert["details"].get("estimated_m3h")
            flow = float(flow) if isinstance(flow, (int, float)) and math.isfinite(flow) else 10.0
            leak = SuspectedLeak(alert["element"], alert["time_s"], flow)
        if horizon_hours is not None and not (0 < horizon_hours <= 48):
            raise DashboardError(f"horizon_hours: expected more than 0 and at most 48, "
                                 f"got {horizon_hours}")
        self._check_token(token, operator, "running a what-if")
        span = self.feed.time_range()
        if span is None:
            raise Conflict("the shadow twin has solved no step yet: nothing to fork")
        start = dt.datetime.fromtimestamp(span[0], dt.timezone.utc).replace(tzinfo=None)
        with self._lock:
            result = self.whatif_desk.run(start, span[1], leak,
                                          horizon_hours * 3600 if horizon_hours else None)
            data = result.to_json()
            self.proposals = {}
            for name in result.ranking:
                if result.results[name].candidate.actions:
                    self.proposals[name] = self.gate.propose(name, result, proposer=operator)
            data["alert_id"] = alert_id
            self.whatif_result = data
            self.changes += 1
        return self.whatif_state()

    def approve(self, proposal_id: str, operator: str, token: str | None) -> dict[str, Any]:
        """Approve a proposal: its commands go to the actuator; refusals are logged too."""
        status = self._refusal_status(proposal_id, operator, token)
        try:
            commands = self.gate.approve(proposal_id, operator, token)
        except ApprovalRefused as exc:
            raise (status or Forbidden)(str(exc)) from None
        self.changes += 1
        return {"proposal_id": proposal_id, "status": self.gate.proposals[proposal_id].status,
                "approved_by": operator, "commands": [c.payload() for c in commands]}

    def _refusal_status(self, proposal_id: str, operator: str, token: str | None):
        """The HTTP error an approval will be refused with, None if it will pass."""
        if not token:
            return Unauthorized
        expected = operator_token(self.settings.token_file, self.settings.environ)
        if expected is None or not hmac.compare_digest(token.encode(), expected.encode()):
            return Forbidden
        if not (operator or "").strip():
            return DashboardError
        proposal = self.gate.proposals.get(proposal_id)
        if proposal is None:
            return NotFound
        return Conflict if proposal.status != "proposed" else None

    def _check_token(self, token: str | None, operator: str, what: str) -> None:
        """Refuse (and log) an operator action without the right token or a name."""
        refused = None
        if not token:
            refused = Unauthorized(f"{what} needs an operator login: send the operator token "
                                   "(Authorization: Bearer TOKEN)")
        else:
            expected = operator_token(self.settings.token_file, self.settings.environ)
            if expected is None:
                refused = Forbidden(f"{what}: no operator token is configured on this server "
                                    "(set TWIN_OPERATOR_TOKEN or TWIN_OPERATOR_TOKEN_FILE)")
            elif not hmac.compare_digest(token.encode(), expected.encode()):
                refused = Forbidden(f"{what}: wrong operator token")
            elif not (operator or "").strip():
                refused = DashboardError(f"{what} needs the operator's name")
        if refused is not None:
            self.store.log("refusal", {"action": what, "reason": str(refused)},
                           (operator or "").strip() or "<unnamed>")
            raise refused
