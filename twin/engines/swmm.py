"""Thin adapter to SWMM 5 through pyswmm: one run opened, stepped, summarised, cleaned up.

SWMM keeps its project in C globals: one simulation per process (pyswmm refuses a
second one). :class:`SwmmRun` says so clearly when that happens; runs that must
coexist (forks, ensembles) go to a child process with :func:`run_isolated`.
Every run works on a copy of the model in its own temporary folder, where SWMM
writes its report (.rpt), binary output (.out) and hot-start files; the folder is
removed when the run closes, so nothing is ever written beside the user's .inp.
The totals the user compares with SWMM itself (outfall loading, continuity
errors, flooding) are read from SWMM's own report after the run ends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import numpy as np
from pyswmm import Simulation
from pyswmm.errors import MultiSimulationError
from pyswmm.swmm5 import SWMMException
from swmm.toolkit import shared_enum as se
from swmm.toolkit import solver

from twin.errors import InpError

M3_PER_FT3 = 0.028316846592
# node types, link types as SWMM numbers them
JUNCTION, OUTFALL, STORAGE, DIVIDER = 0, 1, 2, 3
CONDUIT, PUMP, ORIFICE, WEIR, OUTLET = 0, 1, 2, 3, 4
LINK_TYPE_NAMES = {CONDUIT: "conduit", PUMP: "pump", ORIFICE: "orifice", WEIR: "weir",
                   OUTLET: "outlet"}
NODE_TYPE_NAMES = {JUNCTION: "junction", OUTFALL: "outfall", STORAGE: "storage",
                   DIVIDER: "divider"}


class OneSimulationPerProcess(RuntimeError):
    """A second SWMM simulation was asked for in a process that already has one open."""


@dataclass
class SwmmSummary:
    """SWMM's own end-of-run figures, in the units its report uses."""

    flow_units: str
    volume_unit: str                                  # '10^6 ltr' or '10^6 gal'
    total_outfall_volume: dict[str, float]            # outfall id -> volume (volume_unit)
    flooding_volume: float                            # volume_unit
    runoff_continuity_error_pct: float | None         # None without subcatchments
    flow_routing_continuity_error_pct: float
    report_text: str = field(repr=False, default="")


def _swmm_errors(report: Path) -> list[str]:
    if not report.is_file():
        return []
    return [line.strip() for line in report.read_text(errors="replace").splitlines()
            if line.strip().startswith("ERROR")]


