"""Run any SWMM file through the sewer layer (the ``twin sewer run`` command)."""

from __future__ import annotations

import time
from pathlib import Path

from twin.networks.sewer import SewerLayer
from twin.twin import Twin


def simulate_sewer_inp(path: str | Path, control_step_s: float = 300.0,
                       hours: float | None = None, progress: bool = False) -> dict:
    """Step ``path`` through the layer on a twin's clock; SWMM's own totals at the end.

    Volumes are in the units of SWMM's report (10^6 ltr for metric models, 10^6 gal for US).
    """
    t0 = time.perf_counter()
    twin = Twin(seed=0)
    layer = twin.add_layer(SewerLayer(path, control_step_s=control_step_s,
                                      horizon_s=None if hours is None else hours * 3600.0,
                                      record=()))
    try:
        run = layer.run
        start = run.start_time
        horizon_s = (run.end_time - start).total_seconds()
        t1 = time.perf_counter()
        twin.run(horizon_s + control_step_s, progress=progress, label=Path(path).name)
        summary = layer.finish()
        seconds = time.perf_counter() - t1
        return {
            "network": str(path),
            "nodes": len(run.node_ids),
            "links": len(run.link_ids),
            "subcatchments": len(run.subcatch_ids),
            "flow_units": run.flow_units,
            "hours": horizon_s / 3600.0,
            "control_steps": layer.steps,
            "seconds": round(seconds, 4),
            "setup_seconds": round(t1 - t0, 4),
            "volume_unit": summary.volume_unit,
            "total_outfall_volume": summary.total_outfall_volume,
            "flooding_volume": summary.flooding_volume,
            "runoff_continuity_error_pct": summary.runoff_continuity_error_pct,
            "flow_routing_continuity_error_pct": summary.flow_routing_continuity_error_pct,
            "kpis": layer.kpis(),
        }
    finally:
        twin.close()
