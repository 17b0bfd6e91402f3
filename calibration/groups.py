"""Named groups of model elements, defined by rules in the calibration file.

A rule is a mapping with one key:

* ``pipes: all`` or ``pipes: {diameter_mm: [lo, hi], ids: [...], match: REGEX}`` — pipes
  whose diameter is in ``[lo, hi)``, listed, or whose id matches (conditions combine);
* ``nodes: all`` or ``nodes: {ids: [...], match: REGEX}`` — junctions; ``nodes: {zone_of:
  NODE, boundary: [LINK, ...]}`` — the junctions connected to NODE once the boundary links
  (a pump, the valves into a pressure zone) are cut: a district metered area;
* ``pattern: ID`` — a demand pattern (its multipliers are scaled);
* ``links: all`` or ``links: {ids: [...], capacity_veh_h: [lo, hi]}`` — road links.

An empty group is an error naming the group: a parameter acting on nothing cannot be fitted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.engines.epanet import DIAMETER, JUNCTION, PIPE, CVPIPE, EpanetProject
from twin.errors import BadInput


@dataclass(frozen=True)
class Group:
    name: str
    kind: str                 # 'links', 'nodes', 'pattern' or 'road_links'
    index: np.ndarray         # 0-based element indices (pattern: its 1-based index)


def _select(ids: list[str], rule: Any, name: str, extra: np.ndarray | None = None) -> np.ndarray:
    keep = np.ones(len(ids), dtype=bool) if extra is None else extra.copy()
    if rule in ("all", None):
        return np.flatnonzero(keep)
    if not isinstance(rule, dict):
        raise BadInput(f"group {name!r}: expected `all` or a mapping of conditions, got {rule!r}")
    unknown = set(rule) - {"ids", "match", "diameter_mm", "capacity_veh_h", "zone_of", "boundary"}
    if unknown:
        raise BadInput(f"group {name!r}: unknown condition(s) {sorted(unknown)}; expected ids, "
                       "match, diameter_mm or capacity_veh_h")
    if "ids" in rule:
        wanted = {str(i) for i in rule["ids"]}
        missing = sorted(wanted - set(ids))
        if missing:
            raise BadInput(f"group {name!r}: id(s) not in the model: {', '.join(missing[:10])}")
        keep &= np.array([i in wanted for i in ids])
    if "match" in rule:
        try:
            pattern = re.compile(str(rule["match"]))
        except re.error as exc:
            raise BadInput(f"group {name!r}: match: not a regular expression: {exc}") from None
        keep &= np.array([bool(pattern.fullmatch(i)) for i in ids])
    return np.flatnonzero(keep)


def _range(rule: dict, key: str, name: str) -> tuple[float, float]:
    value = rule[key]
    if not (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) for v in value) and value[0] < value[1]):
        raise BadInput(f"group {name!r}: {key}: expected [low, high] with low < high, got {value!r}")
    return float(value[0]), float(value[1])


def _zone(project: EpanetProject, name: str, rule: dict[str, Any]) -> np.ndarray:
    """Nodes connected to ``rule['zone_of']`` without crossing ``rule['boundary']`` links."""
    import networkx as nx

    start = str(rule["zone_of"])
    if start not in project.node_index:
        raise BadInput(f"group {name!r}: zone_of: no node {start!r} in the model")
    boundary = [str(b) for b in rule.get("boundary", [])]
    missing = [b for b in boundary if b not in project.link_index]
    if missing:
        raise BadInput(f"group {name!r}: boundary: no link(s) {', '.join(missing)} in the model")
    cut = {project.link_index[b] for b in boundary}
    graph = nx.Graph()
    graph.add_nodes_from(range(project.n_nodes))
    graph.add_edges_from(project.link_nodes(i) for i in range(project.n_links) if i not in cut)
    inside = np.zeros(project.n_nodes, dtype=bool)
    inside[list(nx.node_connected_component(graph, project.node_index[start]))] = True
    return inside


def water_group(project: EpanetProject, name: str, rule: dict[str, Any]) -> Group:
    """Resolve one rule on an open EPANET project."""
    if not isinstance(rule, dict) or len(rule) != 1:
        raise BadInput(f"group {name!r}: expected one of pipes:, nodes: or pattern:, got {rule!r}")
    (key, value), = rule.items()
    if key == "pattern":
        try:
            return Group(name, "pattern", np.array([project.pattern_index(str(value))]))
        except Exception:
            raise BadInput(f"group {name!r}: no demand pattern {value!r} in the model") from None
    if key == "pipes":
        pipes = np.isin(project.link_types, (PIPE, CVPIPE))
        if isinstance(value, dict) and "diameter_mm" in value:
            lo, hi = _range(value, "diameter_mm", name)
            to_mm = 25.4 if project.flow_units <= 4 else 1.0
            d = np.array([project.link_value(i, DIAMETER) * to_mm for i in range(project.n_links)])
            pipes &= (d >= lo) & (d < hi)
        index = _select(project.link_ids, value, name, pipes)
        kind = "links"
    elif key == "nodes":
        junctions = project.node_types == JUNCTION
        if isinstance(value, dict) and "zone_of" in value:
            junctions &= _zone(project, name, value)
            value = {k: v for k, v in value.items() if k not in ("zone_of", "boundary")} or "all"
        index = _select(project.node_ids, value, name, junctions)
        kind = "nodes"
    else:
        raise BadInput(f"group {name!r}: unknown rule {key!r}; expected pipes, nodes or pattern")
    if index.size == 0:
        raise BadInput(f"group {name!r}: the rule {rule!r} selects no element of the model")
    return Group(name, kind, index)


def road_group(network, name: str, rule: dict[str, Any]) -> Group:
    """Resolve a ``links:`` rule on a :class:`~twin.networks.road.RoadNetwork`; link ids
    are ``"A-B"`` (init and term node)."""
    if not isinstance(rule, dict) or set(rule) != {"links"}:
        raise BadInput(f"group {name!r}: a traffic model's group is `links: all` or "
                       f"`links: {{ids: [...], capacity_veh_h: [lo, hi]}}`, got {rule!r}")
    value = rule["links"]
    links = network.links
    ids = [f"{a}-{b}" for a, b in zip(links["init_node"], links["term_node"])]
    keep = np.ones(len(ids), dtype=bool)
    if isinstance(value, dict) and "capacity_veh_h" in value:
        lo, hi = _range(value, "capacity_veh_h", name)
        cap = links["capacity_veh_h"].to_numpy(dtype=float)
        keep &= (cap >= lo) & (cap < hi)
    index = _select(ids, value, name, keep)
    if index.size == 0:
        raise BadInput(f"group {name!r}: the rule {rule!r} selects no link of the network")
    return Group(name, "road_links", index)
