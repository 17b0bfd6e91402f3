"""User-equilibrium assignment: closed-form equilibria, through-node rules, incidents and warm
starts, unreachable demand, and Sioux Falls against its best-known solution."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import shared_file
from twin.cli import main
from twin.engines.assignment import assign, compare
from twin.errors import BadInput
from twin.networks.road import RoadNetwork
from twin.networks.tntp import read_flow, read_folder


def two_routes(demand_veh_h: float = 200.0) -> tuple[RoadNetwork, np.ndarray]:
    """Two parallel links from zone 1 to zone 2 with linear costs: t_a = 10 + 0.1 x_a and
    t_b = 15 + 0.075 x_b; demand 200 splits 114.2857 / 85.7143 at t = 21.428571 min."""
    links = pd.DataFrame({"init_node": [1, 1], "term_node": [2, 2],
                          "capacity_veh_h": [100.0, 200.0], "free_flow_time_min": [10.0, 15.0],
                          "alpha": [1.0, 1.0], "beta": [1.0, 1.0]})
    return RoadNetwork.from_links(links, [1, 2]), np.array([[0, demand_veh_h], [0, 0]])


@pytest.mark.parametrize("method", ["path", "bfw"])
def test_two_routes_reach_the_closed_form_equilibrium(method):
    net, demand = two_routes()
    result = assign(net, demand, gap=1e-10, max_iterations=2000, method=method)
    x_a = 20 / 0.175
    assert result.link_flow_veh_h == pytest.approx([x_a, 200 - x_a], rel=1e-7)
    assert result.link_time_min == pytest.approx([10 + 0.1 * x_a] * 2, rel=1e-8)
    assert result.relative_gap <= 1e-10 and result.converged
    # Beckmann: integrals of the two linear costs at the equilibrium flows
    beckmann = 10 * x_a + 0.05 * x_a ** 2 + 15 * (200 - x_a) + 0.0375 * (200 - x_a) ** 2
    assert result.beckmann == pytest.approx(beckmann, rel=1e-10)
    assert list(result.history.columns) == ["iteration", "relative_gap", "beckmann", "tstt",
                                            "seconds"]


def zone_shortcut(first_thru_node: int) -> RoadNetwork:
    """Zones 1-3; the short way from 1 to 2 passes through zone 3, the long way through 4."""
    links = pd.DataFrame({"init_node": [1, 3, 1, 4], "term_node": [3, 2, 4, 2],
                          "capacity_veh_h": [100.0] * 4, "free_flow_time_min": [1, 1, 5, 5]})
    nodes = pd.DataFrame({"through": [n >= first_thru_node for n in (1, 2, 3, 4)]},
                         index=pd.Index([1, 2, 3, 4], name="node_id"))
    return RoadNetwork.from_links(links, [1, 2, 3], nodes, first_thru_node=first_thru_node)


@pytest.mark.parametrize("method", ["path", "bfw"])
def test_zones_below_the_first_thru_node_carry_no_through_traffic(method):
    demand = np.zeros((3, 3))
    demand[0, 1] = 10.0
    through = assign(zone_shortcut(1), demand, gap=1e-9, method=method)
    blocked = assign(zone_shortcut(4), demand, gap=1e-9, method=method)
    assert through.link_flow_veh_h == pytest.approx([10, 10, 0, 0])
    assert blocked.link_flow_veh_h == pytest.approx([0, 0, 10, 10])
    # trips may still start and end at zone 3
    demand[2, 1] = 5.0
    assert assign(zone_shortcut(4), demand, method=method).link_flow_veh_h[1] == pytest.approx(5)


def test_unreachable_pairs_raise_or_are_reported_as_unserved():
    net, demand = two_routes()
    closed = net.close([0, 1])
    with pytest.raises(BadInput, match=r"no path from zone 1 to zone 2 \(demand 200 veh/h, "
                                       r"2 links closed\)"):
        assign(closed, demand)
    result = assign(closed, demand, unreachable="drop")
    assert result.unserved.to_dict("records") == [
        {"origin": 1, "destination": 2, "demand_veh_h": 200.0}]
    assert result.tstt == 0.0 and result.summary()["unserved_demand_veh_h"] == 200.0


def test_bad_demand_matrix_is_named():
    net, _ = two_routes()
    with pytest.raises(BadInput, match=r"expected a 2 x 2 matrix"):
        assign(net, np.zeros((3, 3)))
    with pytest.raises(BadInput, match=r"zone 1 -> 2 has -1.0 veh/h"):
        assign(net, np.array([[0.0, -1.0], [0.0, 0.0]]))


def test_lost_lane_and_closure_copies_leave_the_original_network():
    net, demand = two_routes()
    narrowed = net.set_lanes([1], 0.5)
    assert narrowed.links["capacity_veh_h"].tolist() == [100.0, 100.0]
    assert net.links["capacity_veh_h"].tolist() == [100.0, 200.0]
    closed = net.close([0])
    assert not closed.links["open"].iat[0] and net.links["open"].iat[0]
    assert closed.reopen([0]).links["open"].all()
    graph = closed.to_networkx()
    assert graph.number_of_edges() == 1 and graph[1][2]["link"] == 1


@pytest.fixture(scope="module")
def sioux_falls():
    return read_folder(shared_file("tntp", "SiouxFalls"))


def test_sioux_falls_at_gap_1e5_matches_the_best_known_objective(sioux_falls):
    net, demand = sioux_falls
    best = 4231335.287              # the README's 42.31335287107440 x 1e5
    for method in ("path", "bfw"):
        result = assign(net, demand, gap=1e-5, max_iterations=5000, method=method)
        assert result.relative_gap <= 1e-5
        assert abs(result.beckmann / best - 1) < 1e-4
        h = result.history
        assert h["relative_gap"].iat[-1] == result.relative_gap
        assert h["beckmann"].iat[-1] == pytest.approx(result.beckmann)
    # the tighter path solution: link flows close to the published ones
    result = assign(net, demand, gap=1e-8, max_iterations=500)
    flow = read_flow(net.meta["files"]["flow"], net)
    ours = result.link_flow_veh_h[flow["link"]]
    assert np.max(np.abs(ours - flow["flow_veh_h"]) / flow["flow_veh_h"]) < 1e-3
    assert result.beckmann == pytest.approx(best, rel=1e-8)


def test_a_closure_warm_started_needs_fewer_iterations_than_cold(sioux_falls):
    """Closing 10->15 (a busy link) on Sioux Falls and re-equilibrating to 1e-6: measured
    here, warm from the previous paths 28 iterations, cold 45, the same equilibrium; halving
    its capacity instead: warm 18, cold 28."""
    net, demand = sioux_falls
    before = assign(net, demand, gap=1e-6, max_iterations=1000)
    link = net.link_index(10, 15)
    assert before.link_flow_veh_h[link] > 15000
    closed = net.close([link])
    warm = assign(closed, demand, gap=1e-6, max_iterations=1000, warm_start=before)
    cold = assign(closed, demand, gap=1e-6, max_iterations=1000)
    assert warm.converged and cold.converged
    assert warm.link_flow_veh_h[link] == 0.0
    assert warm.beckmann == pytest.approx(cold.beckmann, rel=1e-5)
    assert warm.iterations < cold.iterations
    change = compare(before, warm, top=5)
    assert change.tstt_change > 0 and change.tstt_change == pytest.approx(warm.tstt - before.tstt)
    top = change.most_affected
    assert len(top) == 5 and (top["init_node"].iat[0], top["term_node"].iat[0]) != (0, 0)
    assert np.all(np.diff(np.abs(top["cost_change_veh_min"].to_numpy())) <= 0)
    # a lost lane (half the capacity) warm-starts too, and BFW starts from feasible flows
    narrowed = net.set_lanes([link], 0.5)
    warm_lane = assign(narrowed, demand, gap=1e-6, max_iterations=1000, warm_start=before)
    cold_lane = assign(narrowed, demand, gap=1e-6, max_iterations=1000)
    assert warm_lane.iterations < cold_lane.iterations
    assert warm_lane.beckmann == pytest.approx(cold_lane.beckmann, rel=1e-5)


def test_warm_start_absorbs_a_changed_demand(sioux_falls):
    net, demand = sioux_falls
    before = assign(net, demand, gap=1e-6)
    busier = assign(net, demand * 1.1, gap=1e-6, warm_start=before)
    cold = assign(net, demand * 1.1, gap=1e-6)
    assert busier.beckmann == pytest.approx(cold.beckmann, rel=1e-5)
    assert busier.iterations < cold.iterations


def test_command_closes_a_link_and_reports_the_change(capsys):
    folder = shared_file("tntp", "SiouxFalls")
    assert main(["traffic", "assign", "--tntp", str(folder), "--gap", "1e-5", "--close", "10-15",
                 "--top", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["relative_gap"] <= 1e-5 and out["iterations"] >= 1
    assert abs(out["beckmann"] / out["best_known_beckmann"] - 1) < 1e-4
    incident = out["incident"]
    assert incident["tstt_change"] > 0 and len(incident["most_affected"]) == 3
    assert incident["relative_gap"] <= 1e-5


def random_grid(k: int = 12, zones: int = 15, seed: int = 3) -> tuple[RoadNetwork, np.ndarray]:
    """A k x k two-way grid with zone centroids hung on random intersections, mixed BPR
    parameters (alpha 0 to 1, beta 1 to 5), zero free-flow times plus a fixed cost on the
    connectors, and zones that are not through nodes."""
    rng = np.random.default_rng(seed)
    ids = np.arange(k * k) + zones + 1
    pairs = []
    for i in range(k):
        for j in range(k):
            u = ids[i * k + j]
            if j + 1 < k:
                pairs += [(u, ids[i * k + j + 1]), (ids[i * k + j + 1], u)]
            if i + 1 < k:
                pairs += [(u, ids[(i + 1) * k + j]), (ids[(i + 1) * k + j], u)]
    for z, node in enumerate(rng.choice(ids, zones, replace=False), start=1):
        pairs += [(z, node), (node, z)]
    links = pd.DataFrame(pairs, columns=["init_node", "term_node"])
    m = len(links)
    connector = (links["init_node"] <= zones) | (links["term_node"] <= zones)
    links["capacity_veh_h"] = rng.uniform(500, 2000, m)
    links["free_flow_time_min"] = np.where(connector, 0.0, rng.uniform(0.5, 2, m))
    links["alpha"] = rng.choice([0.0, 0.15, 0.5, 1.0], m)
    links["beta"] = rng.choice([1.0, 2.5, 4.0, 5.0], m)
    links["fixed_cost_min"] = np.where(connector, 0.1, 0.0)
    node_ids = list(range(1, zones + 1)) + list(ids)
    nodes = pd.DataFrame({"through": [n > zones for n in node_ids]},
                         index=pd.Index(node_ids, name="node_id"))
    demand = rng.uniform(0, 80, (zones, zones)) * (rng.random((zones, zones)) < 0.7)
    return RoadNetwork.from_links(links, list(range(1, zones + 1)), nodes), demand


def test_both_solvers_agree_and_conserve_flow_on_a_general_network():
    net, demand = random_grid()
    path = assign(net, demand, gap=1e-8, max_iterations=500)
    bfw = assign(net, demand, gap=1e-5, max_iterations=5000, method="bfw")
    assert path.converged and bfw.converged
    # the gap bounds the distance to the optimum: BFW's Beckmann is above, and close
    assert bfw.beckmann >= path.beckmann - 1e-9 * path.beckmann
    assert bfw.beckmann == pytest.approx(path.beckmann, rel=1e-5)
    # flow conservation at every node: what enters minus what leaves = trips ending - starting
    np.fill_diagonal(demand, 0.0)
    links = net.links
    for result in (path, bfw):
        net_inflow = (pd.Series(result.link_flow_veh_h).groupby(links["term_node"]).sum()
                      .sub(pd.Series(result.link_flow_veh_h).groupby(links["init_node"]).sum(),
                           fill_value=0.0))
        expected = pd.Series(0.0, index=net_inflow.index)
        expected.loc[net.zone_nodes] = demand.sum(axis=0) - demand.sum(axis=1)
        assert np.allclose(net_inflow, expected, atol=1e-6 * demand.sum())
    # Wardrop: every used path of an OD costs the same (the path store of the solution)
    state, cost = path.state, path.link_time_min
    spreads = []
    for k in range(len(state.od_head)):
        costs, p = [], state.od_head[k]
        while p >= 0:
            if state.p_flow[p] > 1e-9:
                costs.append(cost[state.buf[state.p_off[p]:state.p_off[p] + state.p_len[p]]].sum())
            p = state.p_next[p]
        spreads.append((max(costs) - min(costs)) / min(costs))
    assert len(spreads) == np.count_nonzero(demand) and max(spreads) < 1e-5
