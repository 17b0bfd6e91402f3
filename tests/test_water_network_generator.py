"""The generated water network: layout, sizing, and a 24 h EPANET run that stays in bounds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import wntr

from twin.city.generator import generate_city
from twin.city.model import City
from twin.city.water_network import NON_RESIDENTIAL_SHARE, build_water_network

PER_CAPITA_LPD = 150.0
DIAMETERS_MM = {100, 150, 200, 250, 300, 400, 500, 600, 800, 1000}


@dataclass
class Run:
    city: City
    wn: wntr.network.WaterNetworkModel
    results: wntr.sim.results.SimulationResults
    prefix: Path


_CASES = {
    "50k-seed0": (50_000, 0),
    "50k-seed1": (50_000, 1),
    "50k-seed2": (50_000, 2),
    "20k-seed4": (20_000, 4),
    "150k-seed5": (150_000, 5),
    "300k-seed0": (300_000, 0),
}


@pytest.fixture(scope="module", params=list(_CASES))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    population, seed = _CASES[request.param]
    city = generate_city(population, seed=seed)
    wn = build_water_network(city, per_capita_lpd=PER_CAPITA_LPD)
    prefix = tmp_path_factory.mktemp(request.param) / "run"
    results = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(prefix))
    return Run(city, wn, results, prefix)


def test_simulation_converges_without_warnings(run: Run) -> None:
    assert run.results.error_code is None
    pressure = run.results.node["pressure"]
    assert pressure.index[0] == 0 and pressure.index[-1] == 24 * 3600
    assert len(pressure) == 24 * 4 + 1                     # 15 min report step
    report = Path(f"{run.prefix}.rpt").read_text()
    assert "WARNING" not in report.upper() and "ERROR" not in report.upper()


def test_pressures_stay_between_20_and_80_m(run: Run) -> None:
    pressure_m = run.results.node["pressure"][run.wn.junction_name_list]
    assert pressure_m.to_numpy().min() > 20.0
    assert pressure_m.to_numpy().max() < 80.0


def test_towers_cycle_without_emptying_or_overflowing(run: Run) -> None:
    level_m = run.results.node["pressure"][run.wn.tank_name_list]
    assert run.wn.tank_name_list[0] == "tank1"
    assert len(run.wn.tank_name_list) == int(np.ceil(run.city.population / 100_000))
    for name in run.wn.tank_name_list:
        tank = run.wn.get_node(name)
        assert level_m[name].min() > tank.min_level + 0.5
        assert level_m[name].max() < tank.max_level - 0.5
        assert level_m[name].max() - level_m[name].min() > 2.0    # filled and drawn down


def test_both_pumps_run_and_switch(run: Run) -> None:
    flow_m3s = run.results.link["flowrate"][["pump1", "pump2"]].iloc[:-1]
    running = flow_m3s > 1e-4
    assert running["pump1"].mean() > 0.3 and running["pump2"].any()
    starts = (running.astype(int).diff() == 1).sum()
    assert 1 <= starts["pump1"] <= 8                            # not short-cycling
    assert (flow_m3s >= -1e-9).to_numpy().all()


def test_daily_demand_matches_population(run: Run) -> None:
    demand_m3s = run.results.node["demand"][run.wn.junction_name_list].iloc[:-1]
    daily_m3 = demand_m3s.to_numpy().sum() * 900
    expected_m3 = run.city.population * PER_CAPITA_LPD / 1000
    assert daily_m3 == pytest.approx(expected_m3, rel=0.10)
    assert daily_m3 >= expected_m3                             # residential plus a little more
    # what the pumps lift over the day balances demand and the towers' change in volume
    pumped_m3 = run.results.link["flowrate"][["pump1", "pump2"]].iloc[:-1].to_numpy().sum() * 900
    assert pumped_m3 == pytest.approx(daily_m3, rel=0.12)


def test_pipe_velocities_stay_moderate(run: Run) -> None:
    velocity_mps = run.results.link["velocity"][run.wn.pipe_name_list].abs()
    assert velocity_mps.to_numpy().max() < 1.3
    assert np.quantile(velocity_mps.max().to_numpy(), 0.95) < 0.8


def test_pump_energy_is_realistic(run: Run) -> None:
    assert run.wn.options.energy.global_efficiency == pytest.approx(75.0)
    flow = run.results.link["flowrate"][["pump1", "pump2"]]
    energy_j = wntr.metrics.pump_energy(flow, run.results.node["head"], run.wn).iloc[:-1]
    pumped_m3 = flow.iloc[:-1].to_numpy().sum() * 900
    kwh_per_m3 = energy_j.to_numpy().sum() / 3.6e6 / pumped_m3
    assert 0.08 < kwh_per_m3 < 0.3                      # lift of ~25-75 m at 75 % efficiency


def test_layout_follows_the_city(run: Run) -> None:
    wn, city = run.wn, run.city
    junctions = set(wn.junction_name_list)
    assert set(city.intersections.index) | {"pump_station"} == junctions
    assert set(city.streets.index) <= set(wn.pipe_name_list)
    assert wn.reservoir_name_list == ["plant"]
    assert sorted(wn.pump_name_list) == ["pump1", "pump2"]
    for node_id in city.intersections.index[::25]:
        j = wn.get_node(node_id)
        assert j.elevation == pytest.approx(city.intersections.at[node_id, "elevation_m"])
        point = city.intersections.geometry[node_id]
        assert j.coordinates == pytest.approx((point.x, point.y))
    for sid in city.streets.index[::25]:
        pipe = wn.get_link(sid)
        street = city.streets.loc[sid]
        assert {pipe.start_node_name, pipe.end_node_name} == {street["u"], street["v"]}
        assert pipe.length == pytest.approx(street["length_m"])
    plant = wn.get_node("plant").coordinates
    high, low = np.array(city.meta["high_point"]), np.array(city.meta["low_point"])
    assert np.linalg.norm(np.array(plant) - high) < np.linalg.norm(np.array(plant) - low)


def test_pipes_sized_from_commercial_list(run: Run) -> None:
    wn, streets = run.wn, run.city.streets
    diameter_mm = {sid: round(wn.get_link(sid).diameter * 1000) for sid in streets.index}
    assert set(diameter_mm.values()) <= DIAMETERS_MM
    arterial = streets.index[streets["street_class"] == "arterial"]
    local = streets.index[streets["street_class"] == "local"]
    assert np.mean([diameter_mm[s] for s in arterial]) > 1.5 * np.mean([diameter_mm[s] for s in local])
    assert max(diameter_mm.values()) >= 300                    # there are mains
    roughness = [wn.get_link(s).roughness for s in streets.index]
    assert 100 <= min(roughness) and max(roughness) <= 130 and np.std(roughness) > 3


def test_options_and_patterns(run: Run) -> None:
    o = run.wn.options
    assert o.hydraulic.headloss == "H-W" and o.hydraulic.inpfile_units == "LPS"
    assert o.time.duration == 86_400 and o.time.pattern_timestep == 3600
    assert o.time.hydraulic_timestep == o.time.report_timestep == 900
    for name in ("residential", "non_residential"):
        multipliers = np.asarray(run.wn.get_pattern(name).multipliers)
        assert len(multipliers) == 24 and multipliers.mean() == pytest.approx(1.0, abs=1e-3)
    residential = np.asarray(run.wn.get_pattern("residential").multipliers)
    assert 1.8 <= residential.max() <= 2.2 and residential.min() < 0.4
    assert 6 <= residential.argmax() <= 9                      # morning peak
    assert residential[17:22].max() > 1.5                        # evening peak


def test_inp_round_trip_gives_same_pressures(tmp_path: Path) -> None:
    city = generate_city(50_000, seed=0)
    wn = build_water_network(city)
    first = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp_path / "first"))
    path = tmp_path / "city.inp"
    wntr.network.write_inpfile(wn, str(path))
    again = wntr.network.WaterNetworkModel(str(path))
    second = wntr.sim.EpanetSimulator(again).run_sim(file_prefix=str(tmp_path / "second"))
    a = first.node["pressure"]
    b = second.node["pressure"][a.columns]
    assert a.shape == b.shape
    assert np.abs(a.to_numpy() - b.to_numpy()).max() < 1e-3
    assert "LPS" in path.read_text()


def test_build_is_deterministic_and_scales_with_per_capita() -> None:
    city = generate_city(20_000, seed=7)
    a, b = build_water_network(city), build_water_network(city)
    for attr in ("diameter", "roughness", "length"):
        assert [getattr(a.get_link(p), attr) for p in a.pipe_name_list] == \
            [getattr(b.get_link(p), attr) for p in b.pipe_name_list]

    def base_m3s(wn: wntr.network.WaterNetworkModel) -> float:
        return sum(d.base_value for _, j in wn.junctions() for d in j.demand_timeseries_list)

    double = build_water_network(city, rng=np.random.default_rng(1), per_capita_lpd=300.0)
    assert base_m3s(double) == pytest.approx(2 * base_m3s(a))
    expected_m3 = 20_000 * 0.150 * (1 + NON_RESIDENTIAL_SHARE)
    assert base_m3s(a) * 86_400 == pytest.approx(expected_m3, rel=1e-6)
