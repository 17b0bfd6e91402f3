"""Ensemble figures: KPI distributions across members, per-pipe criticality, per-node risk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator
import pandas as pd

from twin.figures.common import COLORS, figure


def plot_kpi_distributions(members: pd.DataFrame, kpis: list[str], path: Path) -> Path | None:
    """A histogram per KPI over the members that ran (median and 95th percentile marked)."""
    done = members[members["status"] == "done"]
    # a KPI the members all share says nothing here (the table beside it shows its value)
    kpis = [k for k in kpis if k in done.columns and done[k].notna().any()
            and done[k].astype(float).nunique() > 1][:9]
    if done.empty or not kpis:
        return None
    cols = min(3, len(kpis))
    rows = int(np.ceil(len(kpis) / cols))
    fig = figure(4.0 * cols, 2.9 * rows)
    for i, kpi in enumerate(kpis):
        ax = fig.add_subplot(rows, cols, i + 1)
        values = done[kpi].astype(float).dropna().to_numpy()
        spread = np.ptp(values) > 1e-9 * max(1.0, float(np.abs(values).max()))
        ax.hist(values, bins=min(40, max(5, len(values) // 5)) if spread else 1,
                range=None if spread else (values[0] - 0.5, values[0] + 0.5),
                color=COLORS[i % len(COLORS)], alpha=0.8)
        for q, style in ((50, "-"), (95, "--")):
            ax.axvline(np.percentile(values, q), color="k", lw=0.9, ls=style,
                       label=f"p{q} {np.percentile(values, q):.4g}")
        ax.set_title(kpi, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 5))
        ax.set_ylabel("members", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.suptitle(f"KPIs across {len(done)} members", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _map(streets):
    """A map canvas with the streets (if any) drawn faintly underneath."""
    fig = figure(8.0, 7.5)
    ax = fig.add_subplot()
    if streets is not None and not streets.empty:
        streets.plot(ax=ax, color="0.9", linewidth=0.5, zorder=1)
    return fig, ax


def _save_map(fig, ax, title: str, path: Path) -> Path:
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(useOffset=False, style="plain")
    fig.tight_layout()
    fig.savefig(path)
    return path


def per_element_kpi(members: pd.DataFrame, kpi: str) -> pd.Series:
    """Mean of ``kpi`` over the members in which each swept element was the one hit."""
    done = members[(members["status"] == "done") & (members["element"].astype(str) != "")]
    if done.empty or kpi not in done.columns:
        return pd.Series(dtype=float)
    return done.groupby("element")[kpi].mean().sort_values(ascending=False)


def plot_criticality_map(score: pd.Series, links, kpi: str, path: Path,
                         streets=None, top: int = 10) -> Path | None:
    """Links coloured by their criticality ``score`` (the KPI when that link breaks), the
    ``top`` most critical labelled; links not analysed are drawn thin and grey."""
    if score.empty or links is None or links.empty:
        return None
    fig, ax = _map(streets)
    links.plot(ax=ax, color="0.75", linewidth=0.6, zorder=2)
    hit = links.loc[[i for i in score.index if i in links.index]]
    values = score.loc[hit.index].to_numpy(dtype=float)
    width = 1.0 + 3.0 * (values - values.min()) / max(np.ptp(values), 1e-12)
    hit.plot(ax=ax, column=score.loc[hit.index].to_numpy(dtype=float), cmap="inferno_r",
             linewidth=width, zorder=3, legend=True,
             legend_kwds={"shrink": 0.6, "label": f"{kpi} when the pipe breaks"})
    for rank, (link_id, value) in enumerate(score.head(top).items(), start=1):
        if link_id in links.index:
            mid = links.loc[link_id].geometry.interpolate(0.5, normalized=True)
            ax.annotate(f"{rank}. {link_id}", (mid.x, mid.y), fontsize=7, zorder=5,
                        xytext=(3, 3), textcoords="offset points",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8,
                              "lw": 0})
    return _save_map(fig, ax, f"Most critical pipes ({len(hit)} analysed)", path)


def node_risk(elements: pd.DataFrame, service_pressure_m: float,
              quantity: str = "water.pressure") -> pd.Series:
    """Per node, the share of members in which its lowest pressure fell below service."""
    sel = elements[elements["quantity"] == quantity]
    if sel.empty:
        return pd.Series(dtype=float)
    below = (sel["min"].astype(float) < service_pressure_m)
    return below.groupby(sel["element"]).mean().sort_values(ascending=False)


def plot_risk_map(risk: pd.Series, nodes, links, service_pressure_m: float, path: Path,
                  streets=None) -> Path | None:
    """Junctions coloured by the share of members leaving them below service pressure."""
    if risk.empty or nodes is None or nodes.empty:
        return None
    fig, ax = _map(streets)
    if links is not None and not links.empty:
        links.plot(ax=ax, color="0.7", linewidth=0.5, zorder=2)
    geo = nodes.loc[[i for i in risk.index if i in nodes.index]]
    values = risk.loc[geo.index].to_numpy(dtype=float)
    order = np.argsort(values)                      # the riskiest drawn on top
    sc = ax.scatter(geo.geometry.x.to_numpy()[order], geo.geometry.y.to_numpy()[order],
                    c=values[order], cmap="YlOrRd", vmin=0.0, vmax=max(values.max(), 1e-9),
                    s=10 + 40 * values[order], zorder=3, linewidths=0)
    fig.colorbar(sc, ax=ax, shrink=0.6,
                 label=f"share of members below {service_pressure_m:g} m")
    return _save_map(fig, ax, "Risk of low pressure per junction across the ensemble", path)


def plot_kpi_by_param(members: pd.DataFrame, kpi: str, path: Path) -> Path | None:
    """The KPI against each grid parameter (``param:<path>`` columns): the median over the
    other members at each value (seeds, other parameters) and their range, one line per
    value of a second parameter when there is one with few values. None without a grid."""
    done = members[members["status"] == "done"]
    params = [c for c in done.columns if c.startswith("param:") and done[c].nunique() > 1]
    if done.empty or kpi not in done.columns or not params:
        return None
    fig = figure(4.6 * min(2, len(params)), 3.4 * int(np.ceil(len(params) / 2)))
    for i, param in enumerate(params):
        ax = fig.add_subplot(int(np.ceil(len(params) / 2)), min(2, len(params)), i + 1)
        others = [p for p in params if p != param and done[p].nunique() <= 6]
        split = others[0] if others else None
        groups = done.groupby(split) if split else [(None, done)]
        for j, (label, group) in enumerate(groups):
            stats = group.groupby(param)[kpi].agg(["median", "min", "max"])
            numeric = pd.api.types.is_numeric_dtype(stats.index)
            x = stats.index.to_numpy() if numeric else np.arange(len(stats))
            color = COLORS[j % len(COLORS)]
            ax.plot(x, stats["median"], "o-", color=color, lw=1.4, ms=4,
                    label=f"{split[6:]} = {label}" if split else "median")
            if (stats["max"] > stats["min"]).any():
                ax.fill_between(x, stats["min"], stats["max"], color=color, alpha=0.15)
            if not numeric:
                ax.set_xticks(x, [str(v) for v in stats.index], fontsize=7)
        ax.set_xlabel(param[6:], fontsize=8)
        ax.set_ylabel(kpi, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.suptitle(f"{kpi} by parameter\n(median; band: range over seeds and other values)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path
