"""The approval gate: nothing reaches a real actuator unless an operator approves it.

A what-if candidate is *proposed* (with the KPIs it was ranked on); an operator
*approves* it with a token from configuration; only then are its actions handed, one
command per action, to an :class:`Actuator` (MQTT to the field, or a dry run that only
logs). Every proposal, approval, refusal and command goes to an audit log: any object
with ``log(kind, payload, actor)`` (the live bridge's store, or :class:`JsonlAuditLog`).

The operator token is read when approving, from (first found):
``token_file`` given to the gate, the file named by ``TWIN_OPERATOR_TOKEN_FILE``, or the
``TWIN_OPERATOR_TOKEN`` environment variable. Tokens are compared in constant time and
never written to the log.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import math
import os
import threading
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

from twin.errors import BadInput

__all__ = ["AuditLog", "JsonlAuditLog", "Actuator", "Command", "DryRunActuator", "MqttActuator",
           "ApprovalGate", "Proposal", "ApprovalRefused", "ActuatorError", "operator_token",
           "TOKEN_ENV", "TOKEN_FILE_ENV"]

TOKEN_ENV = "TWIN_OPERATOR_TOKEN"
TOKEN_FILE_ENV = "TWIN_OPERATOR_TOKEN_FILE"

logger = logging.getLogger(__name__)


class ApprovalRefused(BadInput):
    """An approval the gate will not grant (no token configured, wrong token, unknown or
    already decided proposal); the message says which."""


class ActuatorError(RuntimeError):
    """A command that did not reach its actuator (broker down, no acknowledgement)."""


# --- audit log ----------------------------------------------------------------------------
@runtime_checkable
class AuditLog(Protocol):
    """Where the gate records what happened: ``kind`` ('proposal', 'approval', 'refusal',
    'command_sent', 'command_failed'), a JSON-able ``payload`` and who did it."""

    def log(self, kind: str, payload: Mapping[str, Any], actor: str) -> None: ...


class JsonlAuditLog:
    """Append-only JSON-lines file: one ``{"time", "kind", "actor", "payload"}`` per line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def log(self, kind: str, payload: Mapping[str, Any], actor: str) -> None:
        entry = {"time": _utc_now(), "kind": kind, "actor": actor, "payload": dict(payload)}
        line = json.dumps(entry, default=str, allow_nan=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())

    def entries(self) -> list[dict[str, Any]]:
        """Every entry so far, oldest first."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


# --- commands and actuators ---------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """One approved action as sent to the field. ``start_after_s``: seconds after the
    approval at which it should happen; ``duration_s``: None = until told otherwise."""

    command_id: str
    proposal_id: str
    layer: str
    kind: str
    element: str
    value: float | None
    start_after_s: float
    duration_s: float | None
    approved_by: str
    approved_at: str

    def payload(self) -> dict[str, Any]:
        return asdict(self)


class Actuator(Protocol):
    """Sends one command; returns when it is acknowledged, raises ActuatorError otherwise."""

    def send(self, command: Command) -> None: ...


class DryRunActuator:
    """Sends nothing: logs each command (``logging``, level INFO) and keeps it in ``sent``."""

    def __init__(self) -> None:
        self.sent: list[Command] = []

    def send(self, command: Command) -> None:
        logger.info("dry run: would send %s", json.dumps(command.payload()))
        self.sent.append(command)


class MqttActuator:
    """Publishes each command as JSON to ``{prefix}/commands/{element}`` with QoS 1 and
    waits for the broker's PUBACK (paho-mqtt 2.x). One connection per :meth:`send`, so an
    idle gate holds no socket."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, prefix: str = "twin",
                 client_id: str | None = None, username: str | None = None,
                 password: str | None = None, timeout_s: float = 10.0) -> None:
        self.host, self.port, self.prefix = host, int(port), prefix.rstrip("/")
        self.client_id = client_id or f"twin-actuator-{uuid.uuid4().hex[:8]}"
        self.username, self.password = username, password
        self.timeout_s = float(timeout_s)

    def topic(self, element: str) -> str:
        return f"{self.prefix}/commands/{element}"

    def send(self, command: Command) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        where = f"MQTT broker {self.host}:{self.port}"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id)
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        connected = threading.Event()
        outcome: dict[str, Any] = {}

        def on_connect(_client, _userdata, _flags, reason_code, _properties) -> None:
            outcome["reason"] = reason_code
            connected.set()

        client.on_connect = on_connect
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise ActuatorError(f"{where}: cannot connect: {exc}") from exc
        client.loop_start()
        try:
            if not connected.wait(self.timeout_s):
                raise ActuatorError(f"{where}: no CONNACK within {self.timeout_s:g} s")
            if outcome["reason"].is_failure:
                raise ActuatorError(f"{where}: connection refused: {outcome['reason']}")
            topic = self.topic(command.element)
            info = client.publish(topic, json.dumps(command.payload()), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise ActuatorError(f"{where}: publish to {topic} failed: "
                                    f"{mqtt.error_string(info.rc)}")
            info.wait_for_publish(self.timeout_s)
            if not info.is_published():
                raise ActuatorError(f"{where}: no PUBACK for {topic} within {self.timeout_s:g} s")
        finally:
            client.disconnect()
            client.loop_stop()


# --- the gate -----------------------------------------------------------------------------
def operator_token(token_file: str | Path | None = None,
                   environ: Mapping[str, str] | None = None) -> str | None:
    """The configured operator token, or None: ``token_file``, else the file named by
    ``TWIN_OPERATOR_TOKEN_FILE``, else ``TWIN_OPERATOR_TOKEN`` (first line, stripped)."""
    env = os.environ if environ is None else environ
    path = token_file or env.get(TOKEN_FILE_ENV)
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ApprovalRefused(f"operator token file {path}: cannot read it: "
                                  f"{exc.strerror}") from None
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not token:
            raise ApprovalRefused(f"operator token file {path} is empty")
        return token
    token = env.get(TOKEN_ENV, "").strip()
    return token or None


@dataclass
class Proposal:
    """A candidate put to the operators, with what it was ranked on."""

    proposal_id: str
    candidate: str
    actions: list[dict[str, Any]]
    rank: int
    kpis: dict[str, float]
    baseline_kpis: dict[str, float]
    at: str                          # the twin time the what-if forked at
    proposed_at: str
    status: str = "proposed"         # proposed | approved | sent | failed
    decided_by: str | None = None
    commands: list[Command] = field(default_factory=list)


class ApprovalGate:
    """Proposals in, approved commands out to ``actuator``; everything to ``log``.

    ``token_file``/``environ``: where :func:`operator_token` looks (read at each approval,
    so a rotated token applies at once). ``actuator`` defaults to a dry run.
    """

    def __init__(self, log: AuditLog, actuator: Actuator | None = None,
                 token_file: str | Path | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        if not callable(getattr(log, "log", None)):
            raise TypeError("the audit log needs a log(kind, payload, actor) method")
        self.audit = log
        self.actuator = actuator if actuator is not None else DryRunActuator()
        self.token_file = token_file
        self.environ = environ
        self.proposals: dict[str, Proposal] = {}

    def propose(self, candidate, ranked_results, proposer: str = "twin") -> str:
        """Put ``candidate`` (a name or a :class:`~live_bridge.whatif.Candidate`) from
        ``ranked_results`` (a :class:`~live_bridge.whatif.WhatIfResult`) to the operators;
        return the proposal id. Only a simulated candidate with actions can be proposed."""
        from live_bridge.whatif import BASELINE

        name = candidate if isinstance(candidate, str) else candidate.name
        result = ranked_results.results.get(name)
        if result is None:
            raise ApprovalRefused(f"candidate {name!r} is not among the simulated ones "
                                  f"({', '.join(ranked_results.results)}); run the what-if first")
        if name == BASELINE or not result.candidate.actions:
            raise ApprovalRefused(f"candidate {name!r} has no actions: nothing to approve")
        rank = int(ranked_results.table.set_index("candidate").loc[name, "rank"])
        proposal = Proposal(
            proposal_id=uuid.uuid4().hex[:12], candidate=name,
            actions=[a.to_dict() for a in result.candidate.actions], rank=rank,
            kpis=_clean(result.kpis), baseline_kpis=_clean(ranked_results.results[BASELINE].kpis),
            at=ranked_results.at.isoformat(), proposed_at=_utc_now())
        self.proposals[proposal.proposal_id] = proposal
        self.audit.log("proposal", {
            "proposal_id": proposal.proposal_id, "candidate": name, "rank": rank,
            "ranking": ranked_results.ranking, "actions": proposal.actions,
            "kpis": proposal.kpis, "baseline_kpis": proposal.baseline_kpis,
            "at": proposal.at, "horizon_s": ranked_results.horizon_s}, proposer)
        return proposal.proposal_id

    def approve(self, proposal_id: str, operator: str, token: str | None) -> list[Command]:
        """Check ``token`` against the configured one, then send the proposal's commands.

        Raises :class:`ApprovalRefused` (logged as a 'refusal') when no token is
        configured, the token is wrong, the operator is unnamed, or the proposal is
        unknown or already decided; :class:`ActuatorError` if a command is not acknowledged
        (logged as 'command_failed'; the commands after it are not sent).
        """
        operator = (operator or "").strip()
        proposal = self.proposals.get(proposal_id)
        try:
            expected = operator_token(self.token_file, self.environ)
        except ApprovalRefused as exc:
            raise self._refusal(proposal_id, operator, str(exc)) from None
        if not operator:
            raise self._refusal(proposal_id, operator, "an approval needs the operator's name")
        if expected is None:
            raise self._refusal(proposal_id, operator,
                         f"no operator token configured (set {TOKEN_ENV} or {TOKEN_FILE_ENV})")
        if not token or not hmac.compare_digest(str(token).encode(), expected.encode()):
            raise self._refusal(proposal_id, operator, "wrong operator token")
        if proposal is None:
            raise self._refusal(proposal_id, operator, f"unknown proposal {proposal_id!r}")
        if proposal.status != "proposed":
            raise self._refusal(proposal_id, operator, f"proposal {proposal_id} is already "
                                                f"{proposal.status} (by {proposal.decided_by})")
        approved_at = _utc_now()
        proposal.status, proposal.decided_by = "approved", operator
        proposal.commands = [
            Command(command_id=f"{proposal_id}-{i + 1}", proposal_id=proposal_id,
                    layer=a["layer"], kind=a["kind"], element=a["element"], value=a["value"],
                    start_after_s=float(a["start_s"]), duration_s=a["duration_s"],
                    approved_by=operator, approved_at=approved_at)
            for i, a in enumerate(proposal.actions)]
        self.audit.log("approval", {"proposal_id": proposal_id, "candidate": proposal.candidate,
                                    "commands": len(proposal.commands)}, operator)
        actuator = type(self.actuator).__name__
        for command in proposal.commands:
            try:
                self.actuator.send(command)
            except Exception as exc:
                proposal.status = "failed"
                self.audit.log("command_failed", {**command.payload(), "actuator": actuator,
                                                  "error": str(exc)}, operator)
                raise
            self.audit.log("command_sent", {**command.payload(), "actuator": actuator}, operator)
        proposal.status = "sent"
        return proposal.commands

    def _refusal(self, proposal_id: str, operator: str, reason: str) -> ApprovalRefused:
        """Log a refusal; the error to raise."""
        self.audit.log("refusal", {"proposal_id": proposal_id, "reason": reason},
                       operator or "<unnamed>")
        return ApprovalRefused(f"approval of proposal {proposal_id} refused: {reason}")


def _clean(kpis: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if math.isfinite(float(v)) else None) for k, v in kpis.items()}
