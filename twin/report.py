"""HTML report with plots and maps, made from :class:`~twin.results.Results` only.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot,
no global state) and saved as PNG beside ``report.html``.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from twin.results import Results

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

# KPIs where a larger value is worse, and where a smaller one is; others are not coloured
WORSE_WHEN_HIGHER = ("deficit", "below", "leak", "energy", "overflow", "flood", "backlog")
WORSE_WHEN_LOWER = ("min_pressure", "availability", "delivered", "within_promise")


def _figure(width: float = 9.0, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _times(results: Sequence[Results]):
    """Seconds -> x values: calendar times when the runs know their start, else hours."""
    start = results[0].meta.get("start") if results else None
    if start:
        origin = pd.Timestamp(start)
        return (lambda secs: origin + pd.to_timedelta(np.asarray(secs, dtype=float), unit="s")), None
    return (lambda secs: np.asarray(secs, dtype=float) / 3600.0), "hours since start"


def _time_axis(ax, label: str | None) -> None:
    if label:
        ax.set_xlabel(label)
        return
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _event_lines(ax, results: Sequence[Results]) -> None:
    x_of, _ = _times(results)
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


def plot_pressure(results: Sequence[Results], path: Path, service_pressure_m: float) -> Path | None:
    """Junction pressure band (5th-95th percentile) and median over time, per scenario."""
    fig = _figure()
    ax = fig.add_subplot()
    x_of, xlabel = _times(results)
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
    _event_lines(ax, results)
    _time_axis(ax, xlabel)
    ax.set_ylabel("junction pressure [m]")
    ax.set_title("Water pressure across the network")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_water_balance(results: Sequence[Results], path: Path) -> Path | None:
    """Total outflow (consumption plus leaks) and tank levels over time."""
    fig = _figure(9.0, 5.5)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    x_of, xlabel = _times(results)
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
    _time_axis(ax2, xlabel)
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=7, ncol=2)
    ax2.grid(alpha=0.3)
    _event_lines(ax1, results)
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
    fig = _figure(8.0, 7.5)
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
    _mark_incidents(ax, result)
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


def _mark_incidents(ax, result: Results) -> None:
    ev = result.events
    if ev is None or ev.empty:
        return
    import ast

    from matplotlib.patches import Circle

    for _, row in ev[ev["kind"] == "StreetFlooded"].iterrows():
        d = ast.literal_eval(row["details"])
        ax.add_patch(Circle((d["x"], d["y"]), d["radius_m"], color="#3182bd", alpha=0.25, zorder=4))
        ax.scatter([d["x"]], [d["y"]], marker="X", c="#e31a1c", s=120, zorder=6,
                   edgecolors="k", label=f"burst ({d['flow_lps']:.0f} L/s)")


def kpi_frame(results: Sequence[Results]) -> pd.DataFrame:
    """KPIs side by side, with the change against the first (baseline) run."""
    table = pd.concat([r.kpi_table() for r in results], axis=1)
    if len(results) > 1:
        base = table.iloc[:, 0]
        for r in results[1:]:
            table[f"{r.name} - {results[0].name}"] = table[r.name] - base
    return table


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    v = float(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def _kpi_html(table: pd.DataFrame, n_runs: int) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = []
    for name, row in table.iterrows():
        cells = []
        for j, (col, v) in enumerate(row.items()):
            cls = ""
            if j >= n_runs and isinstance(v, (float, int)) and not np.isnan(v) and abs(v) > 1e-9:
                if any(w in name for w in WORSE_WHEN_HIGHER):
                    cls = ' class="worse"' if v > 0 else ' class="better"'
                elif any(w in name for w in WORSE_WHEN_LOWER):
                    cls = ' class="worse"' if v < 0 else ' class="better"'
            cells.append(f"<td{cls}>{_fmt(v)}</td>")
        rows.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>KPI</th>{head}</tr>{''.join(rows)}</table>"


def _events_html(r: Results) -> str:
    ev = r.events
    if ev is None or ev.empty:
        return "<p>No events.</p>"
    start = r.meta.get("start")
    rows = []
    for _, e in ev.iterrows():
        when = f"{e['time_s'] / 3600:.2f} h"
        if start:
            when = (dt.datetime.fromisoformat(str(start)) + dt.timedelta(seconds=float(e["time_s"]))
                    ).strftime("%Y-%m-%d %H:%M")
        cause = "" if pd.isna(e["cause_id"]) else f"#{int(e['cause_id'])}"
        rows.append(f"<tr><td>#{int(e['event_id'])}</td><td>{when}</td><td>{html.escape(e['kind'])}</td>"
                    f"<td>{html.escape(str(e['source']))}</td><td>{cause}</td>"
                    f"<td class='details'>{html.escape(str(e['details']))}</td></tr>")
    return ("<table><tr><th>id</th><th>time</th><th>event</th><th>raised by</th><th>caused by</th>"
            f"<th>details</th></tr>{''.join(rows)}</table>")


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.4}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right} th{background:#f5f5f5}
tr th:first-child{text-align:left} td.details{text-align:left;font-family:monospace;font-size:.8em}
td.worse{background:#fde0dd} td.better{background:#e5f5e0}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}
"""


