"""Ensembles on Dask: same results whatever the workers (random members too), a killed
worker's members run again and are recorded once, a re-run resumes, failures are recorded,
an existing cluster is used by its address, an unreachable one is a clear error."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from twin.cli import main
from twin.ensemble import dask_client, run_ensemble
from twin.ensemble_store import load_members
from twin.errors import BadInput
from twin.scenario import load_scenario


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as c:
        yield c


def _scenario(folder: Path, inp: Path, ensemble: str, horizon: str = "24h",
              extra: str = "") -> Path:
    path = folder / "ens.yaml"
    path.write_text(f"name: ens\ncity: {{inp: {json.dumps(str(inp))}}}\nhorizon: {horizon}\n"
                    f"{extra}ensemble:\n{ensemble}\n")
    return path


def _kpis(out: Path) -> pd.DataFrame:
    rows = load_members(out)
    keep = ["member_id", "status", "seed", "element", "params"] + sorted(
        c for c in rows.columns if c.startswith("water."))
    return rows[keep].sort_values("member_id").reset_index(drop=True)


def test_same_results_with_one_and_two_workers(tmp_path, net3_inp, client, capsys):
    path = _scenario(tmp_path, net3_inp, """\
  sweep:
    - {type: pipe_burst, at: 3h, duration: 6h, pipe: {each: pipe, min_diameter_mm: 400, sample: 5}}
  grid:
    sweep[0].leak_area_m2: [0.002, 0.01]
  seeds: [7, 8]""")
    one, two = tmp_path / "one", tmp_path / "two"
    # one worker through the command line, with its report
    assert main(["ensemble", str(path), "--out", str(one), "--workers", "1", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload["members"] == payload["done"] == 20
    assert payload["failed"] == payload["skipped"] == 0 and payload["workers"] == 1
    assert payload["seconds"] > 0 and Path(payload["report"]).is_file()
    summary = run_ensemble(load_scenario(path), two, client=client, batch_size=2,
                           progress=False)
    assert summary.done == 20 and summary.workers == 2
    a, b = _kpis(one), _kpis(two)
    assert len(a) == 20 and a["status"].eq("done").all()
    pd.testing.assert_frame_equal(a, b)
    assert a["water.leak_volume_m3"].gt(0).all()
    bigger = a.assign(area=a["params"].map(lambda p: json.loads(p)["sweep[0].leak_area_m2"]))
    per_area = bigger.groupby("area")["water.leak_volume_m3"].mean()
    assert per_area[0.01] > 3 * per_area[0.002]                     # a bigger hole loses more


def test_a_killed_worker_s_members_are_recorded_exactly_once(tmp_path, net3_inp, client):
    # one-minute hydraulic steps: each member takes long enough to be caught running
    path = _scenario(tmp_path, net3_inp, """\
  sweep:
    - {type: pipe_burst, at: 1h, leak_area_m2: 0.003, pipe: {each: pipe, sample: 16}}""",
                     horizon="24h", extra="step: 1min\n")
    killed: list[int] = []

    def kill_once(rows):
        if not killed:
            killed.append(rows[0]["worker_pid"])
            os.kill(rows[0]["worker_pid"], signal.SIGKILL)

    out = tmp_path / "out"
    summary = run_ensemble(load_scenario(path), out, client=client, batch_size=1,
                           progress=False, on_batch=kill_once)
    assert killed
    assert summary.members == summary.done == 16 and summary.failed == 0
    rows = load_members(out)
    assert len(rows) == 16 and rows["member_id"].is_unique and rows["status"].eq("done").all()
    written = pd.concat([pd.read_parquet(p) for p in (out / "members").glob("part-*.parquet")])
    assert len(written) == 16 and written["member_id"].is_unique     # once on disk too
    assert killed[0] in set(rows["worker_pid"])                      # it worked before dying
    assert len(set(rows["worker_pid"]) - {killed[0]}) >= 1           # others finished


def test_a_re_run_skips_what_is_done(tmp_path, net3_inp, client):
    path = _scenario(tmp_path, net3_inp, """\
  grid:
    policies.water.service_pressure_m: [10, 15, 20, 25, 30, 35]""", horizon="6h")
    out = tmp_path / "out"
    spec = load_scenario(path)
    first = run_ensemble(spec, out, client=client, batch_size=2, progress=False)
    assert (first.done, first.skipped) == (6, 0)
    again = run_ensemble(spec, out, client=client, progress=False)
    assert (again.done, again.skipped) == (0, 6)
    one_part = sorted((out / "members").glob("part-*.parquet"))[0]
    lost = set(pd.read_parquet(one_part)["member_id"])
    one_part.unlink()                                                # as if it never landed
    third = run_ensemble(spec, out, client=client, progress=False)
    assert (third.done, third.skipped) == (len(lost), 6 - len(lost))
    rows = load_members(out)
    assert len(rows) == 6 and rows["status"].eq("done").all()
    # the same hydraulics (Net3 is demand-driven): a higher service pressure, more nodes below
    below = rows.sort_values("param:policies.water.service_pressure_m")[
        "water.max_nodes_below_service_pressure"]
    assert below.is_monotonic_increasing and below.iloc[-1] > below.iloc[0]
    assert rows["water.min_pressure_m"].nunique() == 1
    other = _scenario(tmp_path, net3_inp, "  replications: 2", horizon="5h")
    with pytest.raises(BadInput, match="another scenario"):
        run_ensemble(load_scenario(other), out, client=client, progress=False)


def test_a_failing_member_is_recorded_and_the_others_go_on(tmp_path, net3_inp, client):
    broken = tmp_path / "broken.inp"
    broken.write_text(net3_inp.read_text().replace("[PIPES]", "[PIPES]\n 999 10 nowhere 1 1 1"))
    path = _scenario(tmp_path, net3_inp, f"""\
  grid:
    city.inp: [{json.dumps(str(net3_inp))}, {json.dumps(str(broken))}]
    policies.water.service_pressure_m: [15, 20]""", horizon="2h")
    summary = run_ensemble(load_scenario(path), tmp_path / "out", client=client,
                           progress=False)
    assert (summary.done, summary.failed) == (2, 2)
    rows = load_members(tmp_path / "out")
    failed = rows[rows["status"] == "failed"]
    assert failed["param:city.inp"].eq(str(broken)).all()
    assert failed["error"].str.contains("broken.inp").all()
    assert rows.loc[rows["status"] == "done", "water.demand_required_m3"].gt(0).all()


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, net3_inp, capsys):
    with pytest.raises(BadInput, match="no Dask scheduler answered within 2 s"):
        with dask_client(scheduler="tcp://127.0.0.1:9", timeout_s=2):
            pass
    with pytest.raises(BadInput, match="expected a Dask scheduler address"):
        with dask_client(scheduler="http://127.0.0.1:9"):
            pass
    path = _scenario(tmp_path, net3_inp, "  replications: 1", horizon="1h")
    code = main(["ensemble", str(path), "--out", str(tmp_path / "o"), "--scheduler",
                 "tcp://127.0.0.1:9"])
    assert code == 2
    assert "tcp://127.0.0.1:9" in capsys.readouterr().err


def test_random_members_same_results_with_one_and_two_workers(tmp_path, client):
    """Members whose runs draw random numbers (the request service: requests, places,
    delays): the seed decides them, never the worker or how many there are."""
    path = tmp_path / "crews.yaml"
    path.write_text("""\
