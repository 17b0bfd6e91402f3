"""Figures of the cascade report: the incident chain on a timeline, the city map per phase.

Both read a run's event table only (``Results.events`` with ``cause_id`` links and the
``root_id`` / ``depth`` / ``rule`` columns of :func:`twin.cascade.cause_chains`) and the
city's streets (``Results.elements['city']['streets']``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from twin.figures.common import figure, time_axis, times
from twin.results import Results

# the lane (network) of an event kind on the timeline; other kinds fall back to their source
KIND_LANE: dict[str, str] = {
    "Rainfall": "weather", "Heatwave": "weather",
    "PipeBurst": "water", "LeakStopped": "water", "DemandSurge": "water",
    "ValveClosed": "water", "ValveOpened": "water", "PumpOutage": "water", "FireFlow": "water",
    "SewerFlooding": "sewer", "OverflowSpill": "sewer", "ConduitBlocked": "sewer",
    "SewerPumpOutage": "sewer",
    "StreetFlooded": "streets", "StreetClosed": "traffic", "StreetReopened": "traffic",
    "LanesClosed": "traffic", "LanesReopened": "traffic",
    "LightingFault": "lighting", "LampFailed": "lighting", "CabinetFault": "lighting",
    "ContainerOverflow": "waste",
    "RequestFiled": "citizens", "WorkOrderDone": "crews", "CrewRerouted": "crews",
    "CitizenAlert": "citizens", "ServiceSurge": "citizens",
}
LANES = ("weather", "water", "sewer", "streets", "traffic", "lighting", "waste", "parking",
         "citizens", "crews")
# one colour per event kind (matplotlib's tab20, dark shades first)
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ff9896", "#98df8a", "#c5b0d5",
           "#ffbb78", "#c49c94")
# routine traffic of the bus, not part of an incident chain
NOT_INCIDENTS = ("TravelTimesUpdated", "Reading", "Alert")
_NUMPY_SCALAR = re.compile(r"np\.\w+\(([^()]*)\)")


def details(text: str) -> dict:
    """An event's ``details`` column back as a dict (numpy scalars written as plain
    numbers); an empty dict when it cannot be read."""
    try:
        return ast.literal_eval(_NUMPY_SCALAR.sub(r"\1", str(text)))
    except (ValueError, SyntaxError):
        return {}


def lane_of(kind: str, source: str, detail_layer: str = "") -> str:
    """The timeline lane of an event: by kind, then the layer a RepairDone names, then
    the layer that raised it."""
    if kind in KIND_LANE:
        return KIND_LANE[kind]
    if detail_layer:
        return detail_layer
    return source.split(":")[0] if source and not source.startswith("cascade") else "other"


def chain_events(chains: pd.DataFrame) -> pd.DataFrame:
    """The events that belong to an incident chain: caused events and the roots that caused
    something, without the bus's routine traffic; with a ``lane`` column."""
    ev = chains[~chains["kind"].isin(NOT_INCIDENTS)]
    caused_something = set(pd.to_numeric(ev["cause_id"], errors="coerce").dropna().astype(int))
    keep = ev[(ev["depth"] > 0) | ev["event_id"].isin(caused_something)].copy()
    layers = [details(d).get("layer", "") if k == "RepairDone" else ""
              for k, d in zip(keep["kind"], keep["details"])]
    keep["lane"] = [lane_of(k, s, layer) for k, s, layer in zip(keep["kind"], keep["source"],
                                                                 layers)]
    return keep


def _links_to_draw(ev: pd.DataFrame, per_pair: int) -> pd.DataFrame:
    """Cause -> effect pairs to draw: the first ``per_pair`` of each (cause kind, effect
    kind, rule), so that every kind of link shows without hiding the lanes."""
    by_id = ev.set_index("event_id")
    cause = pd.to_numeric(ev["cause_id"], errors="coerce")
    linked = ev[cause.isin(by_id.index)].assign(cause=cause[cause.isin(by_id.index)].astype(int))
    linked = linked.assign(cause_kind=by_id.loc[linked["cause"], "kind"].to_numpy())
    return linked.groupby(["cause_kind", "kind", "rule"], sort=False).head(per_pair)


