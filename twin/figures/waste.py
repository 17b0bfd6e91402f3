"""Waste figures of a report: km and overflows by run, fill at collection, overflowing
containers over time, and a map of the containers and one day's tours.

Drawn from each run's ``waste`` KPIs, its ``collections`` and ``tours`` element tables
and the recorded ``overflowing`` series, so two runs with different strategies
(fixed schedule, sensor-driven) compare side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from twin.figures.common import COLORS, figure, time_axis, times
from twin.results import Results


def _waste_runs(results: Sequence[Results]) -> list[Results]:
    return [r for r in results if "waste" in r.kpis]


def plot_kpis(results: Sequence[Results], path: Path) -> Path | None:
    """Bars: km driven, container overflows, collections, mean fill at collection."""
    runs = _waste_runs(results)
    if not runs:
        return None
    panels = (("km_driven", "km driven"), ("container_overflows", "container overflows"),
              ("collections", "collections"), ("mean_fill_at_collection",
                                               "mean fill at collection"))
    fig = figure(10.0, 3.2)
    axes = fig.subplots(1, len(panels))
    names = [r.name for r in runs]
    for ax, (key, label) in zip(axes, panels):
        values = [float(r.kpis["waste"].get(key, np.nan)) for r in runs]
        bars = ax.bar(range(len(runs)), values, color=[COLORS[i % len(COLORS)]
                                                       for i in range(len(runs))])
        for bar, v in zip(bars, values):
            ax.annotate(f"{v:.3g}" if abs(v) < 10 else f"{v:,.0f}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(runs)), names, rotation=15, fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Waste collection by run", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_fill_at_collection(results: Sequence[Results], path: Path) -> Path | None:
    """Histogram of the fill found when a container is collected, by run."""
    runs = [r for r in _waste_runs(results)
            if "collections" in r.elements.get("waste", {})
            and len(r.elements["waste"]["collections"])]
    if not runs:
        return None
    fig = figure(8.0, 3.6)
    ax = fig.add_subplot()
    bins = np.linspace(0.0, 1.6, 33)
    for i, r in enumerate(runs):
        fill = r.elements["waste"]["collections"]["fill_fraction"].to_numpy(float)
        ax.hist(np.clip(fill, 0, 1.6), bins=bins, alpha=0.55, color=COLORS[i % len(COLORS)],
                label=f"{r.name}: {len(fill)} collections, mean {fill.mean():.2f}")
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("fill at collection (share of capacity; > 1: waste left beside)")
    ax.set_ylabel("collections")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_overflowing(results: Sequence[Results], path: Path) -> Path | None:
    """Containers overflowing over time, by run."""
    runs = [r for r in _waste_runs(results) if not r.wide("waste", "overflowing").empty]
    if not runs:
        return None
    fig = figure(9.0, 3.4)
    ax = fig.add_subplot()
    x_of, xlabel = times(runs)
    for i, r in enumerate(runs):
        series = r.wide("waste", "overflowing")["all"]
        ax.step(x_of(series.index), series.to_numpy(), where="post", lw=1.2,
                color=COLORS[i % len(COLORS)], label=r.name)
    ax.set_ylabel("containers overflowing")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    time_axis(ax, xlabel)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_map(result: Results, path: Path) -> Path | None:
    """Containers by fill at the end, the garage and transfer site, the last day's tours."""
    waste = result.elements.get("waste", {})
    containers = waste.get("containers")
    if containers is None or containers.empty:
        return None
    fig = figure(8.0, 7.5)
    ax = fig.add_subplot()
    streets = result.elements.get("city", {}).get("streets")
    if streets is not None and not streets.empty:
        streets.plot(ax=ax, color="0.85", linewidth=0.6, zorder=1)
    tours = waste.get("tours")
    if tours is not None and len(tours):
        for i, (_, tour) in enumerate(tours.iterrows()):
            if tour.geometry is None:
                continue
            for part in getattr(tour.geometry, "geoms", [tour.geometry]):
                x, y = part.xy
                ax.plot(x, y, color=COLORS[i % len(COLORS)], lw=1.1, alpha=0.8, zorder=2)
            ax.plot([], [], color=COLORS[i % len(COLORS)],
                    label=f"{tour['truck_id']}: {int(tour['stops'])} stops (day {int(tour['day'])})")
    sc = ax.scatter(containers.geometry.x, containers.geometry.y,
                    c=containers["fill_fraction"].clip(0, 1.2), cmap="YlOrRd", vmin=0, vmax=1.2,
                    s=np.where(containers["capacity_l"] > 2000, 26, 12), edgecolors="0.3",
                    linewidths=0.3, zorder=3)
    fig.colorbar(sc, ax=ax, shrink=0.7, label="fill at the end of the run (share of capacity)")
    x0, y0, x1, y1 = containers.total_bounds
    pad = 0.06 * max(x1 - x0, y1 - y0)
    sites = waste.get("sites")
    if sites is not None:
        for site_id, marker in (("garage", "s"), ("transfer", "^")):
            if site_id not in sites.index:
                continue
            site = sites.loc[site_id]
            x, y, label = site.geometry.x, site.geometry.y, site_id
            if not (x0 - pad <= x <= x1 + pad and y0 - pad <= y <= y1 + pad):
                # off the map (a plant outside the district): marked where its road leaves
                x, y = float(site["gate_x"]), float(site["gate_y"])
                label = f"{site_id} ({site['access_m'] / 1000:.1f} km beyond)"
            ax.scatter([x], [y], marker=marker, s=110, c="k", zorder=5, label=label)
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal")
    ax.set_title(f"{result.name}: waste containers and the last day's tours")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    return path


def waste_figures(results: Sequence[Results], out: Path, maps: bool = True,
                  service_pressure_m: float = 20.0) -> tuple[list[tuple[str, Path]],
                                                             list[tuple[str, Path]]]:
    """(figures, maps) of the waste layer, written as PNG into ``out``."""
    figures = []
    for label, name, make in (
            ("Waste: km, overflows, collections, fill by run", "waste_kpis.png", plot_kpis),
            ("Waste: fill at collection", "waste_fill_at_collection.png", plot_fill_at_collection),
            ("Waste: containers overflowing", "waste_overflowing.png", plot_overflowing)):
        path = make(results, out / name)
        if path:
            figures.append((label, path))
    map_files = []
    for r in _waste_runs(results) if maps else ():
        path = plot_map(r, out / f"waste_map_{r.name}.png")
        if path:
            map_files.append((f"{r.name}: waste containers and tours", path))
    return figures, map_files