def write_report(results: Sequence[Results], out_dir: str | Path, title: str = "urban-twin report",
                 service_pressure_m: float = 20.0, maps: bool = True) -> Path:
    """Write ``out_dir/report.html`` and its PNG figures; the first run is the baseline."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, Path]] = []
    for label, fn in (("Pressure over time", lambda p: plot_pressure(results, p, service_pressure_m)),
                      ("Outflow and tank levels", lambda p: plot_water_balance(results, p))):
        name = label.lower().replace(" ", "_") + ".png"
        made = fn(out / name)
        if made:
            figures.append((label, made))
    map_files: list[tuple[str, Path]] = []
    for i, r in enumerate(results if maps else ()):
        made = plot_map(r, out / f"map_{r.name}.png", baseline=results[0] if i else None,
                        service_pressure_m=service_pressure_m)
        if made:
            map_files.append((r.name, made))
    table = kpi_frame(results)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='sub'>generated {dt.datetime.now():%Y-%m-%d %H:%M} by urban-twin</p>",
             "<h2>Runs</h2><table><tr><th>run</th><th>description</th><th>city</th><th>start</th>"
             "<th>horizon</th><th>seed</th><th>wall time</th></tr>"]
    for r in results:
        m = r.meta
        parts.append(f"<tr><th>{html.escape(r.name)}</th><td style='text-align:left'>"
                     f"{html.escape(str(m.get('description', '')))}</td>"
                     f"<td>{html.escape(str(m.get('city', '')))}</td><td>{m.get('start', '')}</td>"
                     f"<td>{float(m.get('horizon_s', 0)) / 3600:g} h</td><td>{m.get('seed', '')}</td>"
                     f"<td>{float(m.get('wall_s', 0)):.1f} s</td></tr>")
    parts.append("</table><h2>Key figures</h2>")
    if len(results) > 1:
        parts.append(f"<p>Changes against <b>{html.escape(results[0].name)}</b>: "
                     "<span style='background:#fde0dd'>worse</span> / "
                     "<span style='background:#e5f5e0'>better</span>.</p>")
    parts.append(_kpi_html(table, len(results)))
    parts.append("<h2>Over time</h2>")
    for label, p in figures:
        parts.append(f"<h3>{html.escape(label)}</h3><img src='{p.name}' alt='{html.escape(label)}'>")
    if map_files:
        parts.append("<h2>Maps</h2><div class='grid'>")
        for name, p in map_files:
            parts.append(f"<div><img src='{p.name}' alt='map {html.escape(name)}'></div>")
        parts.append("</div>")
    parts.append("<h2>Events</h2>")
    for r in results:
        parts.append(f"<h3>{html.escape(r.name)}</h3>{_events_html(r)}")
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
