"""Parking figures of a report: occupancy per zone over the run, prices, permit renewals.

Drawn from the ``parking`` layer's recorded series (``occupancy_share`` per zone and car
park at each sensor reading, ``price`` per zone) and its KPIs (renewals on time with and
without a reminder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from twin.figures.common import COLORS, figure, time_axis, times
from twin.results import Results


def _zone_order(columns) -> list[str]:
    zones = [c for c in columns if str(c).startswith("pz")]
    return sorted(zones, key=lambda z: int(str(z)[2:]) if str(z)[2:].isdigit() else 0)


def plot_occupancy_heatmap(results: Sequence[Results], path: Path) -> Path | None:
    """Zones (rows) by time (columns): occupancy share, one panel per run."""
    runs = [r for r in results if not r.wide("parking", "occupancy_share").empty]
    if not runs:
        return None
    fig = figure(10.0, 3.2 * len(runs) + 0.6)
    axes = np.atleast_1d(fig.subplots(len(runs), 1, sharex=True))
    x_of, xlabel = times(runs)
    image = None
    for ax, r in zip(axes, runs):
        share = r.wide("parking", "occupancy_share")
        cols = _zone_order(share.columns) + [c for c in share.columns if str(c).startswith("cp")]
        share = share[cols]
        x = x_of(share.index)
        x_num = np.asarray(x if xlabel else [t.to_datetime64() for t in x])
        image = ax.pcolormesh(x_num, np.arange(len(cols) + 1), share.to_numpy().T[:, :-1]
                              if len(x_num) == share.shape[0] else share.to_numpy().T,
                              vmin=0, vmax=1, cmap="RdYlGn_r", shading="flat")
        ax.set_yticks(np.arange(len(cols)) + 0.5)
        ax.set_yticklabels(cols, fontsize=6)
        n_zones = len(_zone_order(cols))
        if n_zones < len(cols):
            ax.axhline(n_zones, color="k", lw=0.8)
        ax.set_title(f"{r.name}: occupancy share by zone (pz) and car park (cp)", fontsize=9)
    time_axis(axes[-1], xlabel)
    fig.colorbar(image, ax=list(axes), label="occupied share", shrink=0.9)
    fig.savefig(path)
    return path


def plot_prices(results: Sequence[Results], path: Path) -> Path | None:
    """Price of each zone over time (responsive pricing moves them, fixed ones stay)."""
    fig = figure(9.0, 3.6)
    ax = fig.subplots()
    x_of, xlabel = times(results)
    drawn = False
    for i, r in enumerate(results):
        price = r.wide("parking", "price")
        if price.empty:
            continue
        c = COLORS[i % len(COLORS)]
        for k, z in enumerate(_zone_order(price.columns)):
            ax.step(x_of(price.index), price[z], where="post", color=c, lw=0.8, alpha=0.7,
                    label=r.name if k == 0 else None)
        drawn = True
    if not drawn:
        return None
    ax.set_ylabel("on-street price (EUR/h)")
    ax.set_title("Zone prices (each line a zone)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    time_axis(ax, xlabel)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_renewals(results: Sequence[Results], path: Path) -> Path | None:
    """Share of the permits due that were renewed on time, by run and reminder group."""
    groups = (("all due", "permit_renewals_on_time_share"),
              ("reminded", "permit_renewals_on_time_share_reminded"),
              ("not reminded", "permit_renewals_on_time_share_not_reminded"))
    runs = [r for r in results if "permits_due" in r.kpis.get("parking", {})]
    if not runs:
        return None
    fig = figure(7.5, 3.6)
    ax = fig.subplots()
    width = 0.8 / len(runs)
    for i, r in enumerate(runs):
        k = r.kpis["parking"]
        values = [float(k.get(key, np.nan)) for _, key in groups]
        xs = np.arange(len(groups)) + i * width
        bars = ax.bar(xs, np.nan_to_num(values), width, color=COLORS[i % len(COLORS)],
                      label=f"{r.name} ({int(k['permits_due'])} due)")
        for b, v in zip(bars, values):
            ax.annotate("–" if np.isnan(v) else f"{v:.0%}", (b.get_x() + b.get_width() / 2,
                        b.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(np.arange(len(groups)) + width * (len(runs) - 1) / 2)
    ax.set_xticklabels([g for g, _ in groups])
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("renewed before expiry")
    ax.set_title("Residents' permits renewed on time")
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    return path


def parking_figures(results: Sequence[Results], out: Path, maps: bool,
                    service_pressure_m: float) -> tuple[list[tuple[str, Path]], list]:
    """The report's parking figures (no maps)."""
    figures = []
    for label, make, name in (
            ("Parking: occupancy by zone over the run", plot_occupancy_heatmap,
             "parking_occupancy.png"),
            ("Parking: zone prices", plot_prices, "parking_prices.png"),
            ("Parking: permit renewals on time, with and without reminders", plot_renewals,
             "parking_renewals.png")):
        p = make(results, out / name)
        if p is not None:
            figures.append((label, p))
    return figures, []
