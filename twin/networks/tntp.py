"""Readers of the TNTP traffic-assignment test format (``_net``, ``_trips``, ``_flow``, ``_node``).

The format (github.com/bstabler/TransportationNetworks): a metadata header of ``<KEY> value``
lines closed by ``<END OF METADATA>``; ``~`` starts a comment (the net file's column header is
one); rows end with ``;``. The net file's ``<FIRST THRU NODE>`` n > 1 means zones 1..n-1 are
not through nodes: trips start and end there but never pass. The trips file has ``Origin o``
blocks of ``d : flow;`` pairs. Every malformed line raises :class:`~twin.errors.BadInput`
naming the file, the line and what was expected.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import BadInput
from twin.networks.road import RoadNetwork

DEFAULT_NET_COLUMNS = ("init_node", "term_node", "capacity", "length", "free_flow_time", "b",
                       "power", "speed", "toll", "link_type")
REQUIRED_NET_COLUMNS = ("init_node", "term_node", "capacity", "free_flow_time")
COLUMN_ALIASES = {"init": "init_node", "tail": "init_node", "tail_node": "init_node",
                  "from": "init_node", "term": "term_node", "head": "term_node",
                  "head_node": "term_node", "to": "term_node", "fftt": "free_flow_time",
                  "free_flow_time_(min)": "free_flow_time", "speed_limit": "speed",
                  "type": "link_type", "alpha": "b", "beta": "power"}
METRES_PER_UNIT = {"ft": 0.3048, "feet": 0.3048, "foot": 0.3048, "mi": 1609.344,
                   "mile": 1609.344, "miles": 1609.344, "km": 1000.0, "m": 1.0, "meters": 1.0,
                   "metres": 1.0}
_META = re.compile(r"^\s*<([^>]+)>(.*)$")
_PAIR = re.compile(r"(\d+)\s*:\s*([^;:\s]+)\s*;?")


def _text_lines(path: Path) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _split_metadata(path: Path, lines: list[str]) -> tuple[dict[str, str], int]:
    """Metadata keys (upper case) and the index of the first line after the header."""
    meta: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = _META.match(line)
        if m is None:
            if line.strip() and not line.lstrip().startswith("~"):
                return meta, i           # a file without <END OF METADATA>
            continue
        key = m.group(1).strip().upper()
        if key == "END OF METADATA":
            return meta, i + 1
        meta[key] = m.group(2).strip()
    return meta, len(lines)


def _meta_int(path: Path, meta: dict[str, str], key: str) -> int | None:
    if key not in meta:
        return None
    text = meta[key].split()[0] if meta[key].split() else ""
    try:
        return int(float(text))
    except ValueError:
        raise BadInput(f"{path}: <{key}> is {meta[key]!r}; expected a whole number") from None


def _header_columns(line: str) -> list[str] | None:
    """Column names of a ``~ init_node term_node ... ;`` comment line, or None."""
    names = [COLUMN_ALIASES.get(t.lower(), t.lower()) for t in line.strip("~; \t").split()]
    return names if "init_node" in names and "term_node" in names else None


def _needed_columns(path: Path, line: int, columns: list[str]) -> int:
    """How many values a row must have: every column up to the BPR power."""
    missing = [c for c in REQUIRED_NET_COLUMNS if c not in columns]
    if missing:
        raise BadInput(f"{path}:{line}: the column header lacks {missing}; expected "
                       f"{', '.join(DEFAULT_NET_COLUMNS)}")
    wanted = [c for c in REQUIRED_NET_COLUMNS + ("b", "power") if c in columns]
    return max(columns.index(c) for c in wanted) + 1


def _length_unit(meta: dict[str, str]) -> str:
    header = meta.get("ORIGINAL HEADER", "")
    m = re.search(r"length\s*\(\s*([a-z]+)\s*\)", header, flags=re.IGNORECASE)
    return m.group(1).lower() if m else ""


def read_net(path: str | Path, toll_weight_min: float = 0.0,
             length_weight_min: float = 0.0) -> RoadNetwork:
    """A :class:`RoadNetwork` from a TNTP ``_net`` file. ``toll_weight_min`` and
    ``length_weight_min`` (minutes per toll unit / per length unit) make the fixed
    generalised cost of each link (Chicago Sketch: 0.02 and 0.04)."""
    path = Path(path)
    lines = _text_lines(path)
    meta, start = _split_metadata(path, lines)
    columns: list[str] = list(DEFAULT_NET_COLUMNS)
    needed = _needed_columns(path, 0, columns)
    rows: list[list[float]] = []
    line_numbers: list[int] = []
    for i in range(start, len(lines)):
        text = lines[i].strip()
        if not text:
            continue
        if text.startswith("~"):
            if not rows and (named := _header_columns(text)) is not None:
                columns = named
                needed = _needed_columns(path, i + 1, columns)
            continue
        body = text.split(";")[0].split()
        if len(body) < needed:
            raise BadInput(f"{path}:{i + 1}: expected {needed} columns "
                           f"({', '.join(columns[:needed])}), got {len(body)}: {text!r}")
        try:
            values = [float(v) for v in body[:len(columns)]]
        except ValueError:
            raise BadInput(f"{path}:{i + 1}: expected numbers in every column, got "
                           f"{text!r}") from None
        rows.append(values + [np.nan] * (len(columns) - len(values)))
        line_numbers.append(i + 1)
    if not rows:
        raise BadInput(f"{path}: no link rows after the metadata")
    raw = pd.DataFrame(rows, columns=columns[:max(len(r) for r in rows)])
    for column in ("b", "power", "length", "toll", "link_type", "speed"):
        if column not in raw.columns:
            raw[column] = {"b": 0.15, "power": 4.0}.get(column, np.nan if column != "toll" else 0.0)
    _check_net_values(path, raw, line_numbers)
    zones = _meta_int(path, meta, "NUMBER OF ZONES")
    n_nodes = _meta_int(path, meta, "NUMBER OF NODES")
    n_links = _meta_int(path, meta, "NUMBER OF LINKS")
    first_thru = _meta_int(path, meta, "FIRST THRU NODE") or 1
    if n_links is not None and n_links != len(raw):
        warnings.warn(f"{path}: <NUMBER OF LINKS> says {n_links}, the file has {len(raw)} links",
                      stacklevel=2)
    ids = np.union1d(raw["init_node"].to_numpy(), raw["term_node"].to_numpy()).astype(np.int64)
    if (ids < 1).any():
        bad = int(np.flatnonzero((raw["init_node"] < 1) | (raw["term_node"] < 1))[0])
        raise BadInput(f"{path}:{line_numbers[bad]}: node ids must be whole numbers >= 1")
    top = max(int(ids.max()), n_nodes or 0, zones or 0)
    if zones is None:
        raise BadInput(f"{path}: the metadata has no <NUMBER OF ZONES>")
    node_ids = np.arange(1, top + 1)
    nodes = pd.DataFrame({"x": np.nan, "y": np.nan, "through": node_ids >= first_thru},
                         index=pd.Index(node_ids, name="node_id"))
    unit = _length_unit(meta)
    length = raw["length"].to_numpy(float)
    toll = np.nan_to_num(raw["toll"].to_numpy(float))
    links = pd.DataFrame({
        "init_node": raw["init_node"].astype(np.int64), "term_node": raw["term_node"].astype(np.int64),
        "capacity_veh_h": raw["capacity"], "free_flow_time_min": raw["free_flow_time"],
        "alpha": raw["b"], "beta": raw["power"],
        "fixed_cost_min": toll_weight_min * toll + length_weight_min * np.nan_to_num(length),
        "length": length, "length_m": length * METRES_PER_UNIT.get(unit, np.nan),
        "lanes": 1.0, "toll": toll, "link_type": raw["link_type"],
        "speed": raw["speed"]})
    network = RoadNetwork.from_links(links, list(range(1, zones + 1)), nodes,
                                     name=path.name.split("_net")[0], length_unit=unit,
                                     first_thru_node=first_thru, source=str(path))
    network.meta.update({"source": str(path), "toll_weight_min": toll_weight_min,
                         "length_weight_min": length_weight_min,
                         "line_numbers": np.asarray(line_numbers)})
    return network


def _check_net_values(path: Path, raw: pd.DataFrame, line_numbers: list[int]) -> None:
    checks = (("init_node", raw["init_node"] != np.round(raw["init_node"]), "a whole node id"),
              ("term_node", raw["term_node"] != np.round(raw["term_node"]), "a whole node id"),
              ("capacity", raw["capacity"] < 0, "a capacity >= 0"),
              ("capacity", (raw["capacity"] == 0) & (raw["b"] != 0),
               "a capacity > 0 (the BPR function divides by it)"),
              ("free_flow_time", raw["free_flow_time"] < 0, "a free-flow time >= 0"),
              ("b", raw["b"] < 0, "a BPR b >= 0"), ("power", raw["power"] < 0, "a power >= 0"))
    for column, bad, expected in checks:
        bad = bad.to_numpy() | ~np.isfinite(raw[column].to_numpy(float))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise BadInput(f"{path}:{line_numbers[i]}: link {int(raw['init_node'].iat[i])}->"
                           f"{int(raw['term_node'].iat[i])} has {column} "
                           f"{raw[column].iat[i]:g}; expected {expected}")


def read_trips(path: str | Path, zones: int | None = None) -> np.ndarray:
    """The OD matrix (zones x zones, zone i at row i-1) of a TNTP ``_trips`` file."""
    path = Path(path)
    lines = _text_lines(path)
    meta, start = _split_metadata(path, lines)
    declared = _meta_int(path, meta, "NUMBER OF ZONES")
    size = zones if zones is not None else declared
    if size is None:
        raise BadInput(f"{path}: the metadata has no <NUMBER OF ZONES>")
    if zones is not None and declared is not None and declared != zones:
        raise BadInput(f"{path}: <NUMBER OF ZONES> is {declared}, the network has {zones} zones")
    matrix = np.zeros((size, size))
    origin = None
    for i in range(start, len(lines)):
        text = lines[i].split("~")[0].strip()
        if not text:
            continue
        if text.lower().startswith("origin"):
            parts = text.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise BadInput(f"{path}:{i + 1}: expected 'Origin <zone>', got {text!r}")
            origin = int(parts[1])
            if not 1 <= origin <= size:
                raise BadInput(f"{path}:{i + 1}: origin {origin} is not a zone (1..{size})")
            continue
        if origin is None:
            raise BadInput(f"{path}:{i + 1}: OD flows before the first 'Origin' line: {text!r}")
        leftover = _PAIR.sub("", text).strip(" ;\t")
        if leftover:
            raise BadInput(f"{path}:{i + 1}: expected 'destination : flow;' pairs, could not "
                           f"read {leftover!r}")
        for m in _PAIR.finditer(text):
            dest = int(m.group(1))
            try:
                flow = float(m.group(2))
            except ValueError:
                raise BadInput(f"{path}:{i + 1}: flow {m.group(2)!r} to {dest} is not a "
                               "number") from None
            if not 1 <= dest <= size:
                raise BadInput(f"{path}:{i + 1}: destination {dest} is not a zone (1..{size})")
            if not np.isfinite(flow) or flow < 0:
                raise BadInput(f"{path}:{i + 1}: flow {origin}->{dest} is {flow:g}; "
                               "expected a number >= 0")
            matrix[origin - 1, dest - 1] = flow
    total = meta.get("TOTAL OD FLOW")
    if total:
        try:
            declared_total = float(total.split()[0])
        except ValueError:
            declared_total = None
        if declared_total and abs(matrix.sum() - declared_total) > 1e-6 * declared_total + 1e-6:
            warnings.warn(f"{path}: <TOTAL OD FLOW> says {declared_total:g}, the flows add up "
                          f"to {matrix.sum():g}", stacklevel=2)
    return matrix


def read_flow(path: str | Path, network: RoadNetwork | None = None) -> pd.DataFrame:
    """A TNTP ``_flow`` file (best-known solution): init_node, term_node, flow_veh_h,
    cost_min; with ``network``, also ``link``, the index of each row's link."""
    path = Path(path)
    rows = []
    for i, line in enumerate(_text_lines(path)):
        body = [t for t in line.split(";")[0].split() if t != ":"]
        if not body or line.lstrip().startswith("~") or not body[0].lstrip("-").isdigit():
            continue
        if len(body) < 3:
            raise BadInput(f"{path}:{i + 1}: expected 'from to volume [cost]', got {line!r}")
        try:
            rows.append((int(body[0]), int(body[1]), float(body[2]),
                         float(body[3]) if len(body) > 3 else np.nan))
        except ValueError:
            raise BadInput(f"{path}:{i + 1}: expected numbers, got {line!r}") from None
    table = pd.DataFrame(rows, columns=["init_node", "term_node", "flow_veh_h", "cost_min"])
    if network is not None:
        key = pd.MultiIndex.from_frame(network.links[["init_node", "term_node"]])
        index = key.get_indexer(pd.MultiIndex.from_frame(table[["init_node", "term_node"]]))
        if (index < 0).any():
            j = int(np.flatnonzero(index < 0)[0])
            raise BadInput(f"{path}: link {table['init_node'].iat[j]}->"
                           f"{table['term_node'].iat[j]} is not in the network")
        table["link"] = index
    return table


