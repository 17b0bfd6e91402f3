"""Water figures of a report: pressure band over time, outflow and tanks, network maps."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from twin.figures.common import (COLORS, event_lines, figure, mark_incidents, time_axis,
                                 times)
from twin.results import Results

def plot_pressure(results: Sequence[Results], path: Path, service_pressure_m: float) -> Path | None:
    """Junction pressure band (5th-95th percentile) and median over time, per scenario."""
    fig = figure()
    ax = fig.add_subplot()
    x_of, xlabel = times(results)
    drawn = False
    for i, r in enumerate(results):
        p = r.wide("water", "pressure")
        if p.empty:
            continue
        nodes = r.elements.get("water", {}).get("nodes")
        if nodes is not None:
            junctions = [n for n in nodes.index[nodes["node_type"] == "Junction"] if n in p.columns]
            p = p[junctions] if junctions else p
        h = x_of(p.index)
        c = COLORS[i % len(COLORS)]
        q05, q50, q95 = (np.nanpercentile(p.to_numpy(), q, axis=1) for q in (5, 50, 95))
        ax.fill_between(h, q05, q95, color=c, alpha=0.18, lw=0)
        ax.plot(h, q50, color=c, lw=1.6, label=f"{r.name}: median (band 5-95 %)")
        ax.plot(h, np.nanmin(p.to_numpy(), axis=1), color=c, lw=0.9, ls=":", label=f"{r.name}: minimum")
        drawn = True
    if not drawn:
        return None
    ax.axhline(service_pressure_m, color="k", lw=0.8, ls="-.", label=f"service pressure {service_pressure_m:g} m")
    event_lines(ax, results)
    time_axis(ax, xlabel)
    ax.set_ylabel("junction pressure [m]")
    ax.set_title("Water pressure across the network")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_water_balance(results: Sequence[Results], path: Path) -> Path | None:
    """Total outflow (consumption plus leaks) and tank levels over time."""
    fig = figure(9.0, 5.5)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    x_of, xlabel = times(results)
    drawn = False
    for i, r in enumerate(results):
        c = COLORS[i % len(COLORS)]
        d = r.wide("water", "demand")
        if not d.empty:
            nodes = r.elements.get("water", {}).get("nodes")
            cols = d.columns
            if nodes is not None:
                cols = [n for n in d.columns if n not in nodes.index
                        or nodes.loc[n, "node_type"] == "Junction"]
            ax1.plot(x_of(d.index), d[cols].clip(lower=0).sum(axis=1) / 1000.0 * 3600.0,
                     color=c, lw=1.4, label=r.name)
            drawn = True
        t = r.wide("water", "tank_level")
        for j, tank in enumerate(t.columns):
            ax2.plot(x_of(t.index), t[tank], color=c, lw=1.2, ls=["-", "--", ":", "-."][j % 4],
                     label=f"{r.name}: {tank}")
    if not drawn:
        return None
    ax1.set_ylabel("outflow [m³/h]")
    ax1.set_title("Water delivered and lost (consumption + leaks)")
    ax1.legend(fontsize=7)
    ax1.grid(alpha=0.3)
    ax2.set_ylabel("tank level [m]")
    time_axis(ax2, xlabel)
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=7, ncol=2)
    ax2.grid(alpha=0.3)
    event_lines(ax1, results)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_map(result: Results, path: Path, baseline: Results | None = None,
             service_pressure_m: float = 20.0) -> Path | None:
    """Map of the water network: pipes by diameter, junctions by their lowest pressure
    (on the baseline's colour scale, so maps compare side by side), incidents marked."""
    water = result.elements.get("water", {})
    nodes, links = water.get("nodes"), water.get("links")
    if nodes is None or links is None or nodes.empty:
        return None
    fig = figure(8.0, 7.5)
    ax = fig.add_subplot()
    streets = result.elements.get("city", {}).get("streets")
    if streets is not None and not streets.empty:
        streets.plot(ax=ax, color="0.85", linewidth=0.6, zorder=1)
    pipes = links[links["link_type"] == "Pipe"]
    widths = 0.4 + 2.6 * (pipes["diameter_mm"] / max(pipes["diameter_mm"].max(), 1.0))
    pipes.plot(ax=ax, color="0.45", linewidth=widths, zorder=2)
    p = result.wide("water", "pressure")
    junctions = nodes[nodes["node_type"] == "Junction"]
    cols = [n for n in junctions.index if n in p.columns]
    if cols:
        values = p[cols].min(axis=0)
        scale_from = values
        if baseline is not None and not baseline.wide("water", "pressure").empty:
            pb = baseline.wide("water", "pressure")
            scale_from = pb[[c for c in cols if c in pb.columns]].min(axis=0)
        vmax = max(2 * service_pressure_m, float(scale_from.quantile(0.95)))
        geo = junctions.loc[values.index]
        sc = ax.scatter(geo.geometry.x, geo.geometry.y, c=values.to_numpy(), cmap="RdYlBu", s=11,
                        vmin=0.0, vmax=vmax, zorder=3, linewidths=0)
        fig.colorbar(sc, ax=ax, shrink=0.7, label="lowest pressure during the run [m]")
        low = geo[values.to_numpy() < service_pressure_m]
        if len(low):
            ax.scatter(low.geometry.x, low.geometry.y, s=30, facecolors="none", edgecolors="k",
                       linewidths=0.6, zorder=3,
                       label=f"{len(low)} junctions below {service_pressure_m:g} m")
    for kind, marker, color, size in (("Tank", "s", "#1f77b4", 70), ("Reservoir", "^", "#08306b", 90)):
        sel = nodes[nodes["node_type"] == kind]
        if len(sel):
            ax.scatter(sel.geometry.x, sel.geometry.y, marker=marker, c=color, s=size, zorder=5,
                       edgecolors="white", label=kind.lower())
    pumps = links[links["link_type"] == "Pump"]
    if len(pumps):
        c = pumps.geometry.centroid
        ax.scatter(c.x, c.y, marker="P", c="#ff7f0e", s=60, zorder=5, label="pump", edgecolors="k")
    mark_incidents(ax, result)
    ax.set_aspect("equal")
    ax.set_title(f"{result.name}: water network")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    return path




def water_figures(results: Sequence[Results], out: Path, maps: bool = True,
                  service_pressure_m: float = 20.0) -> tuple[list[tuple[str, Path]],
                                                             list[tuple[str, Path]]]:
    """(figures over time, maps) of the water layer, written as PNG into ``out``."""
    figures = []
    for label, name, made in (
            ("Pressure over time", "pressure_over_time.png",
             lambda p: plot_pressure(results, p, service_pressure_m)),
            ("Outflow and tank levels", "outflow_and_tank_levels.png",
             lambda p: plot_water_balance(results, p))):
        path = made(out / name)
        if path:
            figures.append((label, path))
    map_files = []
    for i, r in enumerate(results if maps else ()):
        path = plot_map(r, out / f"map_{r.name}.png", baseline=results[0] if i else None,
                        service_pressure_m=service_pressure_m)
        if path:
            map_files.append((f"{r.name}: water network", path))
    return figures, map_files
