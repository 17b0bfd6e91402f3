"""Fast water members: one network per worker, EPANET in memory, thousands of runs."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from twin.ensemble_members import expand_members
from twin.ensemble_water import MemberTask, WorkerNetworks, run_member
from twin.run import run
from twin.scenario import load_scenario


def _scenario(tmp_path: Path, inp: Path, ensemble: str, horizon: str = "1h") -> Path:
    path = tmp_path / "ens.yaml"
    path.write_text(f"name: ens\ncity: {{inp: {json.dumps(str(inp))}}}\nhorizon: {horizon}\n"
                    f"ensemble:\n{ensemble}\n")
    return path


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_two_thousand_runs_in_one_process_leak_no_file_handle(tmp_path, net3_inp, monkeypatch):
    areas = ", ".join(f"{0.0005 * (i + 1):.4f}" for i in range(18))
    spec = load_scenario(_scenario(tmp_path, net3_inp, f"""\
  sweep:
    - {{type: pipe_burst, at: 0s, pipe: {{each: pipe}}}}
  grid:
    sweep[0].leak_area_m2: [{areas}]"""))
    members = expand_members(spec)
    assert len(members) >= 2000
    members = members[:2000]
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))     # whatever is written lands here
    networks = WorkerNetworks()
    results = [run_member(MemberTask(m.member_id, m.spec), networks) for m in members[:20]]
    fds_after_warm_up = _open_files()
    results += [run_member(MemberTask(m.member_id, m.spec), networks) for m in members[20:]]
    assert _open_files() <= fds_after_warm_up
    failed = [r["error"] for r in results if r["status"] != "done"]
    assert not failed, failed[0]
    # one folder with this process's network file, nothing per member
    (folder,) = private_tmp.iterdir()
    assert [p.suffix for p in folder.iterdir()] == [".inp"]
    by_key = {(m.element, m.params["sweep[0].leak_area_m2"]): r["kpis"]
              for m, r in zip(members, results)}
    pipe = members[0].element
    volumes = [by_key[(pipe, a)]["water.leak_volume_m3"] for a in sorted(
        a for p, a in by_key if p == pipe)]
    assert volumes[0] > 0 and all(b > a for a, b in zip(volumes, volumes[1:]))


def test_a_member_reusing_the_network_equals_a_run_from_the_file(tmp_path, net3_inp):
    spec = load_scenario(_scenario(tmp_path, net3_inp, """\
  sweep:
    - {type: pipe_burst, at: 2h, leak_area_m2: 0.004, duration: 3h, pipe: {each: pipe, ids: ['123', '159']}}""",
                                   horizon="12h"))
    networks = WorkerNetworks()
    for member in expand_members(spec):
        fast = run_member(MemberTask(member.member_id, member.spec), networks)
        again = run_member(MemberTask(member.member_id, member.spec), networks)
        plain = run(member.spec).kpi_table().to_dict()
        assert fast["status"] == "done", fast["error"]
        assert fast["kpis"]["water.leak_volume_m3"] > 10
        assert fast["kpis"] == again["kpis"]
        for key, value in plain.items():
            assert fast["kpis"][key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
        pressure = fast["elements"]
        assert set(pressure["quantity"]) == {"water.pressure"}
        assert (pressure["min"] <= pressure["max"]).all()
        assert float(pressure["min"].min()) == pytest.approx(
            fast["kpis"]["water.min_pressure_m"], abs=0.05)


def test_members_on_one_open_epanet_project_equal_fresh_runs(tmp_path, net3_inp):
    """Members of one worker share an open EPANET project (leaks only: emitters and times
    restored, hydraulics restarted); members that split a pipe or close a valve open their
    own. In any order, every member's KPIs equal a run of its scenario from the file."""
    spec = load_scenario(_scenario(tmp_path, net3_inp, """\
  sweep:
    - {type: pipe_burst, at: 0s, position: 0.0, leak_area_m2: 0.003, pipe: {each: pipe, ids: ['123', '159', '329']}}
    - {type: pipe_burst, at: 1h, position: 1.0, leak_area_m2: 0.01, duration: 2h, pipe: {each: pipe, ids: ['123', '20']}}
    - {type: pipe_burst, at: 30min, position: 0.5, leak_area_m2: 0.005, pipe: {each: pipe, ids: ['159']}}
    - {type: valve_closure, at: 2h, duration: 3h, link: {each: pipe, ids: ['329']}}""",
                                   horizon="10h"))
    members = expand_members(spec)
    assert len(members) == 7
    networks = WorkerNetworks()
    pool = networks.epanet_pool
    # bursts, then a split pipe and a closure in between, then the bursts again
    order = members[:5] + members[5:] + members[:5]
    reused = 0
    for member in order:
        before = set(map(id, pool._idle.values()))
        fast = run_member(MemberTask(member.member_id, member.spec), networks)
        reused += bool(before & set(map(id, pool._idle.values())))
        assert fast["status"] == "done", fast["error"]
        plain = run(member.spec).kpi_table().to_dict()
        assert set(plain) <= set(fast["kpis"])
        for key, value in plain.items():
            assert fast["kpis"][key] == pytest.approx(value, rel=1e-9, abs=1e-9), (
                member.element, key)
    assert reused >= 8          # the bursts at end junctions ran on a project left open


def test_a_failing_member_returns_its_traceback(tmp_path, net3_inp):
    broken = tmp_path / "broken.inp"
    broken.write_text(net3_inp.read_text().replace("[PIPES]", "[PIPES]\n 999 10 nowhere 1 1 1"))
    spec = load_scenario(_scenario(tmp_path, broken, "  replications: 1"))
    result = run_member(MemberTask("m1", spec), WorkerNetworks())
    assert result["status"] == "failed"
    assert "Traceback" in result["error"] and "broken.inp" in result["error"]
