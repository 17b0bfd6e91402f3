"""Citizens figures of a report: work-order backlog, open requests, busy crews and the phone
queue over time.

Drawn from the ``citizens`` layer's recorded series (``backlog`` per skill and ``all``,
``open_requests``, ``crews_busy``, ``phone_queue``); the span of the street floods in the
events (a storm) is shaded, so a storm week shows the backlog rising and falling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from twin.figures.common import COLORS, figure, time_axis, times
from twin.results import Results

FLOOD_KINDS = ("StreetFlooded",)


def _flood_span_s(result: Results) -> tuple[float, float] | None:
    ev = result.events
    if ev is None or ev.empty:
        return None
    floods = ev.loc[ev["kind"].isin(FLOOD_KINDS), "time_s"]
    return (float(floods.min()), float(floods.max())) if len(floods) else None


def plot_backlog(results: Sequence[Results], path: Path) -> Path | None:
    """Backlog (all skills, and the skill that peaks highest), open requests, crews busy,
    callers waiting on the phone."""
    fig = figure(9.0, 8.5)
    axes = fig.subplots(4, 1, sharex=True)
    x_of, xlabel = times(results)
    drawn = False
    for i, r in enumerate(results):
        backlog = r.wide("citizens", "backlog")
        if backlog.empty:
            continue
        c = COLORS[i % len(COLORS)]
        x = x_of(backlog.index)
        axes[0].plot(x, backlog["all"], color=c, lw=1.4, label=f"{r.name}: all skills")
        skills = [s for s in backlog.columns if s != "all"]
        if skills:
            top = max(skills, key=lambda s: backlog[s].max())
            axes[0].plot(x, backlog[top], color=c, lw=0.9, ls="--", label=f"{r.name}: {top}")
        for ax, quantity in ((axes[1], "open_requests"), (axes[2], "crews_busy"),
                             (axes[3], "phone_queue")):
            series = r.wide("citizens", quantity)
            if not series.empty:
                ax.plot(x_of(series.index), series["all"], color=c, lw=1.2, label=r.name)
        span = _flood_span_s(r)
        if span is not None:
            lo, hi = x_of([span[0], span[1]])
            for ax in axes:
                ax.axvspan(lo, hi, color="#3182bd", alpha=0.12, lw=0,
                           label="street floods" if ax is axes[0] and i == 0 else None)
        drawn = True
    if not drawn:
        return None
    axes[0].set_ylabel("work orders waiting")
    axes[0].set_title("Citizens' requests: backlog, open requests, crews busy, phone queue")
    axes[1].set_ylabel("open requests")
    axes[2].set_ylabel("crews busy")
    axes[3].set_ylabel("callers waiting")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper right")
    time_axis(axes[3], xlabel)
    fig.tight_layout()
    fig.savefig(path)
    return path


def citizens_figures(results: Sequence[Results], out: Path, maps: bool,
                     service_pressure_m: float) -> tuple[list[tuple[str, Path]], list]:
    """The report's citizens figures (no maps yet)."""
    figures = []
    p = plot_backlog(results, out / "backlog.png")
    if p is not None:
        figures.append(("Citizens: backlog, open requests, crews busy and phone queue", p))
    return figures, []
