"""A sewer's topology as a NetworkX graph, and tracing on it.

Plain functions on a ``networkx.DiGraph`` whose edges point the way water is meant to
flow (a link's inlet node to its outlet node); subcatchments are nodes too, with an
edge to the node they drain to (attribute ``kind='subcatchment'``). Reading the
[SECTIONS] of a SWMM .inp for coordinates and conduit shapes lives here as well.
"""

from __future__ import annotations

import math
import re
from typing import Iterable

import networkx as nx


def inp_sections(text: str) -> dict[str, list[list[str]]]:
    """Rows (split on whitespace, comments dropped) of each ``[SECTION]`` of a SWMM .inp."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^\[([A-Za-z_]+)\]", line)
        if m:
            current = sections.setdefault(m.group(1).upper(), [])
            continue
        if current is not None:
            current.append(line.split())
    return sections


def node_coordinates(sections: dict[str, list[list[str]]]) -> dict[str, tuple[float, float]]:
    """Node id -> (x, y) from [COORDINATES]."""
    out = {}
    for row in sections.get("COORDINATES", []):
        if len(row) >= 3:
            try:
                out[row[0]] = (float(row[1]), float(row[2]))
            except ValueError:
                continue
    return out


def full_flow(sections: dict[str, list[list[str]]], inverts: dict[str, float],
              us_units: bool) -> dict[str, float]:
    """Manning full-pipe flow (model flow units of CFS or CMS) of the circular and
    rectangular conduits, from [CONDUITS] and [XSECTIONS]."""
    shapes = {row[0]: row[1:] for row in sections.get("XSECTIONS", []) if len(row) >= 3}
    out = {}
    k = 1.486 if us_units else 1.0
    for row in sections.get("CONDUITS", []):
        if len(row) < 5 or row[0] not in shapes:
            continue
        cid, a, b = row[0], row[1], row[2]
        try:
            length, n = float(row[3]), float(row[4])
            off1 = float(row[5]) if len(row) > 5 and row[5] != "*" else 0.0
            off2 = float(row[6]) if len(row) > 6 and row[6] != "*" else 0.0
            shape, g1 = shapes[cid][0].upper(), float(shapes[cid][1])
            g2 = float(shapes[cid][2]) if len(shapes[cid]) > 2 else 0.0
        except ValueError:
            continue
        if shape == "CIRCULAR" or shape == "FORCE_MAIN":
            area, radius = math.pi * g1 ** 2 / 4, g1 / 4
        elif shape in ("RECT_CLOSED", "RECT_OPEN") and g2 > 0:
            area, radius = g1 * g2, g1 * g2 / (2 * g1 + 2 * g2)
        else:
            continue
        drop = (inverts.get(a, 0.0) + off1) - (inverts.get(b, 0.0) + off2)
        slope = max(abs(drop) / length if length > 0 else 0.0, 1e-4)
        out[cid] = k / n * area * radius ** (2 / 3) * math.sqrt(slope)
    return out


def sewer_graph(link_ends: dict[str, tuple[str, str]], link_types: dict[str, str] | None = None,
                subcatchment_outlets: dict[str, str] | None = None) -> nx.DiGraph:
    """Directed graph: nodes, links as edges inlet -> outlet, subcatchments -> their outlet."""
    g = nx.DiGraph()
    for link, (a, b) in link_ends.items():
        g.add_edge(a, b, link_id=link, kind=(link_types or {}).get(link, "link"))
    for sub, node in (subcatchment_outlets or {}).items():
        g.add_node(sub, kind="subcatchment")
        g.add_edge(sub, node, link_id=None, kind="subcatchment")
    return g


def upstream(graph: nx.DiGraph, node: str) -> set[str]:
    """Every node and subcatchment whose water can reach ``node`` (itself excluded)."""
    if node not in graph:
        raise KeyError(f"unknown sewer node {node!r}")
    return nx.ancestors(graph, node)


def catchments_draining_to(graph: nx.DiGraph, node: str) -> list[str]:
    """The subcatchments upstream of ``node`` (e.g. those feeding an overflow)."""
    return sorted(n for n in upstream(graph, node) if graph.nodes[n].get("kind") == "subcatchment")


def links_between(graph: nx.DiGraph, nodes: Iterable[str]) -> list[str]:
    """Links of the graph whose two ends are among ``nodes``."""
    keep = set(nodes)
    return [d["link_id"] for a, b, d in graph.edges(data=True)
            if a in keep and b in keep and d.get("link_id")]
