"""HTML report with plots and maps, made from :class:`~twin.results.Results` only.

Each layer contributes its figures (:data:`LAYER_FIGURES`, modules in
:mod:`twin.figures`); this module assembles runs, KPIs, figures, maps and events
into ``report.html`` with the PNGs beside it.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from twin.figures.citizens import citizens_figures
from twin.figures.lighting import lighting_figures
from twin.figures.parking import parking_figures
from twin.figures.traffic import traffic_figures
from twin.figures.sewer import sewer_figures
from twin.figures.waste import waste_figures
from twin.figures.water import water_figures
from twin.report_cascade import cascade_section, has_cascade
from twin.results import Results

# Each layer's report figures: results, output folder, maps wanted, service pressure ->
# (figures over time, maps). A new layer adds its entry here.
LAYER_FIGURES = {"water": water_figures, "waste": waste_figures, "citizens": citizens_figures}

LAYER_FIGURES["lighting"] = lighting_figures
LAYER_FIGURES["sewer"] = sewer_figures

# KPIs where a larger value is worse, and where a smaller one is; others are not coloured
WORSE_WHEN_HIGHER = ("deficit", "km_driven", "co2",
                     "below", "leak", "energy", "overflow", "flood", "backlog")
WORSE_WHEN_LOWER = ("min_pressure", "availability", "delivered", "within_promise")

# parking: its figures, and which of its KPIs are worse when higher or lower
LAYER_FIGURES["parking"] = parking_figures
WORSE_WHEN_HIGHER += ("cruising", "turned_away", "above_85pct", "lapsed")
WORSE_WHEN_LOWER += ("on_time",)

# traffic: its figures, and which of its KPIs are worse when higher or lower
LAYER_FIGURES["traffic"] = traffic_figures
WORSE_WHEN_HIGHER += ("travel_time", "delay", "extra_veh_h", "unserved")
WORSE_WHEN_LOWER += ("mean_speed",)


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
    map_files: list[tuple[str, Path]] = []
    layers = {layer for r in results for layer in r.kpis}
    for layer, make in LAYER_FIGURES.items():
        if layer in layers:
            over_time, layer_maps = make(results, out, maps, service_pressure_m)
            figures += over_time
            map_files += layer_maps
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
    if has_cascade(results):          # incidents that crossed networks: the cascade report
        parts.append(cascade_section(results, out, maps))
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
