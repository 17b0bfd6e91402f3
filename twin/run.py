"""run(spec) -> Results: build a twin from a validated scenario, run it, collect results.

No other effect: nothing is written here (see :meth:`Results.save` and
:func:`twin.report.write_report`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from twin.events import PipeBurst
from twin.networks.water import WaterLayer
from twin.results import Results
from twin.scenario import ScenarioError, ScenarioSpec, check_elements
from twin.scenario_sewer import SEWER_EVENT_SPECS
from twin.twin import Twin

from twin.quantities import RECORDABLE

if TYPE_CHECKING:
    from twin.city.model import City


def _seconds_into_day(when) -> int:
    return when.hour * 3600 + when.minute * 60 + when.second


class NetworkSource(Protocol):
    """Where ``build_twin`` takes the city and the water model from instead of building them:
    an ensemble's worker keeps them loaded across members (see ``twin.ensemble_water``)."""

    def city(self, spec: ScenarioSpec) -> "City": ...

    def water_model(self, spec: ScenarioSpec, city: "City | None") -> tuple[Any, Path]:
        """(the WNTR model, an .inp file already written from it)."""
        ...


def build_twin(spec: ScenarioSpec, networks: NetworkSource | None = None) -> Twin:
    """The twin a scenario describes, built and checked, not yet run. With ``networks``, the
    city and the water model come from there (loaded once, reused), not from the files."""
    city = None
    if spec.city.demo is not None and networks is not None:
        city = networks.city(spec)
    elif spec.city.demo is not None:
        from twin.city.generator import generate_city

        city = generate_city(population=spec.city.demo.population, seed=spec.city.demo.seed)
    twin = Twin(city=city, start=spec.start, seed=spec.seed)
    water_policy = spec.policies.water
    events = spec.to_events()
    planned = [(e.pipe_id, e.position) for e in events if isinstance(e, PipeBurst)]
    quantities = [q for q in spec.outputs.quantities if q in RECORDABLE["water"]]
    if spec.outputs.report and "demand" not in quantities:
        quantities.append("demand")      # the report's outflow plot needs it
    step = spec.step_s if (city is not None or "step_s" in spec.model_fields_set) else None
    model, inp_file = (networks.water_model(spec, city) if networks is not None
                       else (spec.city.inp if city is None else None, None))
    layer = WaterLayer(model, inp_file=inp_file,
                       horizon_s=spec.horizon_s, hydraulic_step_s=step,
                       engine=water_policy.engine,
                       service_pressure_m=water_policy.service_pressure_m,
                       planned_bursts=planned, record=quantities, crs=spec.city.crs,
                       # an ensemble worker's open EPANET projects, reused across members
                       engine_pool=getattr(networks, "epanet_pool", None),
                       # the demo network's patterns start at midnight: start them at the
                       # scenario's time of day, so 07:30 on the calendar is the 07:30 peak
                       clock_offset_s=_seconds_into_day(spec.start) if city is not None else 0)
    twin.add_layer(layer)
    if spec.waste is not None:
        _add_waste(twin, spec)
    if spec.parking is not None:
        _add_parking(twin, spec)
    if spec.lighting is not None:
        _add_lighting(twin, spec)
    if spec.traffic is not None:
        _add_traffic(twin, spec)
    if spec.sewer is not None or any(e.type in SEWER_EVENT_SPECS for e in spec.events):
        events = events + _add_sewer(twin, spec)
    if spec.citizens is not None:
        _add_citizens(twin, spec)
    if spec.cascade is not None:
        _add_cascade(twin, spec)
    eng = layer.engine
    check_elements(spec, {
        "pipe": layer.pipe_ids,
        "link": set(eng.link_ids),
        "pump": {eng.link_ids[i] for i in layer.pumps},
        "node": set(eng.node_ids),
        **({"street": set(city.streets.index)} if city is not None else {}),
        **(twin.layers["sewer"].element_kinds() if "sewer" in twin.layers else {}),
        **({"lamp": set(twin.layers["lighting"].lamp_ids),
            "cabinet": set(twin.layers["lighting"].cabinet_ids)} if "lighting" in twin.layers else {}),
    })
    twin.schedule(events)
    return twin


def _add_sewer(twin: Twin, spec: ScenarioSpec) -> list:
    """The sewer layer of the ``sewer:`` section; returns the section's storm as events."""
    if spec.sewer is None:
        i = next(i for i, e in enumerate(spec.events) if e.type in SEWER_EVENT_SPECS)
        path, line = spec.locate(f"events[{i}].type")
        raise ScenarioError(path, f"events[{i}].type", line, "a `sewer:` section for sewer "
                            "events (storms, blockages, sewer pump outages)",
                            got=spec.events[i].type)
    if spec.sewer.inp is None and twin.city is None:
        path, line = spec.locate("sewer")
        raise ScenarioError(path, "sewer", line, "a demo city or `sewer: inp:` (a SWMM file)",
                            got="an EPANET city without a sewer model")
    from twin.networks.sewer import SewerLayer

    twin.add_layer(SewerLayer(**spec.sewer.layer_options(spec.horizon_s)))
    storm = spec.sewer.storm
    if storm is None:
        return []
    at = storm.at if isinstance(storm.at, (int, float)) else (storm.at - spec.start).total_seconds()
    return [storm.to_event(float(at))]


