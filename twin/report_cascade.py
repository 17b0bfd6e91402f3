"""The cascade report: how an incident travelled through the city's networks, for planners.

Made from :class:`~twin.results.Results` only (a run's events with their causes, its KPIs
and the city's streets), for the runs of a scenario with a cascade layer or with events
one network caused in another. :func:`cascade_section` returns the HTML that
:func:`twin.report.write_report` puts after its key figures:

* what caused what: each link of the chain (cause -> effect, rule), how often, first when,
  after how long;
* the timeline of the chain (one lane per network, arrows from cause to effect);
* the city map at each phase (onset, floods and closures, repairs);
* the headline KPIs of every network and of the request service, one column per run;
* the response options (the scenario's ``responses:``): what each one changes.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from twin.cascade import cause_chains
from twin.figures.cascade import chain_events, plot_phase_maps, plot_timeline
from twin.results import Results

# the headline KPIs of each network and of the request service, in the order shown;
# a KPI a run does not have is left out
HEADLINE_KPIS: dict[str, tuple[str, ...]] = {
    "water": ("water_service_availability", "min_pressure_m", "pressure_deficit_node_hours",
              "leak_volume_m3", "demand_required_m3"),
    "sewer": ("flooding_volume_m3", "flooding_events", "cso_volume_m3", "cso_duration_h"),
    "traffic": ("total_travel_time_veh_h", "incident_extra_veh_h", "delay_veh_h",
                "mean_speed_kph", "unserved_trips_veh"),
    "lighting": ("lamp_hours_out", "lamps_out_end", "feeder_faults", "energy_kwh"),
    "waste": ("km_driven", "collections", "delay_h", "container_overflows",
              "overflow_container_hours"),
    "parking": ("occupancy_mean_share", "cruising_veh_h", "turned_away"),
    "citizens": ("incidents", "requests", "duplicates", "phone_calls", "incident_info_calls",
                 "phone_mean_wait_s", "phone_abandoned_share", "alerts_sent",
                 "alert_recipients", "reports_avoided_by_alerts",
                 "median_hours_incident_to_crew_on_site", "crews_rerouted",
                 "reroute_extra_hours", "backlog_end"),
    "cascade": ("events_caused", "triggers"),
}
# the outcomes the response options are compared on (worse when higher, except these)
OPTION_OUTCOMES = ("citizens.duplicates", "citizens.phone_calls", "citizens.incident_info_calls",
                   "citizens.phone_mean_wait_s", "citizens.median_hours_incident_to_crew_on_site",
                   "citizens.reroute_extra_hours", "sewer.flooding_volume_m3",
                   "sewer.cso_volume_m3", "traffic.incident_extra_veh_h", "lighting.lamp_hours_out",
                   "waste.delay_h")
BETTER_WHEN_HIGHER = ("water_service_availability", "min_pressure_m", "mean_speed_kph",
                      "reports_avoided_by_alerts", "alert_recipients", "alerts_sent")


def has_cascade(results: Sequence[Results]) -> bool:
    """True when a run has a cascade layer or an event one network caused in another."""
    return any(_cascade_run(r) for r in results)


def _cascade_run(r: Results) -> bool:
    if "cascade" in r.kpis:
        return True
    ev = r.events
    if ev is None or ev.empty or ev["cause_id"].isna().all():
        return False
    source = ev.set_index("event_id")["source"]
    cause = pd.to_numeric(ev["cause_id"], errors="coerce")
    known = cause.isin(source.index)
    return bool((source.loc[cause[known].astype(int)].to_numpy()
                 != ev.loc[known, "source"].to_numpy()).any())


def _when(r: Results, seconds: float) -> str:
    start = r.meta.get("start")
    if not start:
        return f"{seconds / 3600:.2f} h"
    return (dt.datetime.fromisoformat(str(start)) + dt.timedelta(seconds=float(seconds))
            ).strftime("%a %H:%M")


def links_table(chains: pd.DataFrame) -> pd.DataFrame:
    """Each kind of link of the chain: cause kind, effect kind, rule (or the layer that
    reacted), count, first time and median delay after the cause, in order of first time."""
    ev = chain_events(chains)
    by_id = chains.set_index("event_id")
    cause = pd.to_numeric(ev["cause_id"], errors="coerce")
    linked = ev[cause.isin(by_id.index)].assign(cause=cause[cause.isin(by_id.index)].astype(int))
    if linked.empty:
        return pd.DataFrame(columns=["cause", "effect", "by", "count", "first_s",
                                     "median_delay_min"])
    linked = linked.assign(
        cause_kind=by_id.loc[linked["cause"], "kind"].to_numpy(),
        delay_min=(linked["time_s"].to_numpy() - by_id.loc[linked["cause"], "time_s"].to_numpy())
        / 60.0,
        by=[rule if rule else f"{source} layer" for rule, source
            in zip(linked["rule"], linked["source"])])
    table = linked.groupby(["cause_kind", "kind", "by"], sort=False).agg(
        count=("event_id", "size"), first_s=("time_s", "min"),
        median_delay_min=("delay_min", "median")).reset_index()
    table = table.rename(columns={"cause_kind": "cause", "kind": "effect"})
    return table.sort_values("first_s", kind="stable").reset_index(drop=True)


def headline_table(results: Sequence[Results]) -> pd.DataFrame:
    """Headline KPIs of every network and the request service (rows 'layer.kpi'), one column
    per run."""
    rows = {}
    for layer, names in HEADLINE_KPIS.items():
        for name in names:
            values = {r.name: r.kpis.get(layer, {}).get(name) for r in results}
            if any(v is not None for v in values.values()):
                rows[f"{layer}.{name}"] = {k: (np.nan if v is None else float(v))
                                           for k, v in values.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[r.name for r in results])


def _fmt(v: float) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def _better(name: str, change: float) -> str:
    if not np.isfinite(change) or abs(change) < 1e-9:
        return ""
    good = change > 0 if any(w in name for w in BETTER_WHEN_HIGHER) else change < 0
    return ' class="better"' if good else ' class="worse"'


def _table_html(table: pd.DataFrame, first: str, deltas: bool) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = []
    layer = None
    for name, row in table.iterrows():
        this = str(name).split(".")[0]
        if this != layer:
            layer = this
            rows.append(f"<tr><th colspan='{len(table.columns) + 1}' style='text-align:left;"
                        f"background:#e8eef5'>{html.escape(layer)}</th></tr>")
        cells = []
        base = row.iloc[0]
        for j, v in enumerate(row.to_numpy(dtype=float)):
            cls = _better(str(name), v - base) if deltas and j > 0 else ""
            cells.append(f"<td{cls}>{_fmt(v)}</td>")
        rows.append(f"<tr><th>{html.escape(str(name).split('.', 1)[1])}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>{html.escape(first)}</th>{head}</tr>{''.join(rows)}</table>"


def options_table(results: Sequence[Results]) -> pd.DataFrame:
    """The change each response option makes to the outcomes, against the first run."""
    base = results[0]
    rows = {}
    for r in results[1:]:
        label = r.meta.get("response") or r.name
        rows[label] = {}
        for key in OPTION_OUTCOMES:
            layer, name = key.split(".", 1)
            a, b = base.kpis.get(layer, {}).get(name), r.kpis.get(layer, {}).get(name)
            rows[label][key] = np.nan if a is None or b is None else float(b) - float(a)
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(OPTION_OUTCOMES))
    return table.dropna(axis=1, how="all")


def _options_html(results: Sequence[Results]) -> str:
    if len(results) < 2:
        return ("<p>No response options: add a <code>responses:</code> section to the "
                "scenario to compare alerts, crews or sewer strategies.</p>")
    table = options_table(results)
    items = "".join(
        f"<li><b>{html.escape(str(r.meta.get('response') or r.name))}</b>: "
        f"{html.escape(str(r.meta.get('response_description') or r.meta.get('description', '')))}"
        f"</li>" for r in results[1:])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    rows = []
    for label, row in table.iterrows():
        cells = "".join(f"<td{_better(c, v)}>{'+' if np.isfinite(v) and v > 0 else ''}"
                        f"{_fmt(v)}</td>" for c, v in row.items())
        rows.append(f"<tr><th>{html.escape(str(label))}</th>{cells}</tr>")
    return (f"<p>Each option is the same scenario with the same seed (same rain, same "
            f"residents' draws), only the city's response changed; changes against "
            f"<b>{html.escape(results[0].name)}</b> "
            "(<span style='background:#fde0dd'>worse</span> / "
            "<span style='background:#e5f5e0'>better</span>):</p>"
            f"<ul>{items}</ul><table><tr><th>option</th>{head}</tr>{''.join(rows)}</table>")


def cascade_section(results: Sequence[Results], out: Path, maps: bool = True) -> str:
    """The HTML of the cascade report (figures written to ``out``), for the first run with
    a cascade; the other runs are its comparisons."""
    main = next(r for r in results if _cascade_run(r))
    chains = cause_chains(main.events)
    parts = ["<h2>Incident chain</h2>",
             f"<p>How the incident of <b>{html.escape(main.name)}</b> travelled from one network "
             "to the next: every event below was caused by the one before it (its "
             "<i>cause</i>), by a cascade rule of the city's rules file or by a layer's own "
             "reaction.</p>"]
    links = links_table(chains)
    if links.empty:
        parts.append("<p>No event caused another in this run.</p>")
    else:
        rows = "".join(
            f"<tr><th>{html.escape(row.cause)}</th><td style='text-align:left'>"
            f"&rarr; {html.escape(row.effect)}</td><td style='text-align:left'>"
            f"{html.escape(row.by.replace('_', ' '))}</td><td>{row.count}</td>"
            f"<td>{_when(main, row.first_s)}</td><td>{_fmt(row.median_delay_min)}</td></tr>"
            for row in links.itertuples())
        parts.append("<table><tr><th>cause</th><th>effect</th><th>by (rule or layer)</th>"
                     "<th>times</th><th>first</th><th>median delay [min]</th></tr>"
                     f"{rows}</table>")
        timeline = plot_timeline(main, chains, out / f"{main.name}_cascade_timeline.png")
        if timeline is not None:
            parts.append(f"<h3>Timeline</h3><img src='{timeline.name}' alt='incident timeline'>")
        if maps:
            phase_map = plot_phase_maps(main, chains, out / f"{main.name}_cascade_phases.png")
            if phase_map is not None:
                parts.append("<h3>The city at each phase</h3>"
                             f"<img src='{phase_map.name}' alt='maps per phase'>")
    parts.append("<h2>Every network side by side</h2>")
    parts.append(_table_html(headline_table(results), "KPI", deltas=len(results) > 1))
    responses = any(r.meta.get("response") for r in results)
    if responses or len(results) == 1:
        parts.append("<h2>Response options</h2>")
    else:
        parts.append("<h2>Comparison of the runs</h2>")
    parts.append(_options_html(results))
    return "\n".join(parts)