name: crews
city: {demo: {population: 12000, seed: 3}}
start: 2026-03-02T00:00
horizon: 2d
step: 1h
citizens: {crews: 8}
outputs: {quantities: [pressure]}
ensemble:
  grid:
    citizens.crews: [8, 16]
  seeds: [1, 2]
""")
    spec = load_scenario(path)
    one = run_ensemble(spec, tmp_path / "one", workers=1, progress=False)
    two = run_ensemble(spec, tmp_path / "two", client=client, batch_size=1, progress=False)
    assert one.done == two.done == 4 and one.workers == 1 and two.workers == 2
    a, b = load_members(tmp_path / "one"), load_members(tmp_path / "two")
    kpis = ["member_id", "seed", "params"] + sorted(c for c in a.columns
                                                    if c.startswith("citizens."))
    pd.testing.assert_frame_equal(a[kpis], b[kpis])
    assert len(set(b["worker_pid"])) == 2                     # both workers ran members
    by_seed = a.groupby("seed")["citizens.requests"]
    assert by_seed.nunique().eq(1).all()          # a seed's requests whatever the crews
    assert by_seed.first().nunique() == 2         # another seed, other requests
    assert a["citizens.requests"].gt(0).all()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_existing_cluster_by_its_address(tmp_path, net3_inp, capsys):
    """A cluster started apart, as on a cluster's machines (`dask scheduler`, `dask worker`
    in their own processes): `twin ensemble --scheduler tcp://HOST:PORT` runs on it,
    unchanged, and leaves it running."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    dask = str(Path(sys.executable).with_name("dask"))
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port",
                               address.rsplit(":", 1)[1], "--no-dashboard"], **quiet)]
    try:
        procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "2",
                                       "--nthreads", "1", "--no-dashboard"], **quiet))
        deadline = time.monotonic() + 90
        while True:               # the scheduler takes a moment to listen
            try:
                with Client(address, timeout="5s") as probe:
                    probe.wait_for_workers(2, timeout=60)
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        path = _scenario(tmp_path, net3_inp, """\
  sweep:
    - {type: pipe_burst, at: 1h, leak_area_m2: 0.005, pipe: {each: pipe, sample: 6}}""",
                         horizon="6h")
        code = main(["ensemble", str(path), "--out", str(tmp_path / "out"), "--scheduler",
                     address, "--json", "--no-report"])
        assert code == 0
        payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert payload["done"] == 6 and payload["workers"] == 2
        assert payload["scheduler"] == address
        rows = load_members(tmp_path / "out")
        assert rows["status"].eq("done").all() and rows["water.leak_volume_m3"].gt(0).all()
        with Client(address, timeout="5s") as after:                 # still there
            assert len(after.scheduler_info()["workers"]) == 2
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
