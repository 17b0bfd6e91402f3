"""Lighting figures of a report: energy per night by run (strategy), the power of the cabinet
with the most alerts with the detector's findings marked, a map of the lamps out.

Drawn from the ``lighting`` layer's recorded cabinet power (W, mean over each step), its
``Alert`` and ``LampFailed`` events, and its lamps table.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from twin.figures.common import COLORS, figure, time_axis, times
from twin.results import Results


def energy_per_night_kwh(result: Results) -> pd.Series:
    """kWh drawn each night (noon to noon, labelled by the evening's date or hour index)."""
    power = result.wide("lighting", "power")
    if power.empty:
        return pd.Series(dtype=float)
    t = power.index.to_numpy(float)
    step_s = float(np.median(np.diff(t))) if len(t) > 1 else 900.0
    kwh = power.sum(axis=1).to_numpy() * step_s / 3.6e6
    start = result.meta.get("start")
    if start:
        when = pd.Timestamp(start) + pd.to_timedelta(t - step_s / 2, unit="s") - pd.Timedelta(hours=12)
        key = when.normalize()
    else:
        key = np.floor((t - step_s / 2 - 12 * 3600) / 86400.0)
    return pd.Series(kwh).groupby(np.asarray(key)).sum()


def plot_energy_per_night(results: Sequence[Results], path: Path) -> Path | None:
    """Bars of each night's energy, one colour per run (full night vs dimming vs adaptive)."""
    series = [(r.name, energy_per_night_kwh(r)) for r in results]
    series = [(n, s) for n, s in series if len(s)]
    if not series:
        return None
    fig = figure()
    ax = fig.add_subplot()
    nights = sorted(set().union(*(s.index for _, s in series)))
    width = 0.8 / len(series)
    for i, (name, s) in enumerate(series):
        x = np.arange(len(nights)) + i * width
        ax.bar(x, s.reindex(nights).to_numpy(), width=width, color=COLORS[i % len(COLORS)],
               label=f"{name}: {s.sum():,.0f} kWh")
    labels = [pd.Timestamp(n).strftime("%d %b") if not isinstance(n, (int, float, np.floating))
              else f"night {int(n)}" for n in nights]
    ax.set_xticks(np.arange(len(nights)) + width * (len(series) - 1) / 2, labels, fontsize=7)
    ax.set_ylabel("energy per night [kWh]")
    ax.set_title("Street lighting energy per night")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    return path


def _lighting_events(result: Results, kind: str) -> pd.DataFrame:
    ev = result.events
    if ev is None or ev.empty:
        return pd.DataFrame()
    sel = ev[(ev["kind"] == kind) & (ev["source"] == "lighting")]
    rows = [{"time_s": t, **ast.literal_eval(d)} for t, d in zip(sel["time_s"], sel["details"])]
    return pd.DataFrame(rows)


def plot_cabinet_alerts(result: Results, path: Path) -> Path | None:
    """The cabinet with the most detector alerts: its power, alerts and true failures."""
    power = result.wide("lighting", "power")
    alerts = _lighting_events(result, "Alert")
    if power.empty or alerts.empty:
        return None
    alerts["cabinet_id"] = alerts["element_id"].str.rsplit("-", n=1).str[0]
    cab = alerts["cabinet_id"].value_counts().index[0]
    x_of, xlabel = times([result])
    fig = figure()
    ax = fig.add_subplot()
    ax.plot(x_of(power.index), power[cab] / 1000.0, color=COLORS[0], lw=1.2,
            label=f"{cab} power (mean per step)")
    for _, a in alerts[alerts["cabinet_id"] == cab].iterrows():
        ax.axvline(x_of([a["time_s"]])[0], color=COLORS[1], lw=0.9, ls="--")
        ax.annotate(a["message"].split(":")[0], (x_of([a["time_s"]])[0], 1.0),
                    xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right",
                    fontsize=6, color=COLORS[1])
    failed = _lighting_events(result, "LampFailed")
    if not failed.empty:
        mine = failed[failed["cabinet_id"] == cab]
        ax.scatter(x_of(mine["time_s"]), np.zeros(len(mine)), marker="v", color="k", zorder=5,
                   label="lamp failures (truth)")
    time_axis(ax, xlabel)
    ax.set_ylabel("cabinet power [kW]")
    ax.set_title(f"{result.name}: cabinet {cab}, detector alerts (dashed)")
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_lamps_out_map(result: Results, path: Path) -> Path | None:
    """Lamps (grey), every lamp that failed in the run (red), lamps dark at the end (black)."""
    lamps = result.elements.get("lighting", {}).get("lamps")
    if lamps is None or lamps.empty:
        return None
    fig = figure(7.0, 7.0)
    ax = fig.add_subplot()
    streets = result.elements.get("city", {}).get("streets")
    if streets is not None:
        streets.plot(ax=ax, color="0.85", lw=0.6)
    ax.scatter(lamps["x"], lamps["y"], s=1.5, color="0.6", label=f"{len(lamps)} lamps")
    failed = _lighting_events(result, "LampFailed")
    if not failed.empty:
        ax.scatter(failed["x"], failed["y"], s=25, color=COLORS[1], marker="o",
                   label=f"{len(failed)} lamp failures")
    dark = lamps[(lamps["state"] == "failed") | ~lamps["supply_ok"].astype(bool)]
    if len(dark):
        ax.scatter(dark["x"], dark["y"], s=30, color="k", marker="x",
                   label=f"{len(dark)} dark at the end")
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(f"{result.name}: street lights out")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    return path


def lighting_figures(results: Sequence[Results], out: Path, maps: bool = True,
                     service_pressure_m: float = 20.0) -> tuple[list, list]:
    """(figures over time, maps) of the lighting layer for a report."""
    figures, map_files = [], []
    p = plot_energy_per_night(results, out / "lighting_energy.png")
    if p is not None:
        figures.append(("Street lighting energy per night", p))
    for r in results:
        p = plot_cabinet_alerts(r, out / f"lighting_cabinet_{r.name}.png")
        if p is not None:
            figures.append((f"Cabinet power and detector alerts ({r.name})", p))
        if maps:
            p = plot_lamps_out_map(r, out / f"lighting_map_{r.name}.png")
            if p is not None:
                map_files.append((f"lights out {r.name}", p))
    return figures, map_files
