"""A thin ctypes adapter to the EPANET toolkit, stepped in memory.

One project is opened once and advanced step by step (``EN_runH`` /
``EN_nextH``); values come back as numpy arrays in SI units (metres, litres
per second, kW). Two shared libraries carry the same C API and either can be
used:

* ``"wntr"`` (default): EPANET 2.2 as bundled with WNTR, the library behind
  WNTR's ``EpanetSimulator`` and toolkit bindings, so results agree with it on
  any network. It has no array getters: a numba loop reads every element in
  one Python call.
* ``"owa"``: EPANET 2.3 from the ``owa-epanet`` wheel, with array getters and a
  faster solver (about 2x on L-Town). Its results equal 2.2's on most networks
  but not all (Net6 differs by metres): choose it knowingly.

The input file is read once at open; nothing is written per step or per run.
"""

from __future__ import annotations

import ctypes
import math
import os
from importlib import resources
from pathlib import Path

import numpy as np

# EPANET toolkit codes (identical in 2.2 and 2.3 for those used here).
NODECOUNT, TANKCOUNT, LINKCOUNT, PATCOUNT, CONTROLCOUNT, RULECOUNT = 0, 1, 2, 3, 5, 6
ELEVATION, BASEDEMAND, PATTERN, EMITTER = 0, 1, 2, 3
TANKLEVEL, DEMAND, HEAD, PRESSURE = 8, 9, 10, 11
INITVOLUME, MINLEVEL, MAXLEVEL, DEMANDDEFICIT, EMITTERFLOW = 14, 20, 21, 27, 29
DEMANDFLOW = 31   # EPANET 2.3: consumer demand delivered (no emitter or leakage flow)
DIAMETER, LENGTH, ROUGHNESS, MINORLOSS, INITSTATUS, INITSETTING = 0, 1, 2, 3, 4, 5
FLOW, VELOCITY, HEADLOSS, STATUS, SETTING, ENERGY = 8, 9, 10, 11, 12, 13
DURATION, HYDSTEP, PATTERNSTEP, PATTERNSTART, REPORTSTEP, REPORTSTART = 0, 1, 3, 4, 5, 6
STARTTIME = 10
TIMER, TIMEOFDAY = 2, 3           # simple control types
PRV, PSV, PBV, FCV, TCV, GPV = 3, 4, 5, 6, 7, 8
TRIALS, ACCURACY, DEMANDMULT, EMITEXPON = 0, 1, 4, 3
JUNCTION, RESERVOIR, TANK = 0, 1, 2
CVPIPE, PIPE, PUMP = 0, 1, 2
NOSAVE = 0

# flow unit code -> m3/s per unit (CFS GPM MGD IMGD AFD LPS LPM MLD CMH CMD CMS)
_FLOW_TO_M3S = {0: 0.0283168466, 1: 6.30901964e-05, 2: 0.0438126364, 3: 0.0526175570,
                4: 0.0142764102, 5: 1e-3, 6: 1.0 / 60000.0, 7: 1.0 / 86.4, 8: 1.0 / 3600.0,
                9: 1.0 / 86400.0, 10: 1.0}
_FT = 0.3048
_PSI_TO_M = 0.3048 / 0.4333      # EPANET's own psi-per-foot, as WNTR converts its output


class EpanetError(RuntimeError):
    """An error code from the EPANET toolkit, with its message."""

    def __init__(self, code: int, message: str = "", context: str = "") -> None:
        super().__init__(code, message, context)   # args rebuild it (SimPy re-raises copies)
        self.code, self.message, self.context = code, message, context

    def __str__(self) -> str:
        return f"EPANET error {self.code}: {self.message}" + (
            f" ({self.context})" if self.context else "")


def library_path(library: str = "wntr") -> str:
    """Path of the EPANET shared library: 'owa' (EPANET 2.3) or 'wntr' (EPANET 2.2)."""
    if library == "owa":
        import epanet  # owa-epanet

        return str(Path(epanet.__file__).with_name("libepanet2.so"))
    if library == "wntr":
        from wntr.epanet.toolkit import libepanet

        return str(resources.files("wntr.epanet").joinpath(libepanet))
    raise ValueError(f"unknown EPANET library {library!r}: expected 'owa' or 'wntr'")


_LIBS: dict[str, ctypes.CDLL] = {}
_BULK: dict[str, tuple] = {}