def read_nodes(path: str | Path) -> pd.DataFrame:
    """Node coordinates of a TNTP ``_node`` file: index node_id, columns x, y."""
    path = Path(path)
    rows = []
    for i, line in enumerate(_text_lines(path)):
        body = line.split(";")[0].split()
        if not body or not body[0].isdigit():
            continue
        try:
            rows.append((int(body[0]), float(body[1]), float(body[2])))
        except (ValueError, IndexError):
            raise BadInput(f"{path}:{i + 1}: expected 'node x y', got {line!r}") from None
    return pd.DataFrame(rows, columns=["node_id", "x", "y"]).set_index("node_id")


def cost_weights(readme: str | Path) -> tuple[float, float]:
    """(toll, distance) weights in minutes per unit from a README's "Generalized Cost
    Weights" section; (0, 0) when it has none."""
    text = Path(readme).read_text(encoding="utf-8", errors="replace")
    section = re.search(r"generali[sz]ed cost weights(.*?)(\n#|\Z)", text,
                        flags=re.IGNORECASE | re.DOTALL)
    if section is None:
        return 0.0, 0.0
    weights = []
    for name in ("toll", "distance"):
        m = re.search(rf"{name}\s*:\s*([-+0-9.eE]+)", section.group(1), flags=re.IGNORECASE)
        weights.append(float(m.group(1)) if m else 0.0)
    return weights[0], weights[1]


