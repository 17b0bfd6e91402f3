"""One waste-collection run on a generated city, for ``twin waste simulate``.

Builds the demo city and a twin with the waste layer only, feeds optional fill
readings from a CSV file through the layer's reading API, runs, and returns the
KPIs (and writes a report when asked).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import time
from pathlib import Path
from typing import Any

from twin.errors import BadInput

DEFAULT_START = dt.datetime(2026, 6, 15)        # a Monday


def read_readings(path: str | Path, known_ids: set[str]) -> list[tuple[float, str, float]]:
    """(time_s, container_id, fill_fraction) rows of a readings CSV, checked line by line."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such readings file")
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        need = {"time_s", "container_id", "fill_fraction"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise BadInput(f"{path}, line 1: expected the columns time_s, container_id, "
                           f"fill_fraction, got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            cid = (row["container_id"] or "").strip()
            if cid not in known_ids:
                raise BadInput(f"{path}, line {line}: unknown container {cid!r} (the waste "
                               f"network has {len(known_ids)} containers, c0 .. "
                               f"c{len(known_ids) - 1})")
            try:
                t, value = float(row["time_s"]), float(row["fill_fraction"])
            except (TypeError, ValueError):
                raise BadInput(f"{path}, line {line}: expected numbers for time_s and "
                               f"fill_fraction, got {row['time_s']!r}, "
                               f"{row['fill_fraction']!r}") from None
            if not math.isfinite(value) or value < 0:
                raise BadInput(f"{path}, line {line}: expected a fill_fraction >= 0 "
                               f"(0 empty, 1 full), got {row['fill_fraction']!r}")
            if not math.isfinite(t) or t < 0:
                raise BadInput(f"{path}, line {line}: expected time_s >= 0 (seconds from "
                               f"the start), got {row['time_s']!r}")
            rows.append((t, cid, value))
    return sorted(rows)


def simulate_waste(population: int = 50_000, days: float = 28.0, strategy: str = "fixed",
                   seed: int = 0, city_seed: int = 0, readings: str | Path | None = None,
                   out_dir: str | Path | None = None, progress: bool = False,
                   start: dt.datetime = DEFAULT_START, **layer_options: Any) -> dict[str, Any]:
    """Run the waste layer alone on the demo city; KPIs, timings and (optionally) a report."""
    from twin.city.generator import generate_city
    from twin.events import Reading
    from twin.networks.waste import WasteLayer
    from twin.twin import Twin

    if population < 1000:
        raise BadInput(f"--population: expected >= 1000 inhabitants, got {population}")
    t0 = time.perf_counter()
    city = generate_city(population=population, seed=city_seed)
    twin = Twin(city=city, start=start, seed=seed)
    layer = twin.add_layer(WasteLayer(strategy=strategy, **layer_options))
    rows: list[tuple[float, str, float]] = []
    if readings is not None:
        rows = read_readings(readings, set(layer.container_ids))
        twin.schedule(Reading(time_s=t, source="readings", sensor_id=cid, value=v,
                              unit="fill_fraction") for t, cid, v in rows)
    setup_s = time.perf_counter() - t0
    twin.run(days * 86400.0, progress=progress, label=f"waste {strategy}")
    result: dict[str, Any] = {"strategy": strategy, "population": population, "days": days,
                              "seed": seed, "kpis": layer.kpis(), "readings_fed": len(rows),
                              "plan_seconds": layer.stats.plan_seconds,
                              "setup_seconds": setup_s, "seconds": time.perf_counter() - t0}
    result.update({k: result["kpis"][k] for k in ("km_driven", "collections",
                                                  "container_overflows",
                                                  "mean_fill_at_collection", "co2_kg")})
    if out_dir is not None:
        from twin.report import write_report
        from twin.results import Results

        res = Results(name=f"waste_{strategy}", series=twin.recorder.tidy(),
                      events=twin.bus.to_frame(), kpis=twin.kpis(),
                      elements={"waste": layer.elements(),
                                "city": {"streets": city.streets, "blocks": city.blocks}},
                      meta={"start": start.isoformat(), "horizon_s": days * 86400.0,
                            "seed": seed, "city": f"demo, {population:,} inhabitants",
                            "description": f"waste collection, strategy {strategy}",
                            "wall_s": result["seconds"]})
        result["report"] = str(write_report([res], out_dir, title=f"waste collection: {strategy}"))
    twin.close()
    return result
