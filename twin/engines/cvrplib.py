"""CVRPLIB (TSPLIB/VRPLIB) instance and solution files: read with checks, write.

Our own reader rather than ``vrplib.read_instance`` (which pyvrp uses): that one
turns a malformed file into a bare ``ValueError``/``IndexError`` deep inside numpy,
or silently into a wrong instance (a short DEMAND_SECTION leaves a zero demand).
Here every problem is a :class:`~twin.errors.BadInput` naming the file, the line,
the section and what was expected. Distances follow TSPLIB: EUC_2D is the
Euclidean distance rounded to the nearest integer (``nint``, half up), CEIL_2D
rounds up, ATT is the pseudo-Euclidean distance, EXPLICIT reads the matrix
(FULL_MATRIX, LOWER_ROW, UPPER_ROW, LOWER_DIAG_ROW, UPPER_DIAG_ROW).

Node ids in a ``.vrp`` file are 1..n; a CVRPLIB ``.sol`` numbers the customers by
their 0-based position with the depot at 0 (node id - 1 when the depot is node 1),
and so does :func:`write_solution`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from twin.errors import BadInput

DISTANCE_TYPES = ("EUC_2D", "CEIL_2D", "ATT", "EXPLICIT")
MATRIX_FORMATS = ("FULL_MATRIX", "LOWER_ROW", "UPPER_ROW", "LOWER_DIAG_ROW", "UPPER_DIAG_ROW")
_SECTIONS = ("NODE_COORD_SECTION", "DEMAND_SECTION", "DEPOT_SECTION", "EDGE_WEIGHT_SECTION",
             "DISPLAY_DATA_SECTION")
_INT_KEYS = ("DIMENSION", "CAPACITY", "VEHICLES")
_NUMBER_KEYS = ("DISTANCE", "SERVICE_TIME")
_TEXT_KEYS = ("NAME", "COMMENT", "TYPE", "EDGE_WEIGHT_TYPE", "EDGE_WEIGHT_FORMAT",
              "NODE_COORD_TYPE", "DISPLAY_DATA_TYPE")


@dataclass
class CvrpInstance:
    """A capacitated VRP: node 0..n-1 in file order, one depot, integer distances."""

    name: str
    capacity: int
    demand: np.ndarray                 # per node (int64); the depot's is 0
    distance: np.ndarray               # n x n int64, zero diagonal
    depot: int = 0                     # 0-based position of the depot
    coords: np.ndarray | None = None   # n x 2, when the file has them
    edge_weight_type: str = "EUC_2D"
    vehicles: int | None = None        # fleet size when the file fixes it
    max_distance: float | None = None  # DISTANCE: longest route allowed
    service_time: float = 0.0
    comment: str = ""
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def dimension(self) -> int:
        return len(self.demand)

    @property
    def customers(self) -> np.ndarray:
        """0-based positions of the customers (every node but the depot)."""
        return np.array([i for i in range(self.dimension) if i != self.depot], dtype=int)

    def route_cost(self, routes: Sequence[Sequence[int]]) -> int:
        """Total distance of ``routes`` (lists of 0-based node positions, depot implied)."""
        total = 0
        for route in routes:
            path = [self.depot, *route, self.depot]
            total += int(sum(self.distance[a, b] for a, b in zip(path[:-1], path[1:])))
        return total

    def check_routes(self, routes: Sequence[Sequence[int]]) -> list[str]:
        """Problems of ``routes`` as a solution: customers missed or repeated, overloads."""
        problems = []
        seen = [c for r in routes for c in r]
        wanted = set(self.customers.tolist())
        if sorted(seen) != sorted(wanted):
            missing = sorted(wanted - set(seen))[:5]
            twice = sorted({c for c in seen if seen.count(c) > 1})[:5]
            extra = sorted(set(seen) - wanted)[:5]
            problems.append(f"customers missing {missing}, repeated {twice}, unknown {extra}")
        for k, r in enumerate(routes):
            load = int(self.demand[list(r)].sum()) if len(r) else 0
            if load > self.capacity:
                problems.append(f"route {k + 1} carries {load} > capacity {self.capacity}")
        if self.vehicles is not None and len([r for r in routes if r]) > self.vehicles:
            problems.append(f"{len(routes)} routes > {self.vehicles} vehicles")
        return problems


class _Lines:
    """The file's lines with their numbers, for located error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text(encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise BadInput(f"{path}: not a text file (expected a CVRPLIB .vrp instance)") from None
        self.rows = [(i + 1, line.strip()) for i, line in enumerate(text.splitlines())]

    def fail(self, line: int | None, section: str | None, expected: str, got: str) -> BadInput:
        where = f"{self.path}" + (f", line {line}" if line else "")
        where += f" ({section})" if section else ""
        return BadInput(f"{where}: expected {expected}, got {got}")