class SwmmRun:
    """One SWMM simulation of ``inp``, advanced in strides by the caller.

    ``inp_text`` replaces the file's content (a generated model); ``start`` moves the
    start date (a fork continuing from a snapshot) and ``hotstart`` is the state to
    continue from (bytes of a SWMM hot-start file). ``end`` moves the end date.
    """

    def __init__(self, inp: str | Path | None = None, *, inp_text: str | None = None,
                 label: str | None = None, start: dt.datetime | None = None,
                 end: dt.datetime | None = None, hotstart: bytes | None = None) -> None:
        if inp is None and inp_text is None:
            raise ValueError("SwmmRun needs an .inp path or its text")
        self.label = label or str(inp)
        if inp_text is None:
            path = Path(inp)
            if not path.is_file():
                raise InpError(f"{path}: no such SWMM input file")
            try:
                inp_text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise InpError(f"{path}: cannot read the SWMM input file: {exc.strerror}") from None
        if not re.search(r"^\s*\[(JUNCTIONS|OUTFALLS|STORAGE|SUBCATCHMENTS)\]", inp_text,
                         re.M | re.I):
            raise InpError(f"{self.label}: not a SWMM input file (expected sections such as "
                           "[JUNCTIONS], [OUTFALLS], [CONDUITS])")
        self.inp_text = inp_text
        self.tmp = Path(tempfile.mkdtemp(prefix="twin-swmm-"))
        self.inp_path = self.tmp / "model.inp"
        self.rpt_path = self.tmp / "model.rpt"
        self.out_path = self.tmp / "model.out"
        self.inp_path.write_text(inp_text, encoding="utf-8")
        self.sim: Simulation | None = None
        self.summary: SwmmSummary | None = None
        self.elapsed_s = 0.0
        self._started = False
        try:
            self.sim = Simulation(str(self.inp_path), str(self.rpt_path), str(self.out_path))
        except MultiSimulationError:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise OneSimulationPerProcess(
                f"{self.label}: SWMM allows one simulation per process and one is already "
                "open here; close it first or run this one in a child process "
                "(twin.engines.swmm.run_isolated)") from None
        except (SWMMException, Exception) as exc:     # swmm.toolkit raises plain Exception
            errors = _swmm_errors(self.rpt_path)
            shutil.rmtree(self.tmp, ignore_errors=True)
            detail = "; ".join(errors[:5]) or str(exc)
            raise InpError(f"{self.label}: SWMM cannot read this model: {detail}") from None
        try:
            self._read_layout()
            if start is not None:
                self.sim.start_time = start
                if self.sim.report_start < start:
                    self.sim.report_start = start
            if end is not None:
                self.sim.end_time = end
            if hotstart is not None:
                hsf = self.tmp / "restore.hsf"
                hsf.write_bytes(hotstart)
                self.sim.use_hotstart(str(hsf))
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ layout
    def _read_layout(self) -> None:
        def ids(kind: se.ObjectType) -> list[str]:
            return [solver.project_get_id(kind.value, i)
                    for i in range(solver.project_get_count(kind.value))]

        self.node_ids = ids(se.ObjectType.NODE)
        self.link_ids = ids(se.ObjectType.LINK)
        self.gage_ids = ids(se.ObjectType.GAGE)
        self.subcatch_ids = ids(se.ObjectType.SUBCATCH)
        self.node_index = {n: i for i, n in enumerate(self.node_ids)}
        self.link_index = {n: i for i, n in enumerate(self.link_ids)}
        self.node_types = np.array([solver.node_get_type(i).value for i in range(len(self.node_ids))],
                                   dtype=int)
        self.link_types = np.array([solver.link_get_type(i).value for i in range(len(self.link_ids))],
                                   dtype=int)
        self.link_ends = [tuple(self.node_ids[j] for j in solver.link_get_connections(i))
                          for i in range(len(self.link_ids))]
        self.full_depth = np.array([solver.node_get_parameter(i, se.NodeProperty.FULL_DEPTH.value)
                                    for i in range(len(self.node_ids))])
        self.invert = np.array([solver.node_get_parameter(i, se.NodeProperty.INVERT_ELEVATION.value)
                                for i in range(len(self.node_ids))])
        self.flow_units = self.sim.flow_units
        self.si = self.sim.system_units == "SI"
        self.start_time = self.sim.start_time
        self.end_time = self.sim.end_time
        self.duration_s = (self.end_time - self.start_time).total_seconds()
        self.outfalls = np.flatnonzero(self.node_types == OUTFALL)

    @property
    def volume_to_m3(self) -> float:
        """Factor from SWMM's internal volume unit (m3 or ft3) to m3."""
        return 1.0 if self.si else M3_PER_FT3

    # ------------------------------------------------------------------ step
    def advance(self, seconds: float) -> float:
        """Route ``seconds`` further (whole routing steps); the seconds actually routed,
        0 once the simulation has reached its end."""
        if self.summary is not None:
            return 0.0
        sim = self.sim
        sim.step_advance(max(int(round(seconds)), 1))
        if not self._started:
            self._started = True
        try:
            next(sim)
        except StopIteration:
            return 0.0
        now = (sim.current_time - self.start_time).total_seconds()
        moved, self.elapsed_s = now - self.elapsed_s, now
        return moved

    def node_values(self, result: se.NodeResult, idx: np.ndarray | None = None) -> np.ndarray:
        r = result.value
        rng = range(len(self.node_ids)) if idx is None else idx
        return np.fromiter((solver.node_get_result(int(i), r) for i in rng), dtype=float)

    def link_values(self, result: se.LinkResult, idx: np.ndarray | None = None) -> np.ndarray:
        r = result.value
        rng = range(len(self.link_ids)) if idx is None else idx
        return np.fromiter((solver.link_get_result(int(i), r) for i in rng), dtype=float)

    def cumulative_inflow_m3(self, idx: np.ndarray) -> np.ndarray:
        """Total inflow volume (m3) to each node since the start."""
        f = self.volume_to_m3
        return np.fromiter((solver.node_get_total_inflow(int(i)) * f for i in idx), dtype=float)

    def routing_totals_m3(self) -> dict[str, float]:
        """System flow routing totals so far (m3): flooding, outflow, inflows, storage."""
        rt = solver.system_get_routing_totals()
        f = self.volume_to_m3
        return {name: float(getattr(rt, name)) * f
                for name in ("dwInflow", "wwInflow", "exInflow", "flooding", "outflow",
                             "initStorage", "finalStorage")}

    def set_link_setting(self, k: int, setting: float) -> None:
        """Target setting of a pump, orifice or weir (applied from the next routing step)."""
        solver.link_set_target_setting(int(k), float(setting))

    def set_node_inflow(self, i: int, flow: float) -> None:
        """An extra inflow at node ``i`` (model flow units), held until changed."""
        solver.node_set_total_inflow(int(i), float(flow))

    def set_gage_rainfall(self, g: int, intensity: float) -> None:
        """Rainfall intensity at gage ``g`` (model units: mm/h or in/h), held until changed."""
        solver.raingage_set_precipitation(int(g), float(intensity))

    def set_conduit_flow_limit(self, k: int, flow: float) -> None:
        solver.link_set_parameter(int(k), se.LinkProperty.FLOW_LIMIT.value, float(flow))

    def conduit_flow_limit(self, k: int) -> float:
        return float(solver.link_get_parameter(int(k), se.LinkProperty.FLOW_LIMIT.value))

    def save_hotstart(self) -> bytes:
        """SWMM's hot-start file of the current state, as bytes."""
        path = self.tmp / f"snap_{int(self.elapsed_s)}.hsf"
        self.sim.save_hotstart(str(path))
        data = path.read_bytes()
        path.unlink(missing_ok=True)
        return data

    @property
    def current_time(self) -> dt.datetime:
        return self.start_time + dt.timedelta(seconds=self.elapsed_s)

    # ------------------------------------------------------------------ results
    def finish(self) -> SwmmSummary:
        """End the run (routing the rest of the period if needed), write and read the report."""
        if self.summary is not None:
            return self.summary
        sim = self.sim
        if not self._started:
            sim.start()
        sim.close()                     # swmm_end, swmm_report, swmm_close
        text = self.rpt_path.read_text(errors="replace") if self.rpt_path.is_file() else ""
        self.summary = parse_report(text, self.flow_units, label=self.label)
        self.sim = None
        return self.summary

    def close(self) -> None:
        """Release SWMM (without a report if not finished) and remove the temporary folder."""
        if self.sim is not None:
            try:
                self.sim.close()
            finally:
                self.sim = None
        shutil.rmtree(self.tmp, ignore_errors=True)


