"""Real-time control of a sewer: the strategy interface and three strategies.

Each control step the layer hands a strategy a :class:`SewerState` (depths, fills,
volumes, flows read from SWMM now) and applies the settings it returns (pumps,
orifices, weirs: 0 closed .. 1 fully open). The strategies steer storage tanks
emptied through gates (orifices) into an interceptor that ends at a node with a
limited capacity downstream (a pumping station, a treatment plant):

* :class:`Uncontrolled`: the settings written in the model, never changed (baseline);
* :class:`RuleBased`: throttle every gate to its share of the downstream capacity when
  the downstream node fills past ``high_fill``, open them again below ``low_fill``,
  open a gate whose tank is about to overflow;
* :class:`EqualFilling`: every step, let through exactly what the downstream capacity
  allows, split so that all tanks reach the same relative filling (a mass balance over
  the next step), which uses all storage before any one tank spills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from swmm.toolkit import shared_enum as se

from twin.errors import BadInput

G = 9.81


@dataclass
class ControlLayout:
    """What the tank strategies steer, in the model's units (flows in its flow units).

    gates: gate (orifice) id -> id of the storage node it empties.
    downstream_node: the node whose filling the rules watch (wet well, CSO chamber).
    capacity: the flow the downstream system passes on (pump or plant capacity).
    tank_volume: storage node -> volume when full (model volume units); if missing, the
        strategy takes it from the layer's reading of the model's [STORAGE] section.
    gate_area / gate_cd: orifice opening area (model length units squared) and discharge
        coefficient, to turn a wanted flow into a setting.
    """

    gates: dict[str, str]
    downstream_node: str
    capacity: float
    tank_volume: dict[str, float] = field(default_factory=dict)
    gate_area: dict[str, float] = field(default_factory=dict)
    gate_cd: dict[str, float] = field(default_factory=dict)
    flow_per_m3s: float = 1000.0          # model flow units in one m3/s (LPS: 1000)
    length_per_m: float = 1.0             # model length units in one metre

    def check(self, node_ids: set[str], link_ids: set[str], where: str = "strategy") -> None:
        """Raise :class:`BadInput` naming the first id the model does not have."""
        for gate, tank in self.gates.items():
            if gate not in link_ids:
                raise BadInput(f"{where}: unknown actuator {gate!r}: no such orifice, weir or "
                               f"pump in the sewer model ({len(link_ids)} links)")
            if tank not in node_ids:
                raise BadInput(f"{where}: gate {gate!r} empties unknown storage node {tank!r}")
        if self.downstream_node not in node_ids:
            raise BadInput(f"{where}: unknown downstream node {self.downstream_node!r}")
        if not self.capacity > 0:
            raise BadInput(f"{where}: the downstream capacity must be > 0, got {self.capacity}")


class SewerState:
    """The sewer now, as a strategy sees it (values in the model's units)."""

    def __init__(self, run: Any, time_s: float, step_s: float) -> None:
        self.run, self.time_s, self.step_s = run, time_s, step_s

    def depth(self, node_id: str) -> float:
        return self.run.node_values(se.NodeResult.DEPTH, [self.run.node_index[node_id]])[0]

    def fill(self, node_id: str) -> float:
        i = self.run.node_index[node_id]
        full = self.run.full_depth[i]
        return self.depth(node_id) / full if full > 0 else 0.0

    def volume(self, node_id: str) -> float:
        return self.run.node_values(se.NodeResult.VOLUME, [self.run.node_index[node_id]])[0]

    def inflow(self, node_id: str) -> float:
        return self.run.node_values(se.NodeResult.TOTAL_INFLOW, [self.run.node_index[node_id]])[0]

    def flow(self, link_id: str) -> float:
        return self.run.link_values(se.LinkResult.FLOW, [self.run.link_index[link_id]])[0]


class Strategy(Protocol):
    """Reads the state each control step and returns actuator settings (id -> 0..1)."""

    name: str

    def actuators(self) -> list[str]:
        """The link ids this strategy sets (checked against the model before the run)."""
        ...

    def act(self, state: SewerState) -> dict[str, float]:
        ...


class Uncontrolled:
    """The baseline: the model's own settings and control rules, nothing changed."""

    name = "uncontrolled"

    def actuators(self) -> list[str]:
        return []

    def act(self, state: SewerState) -> dict[str, float]:
        return {}


class _TankStrategy:
    name = "tanks"

    def __init__(self, layout: ControlLayout) -> None:
        self.layout = layout
        self.settings = {g: 1.0 for g in layout.gates}

    def actuators(self) -> list[str]:
        return list(self.layout.gates)

    def _gate_full_flow(self, state: SewerState, gate: str) -> float:
        """Flow through ``gate`` fully open under its tank's current depth (model units)."""
        lay = self.layout
        tank = lay.gates[gate]
        head_m = max(state.depth(tank) / lay.length_per_m, 0.0)
        area_m2 = lay.gate_area.get(gate, 0.0) / lay.length_per_m ** 2
        q = lay.gate_cd.get(gate, 0.65) * area_m2 * math.sqrt(2 * G * max(head_m, 0.05))
        return q * lay.flow_per_m3s

    def _setting_for(self, state: SewerState, gate: str, flow: float) -> float:
        full = self._gate_full_flow(state, gate)
        return float(np.clip(flow / full, 0.0, 1.0)) if full > 0 else 1.0


class RuleBased(_TankStrategy):
    """Throttle gates to their share of the capacity while the downstream node is high."""

    name = "rule_based"

    def __init__(self, layout: ControlLayout, high_fill: float = 0.5, low_fill: float = 0.2,
                 tank_full: float = 0.95) -> None:
        super().__init__(layout)
        self.high_fill, self.low_fill, self.tank_full = high_fill, low_fill, tank_full
        self.throttled = False

    def act(self, state: SewerState) -> dict[str, float]:
        lay = self.layout
        fill = state.fill(lay.downstream_node)
        if fill >= self.high_fill:
            self.throttled = True
        elif fill <= self.low_fill:
            self.throttled = False
        total = sum(lay.tank_volume.get(t, 1.0) for t in lay.gates.values())
        for gate, tank in lay.gates.items():
            if not self.throttled or state.fill(tank) >= self.tank_full:
                self.settings[gate] = 1.0
            else:
                share = lay.tank_volume.get(tank, 1.0) / total
                self.settings[gate] = self._setting_for(state, gate, share * lay.capacity)
        return dict(self.settings)


class EqualFilling(_TankStrategy):
    """Pass what the capacity allows, so that all tanks fill to the same fraction."""

    name = "equal_filling"

    def __init__(self, layout: ControlLayout, margin: float = 0.95,
                 downstream_high_fill: float = 0.7) -> None:
        super().__init__(layout)
        self.margin, self.downstream_high_fill = margin, downstream_high_fill

    def act(self, state: SewerState) -> dict[str, float]:
        lay = self.layout
        dt = max(state.step_s, 1.0)
        gates = list(lay.gates)
        tanks = [lay.gates[g] for g in gates]
        vmax = np.array([max(lay.tank_volume.get(t, 0.0), 1e-9) for t in tanks])
        vol = np.array([state.volume(t) for t in tanks])
        inflow = np.array([state.inflow(t) for t in tanks]) / lay.flow_per_m3s   # m3/s
        vol_m3 = vol / lay.length_per_m ** 3
        vmax_m3 = vmax / lay.length_per_m ** 3
        capacity = lay.capacity * self.margin / lay.flow_per_m3s
        down = state.fill(lay.downstream_node)
        if down > self.downstream_high_fill:      # the station is backing up: hold more
            capacity *= max(0.0, 1.0 - (down - self.downstream_high_fill) /
                            (1.0 - self.downstream_high_fill))
        target = (vol_m3.sum() + (inflow.sum() - capacity) * dt) / vmax_m3.sum()
        target = float(np.clip(target, 0.0, 1.0))
        wanted = np.clip(inflow + (vol_m3 - target * vmax_m3) / dt, 0.0, None)
        if target >= 1.0:                          # all full: let everything through
            wanted[:] = np.inf
        for gate, q in zip(gates, wanted):
            self.settings[gate] = 1.0 if not np.isfinite(q) else \
                self._setting_for(state, gate, q * lay.flow_per_m3s)
        return dict(self.settings)


STRATEGIES = {"uncontrolled": Uncontrolled, "rule_based": RuleBased,
              "equal_filling": EqualFilling}


def make_strategy(name: str, layout: ControlLayout | None) -> Strategy:
    """A strategy by name (``uncontrolled``, ``rule_based``, ``equal_filling``)."""
    if name not in STRATEGIES:
        raise BadInput(f"unknown sewer control strategy {name!r}: expected one of "
                       f"{', '.join(STRATEGIES)}")
    if name == "uncontrolled":
        return Uncontrolled()
    if layout is None:
        raise BadInput(f"strategy {name!r} needs a control layout (gates, tanks, downstream "
                       "node, capacity); the generated demo sewer has one")
    return STRATEGIES[name](layout)
