"""Sewer figures of a report: overflow hydrographs (CSO) per run, a map of surcharged pipes."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from twin.figures.common import COLORS, event_lines, figure, time_axis, times
from twin.results import Results

def _cso_links(r: Results) -> list[str]:
    links = r.elements.get("sewer", {}).get("links")
    nodes = r.elements.get("sewer", {}).get("nodes")
    if links is None or nodes is None or "cso" not in nodes:
        return []
    cso_nodes = set(nodes.index[nodes["cso"].astype(bool)])
    return list(links.index[links["to_node"].isin(cso_nodes)])

def plot_cso(results: Sequence[Results], path: Path) -> Path | None:
    """Total overflow to the river (L/s) over time, one line per run, volume in the legend."""
    fig = figure()
    ax = fig.add_subplot()
    x_of, xlabel = times(results)
    drawn = False
    for i, r in enumerate(results):
        flow = r.wide("sewer", "flow")
        links = [lk for lk in _cso_links(r) if lk in flow.columns]
        if flow.empty or not links:
            continue
        total = flow[links].clip(lower=0).sum(axis=1)
        vol = r.kpis.get("sewer", {}).get("cso_volume_m3", float("nan"))
        ax.plot(x_of(total.index), total.to_numpy(), color=COLORS[i % len(COLORS)], lw=1.6,
                label=f"{r.name}: CSO {vol:,.0f} m3")
        drawn = True
    if not drawn:
        return None
    event_lines(ax, results)
    time_axis(ax, xlabel)
    ax.set_ylabel("overflow to the river [L/s]")
    ax.legend(loc="upper right", fontsize=8)
    fig.savefig(path, bbox_inches="tight")
    return path

def plot_surcharge_map(r: Results, path: Path) -> Path | None:
    """Conduits coloured by the hours they ran full (surcharged), CSO outfalls marked."""
    links = r.elements.get("sewer", {}).get("links")
    if links is None or "surcharged_h" not in links or links.geometry.isna().all():
        return None
    fig = figure(7.0, 7.0)
    ax = fig.add_subplot()
    conduits = links[(links["link_type"] == "conduit") & links.geometry.notna()]
    hours = conduits["surcharged_h"].fillna(0.0)
    conduits[hours <= 0].plot(ax=ax, color="0.75", lw=0.8)
    full = conduits[hours > 0]
    if len(full):
        full.assign(h=hours[hours > 0]).plot(ax=ax, column="h", cmap="OrRd", lw=2.2, legend=True,
                                             legend_kwds={"label": "hours surcharged",
                                                          "shrink": 0.6})
    nodes = r.elements["sewer"].get("nodes")
    if nodes is not None and "cso" in nodes:
        cso = nodes[nodes["cso"].astype(bool) & nodes.geometry.notna()]
        ax.scatter(cso.geometry.x, cso.geometry.y, marker="v", c="#3182bd", s=60, zorder=5,
                   label="overflow to the river")
        ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"{r.name}: surcharged pipes ({int((hours > 0).sum())} of {len(hours)})")
    ax.set_aspect("equal")
    ax.set_axis_off()
    fig.savefig(path, bbox_inches="tight")
    return path

def sewer_figures(results: Sequence[Results], out: Path, maps: bool = True,
                  service_pressure_m: float = 20.0) -> tuple[list[tuple[str, Path]],
                                                             list[tuple[str, Path]]]:
    """(figures over time, maps) of the sewer layer for a report."""
    over_time = []
    p = plot_cso(results, out / "sewer_cso.png")
    if p is not None:
        over_time.append(("Combined-sewer overflow to the river", p))
    map_files = []
    if maps:
        for i, r in enumerate(results):
            p = plot_surcharge_map(r, out / f"sewer_surcharge_{i}.png")
            if p is not None:
                map_files.append((f"{r.name} surcharged pipes", p))
    return over_time, map_files

__all__ = ["sewer_figures", "plot_cso", "plot_surcharge_map"]
