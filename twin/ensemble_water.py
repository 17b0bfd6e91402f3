"""Fast ensemble members: networks loaded once per worker, EPANET run in memory.

WNTR's file-based simulator writes an .inp/.rpt/.bin per run: bulk runs run out of file
handles and parallel runs collide on file names. Here each worker process keeps, per
network, the WNTR model (read once) and one .inp written once into a folder of its
own, open in EPANET (:class:`EpanetPool`): a member that only bursts pipes at an end
junction runs on the project the member before left open (restored, hydraulics restarted);
any other member opens that file (a C parse of a few milliseconds on L-Town), steps it in
memory and closes it. Nothing is written per member and no two workers share a file.
The generated demo city is also kept per worker.

Criticality analysis is an ensemble whose members each break (or close) one pipe: see
``scenarios/criticality_demo.yaml``; :func:`select_elements` picks the pipes.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import time
import traceback
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.ensemble_spec import ElementSelection

if TYPE_CHECKING:
    from twin.city.model import City
    from twin.scenario import ScenarioSpec


class WorkerNetworks:
    """The cities and water models of one process, each built or read once (a
    :class:`twin.run.NetworkSource`). Models are shared read-only by the members."""

    def __init__(self) -> None:
        self._cities: dict[tuple, "City"] = {}
        self._water: dict[tuple, tuple[Any, Path]] = {}
        self._frames: dict[tuple, dict[str, pd.DataFrame]] = {}     # by (model, crs)
        self._folder: Path | None = None
        self.epanet_pool = EpanetPool()
        weakref.finalize(self, self.epanet_pool.close)

    def _dir(self) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix=f"twin-ens-{os.getpid()}-"))
            weakref.finalize(self, shutil.rmtree, str(self._folder), True)
        return self._folder

    def city(self, spec: "ScenarioSpec") -> "City":
        from twin.city.generator import generate_city

        demo = spec.city.demo
        key = (demo.population, demo.seed)
        if key not in self._cities:
            self._cities[key] = generate_city(population=demo.population, seed=demo.seed)
        return self._cities[key]

    def water_model(self, spec: "ScenarioSpec", city: "City | None") -> tuple[Any, Path]:
        """(WNTR model, .inp written from it once) of the scenario's water network."""
        import wntr

        from twin.networks.water import WaterLayer, load_inp
        from twin.twin import Twin

        if city is None:
            inp = Path(str(spec.city.inp)).resolve()
            key: tuple = ("inp", str(inp), inp.stat().st_mtime_ns)
        else:   # the demo network's pressure-driven options follow the service pressure
            key = ("demo", spec.city.demo.population, spec.city.demo.seed,
                   spec.policies.water.service_pressure_m)
        if key not in self._water:
            if city is None:
                wn = load_inp(spec.city.inp)
            else:      # built as the layer builds it (demand model set from the policy)
                layer = WaterLayer(None, service_pressure_m=spec.policies.water.service_pressure_m)
                layer.build(Twin(city=city))
                layer.close()
                wn = layer.wn
            path = self._dir() / f"network-{len(self._water)}.inp"
            wntr.network.write_inpfile(wn, str(path), units=wn.options.hydraulic.inpfile_units,
                                       version=2.2)
            self._water[key] = (wn, path)
        return self._water[key]


    def frames(self, spec: "ScenarioSpec") -> dict[str, pd.DataFrame]:
        """The scenario's water network as element tables (``nodes``, ``links``), made once."""
        from twin.networks.water_io import network_frames

        city = self.city(spec) if spec.city.demo is not None else None
        wn, _ = self.water_model(spec, city)
        crs = city.crs if city is not None else spec.city.crs
        if (id(wn), crs) not in self._frames:
            self._frames[(id(wn), crs)] = network_frames(wn, crs)
        return dict(self._frames[(id(wn), crs)])


