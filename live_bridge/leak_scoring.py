"""The BattLeDIM scoring rule, as the official scorer computes it.

A submission is a list of (linkID, detection time). A detection is a true
positive when its time lies within a true leak's [start, end] and the shortest
distance along the network between the centres of the submitted pipe and the
leaking pipe is at most 300 m. Its reward is EUR 0.80 per m3 the leak loses from
the detection time to the end of the evaluation period, minus
(distance / 300 m) x EUR 500. Any other detection costs EUR 500, except repeat
detections of a leak already found, which are ignored. The perfect score finds
every leak at its start time on the right pipe.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from twin.errors import BadInput
from live_bridge.leak_config import LeakConfig

EUR_PER_M3 = 0.80
FALSE_POSITIVE_EUR = 500.0
MAX_DISTANCE_M = 300.0
TIME_FORMAT = "%Y-%m-%d %H:%M"


class DetectionsError(BadInput):
    """A detections file that cannot be scored."""


@dataclass(frozen=True)
class Detection:
    """A detected leak: the pipe and the time it was declared (and, from a detector, its
    estimated size in m3/h and the test statistic; not part of the file format)."""

    link_id: str
    time: dt.datetime
    size_m3h: float | None = field(default=None, compare=False)
    statistic: float | None = field(default=None, compare=False)
    kind: str = field(default="leak", compare=False)      # or "sensor_bias" (link_id: sensor)
    size_m: float | None = field(default=None, compare=False)   # a sensor bias, m


def read_detections(path: str | Path) -> list[Detection]:
    """``linkID,startTime`` lines (header included, time as ``YYYY-MM-DD HH:MM``)."""
    path = Path(path)
    if not path.is_file():
        raise DetectionsError(f"detections file not found: {path}")
    out = []
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        rows = list(csv.reader(fh))
    for i, row in enumerate(rows, start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if i == 1 and row[0].strip().lower() in ("linkid", "link_id", "link"):
            continue
        if len(row) < 2:
            raise DetectionsError(f"{path}:{i}: expected 'linkID,startTime', got {row!r}")
        text = row[1].strip()
        try:
            when = pd.Timestamp(text).to_pydatetime()
        except (ValueError, TypeError):
            raise DetectionsError(f"{path}:{i}: startTime {text!r} is not a time "
                                  f"(expected YYYY-MM-DD HH:MM)") from None
        out.append(Detection(row[0].strip(), when.replace(tzinfo=None)))
    return out


def write_detections(path: str | Path, detections: list[Detection]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["linkID", "startTime"])
        for d in sorted(detections, key=lambda d: d.time):
            w.writerow([d.link_id, d.time.strftime(TIME_FORMAT)])


class PipeDistances:
    """Shortest distances along a network between link centres (m)."""

    def __init__(self, wn) -> None:
        self.graph = nx.Graph()
        self.ends: dict[str, tuple[str, str, float]] = {}
        for name, link in wn.links():
            length = float(getattr(link, "length", 0.0) or 0.0)
            a, b = link.start_node_name, link.end_node_name
            self.ends[name] = (a, b, length)
            old = self.graph.get_edge_data(a, b)
            if old is None or old["length"] > length:
                self.graph.add_edge(a, b, length=length)
        self._cache: dict[str, dict[str, float]] = {}

    @classmethod
    def from_inp(cls, inp: str | Path) -> "PipeDistances":
        from twin.networks.water_io import load_inp

        return cls(load_inp(inp))

    def _from_node(self, node: str) -> dict[str, float]:
        if node not in self._cache:
            self._cache[node] = nx.single_source_dijkstra_path_length(self.graph, node,
                                                                      weight="length")
        return self._cache[node]

    def distance(self, link_a: str, link_b: str) -> float:
        if link_a == link_b:
            return 0.0
        if link_a not in self.ends or link_b not in self.ends:
            return float("inf")
        a1, a2, la = self.ends[link_a]
        b1, b2, lb = self.ends[link_b]
        best = float("inf")
        for u in (a1, a2):
            d = self._from_node(u)
            for v in (b1, b2):
                if v in d:
                    best = min(best, la / 2 + d[v] + lb / 2)
        return best


def leak_volume_after(flows_m3h: pd.Series, when: dt.datetime) -> float:
    """m3 lost by one leak from ``when`` to the end of its series (rectangle rule)."""
    s = flows_m3h.dropna()
    if len(s) < 2:
        return 0.0
    step_h = float(np.median(np.diff(s.index)) / pd.Timedelta(1, "h"))
    return float(s[s.index >= pd.Timestamp(when)].sum() * step_h)


def score(detections: list[Detection], config: LeakConfig, leak_flows_m3h: pd.DataFrame,
          distances: PipeDistances) -> dict:
    """Score ``detections`` against ``config``'s leaks; flows per leak pipe in m3/h."""
    leaks = list(config.leaks)
    found: dict[int, dict] = {}
    false_pos, ignored, rows = 0, 0, []
    for d in sorted(detections, key=lambda d: d.time):
        cands = []
        for j, leak in enumerate(leaks):
            if leak.start <= d.time <= leak.end:
                dist = distances.distance(d.link_id, leak.link_id)
                if dist <= MAX_DISTANCE_M:
                    cands.append((j in found, dist, j))
        new = sorted(c for c in cands if not c[0])
        if new:
            _, dist, j = new[0]
            col = leaks[j].link_id
            vol = leak_volume_after(leak_flows_m3h[col], d.time) if col in leak_flows_m3h else 0.0
            reward = EUR_PER_M3 * vol - dist / MAX_DISTANCE_M * FALSE_POSITIVE_EUR
            found[j] = {"leak": col, "detected_link": d.link_id,
                        "detected_at": d.time.strftime(TIME_FORMAT),
                        "delay_h": (d.time - leaks[j].start).total_seconds() / 3600,
                        "distance_m": dist, "volume_m3": vol, "reward_eur": reward}
            rows.append({"link": d.link_id, "time": d.time.strftime(TIME_FORMAT),
                         "outcome": "true_positive", "leak": col})
        elif cands:
            ignored += 1
            rows.append({"link": d.link_id, "time": d.time.strftime(TIME_FORMAT),
                         "outcome": "repeat", "leak": leaks[cands[0][2]].link_id})
        else:
            false_pos += 1
            rows.append({"link": d.link_id, "time": d.time.strftime(TIME_FORMAT),
                         "outcome": "false_positive", "leak": None})
    perfect = 0.0
    per_leak = []
    for j, leak in enumerate(leaks):
        col = leak.link_id
        total = leak_volume_after(leak_flows_m3h[col], leak.start) if col in leak_flows_m3h else 0.0
        perfect += EUR_PER_M3 * total
        per_leak.append({"leak": col, "start": leak.start.strftime(TIME_FORMAT),
                         "volume_m3": total, **({"found": True} | found[j] if j in found
                                                else {"found": False})})
    tp_reward = sum(f["reward_eur"] for f in found.values())
    total = tp_reward - FALSE_POSITIVE_EUR * false_pos
    return {"score_eur": total, "perfect_eur": perfect,
            "fraction_of_perfect": total / perfect if perfect > 0 else float("nan"),
            "true_positives": len(found), "false_positives": false_pos,
            "repeat_detections": ignored, "leaks": len(leaks),
            "per_leak": per_leak, "detections": rows}


def read_leak_flows(path: str | Path) -> pd.DataFrame:
    """A ``<year>_Leakages.csv`` file (m3/h per leak pipe) as written by the generator."""
    from live_bridge.scada import read_scada_file

    return read_scada_file(path)