def _need_demo_city(twin: Twin, spec: ScenarioSpec, section: str, why: str) -> None:
    """A located error when the layer of ``section`` is asked for on an EPANET-file city."""
    if twin.city is None:
        path, line = spec.locate(section)
        raise ScenarioError(path, section, line, f"a demo city (`city: demo:`) for the "
                            f"{section} layer: {why}", got="an EPANET file city")


def _add_lighting(twin: Twin, spec: ScenarioSpec) -> None:
    """The street-lighting layer of the scenario's ``lighting:`` section (demo city only)."""
    _need_demo_city(twin, spec, "lighting", "its lamps stand along the city's streets")
    from twin.networks.lighting import LightingLayer

    twin.add_layer(LightingLayer(**spec.lighting.layer_options()))


def _add_traffic(twin: Twin, spec: ScenarioSpec) -> None:
    """The traffic layer of the scenario's ``traffic:`` section (demo city only)."""
    _need_demo_city(twin, spec, "traffic", "it builds its streets and demand from the city")
    from twin.networks.traffic import TrafficLayer

    options = spec.traffic.layer_options()
    if spec.cascade is not None:        # one source of closures: the cascade rules
        options["flood_close_lps"] = None
    twin.add_layer(TrafficLayer(**options, clock_offset_s=_seconds_into_day(spec.start)))


def _add_parking(twin: Twin, spec: ScenarioSpec) -> None:
    """The parking layer of the scenario's ``parking:`` section (demo city only); capacity
    overrides name zones and car parks, checked once the layer is built."""
    from twin.networks.parking import ParkingLayer

    _need_demo_city(twin, spec, "parking", "its zones are the city's blocks and streets")
    layer = ParkingLayer(**spec.parking.layer_options(spec.horizon_s))
    twin.add_layer(layer)
    for key in spec.parking.capacities:
        if key not in layer.index:
            path, line = spec.locate(f"parking.capacities.{key}")
            raise ScenarioError(path, f"parking.capacities.{key}", line,
                                "a zone or car-park id of the city",
                                got=f"unknown id {key!r} (zones {layer.zone_ids[0]}.."
                                    f"{layer.zone_ids[-1]}, car parks {', '.join(layer.carpark_ids)})")
    layer.set_capacities(spec.parking.capacities)


def _add_cascade(twin: Twin, spec: ScenarioSpec) -> None:
    """The cascade layer of the ``cascade:`` section, after every other layer. A rule whose
    layers this scenario lacks is inactive (listed in the layer's kpis and elements)."""
    from twin.cascade_engine import CascadeLayer

    twin.add_layer(CascadeLayer(**spec.cascade.layer_options()))


def _add_citizens(twin: Twin, spec: ScenarioSpec) -> None:
    """The request service of the ``citizens:`` section (demo city only)."""
    from twin.agents.service_layer import CitizenServices

    _need_demo_city(twin, spec, "citizens", "its households live in the city's blocks")
    at = spec.citizens.preposition.at if spec.citizens.preposition is not None else None
    if isinstance(at, str) and at not in twin.city.streets.index:
        path, line = spec.locate("citizens.preposition.at")
        raise ScenarioError(path, "citizens.preposition.at", line, "a street id of the city "
                            f"(such as {twin.city.streets.index[0]!r}) or [x, y]", got=repr(at))
    try:
        twin.add_layer(CitizenServices(spec.citizens.service_policy(spec.start)))
    except ValueError as exc:           # too few crews for the skills, an unknown skill
        field = "citizens.crews" if str(exc).startswith("crews:") else "citizens"
        path, line = spec.locate(field)
        raise ScenarioError(path, field, line, "settings the request service can run with",
                            detail=str(exc)) from None


def _add_waste(twin: Twin, spec: ScenarioSpec) -> None:
    """The waste layer of the scenario's ``waste:`` section (demo city only)."""
    from twin.networks.waste import WasteLayer

    _need_demo_city(twin, spec, "waste", "its containers serve the city's blocks")
    twin.add_layer(WasteLayer(**spec.waste.layer_options()))


def run(spec: ScenarioSpec, progress: bool = False) -> Results:
    """Run one scenario to its horizon and return its results."""
    t0 = time.perf_counter()
    twin = build_twin(spec)
    try:
        twin.run(spec.horizon_s, progress=progress, label=spec.name)
        elements = {name: layer.elements() for name, layer in twin.layers.items()}
        if twin.city is not None:
            elements["city"] = {"streets": twin.city.streets, "blocks": twin.city.blocks}
        city = (f"demo, {twin.city.population:,} inhabitants" if twin.city is not None
                else Path(str(spec.city.inp)).name)
        meta = {"scenario": str(spec.source_path or ""), "description": spec.description,
                "start": spec.start.isoformat(), "horizon_s": spec.horizon_s, "step_s": spec.step_s,
                "seed": spec.seed, "city": city, "wall_s": time.perf_counter() - t0,
                "service_pressure_m": twin.layers["water"].service_pressure_m}
        return Results(name=spec.name, series=twin.recorder.tidy(), events=twin.bus.to_frame(),
                       kpis=twin.kpis(), elements=elements, meta=meta)
    finally:
        twin.close()
