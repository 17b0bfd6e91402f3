"""BattLeDIM configuration, SCADA folders, the dataset generator, the scoring rule and the
`twin leaks` commands, on real L-Town runs."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from live_bridge.leak_config import (LeakConfig, LeakConfigError, LeakSpec, check_against_network,
                                     load_leak_config)
from live_bridge.leak_dataset import Uncertainty, generate_dataset, leak_diameters
from live_bridge.leak_scoring import (Detection, PipeDistances, read_detections, score,
                                      write_detections)
from live_bridge.scada import ScadaError, read_scada, write_scada
from tests.conftest import shared_file

ROOT = Path(__file__).resolve().parents[2]
CONFIG_2018 = ("battledim", "config", "dataset_configuration_historical_2018.yalm")


def short_config(path: Path, leaks: list[str], days: int = 2) -> Path:
    official = shared_file(*CONFIG_2018).read_text()
    head, _, rest = official.partition("leakages:")
    sensors = rest[rest.index("pressure_sensors:"):]
    end = dt.datetime(2018, 1, 1) + dt.timedelta(days=days) - dt.timedelta(minutes=5)
    text = (f"times:\n  StartTime: 2018-01-01 00:00\n  EndTime: {end:%Y-%m-%d %H:%M}\n\n"
            "leakages:\n- # linkID, startTime, endTime, leakDiameter (m), leakType, peakTime\n"
            + "".join(f"- {line}\n" for line in leaks) + "\n" + sensors)
    path.write_text(text)
    return path


def test_the_official_2018_configuration_reads_whole():
    cfg = load_leak_config(shared_file(*CONFIG_2018))
    assert len(cfg.leaks) == 14 and cfg.year == 2018
    assert (len(cfg.pressure_sensors), len(cfg.flow_sensors), len(cfg.level_sensors),
            len(cfg.amrs)) == (33, 3, 1, 82)
    first = cfg.leaks[0]
    assert (first.link_id, first.kind, first.diameter_m) == ("p257", "incipient", 0.011843)
    assert first.start == dt.datetime(2018, 1, 8, 13, 30)
    assert cfg.leaks[4].kind == "abrupt" and cfg.leaks[4].peak == cfg.leaks[4].start


@pytest.mark.parametrize("line, message", [
    ("p1, 2018-01-01 00:00, 2018-01-02 00:00, 0.01, abrupt", r"leakages\[1\]: expected .*6 fields"),
    ("p1, 2018-01-01 00:00, 2018-01-02 00:00, wide, abrupt, 2018-01-01 00:00", "leakDiameter"),
    ("p1, 2018-01-01 00:00, 2018-01-02 00:00, 0.01, sudden, 2018-01-01 00:00", "leakType"),
    ("p1, 2018-13-01 00:00, 2018-01-02 00:00, 0.01, abrupt, 2018-01-01 00:00", "startTime"),
    ("p1, 2018-01-03 00:00, 2018-01-02 00:00, 0.01, abrupt, 2018-01-03 00:00", "before"),
])
def test_a_bad_leak_line_is_named_with_its_place(tmp_path, line, message):
    path = tmp_path / "c.yalm"
    path.write_text("times:\n  StartTime: 2018-01-01 00:00\n  EndTime: 2018-02-01 00:00\n"
                    f"leakages:\n- # header\n- {line}\n")
    with pytest.raises(LeakConfigError, match=message) as err:
        load_leak_config(path)
    assert "c.yalm" in str(err.value)


def test_unknown_elements_in_a_configuration_are_refused():
    cfg = LeakConfig(dt.datetime(2018, 1, 1), dt.datetime(2018, 1, 2),
                     leaks=(LeakSpec("nope", dt.datetime(2018, 1, 1), dt.datetime(2018, 1, 2),
                                     0.01, "abrupt", dt.datetime(2018, 1, 1)),),
                     pressure_sensors=("n1", "ghost"), source="c.yalm")
    with pytest.raises(LeakConfigError, match="nope.*no such pipe.*ghost"):
        check_against_network(cfg, ["n1"], ["p1"], ["p1"])


def test_incipient_leaks_grow_linearly_in_diameter_and_stop_at_their_end():
    t0 = dt.datetime(2018, 1, 1)
    leak = LeakSpec("p1", t0 + dt.timedelta(hours=10), t0 + dt.timedelta(hours=30), 0.02,
                    "incipient", t0 + dt.timedelta(hours=20))
    times = pd.date_range(t0, periods=40, freq="1h")
    d = leak_diameters([leak], times)[:, 0]
    assert d[9] == 0 and d[10] == 0 and d[15] == pytest.approx(0.01) and d[25] == 0.02
    assert d[30] == 0


def test_generated_data_follow_the_orifice_law_and_the_seed(tmp_path):
    inp = shared_file("battledim", "L-TOWN.inp")
    cfg_path = short_config(tmp_path / "c.yalm", [
        "p673, 2018-01-01 12:00, 2018-01-02 12:00, 0.02, abrupt, 2018-01-01 12:00"])
    cfg = load_leak_config(cfg_path)
    exact = generate_dataset(inp, cfg, uncertainty=Uncertainty.none())
    noleak = generate_dataset(inp, LeakConfig(**{**cfg.__dict__, "leaks": ()}),
                              uncertainty=Uncertainty.none())
    q = exact.leak_flows_m3h["p673"]
    assert q[:"2018-01-01 11:55"].max() < 1e-3 and q["2018-01-02 12:05":].max() < 1e-2
    on = q["2018-01-01 12:10":"2018-01-02 11:55"]
    # Q = Cd A sqrt(2 g p): a 2 cm hole at 20-60 m of pressure loses 13 to 24 m3/h
    area = math.pi * 0.02 ** 2 / 4
    p_range = (on / 3600 / (0.75 * area)) ** 2 / (2 * 9.81)
    assert 15 < p_range.min() and p_range.max() < 80
    # mass balance: the sources deliver the leak on top of the no-leak consumption
    flows, base = exact.frames["flows"], noleak.frames["flows"]
    extra = (flows["p227"] + flows["p235"] - base["p227"] - base["p235"])
    day = slice("2018-01-01 14:00", "2018-01-02 10:00")
    assert np.median((extra[day] - q[day]).abs()) < 0.05 * q[day].median()
    # the leak lowers the pressures (behind pressure-reducing valves they stay put)
    drop = noleak.frames["pressures"][day] - exact.frames["pressures"][day]
    assert (drop > -0.01).all().all() and drop.mean().max() > 0.1
    a = generate_dataset(inp, cfg, seed=5)
    b = generate_dataset(inp, cfg, seed=5)
    c = generate_dataset(inp, cfg, seed=6)
    pd.testing.assert_frame_equal(a.frames["pressures"], b.frames["pressures"])
    assert not a.frames["pressures"].equals(c.frames["pressures"])
    # noise is there and realistic: centimetres on pressures
    diff = (a.frames["pressures"] - exact.frames["pressures"]).stack()
    assert 0.01 < diff.std() < 1.0


def test_scada_files_round_trip_in_the_official_format(tmp_path):
    idx = pd.date_range("2019-03-01", periods=3, freq="5min")
    frames = {"flows": pd.DataFrame({"p227": [88.14, 82.9, 80.0], "PUMP_1": [44.02, 0, 1.5]}, idx)}
    write_scada(tmp_path, 2019, frames)
    text = (tmp_path / "2019_SCADA_Flows.csv").read_text().splitlines()
    assert text[0] == "Timestamp;p227;PUMP_1" and text[1] == "2019-03-01 00:00:00;88,14;44,02"
    back = read_scada(tmp_path)["flows"]
    pd.testing.assert_frame_equal(back, frames["flows"], check_names=False, check_freq=False,
                                  check_index_type=False)
    (tmp_path / "2019_SCADA_Levels.csv").write_text("Timestamp;T1\n2019-03-01 00:00:00;abc\n")
    with pytest.raises(ScadaError, match=r"Levels.csv: column 'T1'.*not a number"):
        read_scada(tmp_path)


def _flows(index, leaks):
    return pd.DataFrame({k: v for k, v in leaks.items()}, index)


def test_the_scoring_rule():
    inp = shared_file("battledim", "L-TOWN.inp")
    dist = PipeDistances.from_inp(inp)
    t0 = dt.datetime(2018, 1, 1)
    idx = pd.date_range(t0, periods=24 * 12 + 1, freq="5min")       # one day
    cfg = LeakConfig(t0, t0 + dt.timedelta(days=1), leaks=(
        LeakSpec("p673", t0 + dt.timedelta(hours=2), t0 + dt.timedelta(hours=20), 0.02, "abrupt",
                 t0 + dt.timedelta(hours=2)),))
    q = np.where((idx >= pd.Timestamp(t0 + dt.timedelta(hours=2)))
                 & (idx < pd.Timestamp(t0 + dt.timedelta(hours=20))), 12.0, 0.0)
    flows = _flows(idx, {"p673": q})
    perfect = 0.8 * 12.0 * 18
    at = t0 + dt.timedelta(hours=8)
    r = score([Detection("p673", at)], cfg, flows, dist)
    assert r["perfect_eur"] == pytest.approx(perfect)
    assert r["score_eur"] == pytest.approx(0.8 * 12 * 12)
    near = [p for p in ("p672", "p674", "p145", "p680") if 0 < dist.distance(p, "p673") <= 300]
    assert near, "a neighbour of p673 within 300 m"
    d = dist.distance(near[0], "p673")
    r = score([Detection(near[0], at), Detection("p673", at + dt.timedelta(hours=1))], cfg,
              flows, dist)
    assert r["score_eur"] == pytest.approx(0.8 * 12 * 12 - d / 300 * 500)
    assert (r["true_positives"], r["false_positives"], r["repeat_detections"]) == (1, 0, 1)
    far = max(dist.ends, key=lambda p: dist.distance(p, "p673") if
              math.isfinite(dist.distance(p, "p673")) else -1)
    r = score([Detection(far, at), Detection("p673", t0)], cfg, flows, dist)  # before the start
    assert (r["true_positives"], r["false_positives"], r["score_eur"]) == (0, 2, -1000)


def test_detections_file_round_trip(tmp_path):
    dets = [Detection("p2", dt.datetime(2018, 3, 1, 7, 5)), Detection("p1", dt.datetime(2018, 1, 1))]
    write_detections(tmp_path / "d.csv", dets)
    assert (tmp_path / "d.csv").read_text().splitlines() == [
        "linkID,startTime", "p1,2018-01-01 00:00", "p2,2018-03-01 07:05"]
    assert read_detections(tmp_path / "d.csv") == sorted(dets, key=lambda d: d.time)


def _twin(*args):
    return subprocess.run([sys.executable, "-m", "twin.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_twin_leaks_generate_and_score_commands(tmp_path):
    inp = shared_file("battledim", "L-TOWN.inp")
    cfg = short_config(tmp_path / "c.yalm", [
        "p673, 2018-01-01 06:00, 2018-01-01 20:00, 0.02, abrupt, 2018-01-01 06:00"], days=1)
    out = tmp_path / "scada"
    res = _twin("leaks", "generate", "--inp", str(inp), "--config", str(cfg), "--out", str(out),
                "--json", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["steps"] == 288
    names = sorted(p.name for p in out.iterdir())
    assert names == ["2018_Leakages.csv", "2018_SCADA_Demands.csv", "2018_SCADA_Flows.csv",
                     "2018_SCADA_Levels.csv", "2018_SCADA_Pressures.csv", "generation.json"]
    (tmp_path / "d.csv").write_text("linkID,startTime\np673,2018-01-01 08:00\np1,2018-01-01 09:00\n")
    res = _twin("leaks", "score", "--detections", str(tmp_path / "d.csv"), "--config", str(cfg),
                "--inp", str(inp), "--json")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert (got["true_positives"], got["false_positives"]) == (1, 1)
    reward = got["score_eur"] + 500                       # one false alarm costs EUR 500
    assert 0.6 * got["perfect_eur"] < reward < got["perfect_eur"]   # found 2 h after the start
    with_file = _twin("leaks", "score", "--detections", str(tmp_path / "d.csv"), "--config",
                      str(cfg), "--inp", str(inp), "--leakages", str(out / "2018_Leakages.csv"),
                      "--json")
    got2 = json.loads(with_file.stdout.strip().splitlines()[-1])
    assert got2["perfect_eur"] == pytest.approx(got["perfect_eur"], rel=0.05)
    bad = _twin("leaks", "score", "--detections", str(tmp_path / "nope.csv"), "--config",
                str(cfg), "--inp", str(inp))
    assert bad.returncode == 2 and "nope.csv" in bad.stderr