_NUMBER = r"(-?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"


def parse_report(text: str, flow_units: str = "", label: str = "") -> SwmmSummary:
    """Outfall loading, flooding and continuity errors from a SWMM report's text."""
    if "Flow Routing Continuity" not in text:
        errors = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("ERROR")]
        raise InpError(f"{label}: SWMM produced no results: "
                       f"{'; '.join(errors[:5]) or 'the report has no flow routing summary'}")
    unit = "10^6 gal" if "10^6 gal" in text else "10^6 ltr"

    def continuity(section: str) -> float | None:
        i = text.find(section)
        if i < 0:
            return None
        m = re.search(r"Continuity Error \(%\) \.+\s+" + _NUMBER, text[i:])
        return float(m.group(1)) if m else None

    routing = text[text.find("Flow Routing Continuity"):]
    m = re.search(r"Flooding Loss \.+\s+" + _NUMBER + r"\s+" + _NUMBER, routing)
    flooding = float(m.group(2)) if m else 0.0
    outfalls: dict[str, float] = {}
    i = text.find("Outfall Loading Summary")
    if i >= 0:
        lines = text[i:].splitlines()
        dashes = [k for k, ln in enumerate(lines) if ln.strip().startswith("-----")]
        if len(dashes) >= 3:
            for ln in lines[dashes[1] + 1:dashes[2]]:
                parts = ln.split()
                if len(parts) >= 5:
                    outfalls[parts[0]] = float(parts[4])
    return SwmmSummary(flow_units=flow_units, volume_unit=unit, total_outfall_volume=outfalls,
                       flooding_volume=flooding,
                       runoff_continuity_error_pct=continuity("Runoff Quantity Continuity"),
                       flow_routing_continuity_error_pct=continuity("Flow Routing Continuity") or 0.0,
                       report_text=text)


def run_plain(inp: str | Path, step_s: float | None = None,
              on_step: Callable[[SwmmRun], None] | None = None) -> SwmmSummary:
    """A plain SWMM run of ``inp`` in this process (a reference for the layer).

    Without ``step_s``: SWMM's own ``swmm_run`` (no Python between routing steps);
    with it: pyswmm strides of ``step_s`` seconds, calling ``on_step`` after each.
    """
    if step_s is not None:
        run = SwmmRun(inp)
        try:
            while run.advance(step_s) > 0:
                if on_step is not None:
                    on_step(run)
            return run.finish()
        finally:
            run.close()
    from pyswmm.simulation import _sim_state_instance

    if _sim_state_instance.sim_is_instantiated:
        raise OneSimulationPerProcess(f"{inp}: a SWMM simulation is already open in this process")
    path = Path(inp)
    if not path.is_file():
        raise InpError(f"{path}: no such SWMM input file")
    tmp = Path(tempfile.mkdtemp(prefix="twin-swmm-"))
    try:
        shutil.copy(path, tmp / "model.inp")
        with _quiet_stdout():      # swmm_run prints its progress from C
            code = solver.swmm_run(str(tmp / "model.inp"), str(tmp / "model.rpt"),
                                   str(tmp / "model.out"))
        text = (tmp / "model.rpt").read_text(errors="replace")
        if code:
            raise InpError(f"{path}: SWMM error {code}: {'; '.join(_swmm_errors(tmp / 'model.rpt'))}")
        return parse_report(text, label=str(path))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _quiet_stdout():
    """Send what C code prints on file descriptor 1 to /dev/null meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def run_isolated(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``func(*args, **kwargs)`` in a fresh child process ('spawn') and return its result.

    SWMM allows one simulation per process: forks, what-ifs and ensemble members that
    must run beside an open one go here. ``func`` must be importable (module level).
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(func, *args, **kwargs).result()