def _number(lines: _Lines, line: int, section: str, token: str, what: str,
            integer: bool = False) -> float:
    try:
        value = float(token)
    except ValueError:
        raise lines.fail(line, section, what, repr(token)) from None
    if not math.isfinite(value) or (integer and value != int(value)):
        raise lines.fail(line, section, what, repr(token))
    return value


def read_instance(path: str | Path) -> CvrpInstance:
    """Read a CVRPLIB ``.vrp`` file; raise :class:`BadInput` naming line and section."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such instance file (expected a CVRPLIB .vrp file)")
    lines = _Lines(path)
    header: dict[str, str] = {}
    header_line: dict[str, int] = {}
    sections: dict[str, list[tuple[int, list[str]]]] = {}
    section_line: dict[str, int] = {}
    current: str | None = None
    for number, text in lines.rows:
        if not text:
            continue
        upper = text.upper()
        if upper == "EOF":
            break
        word = upper.split()[0].rstrip(":")
        if word in _SECTIONS:
            if word in sections:
                raise lines.fail(number, word, "each section once",
                                 f"a second {word} (first on line {section_line[word]})")
            current = word
            sections[word] = []
            section_line[word] = number
            rest = text.split(None, 1)[1:] if ":" not in text else []
            if rest:      # numbers on the section's own line
                sections[word].append((number, rest[0].split()))
            continue
        key_part, colon, value = text.partition(":")
        key = key_part.strip().upper()
        if colon and key in (*_INT_KEYS, *_NUMBER_KEYS, *_TEXT_KEYS):
            header[key] = value.strip().strip('"').strip()
            header_line[key] = number
            current = None
            continue
        if current is None:
            if colon and key.replace("_", "").isalpha():
                continue    # an unused specification key (TSPLIB has a few more)
            raise lines.fail(number, None, f"a `KEY : value` line or a section "
                             f"({', '.join(_SECTIONS[:3])}, ...)", repr(text[:60]))
        sections[current].append((number, text.split()))
    return _build(lines, header, header_line, sections, section_line)


def _build(lines: _Lines, header: dict[str, str], header_line: dict[str, int],
           sections: dict[str, list[tuple[int, list[str]]]],
           section_line: dict[str, int]) -> CvrpInstance:
    for key in ("DIMENSION", "CAPACITY"):
        if key not in header:
            raise lines.fail(None, "specification", f"a `{key} : <integer>` line", "none")
    ints = {}
    for key in _INT_KEYS:
        if key in header:
            value = _number(lines, header_line[key], "specification", header[key],
                            f"{key} as a whole number >= 1", integer=True)
            if value < 1:
                raise lines.fail(header_line[key], "specification",
                                 f"{key} as a whole number >= 1", repr(header[key]))
            ints[key] = int(value)
    n, capacity = ints["DIMENSION"], ints["CAPACITY"]
    if n < 2:
        raise lines.fail(header_line["DIMENSION"], "specification",
                         "DIMENSION >= 2 (a depot and a customer)", str(n))
    kind = header.get("TYPE", "CVRP").upper()
    if kind not in ("CVRP", "DCVRP"):
        raise lines.fail(header_line.get("TYPE"), "specification", "TYPE : CVRP", repr(kind))
    ewt = header.get("EDGE_WEIGHT_TYPE", "").upper()
    if ewt not in DISTANCE_TYPES:
        raise lines.fail(header_line.get("EDGE_WEIGHT_TYPE"), "specification",
                         f"EDGE_WEIGHT_TYPE one of {', '.join(DISTANCE_TYPES)}",
                         repr(header.get("EDGE_WEIGHT_TYPE", "none")))
    coords = None
    if "NODE_COORD_SECTION" in sections:
        coords, _ = _node_rows(lines, sections["NODE_COORD_SECTION"], section_line, n, 2,
                               "NODE_COORD_SECTION", "`id x y` (three numbers)")
    demand, demand_line = _node_rows(lines, sections.get("DEMAND_SECTION"), section_line, n, 1,
                                     "DEMAND_SECTION", "`id demand` (two whole numbers)")
    demand = demand[:, 0]
    depot = _depot(lines, sections.get("DEPOT_SECTION"), section_line, n)
    for i, d in enumerate(demand):
        if d < 0 or d != int(d):
            raise lines.fail(demand_line[i], "DEMAND_SECTION", "a whole demand >= 0",
                             f"{d:g} for node {i + 1}")
        if d > capacity:
            raise lines.fail(demand_line[i], "DEMAND_SECTION",
                             f"a demand <= CAPACITY {capacity} (no vehicle could serve it)",
                             f"{d:g} for node {i + 1}")
    if demand[depot] != 0:
        raise lines.fail(demand_line[depot], "DEMAND_SECTION",
                         f"demand 0 at the depot (node {depot + 1})", f"{demand[depot]:g}")
    if ewt == "EXPLICIT":
        distance = _explicit(lines, header, header_line, sections, section_line, n)
    else:
        if coords is None:
            raise lines.fail(header_line.get("EDGE_WEIGHT_TYPE"), "specification",
                             f"a NODE_COORD_SECTION for EDGE_WEIGHT_TYPE {ewt}", "none")
        distance = coordinate_distances(coords, ewt)
    extra = {}
    for key in _NUMBER_KEYS:
        if key in header:
            value = _number(lines, header_line[key], "specification", header[key],
                            f"{key} as a number >= 0")
            if value < 0:
                raise lines.fail(header_line[key], "specification", f"{key} >= 0", header[key])
            extra[key] = value
    return CvrpInstance(
        name=header.get("NAME", lines.path.stem) or lines.path.stem, capacity=capacity,
        demand=demand.astype(np.int64), distance=distance, depot=depot, coords=coords,
        edge_weight_type=ewt, vehicles=ints.get("VEHICLES"), max_distance=extra.get("DISTANCE"),
        service_time=extra.get("SERVICE_TIME", 0.0), comment=header.get("COMMENT", ""),
        source=str(lines.path))


def _node_rows(lines: _Lines, rows: list[tuple[int, list[str]]] | None,
               section_line: dict[str, int], n: int, width: int, section: str,
               shape: str) -> tuple[np.ndarray, list[int]]:
    """``id v1 .. v_width`` rows for nodes 1..n, each exactly once; and each node's line."""
    if rows is None:
        raise lines.fail(None, section, f"a {section} with {n} rows {shape}", "no such section")
    values = np.full((n, width), np.nan)
    line_of = [0] * n
    for number, tokens in rows:
        if len(tokens) != width + 1:
            raise lines.fail(number, section, shape, repr(" ".join(tokens)))
        node = _number(lines, number, section, tokens[0], f"a node id 1..{n}", integer=True)
        if not 1 <= node <= n:
            raise lines.fail(number, section, f"a node id 1..{n} (DIMENSION)", tokens[0])
        k = int(node) - 1
        if not np.isnan(values[k, 0]):
            raise lines.fail(number, section, "each node once", f"node {k + 1} again")
        values[k] = [_number(lines, number, section, t, shape) for t in tokens[1:]]
        line_of[k] = number
    missing = np.flatnonzero(np.isnan(values[:, 0]))
    if len(missing):
        raise lines.fail(section_line[section], section, f"{n} rows (DIMENSION), one per node",
                         f"{n - len(missing)} rows; node {missing[0] + 1} is missing")
    return values, line_of


