"""Run the water layer alone on any EPANET file (the ``twin water simulate`` command)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twin.networks.water import WaterLayer, epanet_pressures, load_inp
from twin.twin import Twin


def pressure_differences(ours: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(raw, beyond float32) largest |ours - reference| over all steps and nodes.

    EPANET's binary output, which the EpanetSimulator reads, stores single-precision
    floats. Where a node is cut off from every source EPANET reports absurd pressures
    (-4e7 m); there one float32 step is several metres. The second figure counts only
    what lies beyond the reference's own float32 resolution (four units in the last
    place: EPANET rounds to float32, WNTR's unit conversion rounds again); on ordinary
    pressures (tens of metres) that is ~1.5e-5 m.
    """
    if ours.size == 0:
        return float("nan"), float("nan")
    diff = np.abs(ours - reference)
    ulp = np.spacing(np.abs(reference).astype(np.float32)).astype(float)
    return float(np.nanmax(diff)), float(np.nanmax(np.clip(diff - 4 * ulp, 0.0, None)))


def simulate_inp(path: str | Path, hours: float | None = None, engine: str = "wntr",
                 check: bool = False, progress: bool = False) -> dict:
    """Step ``path`` for ``hours`` (default: the file's duration) and summarise the run.

    With ``check``, also runs WNTR's file-based EpanetSimulator on the same model
    and reports the largest node-pressure difference at any report step.
    """
    twin = Twin(seed=0)
    t0 = time.perf_counter()
    layer = twin.add_layer(WaterLayer(path, horizon_s=None if hours is None else hours * 3600.0,
                                      engine=engine, record=("pressure",)))
    t1 = time.perf_counter()
    wn = layer.wn
    horizon_s = float(layer.duration_s)        # 0 for a steady-state file: one solve
    twin.run(horizon_s, progress=progress, label=Path(path).name)
    seconds = time.perf_counter() - t1
    pressures = twin.recorder.wide("water", "pressure")
    out = {
        "network": str(path),
        "nodes": int(wn.num_nodes),
        "links": int(wn.num_links),
        "hours": horizon_s / 3600.0,
        "steps": int(layer.stats.steps),
        "hydraulic_solves": int(layer.stats.solves),
        "seconds": round(seconds, 4),                 # stepping the whole horizon
        "setup_seconds": round(t1 - t0, 4),           # writing, opening, compiling readers
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
        ours = pressures.loc[common, ref.columns].to_numpy()
        theirs = ref.loc[common].to_numpy()
        raw, beyond = pressure_differences(ours, theirs)
        out["max_abs_pressure_diff_vs_epanet_m"] = beyond
        out["max_raw_pressure_diff_vs_epanet_m"] = raw
        out["compared_steps"] = int(len(common))
        out["reference_steps"] = int(len(ref.index))
    return out
