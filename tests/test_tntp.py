"""TNTP readers: the real networks' files, and malformed files named by file and line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import shared_file
from twin.cli import main
from twin.errors import BadInput
from twin.networks.tntp import cost_weights, read_flow, read_folder, read_net, read_trips

NET_HEADER = """<NUMBER OF ZONES> 2
<NUMBER OF NODES> 3
<FIRST THRU NODE> {first}
<NUMBER OF LINKS> {links}
<ORIGINAL HEADER>~ Init node Term node Capacity Length (ft) FFT B Power Speed Toll Type ;
<END OF METADATA>

~ init_node term_node capacity length free_flow_time b power speed toll link_type ;
"""
TRIPS = """<NUMBER OF ZONES> 2
<TOTAL OD FLOW> 150.0
<END OF METADATA>

~ a comment line
Origin 1
    1 :  0.0;    2 :  100.0;
Origin 2
    1 :  50.0;
"""


def write_net(folder, rows: list[str], first: int = 1, name: str = "Tiny"):
    path = folder / f"{name}_net.tntp"
    path.write_text(NET_HEADER.format(first=first, links=len(rows))
                    + "".join(f"\t{r}\t;\n" for r in rows))
    return path


GOOD_ROWS = ["1 3 100 5280 1 0.15 4 0 0 1", "3 2 100 5280 1 0.15 4 0 0 1",
             "2 3 100 5280 1 0.15 4 0 0 1", "3 1 100 5280 1 0.15 4 0 0 1"]


def test_small_net_and_trips_are_read_with_units_and_zones(tmp_path):
    net = read_net(write_net(tmp_path, GOOD_ROWS, first=3), toll_weight_min=0.0,
                   length_weight_min=0.01)
    assert net.zones == 2 and net.n_links == 4 and net.first_thru_node == 3
    assert net.nodes["through"].tolist() == [False, False, True]
    assert net.length_unit == "ft"
    assert net.links["length_m"].iat[0] == pytest.approx(1609.344)
    assert net.links["fixed_cost_min"].iat[0] == pytest.approx(52.8)
    (tmp_path / "Tiny_trips.tntp").write_text(TRIPS)
    demand = read_trips(tmp_path / "Tiny_trips.tntp", 2)
    assert demand.tolist() == [[0.0, 100.0], [50.0, 0.0]]


def test_sioux_falls_files():
    folder = shared_file("tntp", "SiouxFalls")
    net, demand = read_folder(folder)
    assert (net.zones, len(net.nodes), net.n_links, net.first_thru_node) == (24, 24, 76, 1)
    assert net.nodes["through"].all()
    assert demand.sum() == pytest.approx(360600.0)
    assert demand[0, 1] == 100.0 and demand[23, 22] == 700.0
    assert not np.isnan(net.nodes["x"]).any()          # from SiouxFalls_node.tntp
    best = read_flow(folder / "SiouxFalls_flow.tntp", net)
    flows = np.zeros(net.n_links)
    flows[best["link"]] = best["flow_veh_h"]
    # the README's best-known objective, recomputed from the flows and the BPR functions
    assert net.beckmann(flows) == pytest.approx(4231335.287, rel=1e-9)
    assert np.allclose(net.link_times_min(flows)[best["link"]], best["cost_min"], rtol=1e-9)


def test_anaheim_zones_are_not_through_nodes():
    net, demand = read_folder(shared_file("tntp", "Anaheim"))
    assert net.first_thru_node == 39 and net.zones == 38
    assert not net.nodes.loc[1:38, "through"].any() and net.nodes.loc[39:, "through"].all()
    assert net.length_unit == "ft" and demand.sum() == pytest.approx(104694.4)


def test_chicago_generalised_cost_weights_come_from_the_readme():
    folder = shared_file("tntp", "ChicagoSketch")
    assert cost_weights(folder / "README.md") == (0.02, 0.04)
    net, demand = read_folder(folder)
    expected = 0.02 * net.links["toll"] + 0.04 * net.links["length"]
    assert np.allclose(net.links["fixed_cost_min"], expected)
    assert net.length_unit == "miles" and demand.shape == (387, 387)
    best = read_flow(folder / "ChicagoSketch_flow.tntp", net)
    flows = np.zeros(net.n_links)
    flows[best["link"]] = best["flow_veh_h"]
    assert net.beckmann(flows) == pytest.approx(17313018.7387477, rel=1e-9)


@pytest.mark.parametrize("rows, where, words", [
    (["1 3 100 5280 1 0.15 4 0 0 1", "3 2 100 5280"], ":10:", "expected"),
    (["1 3 100 5280 1 0.15 4 0 0 1", "3 2 -100 5280 1 0.15 4 0 0 1"], ":10:", "capacity"),
    (["1 3 100 5280 1 0.15 4 0 0 1", "3 2 100 5280 x 0.15 4 0 0 1"], ":10:", "numbers"),
    (["1 3 100 5280 -1 0.15 4 0 0 1"], ":9:", "free_flow_time"),
])
def test_bad_net_rows_name_file_line_and_field(tmp_path, rows, where, words):
    path = write_net(tmp_path, rows)
    with pytest.raises(BadInput) as err:
        read_net(path)
    message = str(err.value)
    assert str(path) in message and where in message and words in message


def test_header_without_a_required_column(tmp_path):
    path = tmp_path / "X_net.tntp"
    path.write_text("<NUMBER OF ZONES> 1\n<END OF METADATA>\n~ init_node term_node length b ;\n"
                    "1 2 3 0.15 ;\n")
    with pytest.raises(BadInput, match=r"X_net.tntp:3: the column header lacks \['capacity', "
                                       r"'free_flow_time'\]"):
        read_net(path)


@pytest.mark.parametrize("text, match", [
    (TRIPS.replace("2 :  100.0;", "3 :  100.0;"), r":7: destination 3 is not a zone"),
    (TRIPS.replace("100.0", "-5"), r":7: flow 1->2 is -5"),
    (TRIPS.replace("Origin 1", "1 : 4;"), r":6: OD flows before the first 'Origin'"),
    (TRIPS.replace("2 :  100.0;", "2 = 100.0;"), r":7: expected 'destination : flow;'"),
])
def test_bad_trips_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "Tiny_trips.tntp"
    path.write_text(text)
    with pytest.raises(BadInput, match=match):
        read_trips(path, 2)


def test_command_exits_2_on_a_bad_file(tmp_path, capsys):
    write_net(tmp_path, ["1 3 100 5280 1 0.15 4 0 0 1", "3 2 -100 5280 1 0.15 4 0 0 1"])
    (tmp_path / "Tiny_trips.tntp").write_text(TRIPS)
    assert main(["traffic", "assign", "--tntp", str(tmp_path), "--json"]) == 2
    assert "Tiny_net.tntp:10" in capsys.readouterr().err


def test_command_exits_2_when_an_od_pair_has_no_path(tmp_path, capsys):
    # zone 2 can be reached, but nothing leaves it: the pair 2 -> 1 has demand and no path
    write_net(tmp_path, ["1 3 100 5280 1 0.15 4 0 0 1", "3 2 100 5280 1 0.15 4 0 0 1"])
    (tmp_path / "Tiny_trips.tntp").write_text(TRIPS)
    assert main(["traffic", "assign", "--tntp", str(tmp_path), "--json"]) == 2
    assert "no path from zone 2 to zone 1 (demand 50 veh/h" in capsys.readouterr().err


def test_command_json_on_a_small_folder(tmp_path, capsys):
    write_net(tmp_path, GOOD_ROWS, first=3)
    (tmp_path / "Tiny_trips.tntp").write_text(TRIPS)
    assert main(["traffic", "assign", "--tntp", str(tmp_path), "--gap", "1e-8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"iterations", "relative_gap", "beckmann", "tstt", "seconds"} <= set(out)
    # one path per pair: 100 veh/h on 1->3->2, 50 on 2->3->1, t = 1 + 0.15 (v/100)^4
    expected = 100 * 2 * (1 + 0.15) + 50 * 2 * (1 + 0.15 * 0.5 ** 4)
    assert out["tstt"] == pytest.approx(expected, rel=1e-12)
    assert out["relative_gap"] == pytest.approx(0.0, abs=1e-12)