def _depot(lines: _Lines, rows: list[tuple[int, list[str]]] | None,
           section_line: dict[str, int], n: int) -> int:
    if not rows:
        return 0         # TSPLIB's default: node 1
    ids = []
    for number, tokens in rows:
        for t in tokens:
            value = _number(lines, number, "DEPOT_SECTION", t, "a node id, then -1", integer=True)
            if value == -1:
                break
            if not 1 <= value <= n:
                raise lines.fail(number, "DEPOT_SECTION", f"a node id 1..{n}", t)
            ids.append((number, int(value)))
    if len(ids) != 1:
        line = ids[1][0] if len(ids) > 1 else section_line["DEPOT_SECTION"]
        raise lines.fail(line, "DEPOT_SECTION",
                         "exactly one depot (this is a single-depot CVRP)", f"{len(ids)} depots")
    return ids[0][1] - 1


def _explicit(lines: _Lines, header: dict[str, str], header_line: dict[str, int],
              sections: dict[str, list[tuple[int, list[str]]]], section_line: dict[str, int],
              n: int) -> np.ndarray:
    fmt = header.get("EDGE_WEIGHT_FORMAT", "").upper()
    if fmt not in MATRIX_FORMATS:
        raise lines.fail(header_line.get("EDGE_WEIGHT_FORMAT"), "specification",
                         f"EDGE_WEIGHT_FORMAT one of {', '.join(MATRIX_FORMATS)}",
                         repr(header.get("EDGE_WEIGHT_FORMAT", "none")))
    rows = sections.get("EDGE_WEIGHT_SECTION")
    if rows is None:
        raise lines.fail(None, "EDGE_WEIGHT_SECTION", "an EDGE_WEIGHT_SECTION for EXPLICIT",
                         "no such section")
    values = [_number(lines, number, "EDGE_WEIGHT_SECTION", t, "numbers") for number, tokens in rows
              for t in tokens]
    diag = "DIAG" in fmt
    expected = n * n if fmt == "FULL_MATRIX" else n * (n + 1) // 2 if diag else n * (n - 1) // 2
    if len(values) != expected:
        raise lines.fail(section_line["EDGE_WEIGHT_SECTION"], "EDGE_WEIGHT_SECTION",
                         f"{expected} numbers for a {fmt} of {n} nodes", f"{len(values)}")
    if min(values) < 0:
        raise lines.fail(section_line["EDGE_WEIGHT_SECTION"], "EDGE_WEIGHT_SECTION",
                         "distances >= 0", f"{min(values):g}")
    m = np.zeros((n, n))
    if fmt == "FULL_MATRIX":
        m = np.asarray(values).reshape(n, n)
    else:
        it = iter(values)
        for i in range(n):
            js = {"LOWER_ROW": range(i), "LOWER_DIAG_ROW": range(i + 1),
                  "UPPER_ROW": range(i + 1, n), "UPPER_DIAG_ROW": range(i, n)}[fmt]
            for j in js:
                m[i, j] = m[j, i] = next(it)
    np.fill_diagonal(m, 0)
    return np.floor(m + 0.5).astype(np.int64)


