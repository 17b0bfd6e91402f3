"""Run the water layer alone on any EPANET file (the ``twin water simulate`` command)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twin.networks.water import WaterLayer, epanet_pressures, load_inp
from twin.twin import Twin


def simulate_inp(path: str | Path, hours: float | None = None, engine: str = "owa",
                 check: bool = False, progress: bool = False) -> dict:
    """Step ``path`` for ``hours`` (default: the file's duration) and summarise the run.

    With ``check``, also runs WNTR's file-based EpanetSimulator on the same model
    and reports the largest node-pressure difference at any report step.
    """
    wn = load_inp(path)
    horizon_s = float(hours * 3600) if hours is not None else float(wn.options.time.duration)
    if horizon_s <= 0:
        horizon_s = float(wn.options.time.hydraulic_timestep)   # a steady-state file: one step
    twin = Twin(seed=0)
    t0 = time.perf_counter()
    layer = twin.add_layer(WaterLayer(wn, horizon_s=horizon_s, engine=engine,
                                      record=("pressure",)))
    twin.run(horizon_s, progress=progress, label=Path(path).name)
    seconds = time.perf_counter() - t0
    pressures = twin.recorder.wide("water", "pressure")
    out = {
        "network": str(path),
        "nodes": int(wn.num_nodes),
        "links": int(wn.num_links),
        "hours": horizon_s / 3600.0,
        "steps": int(layer.stats.steps),
        "hydraulic_solves": int(layer.stats.solves),
        "seconds": round(seconds, 4),
        "engine": engine,
        "kpis": layer.kpis(),
    }
    out["min_junction_pressure_m"] = out["kpis"]["min_pressure_m"]
    layer.close()
    if check:
        ref_wn = load_inp(path)
        ref_wn.options.time.duration = int(horizon_s)
        t1 = time.perf_counter()
        ref = epanet_pressures(ref_wn)
        out["epanet_simulator_seconds"] = round(time.perf_counter() - t1, 4)
        common = ref.index.intersection(pressures.index)
        diff = np.abs(pressures.loc[common, ref.columns].to_numpy() - ref.loc[common].to_numpy())
        out["max_abs_pressure_diff_vs_epanet_m"] = float(np.nanmax(diff)) if diff.size else None
        out["compared_steps"] = int(len(common))
        out["reference_steps"] = int(len(ref.index))
    return out
