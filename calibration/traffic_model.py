"""A traffic model that maps BPR parameters to equilibrium link flows at counted links.

The network and demand come from a TNTP folder; each evaluation solves the static user
equilibrium (``twin.engines.assignment``) to the file's ``model.gap``, warm-started from
the previous solution. ``bpr_alpha`` / ``bpr_beta`` parameters are multipliers of the
file's alpha / beta on a group of links. Sensors are links ``"A-B"`` with ``link_count``
in veh/h; the result has one row, at ``model.start``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from calibration.config import CalibrationSpec
from calibration.groups import Group, road_group
from twin.engines.assignment import assign
from twin.errors import BadInput
from twin.networks.tntp import find_files, read_net, read_trips


class TrafficModel:
    output_name = "calibrated_net.csv"

    def __init__(self, spec: CalibrationSpec) -> None:
        files = find_files(spec.model.tntp)
        self.network = read_net(files["net"])
        self.demand = read_trips(files["trips"], zones=self.network.zones)
        self.gap = spec.model.gap
        self.start = pd.Timestamp(spec.model.start)
        self.parameters = list(spec.parameters)
        self.groups: dict[str, Group] = {name: road_group(self.network, name, rule)
                                         for name, rule in spec.groups.items()}
        links = self.network.links
        ids = {f"{a}-{b}": i for i, (a, b) in enumerate(zip(links["init_node"], links["term_node"]))}
        self.sensor_ids = [s.id for s in spec.sensors]
        self.sensor_links = []
        for s in spec.sensors:
            if s.quantity != "link_count":
                raise BadInput(f"sensor {s.id!r}: a traffic model measures link_count, "
                               f"not {s.quantity}")
            element = s.element or s.id
            if element not in ids:
                raise BadInput(f"sensor {s.id!r}: no link {element!r} (ids are 'A-B') in "
                               f"{files['net'].name}")
            self.sensor_links.append(ids[element])
        for par in self.parameters:
            if par.kind not in ("bpr_alpha", "bpr_beta"):
                raise BadInput(f"parameter {par.name!r}: a traffic model fits bpr_alpha or "
                               f"bpr_beta, not {par.kind}")
        self._alpha = links["alpha"].to_numpy(dtype=float).copy()
        self._beta = links["beta"].to_numpy(dtype=float).copy()
        self._last = None

    def _group(self, name: str) -> np.ndarray:
        if name == "all":
            return np.arange(len(self.network.links))
        return self.groups[name].index

    def network_for(self, x: np.ndarray):
        alpha, beta = self._alpha.copy(), self._beta.copy()
        for par, value in zip(self.parameters, np.asarray(x, dtype=float)):
            target = alpha if par.kind == "bpr_alpha" else beta
            target[self._group(par.group)] *= value
        net = self.network
        links = net.links.copy()
        links["alpha"], links["beta"] = alpha, beta
        return type(net)(links=links, nodes=net.nodes, zone_nodes=net.zone_nodes, name=net.name,
                         length_unit=net.length_unit, first_thru_node=net.first_thru_node,
                         meta=net.meta)

    def simulate(self, x: np.ndarray) -> pd.DataFrame:
        result = assign(self.network_for(x), self.demand, gap=self.gap, max_iterations=5000,
                        warm_start=self._last)
        self._last = result
        flows = np.asarray(result.link_flow_veh_h)[self.sensor_links]
        return pd.DataFrame([flows], index=pd.DatetimeIndex([self.start]),
                            columns=self.sensor_ids)

    def save(self, x: np.ndarray, path) -> None:
        """The calibrated links (init, term, capacity, free-flow time, alpha, beta) as CSV."""
        net = self.network_for(x)
        net.links[["init_node", "term_node", "capacity_veh_h", "free_flow_time_min", "alpha",
                   "beta"]].to_csv(path, index=False)
