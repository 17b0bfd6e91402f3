"""``twin lighting simulate``: the lighting layer alone on a generated city, for N days."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from twin.events import LightingFault


def simulate_lighting(days: float, strategy: str = "full", population: int = 50_000,
                      seed: int = 0, start: dt.datetime | None = None,
                      injected_per_day: int = 0, repair_after_h: float | None = 72.0,
                      progress: bool = False) -> dict[str, Any]:
    """Run the lighting layer for ``days`` on the demo city; KPIs and detector scores.

    ``injected_per_day``: lamps failed at random each day at 22:00 on top of wear-out.
    """
    from twin.city.generator import generate_city
    from twin.networks.lighting import LightingLayer
    from twin.networks.lighting_strategies import DimmingProgram
    from twin.twin import Twin

    t0 = time.perf_counter()
    city = generate_city(population=population, seed=seed)
    start = start or dt.datetime(2026, 1, 1)
    twin = Twin(city=city, start=start, seed=seed)
    layer = LightingLayer(DimmingProgram(strategy), repair_after_h=repair_after_h,
                          keep_minutes=False)
    twin.add_layer(layer)
    if injected_per_day:
        first = (22 - start.hour) % 24 * 3600.0
        twin.schedule([LightingFault(time_s=first + 86400.0 * d, source="scenario",
                                     random_lamps=injected_per_day)
                       for d in range(int(days) + 1) if first + 86400.0 * d < days * 86400.0])
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    twin.run(days * 86400.0, progress=progress, label=f"lighting {strategy}")
    seconds = time.perf_counter() - t1
    detections = layer.detections()
    return {"strategy": strategy, "days": days, "population": population, "seed": seed,
            "lamps": len(layer.lamp_ids), "cabinets": len(layer.cabinet_ids),
            "feeders": len(layer.feeder_ids), "seconds": seconds, "setup_seconds": setup_s,
            "kpis": layer.kpis(),
            "detections_by_kind": detections["kind"].value_counts().to_dict()}
