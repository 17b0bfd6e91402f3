"""Calibration: metrics, recovery of known parameters, real data, bad input.

Synthetic studies simulate the model with parameters changed by known amounts, add noise
to the sensors and calibrate from the nominal model: the parameters must come back within
their reported uncertainty and the fit must improve. "Within" is three reported standard
deviations (a true value outside its 95 % interval happens one time in twenty by design;
outside 3 sd, one in 370); the share inside the 95 % intervals is checked as well.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from calibration.calibrate import calibrate
from calibration.config import load_calibration
from calibration.metrics import bias, kge, nse, rmse
from calibration.water_model import WaterModel
from twin.cli import main
from twin.errors import BadInput
from twin.scenario_fields import ScenarioError
from tests.conftest import shared_file


# --- metrics ----------------------------------------------------------------------------
def test_metrics_against_hand_values():
    obs = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    sim = np.array([1.5, 2.5, 3.5, 4.5, 9.0])           # +0.5 everywhere, NaN pair ignored
    assert rmse(obs, sim) == pytest.approx(0.5)
    assert bias(obs, sim) == pytest.approx(0.5)
    assert nse(obs, sim) == pytest.approx(1 - 4 * 0.25 / 5.0)    # spread of 1..4 is 5
    # same correlation and spread, mean ratio 3/2.5: KGE = 1 - |beta - 1|
    assert kge(obs, sim) == pytest.approx(1 - abs(3.0 / 2.5 - 1))
    assert nse(obs[:4], obs[:4]) == 1.0 and kge(obs[:4], obs[:4]) == pytest.approx(1.0)
    assert nse(obs[:4], np.full(4, 2.5)) == pytest.approx(0.0)   # the mean is no model


# --- a small synthetic study on Net3, through the command --------------------------------
def _write(tmp_path, config: dict, name: str = "cal.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _net3_config(net3_inp, file="obs.csv"):
    return {
        "name": "net3_synthetic",
        "model": {"inp": str(net3_inp), "duration": "24h", "report_step": "1h",
                  "initial_levels_from_observations": False},
        "groups": {"small": {"pipes": {"diameter_mm": [0, 300]}},
                   "large": {"pipes": {"diameter_mm": [300, 5000]}},
                   "consumers": {"nodes": "all"}},
        "parameters": [
            {"name": "c_small", "kind": "roughness", "group": "small", "bounds": [0.5, 1.5],
             "true_value": 0.8},
            {"name": "c_large", "kind": "roughness", "group": "large", "bounds": [0.5, 1.5],
             "true_value": 1.2},
            {"name": "demand", "kind": "demand", "group": "consumers", "bounds": [0.5, 2.0],
             "true_value": 1.3},
        ],
        "sensors": [{"id": n, "quantity": "pressure", "unit": "m", "sigma": 0.1}
                    for n in ("101", "123", "141", "163", "189", "211", "237", "253", "273")]
        + [{"id": "q101", "element": "101", "quantity": "flow", "unit": "l/s", "sigma": 0.5}],
        "observations": [{"file": file, "format": "wide"}],
    }


def _synthetic(config_path, truth: dict[str, float], seed: int = 0, model_cls=WaterModel):
    """Simulate the truth, add the sensors' noise, write the observation file."""
    spec = load_calibration(config_path)
    model = model_cls(spec)
    sim = model.simulate(np.array([truth[p.name] for p in spec.parameters]))
    rng = np.random.default_rng(seed)
    for s in spec.sensors:
        sim[s.id] += rng.normal(0.0, s.sigma, len(sim))
    sim.index.name = "time"
    sim.to_csv(spec.observations[0].file)
    return spec