class EpanetPool:
    """Open EPANET projects of this process, one per (.inp, library), lent to one water layer
    at a time: a member that only bursts pipes at their end junctions runs on a project
    left open by the one before (emitters and times restored, hydraulics restarted from the
    file's initial flows), instead of reading the file again (about 5 ms on L-Town)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str], Any] = {}

    def take(self, inp: str | os.PathLike, library: str):
        """An open project of ``inp`` (the idle one, else a new one); the caller owns it."""
        from twin.engines.epanet import EpanetProject

        key = (str(inp), library)
        project = self._idle.pop(key, None)
        return project if project is not None else EpanetProject(inp, library=library)

    def give(self, project) -> None:
        """Keep ``project`` (as its last user left it, restored) for the next member."""
        key = (str(project.inp_path), project.library)
        old = self._idle.get(key)
        if old is not None and old is not project:
            old.close()
        self._idle[key] = project

    def close(self) -> None:
        for project in self._idle.values():
            project.close()
        self._idle.clear()


_WORKER: WorkerNetworks | None = None


def worker_networks() -> WorkerNetworks:
    """This process's :class:`WorkerNetworks` (made on first use)."""
    global _WORKER
    if _WORKER is None:
        _WORKER = WorkerNetworks()
    return _WORKER


@dataclass(frozen=True)
class MemberTask:
    """One member to run: its id, its resolved scenario and the per-element extremes wanted
    (and what its row in the results says of it: seed, swept element and template, grid
    parameters)."""

    member_id: str
    spec: "ScenarioSpec"
    per_element: tuple[str, ...] = ("water.pressure",)
    seed: int = 0
    element: str = ""
    sweep: int = -1
    params: dict[str, Any] = field(default_factory=dict)


def preload_network(spec: "ScenarioSpec") -> None:
    """Read (or build) the scenario's city and water network in this process now; a network
    that cannot be read is left for the members to report."""
    networks = worker_networks()
    try:
        networks.water_model(spec, networks.city(spec) if spec.city.demo is not None else None)
    except Exception:
        pass


def run_member(task: MemberTask, networks: WorkerNetworks | None = None) -> dict[str, Any]:
    """Run one member; never raises: a failure is returned with its traceback.

    Returns ``{"member_id", "status" ('done' | 'failed'), "error", "seconds", "worker_pid",
    "kpis" ({'layer.kpi': value}), "elements" (columns element, quantity, min, max)}``.
    """
    from twin.run import build_twin

    t0 = time.perf_counter()
    out: dict[str, Any] = {"member_id": task.member_id, "status": "done", "error": "",
                           "worker_pid": os.getpid(), "kpis": {}, "elements": None}
    twin = None
    try:
        twin = build_twin(task.spec, networks=networks or worker_networks())
        twin.run(task.spec.horizon_s)
        kpis = {f"{layer}.{k}": float(v) for layer, d in twin.kpis().items() for k, v in d.items()}
        if "water.demand_required_m3" in kpis:
            kpis["water.demand_not_delivered_m3"] = (kpis["water.demand_required_m3"]
                                                     - kpis.get("water.demand_delivered_m3", 0.0))
        out["kpis"] = kpis
        out["elements"] = element_extremes(twin, task.per_element)
    except Exception:                       # the member fails, the ensemble goes on
        out["status"], out["error"] = "failed", traceback.format_exc(limit=20)
    finally:
        if twin is not None:
            twin.close()
    out["seconds"] = time.perf_counter() - t0
    return out


def run_members(tasks: list[MemberTask]) -> tuple[list[dict[str, Any]],
                                                  dict[str, np.ndarray] | None]:
    """Run a batch of members in this process (a Dask task): their rows and element
    extremes as :func:`twin.ensemble_store.flat_rows` makes them."""
    from twin.ensemble_store import flat_rows

    return flat_rows(tasks, [run_member(task) for task in tasks])