def find_files(folder: str | Path) -> dict[str, Path]:
    """The ``net``, ``trips`` and, when present, ``flow``, ``node`` and ``readme`` files of a
    TNTP network folder (or of the folder of a given ``_net`` file)."""
    folder = Path(folder)
    chosen_net = folder if folder.is_file() else None
    if chosen_net is not None:
        folder = folder.parent
    if not folder.is_dir():
        raise BadInput(f"{folder}: no such TNTP folder")
    found: dict[str, Path] = {}
    for kind in ("net", "trips", "flow", "node"):
        hits = sorted(p for p in folder.iterdir()
                      if p.is_file() and p.name.lower().endswith(f"_{kind}.tntp"))
        if chosen_net is not None and kind != "net":
            prefix = chosen_net.name[: -len("_net.tntp")]
            hits = [p for p in hits if p.name.startswith(prefix)] or hits
        if kind == "net" and chosen_net is not None:
            hits = [chosen_net]
        if len(hits) > 1 and kind in ("net", "trips"):
            raise BadInput(f"{folder}: several *_{kind}.tntp files ({', '.join(p.name for p in hits)}); "
                           "pass the _net file itself")
        if hits:
            found[kind] = hits[0]
    for kind in ("net", "trips"):
        if kind not in found:
            raise BadInput(f"{folder}: no *_{kind}.tntp file")
    readme = folder / "README.md"
    if readme.is_file():
        found["readme"] = readme
    return found


def read_folder(folder: str | Path, toll_weight_min: float | None = None,
                length_weight_min: float | None = None) -> tuple[RoadNetwork, np.ndarray]:
    """Network and demand of a TNTP folder; the generalised-cost weights come from the
    README unless given. Node coordinates are added when a ``_node`` file is there."""
    files = find_files(folder)
    readme_weights = cost_weights(files["readme"]) if "readme" in files else (0.0, 0.0)
    toll_w = readme_weights[0] if toll_weight_min is None else toll_weight_min
    length_w = readme_weights[1] if length_weight_min is None else length_weight_min
    network = read_net(files["net"], toll_w, length_w)
    if "node" in files:
        coords = read_nodes(files["node"])
        common = network.nodes.index.intersection(coords.index)
        network.nodes.loc[common, ["x", "y"]] = coords.loc[common, ["x", "y"]].to_numpy()
    demand = read_trips(files["trips"], network.zones)
    network.meta["files"] = {k: str(v) for k, v in files.items()}
    return network, demand
