"""Shared pieces of every figure: canvas, colours, time axes, event markers, incidents.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no global
state), so making a report changes nothing for the caller's own plots.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from twin.results import Results

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

def figure(width: float = 9.0, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def times(results: Sequence[Results]):
    """Seconds -> x values: calendar times when the runs know their start, else hours."""
    start = results[0].meta.get("start") if results else None
    if start:
        origin = pd.Timestamp(start)
        return (lambda secs: origin + pd.to_timedelta(np.asarray(secs, dtype=float), unit="s")), None
    return (lambda secs: np.asarray(secs, dtype=float) / 3600.0), "hours since start"


def time_axis(ax, label: str | None) -> None:
    if label:
        ax.set_xlabel(label)
        return
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def event_lines(ax, results: Sequence[Results]) -> None:
    x_of, _ = times(results)
    shown = set()
    for r in results:
        ev = r.events
        if ev is None or ev.empty:
            continue
        for _, row in ev[ev["source"] == "scenario"].iterrows():
            key = (row["kind"], row["time_s"])
            if key in shown:
                continue
            shown.add(key)
            x = x_of([row["time_s"]])[0]
            ax.axvline(x, color="0.35", lw=0.8, ls="--")
            ax.annotate(row["kind"], (x, 1.0), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=7, color="0.3")


def mark_incidents(ax, result: Results) -> None:
    """Floods on a map: a burst's (published by the water layer) as a cross with its flow,
    any other (a surcharged sewer's, through the cascade rules) as a blue disc; one legend
    entry per kind, however many floods a storm makes."""
    ev = result.events
    if ev is None or ev.empty:
        return
    import ast

    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Circle

    floods = ev[ev["kind"] == "StreetFlooded"]
    if floods.empty:
        return
    details = [ast.literal_eval(d) for d in floods["details"]]
    bursts = [d for d, src in zip(details, floods["source"]) if src == "water"]
    others = [d for d, src in zip(details, floods["source"]) if src != "water"]
    discs = [Circle((d["x"], d["y"]), d["radius_m"]) for d in details]
    ax.add_collection(PatchCollection(discs, color="#3182bd", alpha=0.25, zorder=4))
    if others:
        ax.scatter([d["x"] for d in others], [d["y"] for d in others], marker="o",
                   c="#3182bd", s=18, alpha=0.7, zorder=6, label=f"flooded street ({len(others)})")
    if bursts:
        label = (f"burst ({bursts[0]['flow_lps']:.0f} L/s)" if len(bursts) == 1
                 else f"bursts ({len(bursts)})")
        ax.scatter([d["x"] for d in bursts], [d["y"] for d in bursts], marker="X",
                   c="#e31a1c", s=120, zorder=6, edgecolors="k", label=label)


