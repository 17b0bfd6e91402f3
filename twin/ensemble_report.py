"""The ensemble report: KPI distributions, the worst members, criticality and risk maps.

Made from the output folder of :func:`twin.ensemble.run_ensemble` only (manifest, member
and element partitions, network tables), so it can be rebuilt at any time.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from twin.ensemble_store import load_elements, load_manifest, load_members, load_network
from twin.figures.ensemble import (node_risk, per_element_kpi, plot_criticality_map,
                                   plot_kpi_by_param, plot_kpi_distributions,
                                   plot_risk_map)
from twin.report import CSS, _fmt

# KPIs shown beside the ranking one when the members have them
MAIN_KPIS = ("water.demand_not_delivered_m3", "water.pressure_deficit_node_hours",
             "water.max_nodes_below_service_pressure", "water.min_pressure_m",
             "water.leak_volume_m3", "water.water_service_availability",
             "sewer.cso_volume_m3", "sewer.flooding_volume_m3", "sewer.cso_duration_h",
             "citizens.mean_hours_to_close", "citizens.within_promise_share",
             "citizens.urgent_within_promise_share", "citizens.crew_utilisation",
             "citizens.backlog_end", "citizens.phone_mean_wait_s")
FIXED_COLUMNS = {"member_id", "status", "error", "seconds", "worker_pid", "seed", "element",
                 "sweep", "params"}


def kpi_columns(members: pd.DataFrame) -> list[str]:
    """The KPI columns of a member table (``layer.kpi``), in table order."""
    return [c for c in members.columns if c not in FIXED_COLUMNS and not c.startswith("param:")
            and pd.api.types.is_numeric_dtype(members[c])]


def kpi_summary(members: pd.DataFrame) -> pd.DataFrame:
    """Per KPI over the members done: count, mean, 5th/50th/95th percentile, min, max."""
    done = members[members["status"] == "done"]
    rows = {}
    for kpi in kpi_columns(done):
        v = done[kpi].astype(float).dropna().to_numpy()
        if len(v):
            rows[kpi] = {"members": len(v), "mean": v.mean(), "p5": np.percentile(v, 5),
                         "median": np.median(v), "p95": np.percentile(v, 95), "min": v.min(),
                         "max": v.max()}
    return pd.DataFrame.from_dict(rows, orient="index")


def worst_members(members: pd.DataFrame, kpi: str, n: int = 15) -> pd.DataFrame:
    """The ``n`` members with the highest ``kpi`` (lowest for pressures and shares)."""
    done = members[members["status"] == "done"]
    if kpi not in done.columns:
        return done.iloc[:0]
    low_is_bad = any(w in kpi for w in ("min_pressure", "availability", "delivered_m3"))
    return done.sort_values(kpi, ascending=low_is_bad).head(n)


def _table(frame: pd.DataFrame, index_name: str) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for idx, row in frame.iterrows():
        cells = "".join(f"<td>{_fmt(v) if isinstance(v, (int, float, np.number)) else html.escape(str(v))}</td>"
                        for v in row.to_numpy())
        rows.append(f"<tr><th>{html.escape(str(idx))}</th>{cells}</tr>")
    return f"<table><tr><th>{html.escape(index_name)}</th>{head}</tr>{''.join(rows)}</table>"


def write_ensemble_report(out: str | Path) -> Path:
    """Write ``out/report.html`` (and its PNGs) from the ensemble results in ``out``."""
    out = Path(out)
    manifest = load_manifest(out)
    members = load_members(out)
    rank_by = manifest.get("rank_by") or "water.demand_not_delivered_m3"
    kpis = kpi_columns(members)
    if rank_by not in kpis and kpis:
        rank_by = kpis[0]
    layer = rank_by.partition(".")[0]         # the ranking's layer first
    main = sorted((k for k in MAIN_KPIS if k in kpis and k != rank_by),
                  key=lambda k: k.partition(".")[0] != layer)
    shown = [rank_by] + main
    network = load_network(out)
    streets = network.get("streets")
    service = float(manifest.get("service_pressure_m", 20.0))
    n_done = int((members["status"] == "done").sum()) if len(members) else 0
    failed = members[members["status"] != "done"] if len(members) else members
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>ensemble "
             f"{html.escape(manifest['name'])}</title><style>{CSS}</style></head><body>",
             f"<h1>Ensemble: {html.escape(manifest['name'])}</h1>",
             f"<p class='sub'>{html.escape(manifest['scenario'])}: {len(manifest['members'])} "
             f"members, {n_done} done, {len(failed)} failed, "
             f"{len(manifest['members']) - len(members)} not run yet</p>"]
    figures = []
    path = plot_kpi_distributions(members, shown, out / "ensemble_kpis.png")
    if path:
        figures.append(("KPI distributions", path))
    path = plot_kpi_by_param(members, rank_by, out / "ensemble_by_param.png")
    if path:
        figures.append((f"{rank_by} by grid parameter", path))
    score = per_element_kpi(members, rank_by)
    if not score.empty:
        path = plot_criticality_map(score, network.get("links"), rank_by,
                                    out / "ensemble_criticality.png", streets)
        if path:
            figures.append(("Criticality: the KPI when each pipe breaks", path))
    risk = node_risk(load_elements(out), service)
    if not risk.empty:
        path = plot_risk_map(risk, network.get("nodes"), network.get("links"), service,
                             out / "ensemble_risk.png", streets)
        if path:
            figures.append(("Risk of low pressure per junction", path))
    summary = kpi_summary(members)
    if not summary.empty:
        parts.append("<h2>KPIs across members</h2>" + _table(summary.loc[
            [k for k in shown if k in summary.index] +
            [k for k in summary.index if k not in shown]], "KPI"))
    worst = worst_members(members, rank_by)
    if len(worst):
        cols = ["element", "seed", "params", *shown]
        parts.append(f"<h2>Worst members by {html.escape(rank_by)}</h2>"
                     + _table(worst.set_index("member_id")[cols], "member"))
    if not score.empty:
        top = score.head(20).rename(rank_by).to_frame()
        parts.append("<h2>Most critical elements</h2>" + _table(top, "element"))
    for label, p in figures:
        parts.append(f"<h2>{html.escape(label)}</h2><img src='{p.name}' alt='{html.escape(label)}'>")
    if len(failed):
        errors = failed.set_index("member_id")[["params", "error"]].head(50).copy()
        errors["error"] = errors["error"].map(lambda e: str(e).strip().splitlines()[-1][:200]
                                              if str(e).strip() else "")
        parts.append("<h2>Failed members</h2>" + _table(errors, "member"))
    parts.append("</body></html>")
    report = out / "report.html"
    report.write_text("\n".join(parts), encoding="utf-8")
    (out / "kpi_summary.json").write_text(json.dumps(
        {"rank_by": rank_by, "kpis": summary.to_dict(orient="index"),
         "most_critical": score.head(20).to_dict()}, indent=2, default=float))
    return report
