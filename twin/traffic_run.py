"""Run the traffic layer alone: a day of the demo city (``twin traffic day``), and an
OpenStreetMap file read and loaded (``twin traffic osm``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from twin.errors import BadInput


def parse_closure(text: str) -> tuple[float, float | None, tuple[str, ...]]:
    """``"s324@7:30"`` or ``"s324,s325@7:30+2h"`` -> (start s, duration s or None, streets)."""
    from twin.scenario_fields import parse_duration

    streets, _, when = text.partition("@")
    at, _, duration = when.partition("+")
    ids = tuple(s.strip() for s in streets.split(",") if s.strip())
    try:
        hours, _, minutes = at.partition(":")
        start_s = float(hours) * 3600 + (float(minutes) * 60 if minutes else 0.0)
        length_s = parse_duration(duration) if duration else None
    except ValueError:
        start_s = float("nan")
        length_s = None
    if not ids or not when or not np.isfinite(start_s) or not 0 <= start_s <= 48 * 3600:
        raise BadInput(f"--close {text!r}: expected STREETS@HH:MM[+DURATION], "
                       "e.g. s324@7:30+4h or s324,s325@17:00")
    return start_s, length_s, ids


def simulate_city_day(population: int = 50_000, city_seed: int = 0, seed: int = 0,
                      hours: float = 24.0, closures: Sequence[str] = (),
                      gap: float = 1e-4, method: str = "auto",
                      progress: bool = False) -> dict:
    """A day (``hours``) of the demo city's traffic from midnight, with closures given as
    ``STREETS@HH:MM[+DURATION]``; KPIs, the closures' effects and timings."""
    from twin.city.generator import generate_city
    from twin.events import StreetClosed, StreetReopened
    from twin.networks.traffic import TrafficLayer
    from twin.twin import Twin

    if population < 1000:
        raise BadInput(f"population: expected >= 1000 inhabitants, got {population}")
    t0 = time.perf_counter()
    city = generate_city(population, seed=city_seed)
    twin = Twin(city=city, seed=seed)
    layer = twin.add_layer(TrafficLayer(gap=gap, method=method))
    events = []
    for text in closures:
        start_s, length_s, ids = parse_closure(text)
        unknown = [s for s in ids if s not in layer.known_streets]
        if unknown:
            raise BadInput(f"--close {text!r}: unknown street {unknown[0]!r} (the city has "
                           f"{len(city.streets)} streets, s0 ... s{len(city.streets) - 1})")
        events.append(StreetClosed(time_s=start_s, source="command", street_ids=ids))
        if length_s is not None:
            events.append(StreetReopened(time_s=start_s + length_s, source="command",
                                         street_ids=ids))
    twin.schedule(events)
    t1 = time.perf_counter()
    twin.run(hours * 3600.0, progress=progress, label="traffic day")
    seconds = time.perf_counter() - t1
    net = layer.base_network
    return {
        "population": int(city.population), "zones": int(net.zones),
        "links": int(net.n_links), "streets": int(len(city.streets)),
        "daily_trips_veh": float(layer.demand.daily_trips),
        "hours": hours, "seconds": round(seconds, 3), "setup_seconds": round(t1 - t0, 3),
        "assignments": int(layer.totals.assignments),
        "kpis": layer.kpis(),
        "incidents": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in row.items()}
                      for row in layer.incidents],
        "most_affected_first_incident": _affected(layer),
    }


def _affected(layer) -> list[dict]:
    change = layer.incident_change(top=10, which=0)
    if change is None:
        return []
    table = change.most_affected
    return [{"street_id": row.street_id, "from": row.init_node, "to": row.term_node,
             "flow_change_veh_h": round(float(row.flow_change_veh_h), 1),
             "time_change_s": round(60 * float(row.time_change_min), 2)
             if row.open_after and np.isfinite(row.time_change_min) else None}
            for row in table.itertuples() if row.street_id is not None]


def osm_network_summary(path: str | Path, zone_size_m: float = 500.0,
                        trips_veh_h: float = 0.0, gap: float = 1e-4,
                        method: str = "auto") -> dict:
    """Read an OSM file into a road network; with ``trips_veh_h`` > 0 also assign that many
    trips an hour between its zones (gravity on free-flow time, equal zone weights)."""
    from twin.networks.osm import load_osm
    from twin.networks.road_city import zone_skim_min

    t0 = time.perf_counter()
    osm = load_osm(path, zone_size_m=zone_size_m)
    net = osm.network
    streets = net.links[net.links["street_id"].notna()]
    out = {"file": str(path), "crs": str(osm.crs), "nodes": int(net.nodes["through"].sum()),
           "zones": int(net.zones), "links": int(len(streets)),
           "streets": int(len(osm.streets)), "oneway_streets": int(osm.streets["oneway"].sum()),
           "length_km": round(float(streets["length_m"].sum()) / 1000, 3),
           "by_class": {k: int(v) for k, v in osm.streets["street_class"].value_counts().items()},
           "read_seconds": round(time.perf_counter() - t0, 3)}
    if trips_veh_h > 0:
        from twin.engines.assignment import assign

        skim = zone_skim_min(net)
        weight = np.exp(-0.15 * skim)
        np.fill_diagonal(weight, 0.0)
        demand = trips_veh_h * weight / weight.sum()
        result = assign(net, demand, gap=gap, method=method)
        out["assignment"] = result.summary()
        voc = result.links()["voc"].to_numpy()[streets.index]
        out["assignment"]["max_voc"] = float(np.nanmax(voc))
    return out