def test_net3_recovery_through_the_command(tmp_path, net3_inp, capsys):
    cfg = _write(tmp_path, _net3_config(net3_inp))
    _synthetic(cfg, {"c_small": 0.8, "c_large": 1.2, "demand": 1.3})
    out = tmp_path / "report"
    assert main(["calibrate", str(cfg), "--out", str(out), "--workers", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    inside = 0
    for name, true in {"c_small": 0.8, "c_large": 1.2, "demand": 1.3}.items():
        p = summary["parameters"][name]
        assert abs(p["estimate"] - true) <= 3 * p["sd"], (name, p)
        assert p["ci95_high"] - p["ci95_low"] < 0.5        # an informative interval
        inside += p["ci95_low"] <= true <= p["ci95_high"]
    assert inside >= 2
    assert summary["rmse_after"] < 0.5 * summary["rmse_before"]
    assert summary["nse_after"] > summary["nse_before"]
    assert (out / "report.html").is_file() and (out / "parameters.png").is_file()
    assert (out / "sensor_101.png").is_file()
    html = (out / "report.html").read_text()
    assert "c_small" in html and "nse after" in html
    # the calibrated model is a valid EPANET file with the fitted roughness
    calibrated = out / "calibrated.inp"
    import wntr

    wn = wntr.network.WaterNetworkModel(str(calibrated))
    nominal = wntr.network.WaterNetworkModel(str(net3_inp))
    pipe = next(p for p, link in nominal.pipes() if link.diameter * 1000 < 300)
    ratio = wn.get_link(pipe).roughness / nominal.get_link(pipe).roughness
    assert ratio == pytest.approx(summary["parameters"]["c_small"]["estimate"], rel=1e-3)


def test_parallel_runs_give_the_same_fit(tmp_path, net3_inp):
    cfg = _write(tmp_path, _net3_config(net3_inp))
    spec = _synthetic(cfg, {"c_small": 0.9, "c_large": 1.1, "demand": 1.2}, seed=3)
    spec = spec.model_copy(update={"max_evaluations": 60})
    serial = calibrate(spec, workers=1)
    parallel = calibrate(spec, workers=2)
    assert parallel.workers == 2
    np.testing.assert_allclose(parallel.fit.x, serial.fit.x, rtol=1e-9)


# --- L-Town: 5 roughness groups and 3 demand multipliers from 33 pressures and 3 flows ------
LTOWN_TRUTH = {"c_d_small": 0.85, "c_d_100": 1.1, "c_d_150": 0.9, "c_d_200": 1.15,
               "c_d_225": 0.8, "q_res": 1.2, "q_com": 0.85, "q_ind": 1.3}


@pytest.mark.slow
def test_ltown_recovery_of_roughness_and_demand(tmp_path):
    inp = shared_file("battledim", "L-TOWN.inp")
    config = yaml.safe_load(shared_file(
        "battledim", "config", "dataset_configuration_historical_2018.yalm").read_text())
    pressures = config["pressure_sensors"]
    assert len(pressures) == 33
    groups = {"d_small": [0, 90], "d_100": [90, 130], "d_150": [130, 190], "d_200": [190, 210],
              "d_225": [210, 5000]}
    patterns = {"res": "P-Residential", "com": "P-Commercial", "ind": "P-Industrial"}
    cfg = _write(tmp_path, {
        "name": "ltown_synthetic",
        "model": {"inp": str(inp), "duration": "24h", "report_step": "5min",
                  "initial_levels_from_observations": False},
        "groups": {**{g: {"pipes": {"diameter_mm": r}} for g, r in groups.items()},
                   **{g: {"pattern": p} for g, p in patterns.items()}},
        "parameters": [{"name": f"c_{g}", "kind": "roughness", "group": g, "bounds": [0.5, 1.5]}
                       for g in groups]
        + [{"name": f"q_{g}", "kind": "demand", "group": g, "bounds": [0.5, 2.0]}
           for g in patterns],
        "sensors": [{"id": n, "quantity": "pressure", "unit": "m", "sigma": 0.05}
                    for n in pressures]
        + [{"id": f, "quantity": "flow", "unit": "m3/h", "sigma": 1.0}
           for f in ("p227", "p235", "PUMP_1")],
        "observations": [{"file": "obs.csv", "format": "wide"}],
    })
    spec = _synthetic(cfg, LTOWN_TRUTH, seed=1)
    result = calibrate(spec, workers=2)
    table = result.parameters
    for name, true in LTOWN_TRUTH.items():
        assert abs(table.loc[name, "estimate"] - true) <= 3 * table.loc[name, "sd"], \
            (name, table.loc[name].to_dict())
    inside = ((table["ci95_low"] <= pd.Series(LTOWN_TRUTH))
              & (pd.Series(LTOWN_TRUTH) <= table["ci95_high"])).sum()
    assert inside >= 6                                  # of 8: about 95 % expected
    # the well-observed groups come back tightly
    for name in ("c_d_100", "c_d_150", "c_d_200", "q_res", "q_com"):
        assert abs(table.loc[name, "estimate"] - LTOWN_TRUTH[name]) < 0.02
    assert result.fit_after["rmse"].mean() < 0.5 * result.fit_before["rmse"].mean()
    assert result.fit_after["nse"].mean() > result.fit_before["nse"].mean()


# --- L-Town against the real 2019 flows and tank level (short version) --------------------
@pytest.mark.slow
def test_ltown_2019_hourly_demand_improves_a_later_window(tmp_path):
    from tests.conftest import ROOT

    flows = shared_file("battledim", "scada_2019", "2019_SCADA_Flows.csv")
    example = yaml.safe_load((ROOT / "calibration" / "examples" /
                              "ltown_2019_demand.yaml").read_text())
    example["model"]["inp"] = str(shared_file("battledim", "L-TOWN.inp"))
    example["model"]["duration"] = "72h"
    example["observations"][0]["file"] = str(flows)
    example["observations"][1]["file"] = str(flows.parent / "2019_SCADA_Levels.csv")
    example["fit_window"] = ["2019-01-01 00:00", "2019-01-03 00:00"]
    example["max_evaluations"] = 200
    spec = load_calibration(_write(tmp_path, example))
    result = calibrate(spec, workers=2)
    inflow = ["p227", "p235"]
    # fitted on two days, checked on the third
    assert (result.fit_after.loc[inflow, "nse"] > result.fit_before.loc[inflow, "nse"]).all()
    assert (result.check_after.loc[inflow, "nse"] > result.check_before.loc[inflow, "nse"]).all()
    assert result.check_after.loc[inflow, "nse"].min() > 0.5


# --- traffic: BPR alpha on Sioux Falls from link counts -------------------------------------
def test_sioux_falls_bpr_alpha_from_link_counts(tmp_path):
    from calibration.traffic_model import TrafficModel
    from twin.networks.tntp import find_files, read_net

    folder = shared_file("tntp", "SiouxFalls")
    net = read_net(find_files(folder)["net"])
    ids = [f"{a}-{b}" for a, b in zip(net.links["init_node"], net.links["term_node"])]
    counted = sorted(np.random.default_rng(0).choice(len(ids), 30, replace=False))
    cfg = _write(tmp_path, {
        "name": "sioux_falls_alpha",
        "model": {"tntp": str(folder), "gap": 1e-7, "start": "2020-01-01 08:00"},
        "parameters": [{"name": "alpha", "kind": "bpr_alpha", "group": "all",
                        "bounds": [0.2, 5.0]}],          # multiplier of the file's 0.15
        "sensors": [{"id": ids[i], "quantity": "link_count", "unit": "veh/h", "sigma": 50.0}
                    for i in counted],
        "observations": [{"file": "counts.csv", "format": "wide"}],
    })
    spec = _synthetic(cfg, {"alpha": 2.0}, model_cls=TrafficModel)
    result = calibrate(spec)
    est = result.parameters.loc["alpha"]
    assert abs(est["estimate"] - 2.0) <= 3 * est["sd"]
    assert abs(est["estimate"] - 2.0) < 0.1
    assert result.fit_after["rmse"].mean() < 0.2 * result.fit_before["rmse"].mean()


# --- bad input ----------------------------------------------------------------------------
def test_config_errors_name_the_line_and_field(tmp_path, net3_inp):
    cfg = _net3_config(net3_inp)
    cfg["parameters"][1]["group"] = "nowhere"
    path = _write(tmp_path, cfg)
    with pytest.raises(ScenarioError) as err:
        load_calibration(path)
    assert "parameters[1].group" in str(err.value) and "nowhere" in str(err.value)
    assert err.value.line is not None
    cfg = _net3_config(net3_inp)
    cfg["sensors"][0]["unit"] = "m3/h"                  # a flow unit for a pressure sensor
    with pytest.raises(ScenarioError, match=r"sensors\[0\]\.unit.*unit of length"):
        load_calibration(_write(tmp_path, cfg))
    cfg = _net3_config(net3_inp)
    cfg["parameters"][0]["bounds"] = [1.5, 0.5]
    with pytest.raises(ScenarioError, match=r"parameters\[0\]\.bounds"):
        load_calibration(_write(tmp_path, cfg))


def test_observation_errors(tmp_path, net3_inp):
    cfg = _write(tmp_path, _net3_config(net3_inp))
    spec = _synthetic(cfg, {"c_small": 1.0, "c_large": 1.0, "demand": 1.0})
    obs = pd.read_csv(tmp_path / "obs.csv")
    # an unknown sensor id
    obs.rename(columns={"101": "999"}).to_csv(tmp_path / "bad.csv", index=False)
    bad = load_calibration(_write(tmp_path, _net3_config(net3_inp, "bad.csv"), "bad.yaml"))
    with pytest.raises(BadInput, match=r"bad.csv:1: unknown sensor id\(s\) 999"):
        calibrate(bad)
    # a unit that does not fit
    cfg2 = _net3_config(net3_inp)
    cfg2["observations"][0]["unit"] = "m3/h"
    with pytest.raises(BadInput, match="unit mismatch for sensor '101'"):
        calibrate(load_calibration(_write(tmp_path, cfg2, "unit.yaml")))
    # no overlap with the simulated period
    shifted = obs.copy()
    shifted["time"] = (pd.to_datetime(shifted["time"]) + pd.Timedelta(days=400)).astype(str)
    shifted.to_csv(tmp_path / "late.csv", index=False)
    late = load_calibration(_write(tmp_path, _net3_config(net3_inp, "late.csv"), "late.yaml"))
    with pytest.raises(BadInput, match="do not overlap the simulated period"):
        calibrate(late)
    # a number that is not one, with its line
    broken = obs.copy().astype(str)
    broken.loc[4, "123"] = "twelve"
    broken.to_csv(tmp_path / "text.csv", index=False)
    text = load_calibration(_write(tmp_path, _net3_config(net3_inp, "text.csv"), "text.yaml"))
    with pytest.raises(BadInput, match=r"text.csv:6: 123: expected a number, got 'twelve'"):
        calibrate(text)
    # a sensor on an element the model does not have
    cfg3 = _net3_config(net3_inp)
    cfg3["sensors"][0]["element"] = "J-nowhere"
    with pytest.raises(BadInput, match="sensor '101': no node 'J-nowhere'"):
        WaterModel(load_calibration(_write(tmp_path, cfg3, "el.yaml")))
    assert spec.name == "net3_synthetic"


def test_empty_group_and_unreachable_scheduler(tmp_path, net3_inp):
    cfg = _net3_config(net3_inp)
    cfg["groups"]["small"] = {"pipes": {"diameter_mm": [1, 2]}}
    with pytest.raises(BadInput, match="group 'small'.*selects no element"):
        WaterModel(load_calibration(_write(tmp_path, cfg)))
    path = _write(tmp_path, _net3_config(net3_inp), "ok.yaml")
    _synthetic(path, {"c_small": 1.0, "c_large": 1.0, "demand": 1.0})
    t0 = time.perf_counter()
    with pytest.raises(BadInput, match="cannot reach the Dask scheduler"):
        calibrate(load_calibration(path), scheduler="tcp://127.0.0.1:1")
    assert time.perf_counter() - t0 < 30


def test_an_estimate_on_its_bound_is_flagged(tmp_path, net3_inp):
    cfg = _write(tmp_path, _net3_config(net3_inp))
    spec = _synthetic(cfg, {"c_small": 1.0, "c_large": 1.0, "demand": 1.3})
    narrow = [p.model_copy(update={"bounds": (0.5, 1.0)}) if p.name == "demand" else p
              for p in spec.parameters]
    result = calibrate(spec.model_copy(update={"parameters": narrow, "max_evaluations": 80}))
    assert result.parameters.loc["demand", "at_bound"]
    assert result.parameters.loc["demand", "estimate"] == pytest.approx(1.0, rel=1e-3)
    assert not result.parameters.loc["c_small", "at_bound"]


# --- the request service: arrival rates by type from a request log ----------------------
def test_request_rates_recovered_from_a_simulated_log(tmp_path):
    from twin.agents.service_layer import simulate_city

    out = tmp_path / "city"
    # a city whose residents report 1.5 times the catalogue's rates, eight weeks
    simulate_city(population=20_000, days=56, crews=12, seed=1, volume_factor=1.5,
                  out_dir=out)
    log = out / "open311" / "requests.csv"
    first = pd.read_csv(log)["requested_datetime"].min()[:10]
    codes = ["bulky_items", "illegal_dumping", "graffiti", "street_light_out", "pothole"]
    cfg = _write(tmp_path, {
        "name": "request_rates",
        "model": {"population": 20_000, "start": first, "duration": "56d", "report_step": "1d"},
        "groups": {"bulky": {"services": ["bulky_items"]},
                   "others": {"services": codes[1:]}},
        "parameters": [{"name": "r_bulky", "kind": "request_rate", "group": "bulky",
                        "bounds": [0.2, 5.0]},
                       {"name": "r_others", "kind": "request_rate", "group": "others",
                        "bounds": [0.2, 5.0]}],
        "sensors": [{"id": c, "quantity": "request_count", "unit": "requests/d"} for c in codes],
        "observations": [{"file": str(log), "format": "open311"}],
    })
    result = calibrate(load_calibration(cfg))
    for name in ("r_bulky", "r_others"):
        row = result.parameters.loc[name]
        assert abs(row["estimate"] - 1.5) <= 3 * row["sd"], row.to_dict()
        assert row["sd"] < 0.2
    assert result.fit_after["rmse"].mean() < result.fit_before["rmse"].mean()
    # a log sensor that is not a request count is refused
    bad = yaml.safe_load(cfg.read_text())
    bad["sensors"][0] = {"id": "bulky_items", "quantity": "pressure", "unit": "m"}
    with pytest.raises(BadInput, match="request_count"):
        calibrate(load_calibration(_write(tmp_path, bad, "bad.yaml")))
