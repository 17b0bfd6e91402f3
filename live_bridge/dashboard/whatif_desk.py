"""What-if for the dashboard: fork the water network at the live time, rank candidates.

The live state is the network (an EPANET file) run from the shadow twin's start to the
newest solved step, with the leak an alert points at put in at the alert's time (an
orifice giving the alert's estimated flow at the pressure the twin saw there). The
candidates are those of a candidates file, plus, for a leak alert on a pipe, closing
that pipe. Ranking and the approval gate are :mod:`live_bridge.whatif` and
:mod:`live_bridge.approval`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from live_bridge.whatif import (DEFAULT_HORIZON_S, Action, Candidate, WhatIfError,
                                load_candidates, run_whatif)

DISCHARGE_COEFF = 0.75
GRAVITY = 9.81


@dataclass(frozen=True)
class SuspectedLeak:
    """A leak an alert points at: on ``pipe``, since ``start_s`` (UTC epoch s)."""

    pipe: str
    start_s: float
    flow_m3h: float
    head_m: float = 40.0           # the pressure the leak is assumed to run under

    @property
    def area_m2(self) -> float:
        """The orifice giving ``flow_m3h`` at ``head_m`` (Q = Cd A sqrt(2 g h))."""
        return (self.flow_m3h / 3600.0) / (DISCHARGE_COEFF * math.sqrt(2 * GRAVITY * self.head_m))


class WhatIfDesk:
    """Runs what-ifs on ``inp`` (see module doc)."""

    def __init__(self, inp: str | Path, candidates_file: str | Path | None = None,
                 horizon_s: float | None = None) -> None:
        self.inp = str(inp)
        self.candidates: list[Candidate] = []
        file_horizon = None
        if candidates_file is not None:
            self.candidates, file_horizon = load_candidates(candidates_file)
        self.horizon_s = float(horizon_s or file_horizon or DEFAULT_HORIZON_S)

    def candidates_for(self, leak: SuspectedLeak | None) -> list[Candidate]:
        """The file's candidates, plus closing the suspected pipe."""
        out = list(self.candidates)
        if leak is not None and not any(c.name == f"close_{leak.pipe}" for c in out):
            out.append(Candidate(f"close_{leak.pipe}", (Action("water", "close", leak.pipe),),
                                 f"close pipe {leak.pipe}, where the leak is suspected"))
        return out

    def run(self, start: dt.datetime, now_s: float, leak: SuspectedLeak | None = None,
            horizon_s: float | None = None):
        """Rank the candidates on forks taken ``now_s`` (UTC epoch s) of a network started
        at ``start`` (UTC, naive); a :class:`live_bridge.whatif.WhatIfResult`."""
        from twin.events import PipeBurst
        from twin.networks.water import WaterLayer
        from twin.twin import Twin

        candidates = self.candidates_for(leak)
        if not candidates:
            raise WhatIfError("no candidate actions: start the dashboard with --candidates "
                              "FILE, or run the what-if on a leak alert")
        start_s = start.replace(tzinfo=dt.timezone.utc).timestamp()
        at_s = max(now_s - start_s, 0.0)
        offset = start.hour * 3600 + start.minute * 60 + start.second
        live = Twin(start=start, seed=0)
        # the suspected pipe is split at its middle, so the leak sits on the pipe (closing it
        # isolates the leak) rather than on its nearer end node
        planned = [(leak.pipe, 0.5)] if leak is not None else []
        live.add_layer(WaterLayer(self.inp, horizon_s=max(at_s, 1.0), clock_offset_s=offset,
                                  planned_bursts=planned))
        if leak is not None and leak.start_s - start_s < at_s:
            live.schedule([PipeBurst(time_s=max(leak.start_s - start_s, 0.0), source="dashboard",
                                     pipe_id=leak.pipe, leak_area_m2=leak.area_m2)])
        try:
            live.run(at_s)
            return run_whatif(live, candidates, horizon_s=horizon_s or self.horizon_s)
        finally:
            live.close()