def coordinate_distances(coords: np.ndarray, edge_weight_type: str = "EUC_2D") -> np.ndarray:
    """TSPLIB integer distances between points: EUC_2D nint, CEIL_2D ceil, ATT pseudo-Euclid."""
    d = coords[:, None, :] - coords[None, :, :]
    if edge_weight_type == "ATT":
        r = np.sqrt((d ** 2).sum(-1) / 10.0)
        t = np.floor(r + 0.5)
        return np.where(t < r, t + 1, t).astype(np.int64)
    euclid = np.sqrt((d ** 2).sum(-1))
    if edge_weight_type == "CEIL_2D":
        return np.ceil(euclid - 1e-9).astype(np.int64)
    return np.floor(euclid + 0.5).astype(np.int64)


def read_solution(path: str | Path) -> tuple[list[list[int]], float | None]:
    """Routes (0-based node positions, depot 0) and the stated cost of a CVRPLIB ``.sol``."""
    path = Path(path)
    lines = _Lines(path)
    routes, cost = [], None
    for number, text in lines.rows:
        if text.lower().startswith("route"):
            _, _, rest = text.partition(":")
            routes.append([int(_number(lines, number, "route", t, "customer numbers", True))
                           for t in rest.split()])
        elif text.lower().startswith("cost"):
            cost = _number(lines, number, "cost", text.split()[-1], "a number")
    if not routes:
        raise lines.fail(None, None, "`Route #k: ...` lines", "none")
    return routes, cost


def write_solution(path: str | Path, routes: Sequence[Sequence[int]], cost: float) -> Path:
    """Write routes (0-based positions, depot 0) and their cost in CVRPLIB ``.sol`` form."""
    path = Path(path)
    text = "".join(f"Route #{k + 1}: {' '.join(str(c) for c in r)}\n"
                   for k, r in enumerate(r for r in routes if r))
    path.write_text(text + f"Cost {cost:g}\n", encoding="utf-8")
    return path


def write_instance(path: str | Path, instance: CvrpInstance) -> Path:
    """Write ``instance`` as a CVRPLIB file (EUC_2D with coordinates, else FULL_MATRIX)."""
    path = Path(path)
    n = instance.dimension
    explicit = instance.coords is None or instance.edge_weight_type == "EXPLICIT"
    out = [f"NAME : {instance.name}", f"COMMENT : {instance.comment or 'written by urban-twin'}",
           "TYPE : CVRP", f"DIMENSION : {n}"]
    if explicit:
        out += ["EDGE_WEIGHT_TYPE : EXPLICIT", "EDGE_WEIGHT_FORMAT : FULL_MATRIX"]
    else:
        out.append(f"EDGE_WEIGHT_TYPE : {instance.edge_weight_type}")
    out.append(f"CAPACITY : {instance.capacity}")
    if instance.vehicles is not None:
        out.append(f"VEHICLES : {instance.vehicles}")
    if explicit:
        out.append("EDGE_WEIGHT_SECTION")
        out += [" ".join(str(int(v)) for v in row) for row in instance.distance]
    else:
        out.append("NODE_COORD_SECTION")
        out += [f"{i + 1} {x:g} {y:g}" for i, (x, y) in enumerate(instance.coords)]
    out.append("DEMAND_SECTION")
    out += [f"{i + 1} {int(d)}" for i, d in enumerate(instance.demand)]
    out += ["DEPOT_SECTION", f"{instance.depot + 1}", "-1", "EOF"]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path
