"""CVRPLIB reading and writing, PyVRP on reference instances, the savings baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_file
from twin.engines.cvrplib import (coordinate_distances, read_instance, read_solution,
                                  write_instance, write_solution)
from twin.engines.savings import clarke_wright
from twin.engines.vrp import solve_cvrp
from twin.errors import BadInput

SMALL = """NAME : tiny
TYPE : CVRP
DIMENSION : 4
EDGE_WEIGHT_TYPE : EUC_2D
CAPACITY : 10
NODE_COORD_SECTION
1 0 0
2 3 4
3 -3 4
4 0 -5
DEMAND_SECTION
1 0
2 6
3 5
4 4
DEPOT_SECTION
1
-1
EOF
"""


def _bks(name: str) -> tuple[Path, float]:
    vrp = shared_file("cvrp", f"{name}.vrp")
    _, cost = read_solution(vrp.with_suffix(".sol"))
    return vrp, float(cost)


# an iteration budget, not a time limit: the same result however busy the machine is
# (1,000 iterations take about 0.3 s on a quiet core, 2.5 s on a crowded one)
@pytest.mark.parametrize("name,seed", [("A-n32-k5", 1), ("P-n50-k7", 2)])
def test_pyvrp_within_one_percent_of_best_known(name: str, seed: int) -> None:
    vrp, bks = _bks(name)
    instance = read_instance(vrp)
    result = solve_cvrp(instance, seconds=None, iterations=1000, seed=seed)
    assert result.feasible
    assert instance.check_routes(result.routes) == []
    assert result.cost == instance.route_cost(result.routes)
    assert result.cost <= bks * 1.01, f"{name}: {result.cost} vs best known {bks}"
    assert result.cost >= bks          # a proven optimum cannot be beaten


def test_best_known_solutions_recomputed_from_the_reader() -> None:
    vrp, bks = _bks("E-n51-k5")
    routes, _ = read_solution(vrp.with_suffix(".sol"))
    instance = read_instance(vrp)
    assert instance.dimension == 51 and instance.capacity == 160
    assert instance.route_cost(routes) == bks
    assert instance.check_routes(routes) == []


def test_savings_baseline_is_feasible_and_worse_than_pyvrp() -> None:
    vrp, bks = _bks("A-n32-k5")
    instance = read_instance(vrp)
    routes = clarke_wright(instance.distance, instance.demand, instance.capacity)
    assert instance.check_routes(routes) == []
    cost = instance.route_cost(routes)
    assert bks < cost < 1.15 * bks         # the classic heuristic: a few % above optimum


def test_small_instance_distances_and_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "tiny.vrp"
    path.write_text(SMALL)
    inst = read_instance(path)
    assert inst.distance[0].tolist() == [0, 5, 5, 5]
    assert inst.distance[1, 2] == 6
    result = solve_cvrp(inst, seconds=None, iterations=200, seed=3)
    # 6+5 > 10 and 6+4 fits: best is {2,4} (5+ d(2,4)=9.49->9 +5) and {3} (5+5)
    assert result.cost == 29 and result.feasible
    out = write_solution(tmp_path / "tiny.sol", result.routes, result.cost)
    routes, cost = read_solution(out)
    assert cost == 29 and inst.route_cost(routes) == 29
    again = read_instance(write_instance(tmp_path / "again.vrp", inst))
    assert np.array_equal(again.distance, inst.distance)
    explicit = inst
    explicit.coords = None
    matrix = read_instance(write_instance(tmp_path / "matrix.vrp", explicit))
    assert matrix.edge_weight_type == "EXPLICIT"
    assert np.array_equal(matrix.distance, inst.distance)


def test_tsplib_rounding_conventions() -> None:
    pts = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 2.5]])
    assert coordinate_distances(pts, "EUC_2D")[0].tolist() == [0, 1, 3]    # 1.414 -> 1, 2.5 -> 3
    assert coordinate_distances(pts, "CEIL_2D")[0].tolist() == [0, 2, 3]


@pytest.mark.parametrize("change,line,section,phrase", [
    (("2 3 4", "2 3 x"), 8, "NODE_COORD_SECTION", "'x'"),
    (("3 5\n", "3 -5\n"), 14, "DEMAND_SECTION", "a whole demand >= 0"),
    (("4 4\n", "4 40\n"), 15, "DEMAND_SECTION", "<= CAPACITY 10"),
    (("4 0 -5\n", ""), 6, "NODE_COORD_SECTION", "node 4 is missing"),
    (("CAPACITY : 10", "CAPACITY : ten"), 5, "specification", "CAPACITY as a whole number"),
    (("EUC_2D", "GEOM"), 4, "specification", "EDGE_WEIGHT_TYPE one of"),
    (("1\n-1", "1 2\n-1"), 17, "DEPOT_SECTION", "exactly one depot"),
    (("DEMAND_SECTION", "DEMANDS"), 11, "NODE_COORD_SECTION", "got 'DEMANDS'"),
    (("CAPACITY : 10\n", ""), None, "specification", "a `CAPACITY : <integer>` line"),
])
def test_malformed_instances_name_line_and_section(tmp_path: Path, change, line, section,
                                                   phrase) -> None:
    path = tmp_path / "bad.vrp"
    path.write_text(SMALL.replace(*change, 1))
    with pytest.raises(BadInput) as err:
        read_instance(path)
    message = str(err.value)
    assert str(path) in message and phrase in message
    if line is not None:
        assert f"line {line} " in message
    if section:
        assert f"({section})" in message


def test_cli_route_prints_cost_routes_feasible(tmp_path: Path, capsys) -> None:
    from twin.cli import main

    vrp, bks = _bks("A-n32-k5")
    sol = tmp_path / "out.sol"
    assert main(["waste", "route", str(vrp), "--seconds", "2", "--seed", "2", "--json",
                 "--out", str(sol)]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload["feasible"] is True and len(payload["routes"]) >= 5
    assert payload["cost"] <= bks * 1.01 and payload["best_known"] == bks
    routes, cost = read_solution(sol)
    assert cost == payload["cost"] and routes == payload["routes"]
    bad = tmp_path / "bad.vrp"
    bad.write_text(SMALL.replace("2 3 4", "2 3"))
    assert main(["waste", "route", str(bad), "--seconds", "1", "--json"]) == 2
    assert "line 8 (NODE_COORD_SECTION)" in capsys.readouterr().err


def test_explicit_lower_row_and_display_data(tmp_path: Path) -> None:
    path = tmp_path / "lower.vrp"
    path.write_text("NAME: lower\nTYPE: CVRP\nDIMENSION: 4\nEDGE_WEIGHT_TYPE: EXPLICIT\n"
                    "EDGE_WEIGHT_FORMAT: LOWER_ROW\nDISPLAY_DATA_TYPE: TWOD_DISPLAY\n"
                    "CAPACITY: 10\nEDGE_WEIGHT_SECTION\n 5\n 6 7\n 8 9 10\n"
                    "DISPLAY_DATA_SECTION\n1 0 0\n2 1 1\n3 2 2\n4 3 3\n"
                    "DEMAND_SECTION\n1 0\n2 4\n3 4\n4 4\nDEPOT_SECTION\n 1\n -1\nEOF\n")
    inst = read_instance(path)
    assert inst.distance.tolist() == [[0, 5, 6, 8], [5, 0, 7, 9], [6, 7, 0, 10], [8, 9, 10, 0]]
    path.write_text(path.read_text().replace(" 8 9 10\n", " 8 9\n"))
    with pytest.raises(BadInput, match=r"line 8 \(EDGE_WEIGHT_SECTION\): expected 6 numbers "
                                        r"for a LOWER_ROW of 4 nodes, got 5"):
        read_instance(path)
