"""Forking the request service: what a what-if needs to continue from now.

:func:`snapshot` takes the request and work-order tables, the open incidents and the
indices triage uses, the crews' running totals and the counters, as plain data (numpy
arrays, dicts, frozen events) that can be pickled. :func:`restore` puts them into a layer
built from the same city (its policy may differ: more crews, another dispatch rule; that
is the point of a what-if), before the run starts, with every time shifted so the fork's
clock 0 is the snapshot's time. At the fork's start the open work orders go back to the
dispatcher, requests still on their way through a channel contact the city again and
received requests wait for triage again.

What a fork does not carry: a crew's job in progress restarts from its depot (its work
order goes back to the backlog, whole); the phone centre's queue and its statistics start
empty, and so do the day's information calls (the day's requests keep their times).
"""

from __future__ import annotations

import copy


from typing import TYPE_CHECKING, Any

import numpy as np

from twin.agents.dispatch import WorkOrder

if TYPE_CHECKING:
    from twin.agents.service_layer import CitizenServices

REQUEST_TIMES = ("intent_s", "requested_s", "triaged_s", "expected_s", "closed_s", "updated_s",
                 "retry_s")
ORDER_TIMES = ("received_s", "due_s", "arrived_s", "done_s")
CREW_TOTALS = ("busy_s", "on_shift_s", "driven_m", "jobs")
WITH_ORDER = ("triaged", "scheduled", "in_progress")


def _table(columns) -> dict[str, np.ndarray]:
    return {name: columns.column(name).copy() for name in columns.COLUMNS}


def snapshot(layer: "CitizenServices") -> dict[str, Any]:
    now = float(layer.env.now)
    return {
        "time_s": now,
        "requests": _table(layer.requests),
        "orders": _table(layer.orders),
        "incidents": copy.deepcopy(layer.incidents),
        "asset_incidents": dict(layer._asset_incidents),
        "bursts": dict(layer._bursts),
        "by_incident": dict(layer._by_incident),
        "cells": {k: list(v) for k, v in layer._cells.items()},
        "children": {k: list(v) for k, v in layer._children.items()},
        "open": layer._open,
        "counters": {k: getattr(layer, k) for k in ("reminders_sent", "renewals_online",
                                                      "info_calls", "lost")},
        "crews": {c.crew_id: {k: getattr(c, k) for k in CREW_TOTALS} for c in layer.crews},
    }


def _fill(columns, table: dict[str, np.ndarray], shift_s: float, times: tuple[str, ...]) -> int:
    n = len(next(iter(table.values()))) if table else 0
    if n:
        columns._reserve(n)
    for name, values in table.items():
        values = values - shift_s if name in times else values
        getattr(columns, name)[:n] = values
    return n


def restore(layer: "CitizenServices", state: dict[str, Any]) -> None:
    if len(layer.requests) or len(layer.orders):
        raise RuntimeError("citizens restore(): goes between build and the start of the run")
    t0 = float(state["time_s"])
    req, orders = layer.requests, layer.orders
    n_req = _fill(req, state["requests"], t0, REQUEST_TIMES)
    n_ord = _fill(orders, state["orders"], t0, ORDER_TIMES)
    if n_req and int(req.service[:n_req].max()) >= len(layer.services):
        raise ValueError("citizens restore(): the snapshot's catalogue has more services")
    layer.incidents = copy.deepcopy(state["incidents"])
    for incident in layer.incidents.values():
        if incident.repaired_s is not None:
            incident.repaired_s -= t0
    layer._asset_incidents = dict(state["asset_incidents"])
    layer._bursts = dict(state["bursts"])
    layer._by_incident = dict(state["by_incident"])
    layer._cells = {k: list(v) for k, v in state["cells"].items()}
    layer._children = {k: list(v) for k, v in state["children"].items()}
    layer._open = int(state["open"])
    for key, value in state["counters"].items():
        setattr(layer, key, value)
    for crew in layer.crews:
        for key, value in state["crews"].get(crew.crew_id, {}).items():
            setattr(crew, key, value)
    # open work orders (queued or with a crew): back to the backlog, whole
    reopened = []
    for row in np.flatnonzero(np.isnan(orders.done_s[:n_ord])):
        row = int(row)
        order = WorkOrder(row, int(orders.request[row]), str(orders.skill[row]),
                          int(orders.priority[row]), int(orders.node[row]),
                          float(orders.received_s[row]), float(orders.due_s[row]),
                          float(orders.work_s[row]), incident_id=str(orders.incident_id[row]))
        orders.crew_id[row] = ""
        request = order.request
        if req.state[request] in WITH_ORDER:
            req.state[request] = "triaged"
            req.crew_id[request] = ""
        reopened.append(order)
    states = req.state[:n_req]
    layer._skip_first_draw = True
    layer._fork_start = {
        "orders": reopened,
        # today's requests not yet made (at their time) or still on their way through a
        # channel (now): the fork does not draw today's requests again
        "contacts": [int(r) for r in np.flatnonzero(states == "new")],
        # received, waiting for the back office's triage
        "triage": [int(r) for r in np.flatnonzero(states == "received")],
    }


def resume(layer: "CitizenServices") -> None:
    """At the start of a restored run: hand the open work back (see the module doc)."""
    start = layer._fork_start
    if not start:
        return
    for order in start["orders"]:
        layer.dispatcher.add(order)
    for row in start["contacts"]:
        retry = float(layer.requests.retry_s[row])
        if not np.isnan(retry):                 # hung up on the phone, files online later
            layer._at(max(retry, layer.env.now), layer._receive, row, None)
            continue
        when = float(layer.requests.intent_s[row])
        if when > layer.env.now:
            layer._at(when, layer._contact, row)
        else:
            layer._contact(row)
    for row in start["triage"]:
        layer._triage(row)
    layer._fork_start = None


__all__ = ["snapshot", "restore", "resume"]