def run_packed_members(packed: bytes) -> tuple[list[dict[str, Any]], dict[str, np.ndarray] | None]:
    """:func:`run_members` of a pickled batch. The Dask scheduler unpickles every task it is
    given to read its graph: a batch of scenario models sent as bytes costs it nothing,
    sent as objects it cost more than the members ran (the local scheduler shares the
    client's process, on the same cores as the workers)."""
    return run_members(pickle.loads(packed))


def element_extremes(twin, wanted: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """Per element, the lowest and highest value over the run of each recorded
    ``'<layer>.<quantity>'`` in ``wanted`` (the consumers' junctions only for water), as
    columns ``element, quantity, min, max``; None if nothing wanted was recorded."""
    columns: dict[str, list[np.ndarray]] = {"element": [], "quantity": [], "min": [], "max": []}
    recorded = {(layer, q) for layer, q, _ in twin.recorder.quantities()}
    water = twin.layers.get("water")
    for name in wanted:
        layer, _, quantity = name.partition(".")
        if (layer, quantity) not in recorded:
            continue
        wide = twin.recorder.wide(layer, quantity)
        elements = wide.columns.to_numpy().astype(str)
        values = wide.to_numpy()
        if layer == "water" and water is not None and quantity in ("pressure", "demand"):
            keep = np.fromiter((e in water.junction_ids for e in elements), bool, len(elements))
            elements, values = elements[keep], values[:, keep]
        columns["element"].append(elements)
        columns["quantity"].append(np.full(len(elements), name, dtype=object))
        columns["min"].append(values.min(axis=0).astype(np.float32))
        columns["max"].append(values.max(axis=0).astype(np.float32))
    if not columns["element"]:
        return None
    return {key: np.concatenate(parts) for key, parts in columns.items()}


# --- choosing elements (criticality: every pipe of a zone, all pipes over a diameter) ---------
def network_elements(spec: "ScenarioSpec",
                     networks: WorkerNetworks | None = None) -> dict[str, "pd.DataFrame"]:
    """The scenario's water network as element tables (``nodes``, ``links``)."""
    return (networks or worker_networks()).frames(spec)


def select_elements(selection: ElementSelection, frames: dict[str, pd.DataFrame],
                    rng: np.random.Generator) -> list[str]:
    """Ids of the elements ``selection`` names, in network order (a sample is drawn with
    ``rng``). Raises ValueError naming what is wrong (unknown ids, nothing selected)."""
    nodes, links = frames["nodes"], frames["links"]
    kind = selection.each
    if kind in ("pipe", "link", "pump"):
        table = links if kind == "link" else links[links["link_type"] == kind.capitalize()]
    else:
        table = nodes if kind == "node" else nodes[nodes["node_type"] == "Junction"]
    if selection.ids:
        unknown = [i for i in selection.ids if i not in table.index]
        if unknown:
            raise ValueError(f"unknown {kind} {unknown[0]!r} (the network has {len(table)} "
                             f"{kind}s)")
        table = table.loc[list(selection.ids)]
    has_diameter = "diameter_mm" in table.columns
    if selection.min_diameter_mm is not None:
        table = table[table["diameter_mm"] >= selection.min_diameter_mm] if has_diameter else \
            table.iloc[:0]
    if selection.max_diameter_mm is not None:
        table = table[table["diameter_mm"] <= selection.max_diameter_mm] if has_diameter else \
            table.iloc[:0]
    if selection.zone is not None:
        xmin, ymin, xmax, ymax = selection.zone
        points = table.geometry.interpolate(0.5, normalized=True) if kind in (
            "pipe", "link", "pump") else table.geometry
        inside = ((points.x >= xmin) & (points.x <= xmax) & (points.y >= ymin)
                  & (points.y <= ymax)).to_numpy()
        table = table[inside]
    ids = [str(i) for i in table.index]
    if not ids:
        raise ValueError(f"no {kind} of the network matches this selection")
    if selection.sample is not None and selection.sample < len(ids):
        picked = np.sort(rng.choice(len(ids), size=selection.sample, replace=False))
        ids = [ids[i] for i in picked]
    return ids
