"""The ``citizens:`` section of a scenario file: requests, phone centre and crews on the demo city.

```yaml
citizens:                     # present: the run has the request service (households, crews)
  crews: 40                   # field crews, split over skills by workload
  policy: priority            # dispatch: fcfs, priority, nearest or batched
  depots: 3
  phone_agents: 4             # default: one per 60,000 inhabitants, at least 2
  report_probability: 0.05    # chance a household near an incident reports it
  report_radius: 150          # metres around an incident where residents see it
  incident_info_calls: 0.02   # chance an affected household calls to ask about an incident
  status_calls: 0.3           # chance a requester calls when the promise passes, still open
  alerts:                     # the city's SMS / app alert service (on CitizenAlert events)
    enabled: true
    subscribed_share: 0.3     # or per channel: {app: 0.5, web: 0.3, phone: 0.15, counter: 0.05}
    report_share_after_alert: 0.2
    info_share_after_alert: 0.3
    street_buffer: 60         # metres along alerted streets
    valid_for: 48h
  first_contact:              # present: level-1 answers from the administrative database
    share: 0.7                # or {request: 0.5, information: 0.7, status: 0.8}
    level1_handle: 2min       # or per call kind, as share
    escalated_handle: 7min
    callback_share: 0.0
  preposition: {crews: 3, skill: sewer, at: [652000, 6862000], from: 2h}   # at: or a street id
```
An ensemble sweeps it like any field: ``ensemble: {grid: {citizens.crews: [20, 40, 60]}}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Field

from twin.agents.channels import CALL_KINDS
from twin.agents.dispatch import POLICIES
from twin.agents.services import SKILLS
from twin.scenario_fields import (Duration, EventTime, _boolean, _choice, _empty_if_none,
                                  _integer, _number, _Problem, _Spec, parse_duration)

# as twin.agents.citizens.CHANNELS (not imported: that module loads Mesa)
CHANNELS = ("app", "web", "phone", "counter")


def _share_or_table(keys: tuple[str, ...], what: str):
    """One share 0..1, or a mapping of ``keys`` to shares."""
    check = _number(ge=0, le=1)

    def parse(value: Any) -> float | dict[str, float]:
        if not isinstance(value, dict):
            return check(value)
        out = {}
        for key, share in value.items():
            if key not in keys:
                raise _Problem(f"a {what} ({', '.join(keys)})", loc=(key,),
                               got=f"unknown {what} {key!r}", show_input=False)
            try:
                out[key] = check(share)
            except _Problem as exc:
                raise _Problem(exc.expected, loc=(key,), got=repr(share),
                               show_input=False) from None
        return out
    return parse


def _duration_or_table(value: Any) -> float | dict[str, float]:
    """One duration, or a mapping of call kinds to durations (seconds)."""
    def one(v: Any, loc: tuple = ()) -> float:
        try:
            seconds = parse_duration(v)
        except ValueError:
            seconds = -1.0
        if seconds <= 0:
            raise _Problem("a duration > 0 such as '3min' or a number of seconds", loc=loc,
                           got=repr(v), show_input=False)
        return seconds

    if not isinstance(value, dict):
        return one(value)
    for key in value:
        if key not in CALL_KINDS:
            raise _Problem(f"a call kind ({', '.join(CALL_KINDS)})", loc=(key,),
                           got=f"unknown call kind {key!r}", show_input=False)
    return {key: one(v, (key,)) for key, v in value.items()}


def _point_or_street(value: Any) -> tuple[float, float] | str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        return float(value[0]), float(value[1])
    raise _Problem("[x, y] in the city's CRS (metres) or a street id such as 's12'")


def _per_kind(value: float | dict[str, float], default: dict[str, float]) -> dict[str, float]:
    return dict(value) if isinstance(value, dict) else {k: float(value) for k in default}


class AlertsSpec(_Spec):
    """The alert service (see :class:`twin.agents.alerts.AlertPolicy`)."""

    enabled: Annotated[bool, BeforeValidator(_boolean)] = True
    subscribed_share: Annotated[Union[float, dict[str, float]], BeforeValidator(
        _share_or_table(CHANNELS, "channel"))] = Field(
        default_factory=lambda: {"app": 0.5, "web": 0.3, "phone": 0.15, "counter": 0.05})
    report_share_after_alert: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.2
    info_share_after_alert: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.3
    street_buffer_m: Annotated[float, BeforeValidator(_number(ge=0))] = Field(
        60.0, alias="street_buffer")
    valid_s: Duration = Field(48 * 3600.0, alias="valid_for")

    def policy(self):
        from twin.agents.alerts import AlertPolicy

        return AlertPolicy(enabled=self.enabled, subscribed_share=self.subscribed_share,
                           report_share_after_alert=self.report_share_after_alert,
                           info_share_after_alert=self.info_share_after_alert,
                           street_buffer_m=self.street_buffer_m, valid_s=self.valid_s)


class FirstContactSpec(_Spec):
    """First-level answers at the phone centre (see :class:`twin.agents.channels.FirstContact`)."""

    share: Annotated[Union[float, dict[str, float]], BeforeValidator(
        _share_or_table(CALL_KINDS, "call kind"))] = Field(
        default_factory=lambda: {"request": 0.5, "information": 0.7, "status": 0.8})
    level1_handle_s: Annotated[Union[float, dict[str, float]], BeforeValidator(
        _duration_or_table)] = Field(default_factory=lambda: {
            "request": 240.0, "information": 120.0, "status": 90.0}, alias="level1_handle")
    escalated_handle_s: Annotated[Union[float, dict[str, float]], BeforeValidator(
        _duration_or_table)] = Field(default_factory=lambda: {
            "request": 540.0, "information": 420.0, "status": 360.0}, alias="escalated_handle")
    callback_share: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.0

    def policy(self):
        from twin.agents.channels import FirstContact

        default = FirstContact()
        return FirstContact(share=_per_kind(self.share, default.share),
                            level1_s=_per_kind(self.level1_handle_s, default.level1_s),
                            escalated_s=_per_kind(self.escalated_handle_s, default.escalated_s),
                            callback_share=self.callback_share)


class PrepositionSpec(_Spec):
    """Crews waiting at a staging point from a time on (a storm's response option)."""

    crews: Annotated[int, BeforeValidator(_integer(ge=1))]
    skill: Annotated[str, BeforeValidator(_choice(*SKILLS))] = "sewer"
    at: Annotated[Union[tuple[float, float], str], BeforeValidator(_point_or_street)]
    from_: EventTime = Field(0.0, alias="from")

    def plan(self, start: dt.datetime):
        from twin.agents.crews import Preposition

        from_s = (self.from_ if isinstance(self.from_, (int, float))
                  else (self.from_ - start).total_seconds())
        return Preposition(crews=self.crews, skill=self.skill, at=self.at,
                           from_s=max(float(from_s), 0.0))


class CitizensSpec(_Spec):
    """How the request service runs (see :class:`twin.agents.service_layer.CitizenServices`)."""

    crews: Annotated[int, BeforeValidator(_integer(ge=1, le=10_000))] = 40
    policy: Annotated[str, BeforeValidator(_choice(*POLICIES))] = "priority"
    depots: Annotated[int, BeforeValidator(_integer(ge=1, le=100))] = 3
    phone_agents: Annotated[int | None, BeforeValidator(
        lambda v: None if v is None else _integer(ge=0, le=10_000)(v))] = None
    counter_desks: Annotated[int, BeforeValidator(_integer(ge=1, le=1000))] = 2
    volume_factor: Annotated[float, BeforeValidator(_number(gt=0))] = 1.0
    report_probability: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = 0.05
    report_radius_m: Annotated[float, BeforeValidator(_number(gt=0))] = Field(
        150.0, alias="report_radius")
    incident_info_call_probability: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = (
        Field(0.02, alias="incident_info_calls"))
    status_call_probability: Annotated[float, BeforeValidator(_number(ge=0, le=1))] = Field(
        0.3, alias="status_calls")
    alerts: Annotated[AlertsSpec, BeforeValidator(_empty_if_none({}))] = AlertsSpec()
    first_contact: Annotated[FirstContactSpec | None, BeforeValidator(_empty_if_none({}))] = None
    preposition: PrepositionSpec | None = None

    def service_policy(self, start: dt.datetime):
        """The :class:`~twin.agents.service_layer.ServicePolicy` of this section."""
        from twin.agents.service_layer import ServicePolicy

        return ServicePolicy(
            policy=self.policy, crews=self.crews, depots=self.depots,
            phone_agents=self.phone_agents, counter_desks=self.counter_desks,
            volume_factor=self.volume_factor, report_probability=self.report_probability,
            report_radius_m=self.report_radius_m,
            incident_info_call_probability=self.incident_info_call_probability,
            status_call_probability=self.status_call_probability,
            alerts=self.alerts.policy(),
            first_contact=None if self.first_contact is None else self.first_contact.policy(),
            preposition=None if self.preposition is None else self.preposition.plan(start))
