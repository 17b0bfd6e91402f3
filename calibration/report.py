"""The calibration report: parameters before and after with their uncertainty, fit
metrics before and after (fit window and check window), measured vs simulated per
sensor, and the calibrated model ready to use (an .inp for water models, a parameter
file for traffic models)."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from calibration.calibrate import CalibrationResult
from twin.figures.common import figure
from twin.report import CSS

MAX_SENSOR_PLOTS = 40


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return html.escape(str(v))


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(f"<tr><th>{html.escape(str(i))}</th>"
                   + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
                   for i, row in zip(frame.index, frame.itertuples(index=False)))
    return f"<table><tr><th></th>{head}</tr>{rows}</table>"


def _metrics(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"points": after["points"]})
    for m in ("rmse", "nse", "kge", "bias"):
        out[f"{m} before"] = before[m]
        out[f"{m} after"] = after[m]
    return out


def _sensor_figure(result: CalibrationResult, sensor: str, unit: str, path: Path) -> None:
    fig = figure(9.0, 3.2)
    ax = fig.add_subplot()
    obs = result.observed[sensor]
    ax.plot(obs.index, obs.to_numpy(), ".", ms=2.5, color="0.3", label="measured")
    ax.plot(result.simulated_before.index, result.simulated_before[sensor], lw=1.0,
            color="#d62728", alpha=0.8, label="simulated before")
    ax.plot(result.simulated_after.index, result.simulated_after[sensor], lw=1.2,
            color="#1f77b4", label="simulated after")
    if result.spec.fit_window is not None:
        lo, hi = result.spec.fit_window
        ax.axvspan(lo, hi, color="#fff3c4", zorder=0, label="fit window")
    ax.set_ylabel(f"{sensor} ({unit})")
    ax.legend(loc="upper right", fontsize=8, ncol=4)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)


def _parameter_figure(result: CalibrationResult, path: Path) -> None:
    t = result.parameters
    fig = figure(9.0, max(2.5, 0.35 * len(t) + 1))
    ax = fig.add_subplot()
    y = np.arange(len(t))[::-1]
    ax.errorbar(t["estimate"], y, xerr=[t["estimate"] - t["ci95_low"],
                                        t["ci95_high"] - t["estimate"]],
                fmt="o", color="#1f77b4", capsize=3, label="estimate, 95 % interval")
    ax.plot(t["initial"], y, "|", color="#d62728", ms=12, label="initial")
    if t["true_value"].notna().any():
        ax.plot(t["true_value"], y, "x", color="k", ms=7, label="true (synthetic)")
    ax.set_yticks(y)
    ax.set_yticklabels(t.index)
    ax.set_xlabel("value (multiplier, or emitter coefficient for leaks)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def write_report(result: CalibrationResult, out_dir: str | Path, model=None) -> Path:
    """Write ``out_dir/report.html``, figures, ``parameters.csv``, ``summary.json`` and the
    calibrated model (``calibrated.inp`` through ``model.save``, or
    ``calibrated_parameters.yaml``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = result.spec
    result.parameters.to_csv(out / "parameters.csv")
    summary = result.summary()
    model_file = None
    if model is not None and hasattr(model, "save"):
        model_file = out / model.output_name
        model.save(result.fit.x, model_file)
    params = {p: float(v) for p, v in zip(result.parameters.index, result.fit.x)}
    (out / "calibrated_parameters.yaml").write_text(yaml.safe_dump(
        {"calibration": spec.name, "parameters": params}, sort_keys=False))
    summary["model_file"] = str(model_file) if model_file else None
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    _parameter_figure(result, out / "parameters.png")
    units = {s.id: s.unit for s in spec.sensors}
    sensors = list(result.observed.columns)[:MAX_SENSOR_PLOTS]
    for s in sensors:
        _sensor_figure(result, s, units[s], out / f"sensor_{s}.png")
    fit = result.fit
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>calibration "
             f"{html.escape(spec.name)}</title><style>{CSS}</style></head><body>",
             f"<h1>Calibration: {html.escape(spec.name)}</h1>",
             f"<p class='sub'>generated {dt.datetime.now():%Y-%m-%d %H:%M} by urban-twin; "
             f"{html.escape(spec.description)}</p>",
             f"<p>Method <b>{fit.method}</b>: {fit.evaluations} model runs in "
             f"{result.seconds:.1f} s ({result.evaluations_per_s:.1f} runs/s on "
             f"{result.workers} worker(s)); weighted cost {fit.cost_start:.6g} -> "
             f"{fit.cost_end:.6g}. {html.escape(' '.join(fit.messages))}</p>"]
    if model_file is not None:
        parts.append(f"<p>Calibrated model: <a href='{model_file.name}'>{model_file.name}</a>; "
                     "parameters: <a href='calibrated_parameters.yaml'>"
                     "calibrated_parameters.yaml</a>.</p>")
    parts.append("<h2>Parameters</h2>")
    parts.append(_table(result.parameters.drop(columns=["kind"])))
    stuck = list(result.parameters.index[result.parameters["at_bound"]])
    if stuck:
        parts.append(f"<p><b>On a bound:</b> {html.escape(', '.join(stuck))}. An estimate on "
                     "its bound is not an optimum: widen the bound, or look for what the model "
                     "lacks there (a leak, a wrong zone) before trusting it.</p>")
    parts.append("<img src='parameters.png' alt='parameters'>")
    window = ("the fit window " + " to ".join(str(t) for t in spec.fit_window)
              if spec.fit_window else "all measured points")
    parts.append(f"<h2>Fit on {html.escape(window)}</h2>")
    parts.append(_table(_metrics(result.fit_before, result.fit_after)))
    if result.check_after is not None:
        parts.append("<h2>Check on the points not used for fitting</h2>")
        parts.append(_table(_metrics(result.check_before, result.check_after)))
    parts.append("<h2>Measured and simulated</h2>")
    for s in sensors:
        parts.append(f"<h3>{html.escape(s)}</h3><img src='sensor_{html.escape(s)}.png'>")
    if len(result.observed.columns) > len(sensors):
        parts.append(f"<p>{len(result.observed.columns) - len(sensors)} more sensors: see "
                     "the tables above.</p>")
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