def plot_timeline(result: Results, chains: pd.DataFrame, path: Path,
                  per_pair: int = 3) -> Path | None:
    """One lane per network; every event of an incident chain as a mark (how many of a kind
    in the legend), arrows from cause to effect for the first few of each kind of link, the
    rule's name on its first arrow."""
    ev = chain_events(chains)
    if ev.empty:
        return None
    lanes = [lane for lane in LANES if lane in set(ev["lane"])] + sorted(
        set(ev["lane"]) - set(LANES))
    y_of = {lane: i for i, lane in enumerate(reversed(lanes))}
    x_of, xlabel = times([result])
    fig = figure(11.0, 1.0 + 0.65 * len(lanes))
    ax = fig.add_subplot()
    kinds = list(dict.fromkeys(ev["kind"]))
    rng = np.random.default_rng(0)                      # jitter only: lanes stay readable
    yy = ev["lane"].map(y_of).to_numpy(float) + rng.uniform(-0.18, 0.18, len(ev))
    pos = dict(zip(ev["event_id"], zip(ev["time_s"], yy)))
    markers = "os^vDPX*<>"
    for i, kind in enumerate(kinds):
        sel = (ev["kind"] == kind).to_numpy()
        ax.scatter(x_of(ev["time_s"].to_numpy()[sel]), yy[sel], s=14 if sel.sum() > 50 else 26,
                   marker=markers[i % len(markers)], color=PALETTE[i % len(PALETTE)],
                   alpha=0.55 if sel.sum() > 50 else 0.9, zorder=3, edgecolors="none",
                   label=f"{kind} ({int(sel.sum())})")
    labelled: set[str] = set()
    for _, row in _links_to_draw(ev, per_pair).iterrows():
        (t0, y0), (t1, y1) = pos[row["cause"]], pos[row["event_id"]]
        a, b = x_of([t0, t1])
        ax.annotate("", xy=(b, y1), xytext=(a, y0),
                    arrowprops={"arrowstyle": "->", "color": "0.35", "lw": 0.7,
                                "shrinkA": 2, "shrinkB": 2}, zorder=2)
        name = row["rule"] or ""
        if name and name not in labelled:
            labelled.add(name)
            ax.annotate(name.replace("_", " "), (b, y1), xytext=(4, 6),
                        textcoords="offset points", fontsize=7, color="0.15", zorder=4,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "0.8",
                              "alpha": 0.85})
    ax.set_yticks(range(len(lanes)), list(reversed(lanes)))
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.grid(axis="x", alpha=0.3)
    time_axis(ax, xlabel)
    ax.set_title(f"{result.name}: the incident chain (arrows from cause to effect, "
                 f"rule names on the first of each)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    return path


class Phase(NamedTuple):
    title: str
    start_s: float
    end_s: float


def phases(chains: pd.DataFrame, horizon_s: float) -> list[Phase]:
    """Three phases of the incident: onset (from the first root event that caused something
    to the first closure or dark cabinet), floods and closures (to the moment most streets
    are closed at once, else the first repair), repairs and recovery (to the end). Without
    such events, thirds of the time left."""
    ev = chain_events(chains)
    if ev.empty:
        return []
    t0 = float(ev["time_s"].min())
    hit = ev[ev["kind"].isin(("StreetClosed", "CabinetFault", "LampFailed"))]
    t1 = float(hit["time_s"].min()) if len(hit) else t0 + (horizon_s - t0) / 3
    closures = ev[ev["kind"].isin(("StreetClosed", "StreetReopened"))].sort_values(
        "time_s", kind="stable")
    fixes = ev[ev["kind"].isin(("StreetReopened", "RepairDone", "WorkOrderDone", "LeakStopped"))
               & (ev["time_s"] > t1)]
    if len(closures):
        open_now = np.cumsum(np.where(closures["kind"] == "StreetClosed", 1, -1))
        t2 = float(closures["time_s"].to_numpy()[np.argmax(open_now)])
    else:
        t2 = float(fixes["time_s"].min()) if len(fixes) else t1 + (horizon_s - t1) / 2
    t1 = min(max(t1, t0), horizon_s)
    t2 = min(max(t2, t1), horizon_s)
    height = ("2 · floods and closures (worst moment)" if len(closures)
              else "2 · the incident at its height")
    return [Phase("1 · onset", t0, t1), Phase(height, t1, t2),
            Phase("3 · repairs and recovery", t2, horizon_s)]


def _street_lines(streets, ids) -> object:
    ids = [s for s in ids if s in streets.index]
    return streets.loc[ids] if ids else None


def state_at(chains: pd.DataFrame, start_s: float, end_s: float) -> dict[str, object]:
    """What a phase map shows: streets flooded during the phase, streets closed and cabinets
    dark at its end, surcharged manholes and residents' reports during it."""
    ev = chains[chains["time_s"] <= end_s]
    during = ev[ev["time_s"] >= start_s]
    closed: dict[str, int] = {}
    moves = ev[ev["kind"].isin(("StreetClosed", "StreetReopened"))]
    for kind, text in zip(moves["kind"], moves["details"]):
        for sid in details(text).get("street_ids", ()):
            closed[sid] = closed.get(sid, 0) + (1 if kind == "StreetClosed" else -1)
    dark: dict[str, tuple[float, float]] = {}
    lights = ev[ev["kind"].isin(("CabinetFault", "RepairDone"))]
    for kind, text in zip(lights["kind"], lights["details"]):
        d = details(text)
        if kind == "CabinetFault":
            dark[d.get("cabinet_id", "")] = (d.get("x", np.nan), d.get("y", np.nan))
        elif d.get("layer") == "lighting":
            dark.pop(d.get("element_id", ""), None)

    def points(kind: str) -> pd.DataFrame:
        rows = [details(t) for t in during.loc[during["kind"] == kind, "details"]]
        return pd.DataFrame([{"x": r.get("x", np.nan), "y": r.get("y", np.nan),
                              "volume_m3": r.get("volume_m3", np.nan)} for r in rows],
                            columns=["x", "y", "volume_m3"])

    flooded = {sid for t in during.loc[during["kind"] == "StreetFlooded", "details"]
               for sid in details(t).get("street_ids", ())}
    return {"flooded": sorted(flooded), "closed": sorted(s for s, n in closed.items() if n > 0),
            "dark": pd.DataFrame(list(dark.values()), columns=["x", "y"]),
            "surcharges": points("SewerFlooding"), "reports": points("RequestFiled")}


def plot_phase_maps(result: Results, chains: pd.DataFrame, path: Path) -> Path | None:
    """The city map at each phase of the incident, side by side."""
    streets = result.elements.get("city", {}).get("streets")
    steps = phases(chains, float(result.meta.get("horizon_s", chains["time_s"].max())))
    if streets is None or streets.empty or not steps:
        return None
    from matplotlib.lines import Line2D

    x_of, _ = times([result])
    fig = figure(5.2 * len(steps), 5.8)
    for k, phase in enumerate(steps):
        ax = fig.add_subplot(1, len(steps), k + 1)
        state = state_at(chains, phase.start_s, phase.end_s)
        streets.plot(ax=ax, color="0.82", lw=0.6, zorder=1)
        flooded = _street_lines(streets, state["flooded"])
        if flooded is not None:
            flooded.plot(ax=ax, color="#3182bd", lw=3.0, alpha=0.8, zorder=2)
        closed = _street_lines(streets, state["closed"])
        if closed is not None:
            closed.plot(ax=ax, color="#cb181d", lw=1.6, zorder=3)
        sur = state["surcharges"]
        if len(sur):
            size = 8 + 60 * np.sqrt(np.clip(sur["volume_m3"].fillna(0), 0, None)
                                    / max(float(sur["volume_m3"].max()), 1e-9))
            ax.scatter(sur["x"], sur["y"], s=size, facecolors="none", edgecolors="#08519c",
                       lw=0.8, zorder=4)
        rep = state["reports"]
        if len(rep):
            ax.scatter(rep["x"], rep["y"], s=3, color="#fd8d3c", alpha=0.5, zorder=5)
        dark = state["dark"]
        if len(dark):
            ax.scatter(dark["x"], dark["y"], s=46, marker="^", color="k", zorder=6)
        a, b = x_of([phase.start_s, phase.end_s])
        span = (f"{a:%a %H:%M} – {b:%a %H:%M}" if hasattr(a, "strftime")
                else f"{a:.1f} – {b:.1f} h")
        ax.set_title(f"{phase.title}\n{span}", fontsize=9)
        ax.text(0.01, 0.01, f"{len(state['flooded'])} flooded, {len(state['closed'])} closed, "
                f"{len(dark)} dark cabinets\n{len(sur)} manholes surcharging, "
                f"{len(rep)} reports", transform=ax.transAxes, fontsize=7, va="bottom")
        ax.set_aspect("equal")
        ax.set_axis_off()
    handles = [Line2D([], [], color="#3182bd", lw=3, label="street flooded in the phase"),
               Line2D([], [], color="#cb181d", lw=1.6, label="street closed at its end"),
               Line2D([], [], ls="", marker="o", mfc="none", mec="#08519c",
                      label="manhole surcharging"),
               Line2D([], [], ls="", marker="^", color="k", label="cabinet dark at its end"),
               Line2D([], [], ls="", marker=".", color="#fd8d3c", label="resident's report")]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle(f"{result.name}: the city at each phase of the incident", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    fig.savefig(path)
    return path