def _element_loop(getter):
    """A compiled loop calling ``getter(ph, index, prop, &out[index - 1])`` for every element;
    returns the last error code above 100 (0 if none)."""
    import numba

    @numba.njit(nogil=True)
    def read(ph, prop, out):
        base = out.ctypes.data
        err = 0
        for i in range(out.shape[0]):
            code = getter(ph, i + 1, prop, base + 8 * i)
            if code > 100:
                err = code
        return err

    return read


def _bulk_readers(library: str):
    """numba loops calling EN_getnodevalue / EN_getlinkvalue for every element (EPANET 2.2,
    which has no array getters): one Python call per array instead of one per element."""
    if library not in _BULK:
        lib = ctypes.CDLL(library_path(library))    # own function objects with pointer args
        node_get, link_get = lib.EN_getnodevalue, lib.EN_getlinkvalue
        for fn in (node_get, link_get):
            fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
            fn.restype = ctypes.c_int

        read_nodes, read_links = _element_loop(node_get), _element_loop(link_get)
        _BULK[library] = (lib, read_nodes, read_links)
    return _BULK[library]


def _load(library: str) -> ctypes.CDLL:
    if library not in _LIBS:
        lib = ctypes.CDLL(library_path(library))
        vp, ip, dp, lp = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_long
        lib.EN_createproject.argtypes = [ctypes.POINTER(vp)]
        lib.EN_deleteproject.argtypes = [vp]
        lib.EN_open.argtypes = [vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
        for name in ("EN_close", "EN_openH", "EN_closeH"):
            getattr(lib, name).argtypes = [vp]
        lib.EN_initH.argtypes = [vp, ip]
        lib.EN_runH.argtypes = [vp, ctypes.POINTER(lp)]
        lib.EN_nextH.argtypes = [vp, ctypes.POINTER(lp)]
        lib.EN_getcount.argtypes = [vp, ip, ctypes.POINTER(ip)]
        lib.EN_getnodeid.argtypes = [vp, ip, ctypes.c_char_p]
        lib.EN_getlinkid.argtypes = [vp, ip, ctypes.c_char_p]
        lib.EN_getnodetype.argtypes = [vp, ip, ctypes.POINTER(ip)]
        lib.EN_getlinktype.argtypes = [vp, ip, ctypes.POINTER(ip)]
        lib.EN_getlinknodes.argtypes = [vp, ip, ctypes.POINTER(ip), ctypes.POINTER(ip)]
        lib.EN_getnodevalue.argtypes = [vp, ip, ip, ctypes.POINTER(dp)]
        lib.EN_getlinkvalue.argtypes = [vp, ip, ip, ctypes.POINTER(dp)]
        lib.EN_setnodevalue.argtypes = [vp, ip, ip, dp]
        lib.EN_setlinkvalue.argtypes = [vp, ip, ip, dp]
        lib.EN_getnodeindex.argtypes = [vp, ctypes.c_char_p, ctypes.POINTER(ip)]
        lib.EN_getlinkindex.argtypes = [vp, ctypes.c_char_p, ctypes.POINTER(ip)]
        lib.EN_gettimeparam.argtypes = [vp, ip, ctypes.POINTER(lp)]
        lib.EN_settimeparam.argtypes = [vp, ip, lp]
        lib.EN_getflowunits.argtypes = [vp, ctypes.POINTER(ip)]
        lib.EN_getoption.argtypes = [vp, ip, ctypes.POINTER(dp)]
        lib.EN_setoption.argtypes = [vp, ip, dp]
        lib.EN_geterror.argtypes = [ip, ctypes.c_char_p, ip]
        lib.EN_addpattern.argtypes = [vp, ctypes.c_char_p]
        lib.EN_getpatternindex.argtypes = [vp, ctypes.c_char_p, ctypes.POINTER(ip)]
        lib.EN_adddemand.argtypes = [vp, ip, dp, ctypes.c_char_p, ctypes.c_char_p]
        lib.EN_getnumdemands.argtypes = [vp, ip, ctypes.POINTER(ip)]
        lib.EN_getbasedemand.argtypes = [vp, ip, ip, ctypes.POINTER(dp)]
        lib.EN_setbasedemand.argtypes = [vp, ip, ip, dp]
        lib.EN_addnode.argtypes = [vp, ctypes.c_char_p, ip, ctypes.POINTER(ip)]
        lib.EN_addlink.argtypes = [vp, ctypes.c_char_p, ip, ctypes.c_char_p, ctypes.c_char_p,
                                   ctypes.POINTER(ip)]
        lib.EN_setcoord.argtypes = [vp, ip, dp, dp]
        lib.EN_setlinknodes.argtypes = [vp, ip, ip, ip]
        lib.EN_getcontrol.argtypes = [vp, ip, ctypes.POINTER(ip), ctypes.POINTER(ip),
                                      ctypes.POINTER(dp), ctypes.POINTER(ip), ctypes.POINTER(dp)]
        lib.EN_setcontrol.argtypes = [vp, ip, ip, ip, dp, ip, dp]
        lib.EN_getrule.argtypes = [vp, ip, ctypes.POINTER(ip), ctypes.POINTER(ip),
                                   ctypes.POINTER(ip), ctypes.POINTER(dp)]
        for name in ("EN_getthenaction", "EN_getelseaction"):
            getattr(lib, name).argtypes = [vp, ip, ip, ctypes.POINTER(ip), ctypes.POINTER(ip),
                                           ctypes.POINTER(dp)]
        for name in ("EN_setthenaction", "EN_setelseaction"):
            getattr(lib, name).argtypes = [vp, ip, ip, ip, ip, dp]
        lib.EN_getdemandpattern.argtypes = [vp, ip, ip, ctypes.POINTER(ip)]
        lib.EN_getpatternlen.argtypes = [vp, ip, ctypes.POINTER(ip)]
        lib.EN_getpatternvalue.argtypes = [vp, ip, ip, ctypes.POINTER(dp)]
        lib.EN_deletecontrol.argtypes = [vp, ip]
        lib.EN_setpatternvalue.argtypes = [vp, ip, ip, dp]
        lib.EN_addcontrol.argtypes = [vp, ip, ip, dp, ip, dp, ctypes.POINTER(ip)]
        lib.EN_saveinpfile.argtypes = [vp, ctypes.c_char_p]
        if hasattr(lib, "EN_getnodevalues"):
            lib.EN_getnodevalues.argtypes = [vp, ip, ctypes.POINTER(dp)]
            lib.EN_getlinkvalues.argtypes = [vp, ip, ctypes.POINTER(dp)]
        _LIBS[library] = lib
    return _LIBS[library]


class EpanetProject:
    """One open EPANET project, stepped in memory; every value in SI units."""

    def __init__(self, inp_path: str | os.PathLike, library: str = "wntr") -> None:
        self.library = library
        self._lib = _load(library)
        self._ph = ctypes.c_void_p()
        self._check(self._lib.EN_createproject(ctypes.byref(self._ph)), "create project")
        self._open = False
        self._hyd_open = False
        inp = str(inp_path)
        self.inp_path = inp
        if not Path(inp).is_file():
            raise FileNotFoundError(f"EPANET input file not found: {inp}")
        self._check(self._lib.EN_open(self._ph, inp.encode(), os.devnull.encode(), b""),
                    f"reading {inp}")
        self._open = True
        self.n_nodes = self._count(NODECOUNT)
        self.n_links = self._count(LINKCOUNT)
        self._refresh_ids()
        units = ctypes.c_int()
        self._check(self._lib.EN_getflowunits(self._ph, ctypes.byref(units)))
        self.flow_units = units.value
        self._q = _FLOW_TO_M3S[self.flow_units] * 1000.0          # model flow -> L/s
        self._h = _FT if self.flow_units <= 4 else 1.0            # model length -> m
        self._p = _PSI_TO_M if self.flow_units <= 4 else 1.0      # model pressure -> m
        self.has_arrays = hasattr(self._lib, "EN_getnodevalues")
        if not self.has_arrays:
            _, self._read_nodes, self._read_links = _bulk_readers(library)
            self._read_nodes(0, PRESSURE, np.zeros(0))   # compile now, not inside the first step
            self._read_links(0, FLOW, np.zeros(0))
        self._buffers()
        self.time_s = 0

    def _buffers(self) -> None:
        """Node and link value buffers, and their C pointers made once (ctypes' cast cost
        more than the copy out of them, at every hydraulic step)."""
        self._nbuf = np.zeros(self.n_nodes, dtype=np.float64)
        self._lbuf = np.zeros(self.n_links, dtype=np.float64)
        ptr = ctypes.POINTER(ctypes.c_double)
        self._nptr = self._nbuf.ctypes.data_as(ptr)
        self._lptr = self._lbuf.ctypes.data_as(ptr)

    # -- errors and ids -------------------------------------------------------
    def _check(self, code: int, context: str = "") -> None:
        if code > 100:   # codes <= 100 are warnings (e.g. negative pressures)
            buf = ctypes.create_string_buffer(256)
            self._lib.EN_geterror(code, buf, 255)
            raise EpanetError(code, buf.value.decode(errors="replace"), context)

    def _count(self, what: int) -> int:
        n = ctypes.c_int()
        self._check(self._lib.EN_getcount(self._ph, what, ctypes.byref(n)))
        return n.value

    def _refresh_ids(self) -> None:
        t = ctypes.c_int()
        self.node_ids: list[str] = []
        self.node_types = np.zeros(self.n_nodes, dtype=np.int8)
        for i in range(1, self.n_nodes + 1):
            buf = ctypes.create_string_buffer(64)   # zeroed: a 31-character id has no NUL
            self._lib.EN_getnodeid(self._ph, i, buf)
            self.node_ids.append(buf.value.decode(errors="replace"))
            self._lib.EN_getnodetype(self._ph, i, ctypes.byref(t))
            self.node_types[i - 1] = t.value
        self.link_ids: list[str] = []
        self.link_types = np.zeros(self.n_links, dtype=np.int8)
        for i in range(1, self.n_links + 1):
            buf = ctypes.create_string_buffer(64)
            self._lib.EN_getlinkid(self._ph, i, buf)
            self.link_ids.append(buf.value.decode(errors="replace"))
            self._lib.EN_getlinktype(self._ph, i, ctypes.byref(t))
            self.link_types[i - 1] = t.value
        self.node_index = {nid: i for i, nid in enumerate(self.node_ids)}
        self.link_index = {lid: i for i, lid in enumerate(self.link_ids)}

    # -- time parameters ------------------------------------------------------
    def time_param(self, what: int) -> int:
        v = ctypes.c_long()
        self._check(self._lib.EN_gettimeparam(self._ph, what, ctypes.byref(v)))
        return int(v.value)

    def set_time_param(self, what: int, value: int) -> None:
        self._check(self._lib.EN_settimeparam(self._ph, what, int(value)), "set time parameter")

    def option(self, what: int) -> float:
        v = ctypes.c_double()
        self._check(self._lib.EN_getoption(self._ph, what, ctypes.byref(v)))
        return v.value

    def set_option(self, what: int, value: float) -> None:
        self._check(self._lib.EN_setoption(self._ph, what, float(value)), "set option")

    # -- structure edits (only before hydraulics are opened) ------------------
    def split_pipe_for_leak(self, pipe_id: str, position: float, node_id: str,
                            link_id: str) -> int:
        """Insert junction ``node_id`` at ``position`` (0..1) along ``pipe_id``.

        The original pipe is shortened to end at the new node and a new pipe
        ``link_id`` carries on to the old end node, so the pipe keeps its id,
        index and flow direction. Returns the new node's 0-based index.
        """
        if self._hyd_open:
            raise RuntimeError("cannot change the network while the hydraulic solver is open")
        li = self.link_index[pipe_id] + 1
        n1, n2 = ctypes.c_int(), ctypes.c_int()
        self._check(self._lib.EN_getlinknodes(self._ph, li, ctypes.byref(n1), ctypes.byref(n2)))
        props = {}
        for prop in (DIAMETER, LENGTH, ROUGHNESS, MINORLOSS, INITSTATUS):
            v = ctypes.c_double()
            self._check(self._lib.EN_getlinkvalue(self._ph, li, prop, ctypes.byref(v)))
            props[prop] = v.value
        e1, e2 = ctypes.c_double(), ctypes.c_double()
        self._lib.EN_getnodevalue(self._ph, n1.value, ELEVATION, ctypes.byref(e1))
        self._lib.EN_getnodevalue(self._ph, n2.value, ELEVATION, ctypes.byref(e2))
        start_id, end_id = self.node_ids[n1.value - 1], self.node_ids[n2.value - 1]
        new = ctypes.c_int()
        self._check(self._lib.EN_addnode(self._ph, node_id.encode(), JUNCTION, ctypes.byref(new)),
                    f"adding leak node {node_id}")
        self._lib.EN_setnodevalue(self._ph, new.value, ELEVATION,
                                  e1.value + position * (e2.value - e1.value))
        # a new junction goes before tanks and reservoirs: look their indices up again
        start = ctypes.c_int()
        self._check(self._lib.EN_getnodeindex(self._ph, start_id.encode(), ctypes.byref(start)))
        # re-route: original pipe now ends at the new node (EN_setlinknodes keeps index and id)
        self._check(self._lib.EN_setlinknodes(self._ph, li, start.value, new.value), "re-route pipe")
        link2 = ctypes.c_int()
        self._check(self._lib.EN_addlink(self._ph, link_id.encode(), PIPE, node_id.encode(),
                                         end_id.encode(), ctypes.byref(link2)), "adding pipe")
        length = props[LENGTH]
        self._lib.EN_setlinkvalue(self._ph, li, LENGTH, max(length * position, 0.01))
        for prop, value in props.items():
            if prop == MINORLOSS:       # fittings stay on the first half, not doubled
                continue
            target = max(length * (1 - position), 0.01) if prop == LENGTH else value
            self._lib.EN_setlinkvalue(self._ph, link2.value, prop, target)
        self.n_nodes = self._count(NODECOUNT)
        self.n_links = self._count(LINKCOUNT)
        self._refresh_ids()
        self._buffers()
        return self.node_index[node_id]

    def add_constant_demand(self, node: int, name: str) -> None:
        """Give 0-based ``node`` an extra demand category (base 0) on a flat pattern."""
        flat = b"__twin_flat"
        idx = ctypes.c_int()
        if self._lib.EN_getpatternindex(self._ph, flat, ctypes.byref(idx)) != 0:
            self._check(self._lib.EN_addpattern(self._ph, flat), "adding flat pattern")
        self._check(self._lib.EN_adddemand(self._ph, node + 1, 0.0, flat, name.encode()),
                    "adding demand")

    def set_demand_category(self, node: int, category: int, flow_lps: float) -> None:
        """Set base demand of category ``category`` (1-based, as EPANET counts) in L/s."""
        self._check(self._lib.EN_setbasedemand(self._ph, node + 1, category, flow_lps / self._q))

    def num_demands(self, node: int) -> int:
        n = ctypes.c_int()
        self._check(self._lib.EN_getnumdemands(self._ph, node + 1, ctypes.byref(n)))
        return n.value

    def base_demand(self, node: int, category: int) -> float:
        v = ctypes.c_double()
        self._check(self._lib.EN_getbasedemand(self._ph, node + 1, category, ctypes.byref(v)))
        return v.value * self._q

    def demand_pattern(self, node: int, category: int) -> int:
        """Pattern index (1-based; 0 = none) of a node's demand category (1-based)."""
        v = ctypes.c_int()
        self._check(self._lib.EN_getdemandpattern(self._ph, node + 1, category, ctypes.byref(v)))
        return v.value

    def pattern_values(self, index: int) -> np.ndarray:
        """The multipliers of pattern ``index`` (1-based); [1.0] for index 0 (none)."""
        if index <= 0:
            return np.ones(1)
        n = ctypes.c_int()
        self._check(self._lib.EN_getpatternlen(self._ph, index, ctypes.byref(n)))
        out = np.empty(n.value)
        v = ctypes.c_double()
        for k in range(n.value):
            self._check(self._lib.EN_getpatternvalue(self._ph, index, k + 1, ctypes.byref(v)))
            out[k] = v.value
        return out

    def set_pattern_values(self, index: int, values: np.ndarray) -> None:
        """Overwrite the multipliers of pattern ``index`` (1-based), same length."""
        n = ctypes.c_int()
        self._check(self._lib.EN_getpatternlen(self._ph, index, ctypes.byref(n)))
        if len(values) != n.value:
            raise ValueError(f"pattern {index}: {len(values)} values for a pattern of {n.value}")
        for k, v in enumerate(np.asarray(values, dtype=float)):
            self._check(self._lib.EN_setpatternvalue(self._ph, index, k + 1, float(v)),
                        f"setting pattern {index}")

    def pattern_index(self, pattern_id: str) -> int:
        """1-based index of a pattern by its id (EpanetError if unknown)."""
        v = ctypes.c_int()
        self._check(self._lib.EN_getpatternindex(self._ph, pattern_id.encode(), ctypes.byref(v)),
                    f"pattern {pattern_id!r}")
        return v.value

    def add_timer_control(self, link: int, time_s: float, setting: float) -> None:
        """``LINK <link> <setting> AT TIME <time_s>`` (0-based link; 0 closes, 1 opens
        a pump or a pipe)."""
        index = ctypes.c_int()
        self._check(self._lib.EN_addcontrol(self._ph, TIMER, link + 1, float(setting), 0,
                                            float(time_s), ctypes.byref(index)),
                    f"adding a timer control on {self.link_ids[link]}")

    def restart_hydraulics(self) -> None:
        """Back to time 0 with the current inputs (tank levels, statuses from the file's
        initial values): one open project runs many simulations in a row."""
        if not self._hyd_open:
            self.open_hydraulics()
            return
        # 10 = EN_INITFLOW: start from the file's initial flows, not the last run's, so a
        # re-run with the same inputs gives the same result (the solver's tolerance is loose)
        self._check(self._lib.EN_initH(self._ph, NOSAVE + 10), "initialise hydraulics")
        self.time_s = 0

    def save_inp(self, path: str | os.PathLike) -> None:
        """Write the project, with every value changed since loading, as an .inp file."""
        self._check(self._lib.EN_saveinpfile(self._ph, str(path).encode()), f"writing {path}")

    def link_nodes(self, link: int) -> tuple[int, int]:
        """0-based start and end node indices of 0-based ``link``."""
        a, b = ctypes.c_int(), ctypes.c_int()
        self._check(self._lib.EN_getlinknodes(self._ph, link + 1, ctypes.byref(a), ctypes.byref(b)))
        return a.value - 1, b.value - 1

    def delete_controls_on(self, links: set[int]) -> int:
        """Delete the simple controls acting on the 0-based ``links``; returns how many."""
        ctype, lidx, nidx = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        setting, level = ctypes.c_double(), ctypes.c_double()
        deleted = 0
        for i in range(self._count(CONTROLCOUNT), 0, -1):
            self._check(self._lib.EN_getcontrol(self._ph, i, ctypes.byref(ctype), ctypes.byref(lidx),
                                                ctypes.byref(setting), ctypes.byref(nidx),
                                                ctypes.byref(level)))
            if lidx.value - 1 in links:
                self._check(self._lib.EN_deletecontrol(self._ph, i), "deleting a control")
                deleted += 1
        return deleted

    # -- stepping -------------------------------------------------------------
    def open_hydraulics(self) -> None:
        self._check(self._lib.EN_openH(self._ph), "open hydraulics")
        self._hyd_open = True
        self._check(self._lib.EN_initH(self._ph, NOSAVE), "initialise hydraulics")

    def run(self) -> int:
        """Solve hydraulics at the current time; returns that time in seconds."""
        t = ctypes.c_long()
        self._check(self._lib.EN_runH(self._ph, ctypes.byref(t)), f"solving at t={self.time_s}s")
        self.time_s = int(t.value)
        return self.time_s

    def next(self) -> int:
        """Advance to the next hydraulic time; returns the step in seconds (0 at the end)."""
        dt = ctypes.c_long()
        self._check(self._lib.EN_nextH(self._ph, ctypes.byref(dt)), "advancing")
        return int(dt.value)

    # -- values (SI) ----------------------------------------------------------
    def _node_raw(self, prop: int) -> np.ndarray:
        out = self._nbuf
        if self.has_arrays:
            self._check(self._lib.EN_getnodevalues(self._ph, prop, self._nptr))
        else:
            self._check(self._read_nodes(self._ph.value, prop, out))
        return out.copy()

    def _link_raw(self, prop: int) -> np.ndarray:
        out = self._lbuf
        if self.has_arrays:
            self._check(self._lib.EN_getlinkvalues(self._ph, prop, self._lptr))
        else:
            self._check(self._read_links(self._ph.value, prop, out))
        return out.copy()

    def pressures_m(self) -> np.ndarray:
        return self._node_raw(PRESSURE) * self._p

    def heads_m(self) -> np.ndarray:
        return self._node_raw(HEAD) * self._h

    def demands_lps(self) -> np.ndarray:
        """Outflow at each node (consumer demand plus emitter flow), L/s."""
        return self._node_raw(DEMAND) * self._q

    def consumer_demands_lps(self) -> np.ndarray:
        """Consumer demand delivered, without emitter flow (EPANET 2.3 only), L/s."""
        if not self.has_arrays:
            raise NotImplementedError("consumer demand needs EPANET 2.3 (library 'owa')")
        return self._node_raw(DEMANDFLOW) * self._q

    def demand_deficits_lps(self) -> np.ndarray:
        return self._node_raw(DEMANDDEFICIT) * self._q

    def flows_lps(self) -> np.ndarray:
        return self._link_raw(FLOW) * self._q

    def link_status(self) -> np.ndarray:
        return self._link_raw(STATUS)

    def pump_energy_kw(self, links: np.ndarray | None = None) -> np.ndarray:
        """Power drawn by each link (non-zero for pumps), kW; only ``links`` if given
        (0-based indices; the others are left at 0)."""
        if links is None or self.has_arrays:
            e = self._link_raw(ENERGY)
        else:   # a few pumps: read just those
            e = np.zeros(self.n_links)
            for k in links:
                e[k] = self.link_value(int(k), ENERGY)
        return e            # EN_ENERGY is in kW whatever the flow units

    def node_value(self, node: int, prop: int) -> float:
        v = ctypes.c_double()
        self._check(self._lib.EN_getnodevalue(self._ph, node + 1, prop, ctypes.byref(v)))
        return v.value

    def link_value(self, link: int, prop: int) -> float:
        v = ctypes.c_double()
        self._check(self._lib.EN_getlinkvalue(self._ph, link + 1, prop, ctypes.byref(v)))
        return v.value

    def set_node_value(self, node: int, prop: int, value: float) -> None:
        self._check(self._lib.EN_setnodevalue(self._ph, node + 1, prop, float(value)),
                    f"setting node {self.node_ids[node]}")

    def set_link_value(self, link: int, prop: int, value: float) -> None:
        self._check(self._lib.EN_setlinkvalue(self._ph, link + 1, prop, float(value)),
                    f"setting link {self.link_ids[link]}")

    def set_emitter_si(self, node: int, coeff_m3s_per_sqrt_m: float) -> None:
        """Emitter coefficient given as Q[m3/s] = C * p[m]^0.5, converted to model units."""
        c = coeff_m3s_per_sqrt_m * 1000.0 / self._q * np.sqrt(self._p)
        self.set_node_value(node, EMITTER, c)

    def link_settings(self) -> np.ndarray:
        """Current setting of each link (pump speed, valve setting, pipe roughness)."""
        return self._link_raw(SETTING)

    # -- continuing from a saved state (before hydraulics are opened) ----------
    def shift_clock(self, offset_s: int) -> None:
        """Start patterns and the time of day ``offset_s`` later (controls stay put)."""
        self.set_time_param(PATTERNSTART, self.time_param(PATTERNSTART) + offset_s)
        self.set_time_param(STARTTIME, (self.time_param(STARTTIME) + offset_s) % 86400)

    def shift_time(self, offset_s: int) -> None:
        """Make engine time 0 correspond to ``offset_s`` of the original run."""
        if offset_s <= 0:
            return
        self.shift_clock(offset_s)
        lib, ph = self._lib, self._ph
        ctype, lidx, nidx = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        setting, level = ctypes.c_double(), ctypes.c_double()
        for i in range(1, self._count(CONTROLCOUNT) + 1):
            self._check(lib.EN_getcontrol(ph, i, ctypes.byref(ctype), ctypes.byref(lidx),
                                          ctypes.byref(setting), ctypes.byref(nidx),
                                          ctypes.byref(level)))
            if ctype.value == TIMER:   # one-shot at an elapsed time: move it, or retire it
                when = level.value - offset_s
                when = when if when >= 0 else 10 ** 9   # already happened: its effect is in
                self._check(lib.EN_setcontrol(ph, i, ctype.value, lidx.value, setting.value,
                                              nidx.value, when))   # the restored link states

    def set_tank_level_m(self, node: int, level_m: float) -> None:
        self.set_node_value(node, TANKLEVEL, level_m / self._h)

    def set_initial_link_state(self, link: int, status: int, setting: float) -> None:
        """Start ``link`` in ``status`` (0 closed, 1 open) with ``setting``."""
        kind = int(self.link_types[link])
        if kind == PUMP:
            self.set_link_value(link, INITSTATUS, 1 if status else 0)
            if status and setting > 0:
                self.set_link_value(link, INITSETTING, setting)
        elif kind in (CVPIPE, PIPE):
            if kind == PIPE:
                self.set_link_value(link, INITSTATUS, 1 if status else 0)
        elif status == 0:          # a valve closed by a control or an event stays closed
            self.set_link_value(link, INITSTATUS, 0)

    # -- controls and rules -----------------------------------------------------
    def force_link_closed(self, link: int) -> list[tuple]:
        """Suspend every simple control on 0-based ``link`` and make its rule actions close it.

        Returns what was changed, for :meth:`restore_link_controls`. Works the same on
        EPANET 2.2 and 2.3 (no enable flags needed).
        """
        lib, ph = self._lib, self._ph
        saved: list[tuple] = []
        ctype, lidx, nidx = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        setting, level = ctypes.c_double(), ctypes.c_double()
        for i in range(1, self._count(CONTROLCOUNT) + 1):
            self._check(lib.EN_getcontrol(ph, i, ctypes.byref(ctype), ctypes.byref(lidx),
                                          ctypes.byref(setting), ctypes.byref(nidx),
                                          ctypes.byref(level)))
            if lidx.value == link + 1:
                saved.append(("control", i, ctype.value, lidx.value, setting.value, nidx.value,
                              level.value))
                # out of reach while held: a timer that never falls due (a setting of 0 does
                # not close every kind of valve)
                self._check(lib.EN_setcontrol(ph, i, TIMER, lidx.value, setting.value, 0, 1e9),
                            "suspending a control")
        npre, nthen, nelse, prio = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_double()
        status = ctypes.c_int()
        for r in range(1, self._count(RULECOUNT) + 1):
            self._check(lib.EN_getrule(ph, r, ctypes.byref(npre), ctypes.byref(nthen),
                                       ctypes.byref(nelse), ctypes.byref(prio)))
            for kind, getter, setter, n in (("then", lib.EN_getthenaction, lib.EN_setthenaction,
                                             nthen.value),
                                            ("else", lib.EN_getelseaction, lib.EN_setelseaction,
                                             nelse.value)):
                for a in range(1, n + 1):
                    self._check(getter(ph, r, a, ctypes.byref(lidx), ctypes.byref(status),
                                       ctypes.byref(setting)))
                    if lidx.value == link + 1:
                        saved.append((kind, r, a, lidx.value, status.value, setting.value))
                        # EN_R_IS_CLOSED = 2; a setting of -1 means "status only"
                        self._check(setter(ph, r, a, lidx.value, 2, -1.0), "closing a rule's link")
        return saved

    def last_timed_control(self, saved: list[tuple], since_s: float, now_s: float) -> float | None:
        """Setting of the latest timer or time-of-day control among ``saved`` (as returned by
        :meth:`force_link_closed`) that fell due in (``since_s``, ``now_s``], or None."""
        start = self.time_param(STARTTIME)
        latest, setting = -math.inf, None
        for item in saved:
            if item[0] != "control":
                continue
            _, _, ctype, _, value, _, level = item
            if ctype == TIMER:
                due = level
            elif ctype == TIMEOFDAY:
                due = now_s - ((now_s + start - level) % 86400)
            else:
                continue
            if since_s <= due <= now_s and due > latest:
                latest, setting = due, value
        return setting

    def restore_link_controls(self, saved: list[tuple]) -> None:
        """Undo :meth:`force_link_closed`."""
        lib, ph = self._lib, self._ph
        for item in saved:
            if item[0] == "control":
                _, i, ctype, lidx, setting, nidx, level = item
                self._check(lib.EN_setcontrol(ph, i, ctype, lidx, setting, nidx, level))
            else:
                kind, r, a, lidx, status, setting = item
                setter = lib.EN_setthenaction if kind == "then" else lib.EN_setelseaction
                self._check(setter(ph, r, a, lidx, status, setting))

    # -- closing --------------------------------------------------------------
    def close(self) -> None:
        if self._ph:
            if self._hyd_open:
                self._lib.EN_closeH(self._ph)
                self._hyd_open = False
            if self._open:
                self._lib.EN_close(self._ph)
                self._open = False
            self._lib.EN_deleteproject(self._ph)
            self._ph = ctypes.c_void_p()

    def __enter__(self) -> "EpanetProject":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
