"""The city's alert service (SMS / app push) and who it reaches.

On a :class:`~twin.events.CitizenAlert` the city warns an area: the disc of ``radius_m``
around (x, y) and the households within ``street_buffer_m`` of the listed streets. Only
households subscribed to the service receive it. Subscription is drawn once per household
(from the layer's ``citizens.alerts`` stream) with a share per preferred channel:
``subscribed_share`` (default app 0.5, web 0.3, phone 0.15, counter 0.05, about 0.3 of all
households with the default channel shares). These shares are an assumption, not a
measurement: opt-in municipal alert lists reach a minority of households, app users first.

A recipient who then would report an incident of the alerted area (the incident lies within
the area grown by ``margin_m``) does so only with ``report_share_after_alert``, and calls to
ask about it (an incident's information call) only with ``info_share_after_alert``, while the
alert is recent (``valid_s``). A household remembers its latest alert only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from twin.agents.citizens import CHANNELS

if TYPE_CHECKING:
    from twin.agents.citizens import Households
    from twin.city.model import City
    from twin.events import CitizenAlert

SUBSCRIBED_SHARE: dict[str, float] = {"app": 0.5, "web": 0.3, "phone": 0.15, "counter": 0.05}


@dataclass(frozen=True)
class AlertPolicy:
    """What the alert service does; shares in 0..1, distances in metres, times in seconds.

    ``subscribed_share``: one share for every household, or one per preferred channel.
    """

    enabled: bool = True
    subscribed_share: float | dict[str, float] = field(
        default_factory=lambda: dict(SUBSCRIBED_SHARE))
    report_share_after_alert: float = 0.2
    info_share_after_alert: float = 0.3
    street_buffer_m: float = 60.0
    valid_s: float = 48 * 3600.0

    def shares(self) -> np.ndarray:
        """The subscribed share of each channel of :data:`CHANNELS`."""
        if isinstance(self.subscribed_share, dict):
            unknown = set(self.subscribed_share) - set(CHANNELS)
            if unknown:
                raise ValueError(f"alerts: subscribed_share: unknown channels {sorted(unknown)}; "
                                 f"expected some of {CHANNELS}")
            return np.array([float(self.subscribed_share.get(c, 0.0)) for c in CHANNELS])
        return np.full(len(CHANNELS), float(self.subscribed_share))


class AlertService:
    """Subscriptions, the alerts sent and the latest alert of each household."""

    def __init__(self, policy: AlertPolicy, households: "Households", city: "City",
                 rng: np.random.Generator) -> None:
        self.policy, self.households, self.city = policy, households, city
        self.subscribed = rng.random(len(households)) < policy.shares()[households.channel]
        self.latest = np.full(len(households), -1, dtype=np.int64)   # alert row, -1: none
        self.rows: list[dict] = []          # one per alert sent (a few per incident at most)
        self._areas: list[tuple] = []       # (x, y, radius_m, streets geometry or None)

    def along(self, street_ids, buffer_m: float) -> tuple[np.ndarray, object]:
        """Households within ``buffer_m`` of the streets (rows), and the streets' geometry."""
        streets = self.city.streets
        ids = [s for s in street_ids if s in streets.index]
        if not ids:
            return np.zeros(0, dtype=np.int64), None
        lines = shapely.union_all(streets.loc[ids].geometry.values)
        hh = self.households
        rows = hh.within_box(*shapely.bounds(lines), buffer_m)
        if len(rows):
            near = shapely.distance(lines, shapely.points(hh.x_m[rows], hh.y_m[rows])) <= buffer_m
            rows = rows[near]
        return rows, lines

    def area(self, x: float, y: float, radius_m: float, street_ids) -> tuple[np.ndarray, object]:
        """Households of the disc and along the streets (rows), and the streets' geometry."""
        disc = (self.households.near(x, y, radius_m) if radius_m > 0
                else np.zeros(0, dtype=np.int64))
        along, lines = self.along(street_ids, self.policy.street_buffer_m)
        return np.union1d(disc, along).astype(np.int64), lines

    def send(self, alert: "CitizenAlert", now_s: float) -> np.ndarray:
        """Warn the alert's area: the subscribed households in it (rows) receive it."""
        homes, lines = self.area(alert.x, alert.y, alert.radius_m, alert.street_ids)
        recipients = homes[self.subscribed[homes]]
        row = len(self.rows)
        self.latest[recipients] = row
        self._areas.append((alert.x, alert.y, alert.radius_m, lines))
        self.rows.append({"alert_id": alert.event_id, "time_s": now_s, "kind": alert.kind,
                          "x_m": alert.x, "y_m": alert.y, "radius_m": alert.radius_m,
                          "streets": len(alert.street_ids), "households_in_area": len(homes),
                          "recipients": len(recipients)})
        return recipients

    def warned(self, household: int, x: float, y: float, now_s: float, margin_m: float) -> bool:
        """Whether ``household`` received a recent alert whose area covers (x, y) (within
        ``margin_m``)."""
        row = int(self.latest[household])
        if row < 0 or now_s - self.rows[row]["time_s"] > self.policy.valid_s:
            return False
        ax, ay, radius_m, lines = self._areas[row]
        if radius_m > 0 and math.hypot(x - ax, y - ay) <= radius_m + margin_m:
            return True
        return lines is not None and shapely.distance(lines, shapely.Point(x, y)) <= (
            self.policy.street_buffer_m + margin_m)

    def table(self) -> pd.DataFrame:
        """One row per alert sent: id, time (s), kind, area and recipients."""
        return pd.DataFrame(self.rows, columns=["alert_id", "time_s", "kind", "x_m", "y_m",
                                                "radius_m", "streets", "households_in_area",
                                                "recipients"])
