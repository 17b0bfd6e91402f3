"""Traffic figures of a report: total travel time over the day, and a map of the links
whose travel time changed after a street closure, the closed streets marked.

Drawn from the ``traffic`` layer's recorded series (``tstt``, ``tstt_no_incident``,
``time_change``), its ``links`` elements and the run's ``StreetClosed`` / ``LanesClosed``
events.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from twin.figures.common import (COLORS, event_lines, figure, mark_incidents, time_axis,
                                 times)
from twin.results import Results

CLOSURE_KINDS = ("StreetClosed", "LanesClosed")


def plot_tstt(results: Sequence[Results], path: Path) -> Path | None:
    """Total travel time of each period (veh*h per hour) over the day, per run; below it,
    the incidents' extra travel time (against the same demand without them)."""
    fig = figure(9.0, 5.5)
    ax, ax_extra = fig.subplots(2, 1, sharex=True, height_ratios=(2.2, 1))
    x_of, xlabel = times(results)
    drawn = extra_drawn = False
    for i, r in enumerate(results):
        tstt = r.wide("traffic", "tstt")
        if tstt.empty:
            continue
        c = COLORS[i % len(COLORS)]
        x = x_of(tstt.index)
        ax.step(x, tstt["all"], where="post", color=c, lw=1.5, label=r.name)
        intact = r.wide("traffic", "tstt_no_incident")
        if not intact.empty:
            extra = (tstt["all"] - intact["all"]).to_numpy()
            if np.any(np.abs(extra) > 1e-9):
                ax_extra.step(x, extra, where="post", color=c, lw=1.3, label=r.name)
                extra_drawn = True
        drawn = True
    if not drawn:
        return None
    event_lines(ax, results)
    ax.set_ylabel("veh·h per hour")
    ax.set_title("Traffic: total travel time on the network")
    ax.legend(fontsize=7, loc="upper left")
    ax_extra.set_ylabel("incident extra\nveh·h per hour")
    if extra_drawn:
        ax_extra.legend(fontsize=7, loc="upper right")
    else:
        ax_extra.text(0.5, 0.5, "no incident", transform=ax_extra.transAxes, ha="center",
                      va="center", color="0.4")
    for a in (ax, ax_extra):
        a.grid(alpha=0.3)
    time_axis(ax_extra, xlabel)
    fig.tight_layout()
    fig.savefig(path)
    return path


def closures(result: Results) -> pd.DataFrame:
    """The run's closures: time_s, kind, street_ids (tuple), event_id."""
    ev = result.events
    if ev is None or ev.empty:
        return pd.DataFrame(columns=["event_id", "time_s", "kind", "street_ids"])
    rows = ev[ev["kind"].isin(CLOSURE_KINDS)]
    return pd.DataFrame({
        "event_id": rows["event_id"].to_numpy(), "time_s": rows["time_s"].to_numpy(float),
        "kind": rows["kind"].to_numpy(),
        "street_ids": [tuple(ast.literal_eval(d).get("street_ids", ())) for d in rows["details"]],
    })


def plot_closure_map(result: Results, path: Path) -> Path | None:
    """Street links coloured by the change of travel time (s) when the first closure came
    (same demand, before -> after), the closed streets drawn in black."""
    links = result.elements.get("traffic", {}).get("links")
    change = result.wide("traffic", "time_change")
    closed = closures(result)
    if links is None or change.empty or closed.empty or links.geometry.isna().all():
        return None
    first = closed.iloc[0]
    at = change.index[np.argmin(np.abs(change.index.to_numpy() - first["time_s"]))]
    delta = change.loc[at].reindex(links.index)
    tstt = result.wide("traffic", "tstt")
    fig = figure(8.0, 7.0)
    ax = fig.add_subplot()
    links.plot(ax=ax, color="0.85", lw=0.8, zorder=1)
    moved = delta.abs() > 0.05
    lim = float(np.nanpercentile(delta[moved].abs(), 98)) if moved.any() else 1.0
    if moved.any():
        shown = links[moved.to_numpy()].assign(change_s=delta[moved].to_numpy())
        shown.sort_values("change_s", key=np.abs).plot(
            ax=ax, column="change_s", cmap="RdBu_r", vmin=-lim, vmax=lim, lw=2.4, zorder=2,
            legend=True, legend_kwds={"label": "travel-time change [s per vehicle]",
                                      "shrink": 0.7})
    mark_incidents(ax, result)             # a burst's flood, when water caused the closure
    hit = links[links["street_id"].isin(first["street_ids"])]
    if len(hit):
        from matplotlib.lines import Line2D

        hit.plot(ax=ax, color="k", lw=5, zorder=5)
        what = "closed" if first["kind"] == "StreetClosed" else "lanes closed"
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color="k", lw=5))
        labels.append(f"{what}: {', '.join(first['street_ids'][:4])}")
        ax.legend(handles, labels, loc="lower left", fontsize=8)
    intact = result.wide("traffic", "tstt_no_incident")
    rise = ""
    if not tstt.empty and at in tstt.index and at in intact.index:
        rise = (f"\ntotal travel time {tstt.loc[at, 'all'] - intact.loc[at, 'all']:+.1f} "
                f"veh·h per hour (of {intact.loc[at, 'all']:.0f})")
    x_of, _ = times([result])
    when = x_of([at])[0]
    when_text = when.strftime("%H:%M") if hasattr(when, "strftime") else f"{when:.2f} h"
    ax.set_title(f"{result.name}: travel-time change after the closure at {when_text}{rise}",
                 fontsize=10)
    ax.set_aspect("equal")
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path)
    return path


def traffic_figures(results: Sequence[Results], out: Path, maps: bool,
                    service_pressure_m: float) -> tuple[list[tuple[str, Path]],
                                                        list[tuple[str, Path]]]:
    """(figures over time, maps) of the traffic layer, written as PNG into ``out``."""
    figures = []
    p = plot_tstt(results, out / "traffic_tstt.png")
    if p is not None:
        figures.append(("Traffic: total travel time over the day", p))
    map_files = []
    for r in results if maps else ():
        p = plot_closure_map(r, out / f"traffic_closure_{r.name}.png")
        if p is not None:
            map_files.append((f"{r.name}: travel-time change after the closure", p))
    return figures, map_files
