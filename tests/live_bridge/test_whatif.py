"""Safe what-if control: forks of a running twin, ranked candidates, the approval gate.

The live state is the shipped ``main_break_peak`` scenario (demo city, a DN500 main
s324 breaks at 07:30, repaired at 11:30) run to 08:00; every fork runs 6 h.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from live_bridge.approval import (ApprovalGate, ApprovalRefused, DryRunActuator, JsonlAuditLog,
                                  MqttActuator)
from live_bridge.whatif import (BASELINE, Action, ActionRefused, Candidate,
                                CandidatesFileError, fork_twin, load_candidates,
                                parse_candidates, plot_whatif, rank_candidates, run_whatif)
from twin.events import PipeBurst, ValveClosed
from twin.networks.water import WaterLayer, load_inp
from twin.twin import Twin

H = 3600.0
ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "main_break_peak.yaml"
AT_S, HORIZON_S = 8 * H, 6 * H


def _live(until_s: float):
    from twin.run import build_twin
    from twin.scenario import load_scenario

    spec = load_scenario(SCENARIO)
    twin = build_twin(spec)
    twin.run(until_s)
    later = [replace(ev, time_s=ev.time_s - until_s) for ev in spec.to_events()
             if ev.time_s > until_s]
    return twin, later


@pytest.fixture(scope="module")
def live():
    twin, later = _live(AT_S)
    yield twin, later
    twin.close()


CANDIDATES = """
candidates:
  - name: isolate_s324
    description: close the broken main at both ends
    actions:
      - {kind: close, element: s324}
  - name: throttle_s324
    actions:
      - {kind: throttle, element: s324, value: 0.2}
  - name: pump2_off_2h
    actions:
      - {layer: water, kind: pump_off, element: pump2, duration: 2h}
"""


@pytest.fixture(scope="module")
def whatif(live):
    twin, later = live
    candidates, _ = parse_candidates(CANDIDATES, "candidates.yaml")
    return run_whatif(twin, candidates, horizon_s=HORIZON_S, future_events=later)


def test_closing_the_broken_main_cuts_the_leak_and_ranks_first(whatif):
    k = {name: r.kpis for name, r in whatif.results.items()}
    base, iso = k[BASELINE], k["isolate_s324"]
    # do nothing: the main leaks until the planned repair at 11:30 (3.5 h after the fork)
    assert 2000 < base["leak_volume_m3"] < 4000
    assert base["water_service_availability"] < 0.99 and base["pressure_deficit_node_hours"] > 100
    # closed: both halves of the split pipe are shut, the hole no longer drains the network
    assert iso["leak_volume_m3"] < 0.01
    assert iso["water_service_availability"] == pytest.approx(1.0)
    assert iso["pressure_deficit_node_hours"] == 0.0 and iso["min_pressure_m"] > 20
    assert whatif.ranking[0] == "isolate_s324"
    assert set(whatif.ranking) == {BASELINE, "isolate_s324", "throttle_s324", "pump2_off_2h"}


def test_ranking_follows_the_kpis(whatif):
    t = whatif.table
    assert list(t["rank"]) == sorted(t["rank"]) and t["rank"].iloc[0] == 1
    avail = t["water_service_availability_pct"].to_numpy()
    deficit = t["pressure_deficit_node_hours"].to_numpy()
    for i in range(len(t) - 1):    # first criterion decides unless within its tolerance
        if abs(avail[i] - avail[i + 1]) >= 0.1:
            assert avail[i] > avail[i + 1]
        else:
            assert deficit[i] <= deficit[i + 1] + 1.0
    for name, row in t.set_index("candidate").iterrows():
        kp = whatif.results[name].kpis
        assert row["leak_volume_m3"] == kp["leak_volume_m3"]
        assert row["water_service_availability_pct"] == pytest.approx(
            100 * kp["water_service_availability"])


def test_a_throttle_changes_the_run(whatif):
    r = whatif.results["throttle_s324"]
    assert [(type(e), e.link_id, e.setting) for e in r.events] == [(ValveClosed, "s324", 0.2)]
    base = whatif.results[BASELINE].kpis
    # less water through the broken main: a little less leak, but the district it feeds
    # gets less pressure too (the throttle is on a supply main): ranked below doing nothing
    assert r.kpis["leak_volume_m3"] < base["leak_volume_m3"] - 20
    assert r.kpis["pressure_deficit_node_hours"] > base["pressure_deficit_node_hours"]
    assert whatif.ranking.index("throttle_s324") > whatif.ranking.index(BASELINE)


def test_a_pump_off_for_two_hours(whatif):
    r, base = whatif.results["pump2_off_2h"].kpis, whatif.results[BASELINE].kpis
    assert r["pump_energy_kwh"] < base["pump_energy_kwh"] - 50
    assert r["water_service_availability"] < base["water_service_availability"] - 0.05
    assert whatif.ranking[-1] == "pump2_off_2h"


def test_weights_rank_by_weighted_cost(whatif):
    k = {name: r.kpis for name, r in whatif.results.items()}
    t = rank_candidates(k, weights={"pump_energy_kwh": 1.0})
    energy = [k[n]["pump_energy_kwh"] for n in t["candidate"]]
    assert energy == sorted(energy) and t["candidate"].iloc[0] == "pump2_off_2h"
    assert t["score"].tolist() == pytest.approx(energy)
    with pytest.raises(ValueError, match="unknown KPI.*leak_m3"):
        rank_candidates(k, weights={"leak_m3": 1.0})


def test_baseline_fork_continues_the_live_run(live, whatif):
    """The do-nothing fork is the live twin carried on: same tank level at the fork,
    same pressures over the horizon as the scenario run straight through."""
    twin, _ = live
    base = whatif.results[BASELINE]
    live_tank = twin.recorder.wide("water", "tank_level").loc[AT_S]
    assert base.tank_level_m.loc[0.0].to_numpy() == pytest.approx(live_tank.to_numpy(), abs=1e-6)
    straight, _ = _live(AT_S + HORIZON_S)
    try:
        ref = straight.recorder.wide("water", "pressure").loc[AT_S:]
        ref = ref.set_axis(ref.index - AT_S)
        ours = base.pressure_m.loc[ref.index, ref.columns]
        assert np.abs(ours.to_numpy() - ref.to_numpy()).max() < 1e-3
    finally:
        straight.close()


def test_unknown_element_is_refused(live):
    twin, _ = live
    bad = Candidate("typo", (Action("water", "close", "s9999"),), where="c.yaml:3")
    with pytest.raises(ActionRefused, match=r"c.yaml:3: candidate 'typo' action 1: "
                                            r"water.close s9999: unknown link 's9999'"):
        run_whatif(twin, [bad])
    pump = Candidate("p", (Action("water", "pump_off", "s324"),))
    with pytest.raises(ActionRefused, match="unknown pump 's324'"):
        run_whatif(twin, [pump])
    throttle_pump = Candidate("tp", (Action("water", "throttle", "pump1", 0.5),))
    with pytest.raises(ActionRefused, match="only pipes can be throttled"):
        run_whatif(twin, [throttle_pump])


def test_actions_on_layers_not_built_are_refused(live):
    twin, _ = live
    candidates, _ = parse_candidates("""
candidates:
  - name: open_overflow_gate
    actions: [{layer: sewer, kind: gate, element: G1, value: 0.5}]
""")
    with pytest.raises(ActionRefused, match="no sewer layer in this twin"):
        run_whatif(twin, candidates)
    dim = Candidate("dim", (Action("lighting", "dim", "L1", 0.3),))
    with pytest.raises(ActionRefused, match="no lighting layer in this twin"):
        run_whatif(twin, [dim])


def test_forked_state_equals_the_live_state(net3_inp):
    """Net3 with a burst at 5 h, forked at 9 h: tank levels and link states carried over."""
    live = Twin(seed=0)
    water = live.add_layer(WaterLayer(load_inp(net3_inp), horizon_s=24 * H,
                                      planned_bursts=[("123", 0.5)]))
    live.schedule([PipeBurst(time_s=5 * H, pipe_id="123", leak_area_m2=0.004)])
    live.run(9 * H)
    state = water.snapshot()
    fork = fork_twin(live, 2 * H)
    try:
        fork.run(0)
        fl = fork.layers["water"]
        assert fork.clock.start == live.clock.now
        levels = fork.recorder.wide("water", "tank_level").loc[0.0]
        assert levels.to_dict() == pytest.approx(state["tank_levels_m"], abs=1e-6)
        assert fl.snapshot()["link_status"] == state["link_status"]
        assert [lk.event.pipe_id for lk in fl.leaks.values()] == ["123"]   # the leak goes on
    finally:
        fork.close()
        live.close()


@pytest.mark.parametrize("text, line, message", [
    ("candidates:\n  - name: a\n    actions:\n      - {kind: throttle, element: s1, value: 1.5}\n",
     4, r"candidates\[0\]\.actions\[0\]\.value: expected the relative opening"),
    ("candidates:\n  - name: a\n    actions:\n      - {kind: shut, element: s1}\n",
     4, r"kind: expected a water action \(close, throttle, open, pump_off\), got 'shut'"),
    ("candidates:\n  - name: a\n    actions: [{kind: close, element: s1, speed: 2}]\n",
     3, r"actions\[0\]\.speed: unknown field"),
    ("candidates:\n  - name: a\n    actions: [{kind: close, element: s1}]\n"
     "  - name: a\n    actions: [{kind: close, element: s2}]\n",
     4, r"candidates\[1\]\.name: 'a' again \(first on line 2\)"),
    ("candidates:\n  - name: do_nothing\n    actions: [{kind: close, element: s1}]\n",
     2, "baseline every what-if includes"),
    ("candidates:\n  - name: a\n    actions: [{kind: close, element: s1, duration: soon}]\n",
     3, r"duration: expected a duration"),
    ("candidates: [\n", 2, "expected valid YAML"),
])
def test_candidates_file_errors_are_located(tmp_path, text, line, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(CandidatesFileError, match=message) as err:
        load_candidates(path)
    assert err.value.line == line and str(err.value).startswith(f"{path}:{line}: ")


def test_candidates_file_json_and_horizon(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"horizon": "4h", "candidates": [
        {"name": "late_close", "actions": [{"kind": "close", "element": "s1", "start": "30min",
                                            "duration": 3600}]}]}))
    candidates, horizon_s = load_candidates(path)
    assert horizon_s == 4 * H
    assert candidates[0].actions == (Action("water", "close", "s1", None, 1800.0, 3600.0),)


def test_cli_whatif_json_and_figure(net3_inp, tmp_path, capsys):
    from twin.cli import main

    (tmp_path / "c.yaml").write_text("candidates:\n"
                                     "  - name: pump10_off\n"
                                     "    actions: [{kind: pump_off, element: '10', duration: 2h}]\n"
                                     "  - name: close_pipe_20\n"
                                     "    actions: [{kind: close, element: '20'}]\n")
    out = tmp_path / "out"
    code = main(["whatif", "--inp", str(net3_inp), "--at", "5", "--candidates",
                 str(tmp_path / "c.yaml"), "--horizon-hours", "4", "--out", str(out), "--json"])
    assert code == 0
    stdout = capsys.readouterr().out
    data = json.loads(stdout.strip().splitlines()[-1])
    assert set(data["ranking"]) == {BASELINE, "pump10_off", "close_pipe_20"}
    assert data["at_s"] == 5 * H and data["horizon_s"] == 4 * H
    kp = data["candidates"]
    assert kp["pump10_off"]["kpis"]["pump_energy_kwh"] < kp[BASELINE]["kpis"]["pump_energy_kwh"]
    assert (out / "whatif.png").stat().st_size > 10_000 and (out / "whatif.csv").exists()
    assert "rank" in stdout and "availability_%" in stdout

    (tmp_path / "bad.yaml").write_text("candidates:\n  - name: a\n"
                                       "    actions: [{kind: close, element: 'nope'}]\n")
    code = main(["whatif", "--inp", str(net3_inp), "--at", "1", "--candidates",
                 str(tmp_path / "bad.yaml")])
    assert code == 2
    assert "bad.yaml:2: candidate 'a' action 1: water.close nope: unknown link 'nope'" \
        in capsys.readouterr().err


def test_plot_whatif(whatif, tmp_path):
    path = plot_whatif(whatif, tmp_path / "fig.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the approval gate --------------------------------------------------------------------
def test_approval_refused_without_or_with_a_wrong_token_accepted_with_the_right_one(whatif, tmp_path):
    audit = JsonlAuditLog(tmp_path / "audit.jsonl")
    actuator = DryRunActuator()
    env: dict[str, str] = {}
    gate = ApprovalGate(audit, actuator, environ=env)
    pid = gate.propose("isolate_s324", whatif, proposer="planner")
    with pytest.raises(ApprovalRefused, match="no operator token configured.*TWIN_OPERATOR_TOKEN"):
        gate.approve(pid, "alice", "s3cret")
    env["TWIN_OPERATOR_TOKEN"] = "s3cret"
    with pytest.raises(ApprovalRefused, match="wrong operator token"):
        gate.approve(pid, "alice", "guess")
    with pytest.raises(ApprovalRefused, match="operator's name"):
        gate.approve(pid, "  ", "s3cret")
    assert actuator.sent == []                            # nothing went out so far
    commands = gate.approve(pid, "alice", "s3cret")
    assert [(c.kind, c.element, c.approved_by) for c in commands] == [("close", "s324", "alice")]
    assert actuator.sent == commands
    with pytest.raises(ApprovalRefused, match="already sent"):
        gate.approve(pid, "bob", "s3cret")
    with pytest.raises(ApprovalRefused, match="unknown proposal 'nope'"):
        gate.approve("nope", "alice", "s3cret")

    entries = audit.entries()
    assert [e["kind"] for e in entries] == ["proposal", "refusal", "refusal", "refusal",
                                            "approval", "command_sent", "refusal", "refusal"]
    proposal = entries[0]["payload"]
    assert entries[0]["actor"] == "planner" and proposal["candidate"] == "isolate_s324"
    assert proposal["rank"] == 1 and proposal["kpis"]["leak_volume_m3"] < 0.01
    assert proposal["baseline_kpis"]["leak_volume_m3"] > 2000
    assert entries[5]["payload"]["element"] == "s324" and entries[5]["actor"] == "alice"
    assert "s3cret" not in (tmp_path / "audit.jsonl").read_text()   # never the token


def test_token_file_and_nothing_to_approve(whatif, tmp_path):
    token = tmp_path / "token"
    token.write_text("from-file\n")
    gate = ApprovalGate(JsonlAuditLog(tmp_path / "a.jsonl"), environ={"TWIN_OPERATOR_TOKEN_FILE": str(token),
                                                                      "TWIN_OPERATOR_TOKEN": "env"})
    pid = gate.propose("pump2_off_2h", whatif)
    with pytest.raises(ApprovalRefused, match="wrong operator token"):
        gate.approve(pid, "alice", "env")                  # the file wins over the variable
    assert gate.approve(pid, "alice", "from-file")[0].duration_s == 2 * H
    with pytest.raises(ApprovalRefused, match="no actions: nothing to approve"):
        gate.propose(BASELINE, whatif)
    with pytest.raises(ApprovalRefused, match="not among the simulated"):
        gate.propose("close_everything", whatif)


def test_gate_writes_to_any_log_with_a_log_method(whatif, tmp_path):
    """The live bridge's store (or anything with ``log(kind, payload, actor)``) plugs in."""
    store_mod = pytest.importorskip("live_bridge.store")
    store = store_mod.open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        gate = ApprovalGate(store, environ={"TWIN_OPERATOR_TOKEN": "t"})
        gate.approve(gate.propose("isolate_s324", whatif), "alice", "t")
        kinds = list(store.log_entries()["kind"])
        assert kinds == ["proposal", "approval", "command_sent"]
    finally:
        store.close()


def _broker_up(host: str = "127.0.0.1", port: int = 1883) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def test_mqtt_actuator_publishes_the_approved_command(whatif, tmp_path):
    if not _broker_up():
        pytest.skip("no MQTT broker on 127.0.0.1:1883 (start mosquitto)")
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    received: list[mqtt.MQTTMessage] = []
    subscribed, got = threading.Event(), threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/commands/#", qos=1)
    sub.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    sub.on_message = lambda c, u, msg: (received.append(msg), got.set())
    sub.connect("127.0.0.1", 1883)
    sub.loop_start()
    try:
        assert subscribed.wait(5), "subscription not acknowledged"
        audit = JsonlAuditLog(tmp_path / "audit.jsonl")
        gate = ApprovalGate(audit, MqttActuator(prefix=prefix), environ={"TWIN_OPERATOR_TOKEN": "ok"})
        pid = gate.propose("isolate_s324", whatif)
        gate.approve(pid, "alice", "ok")
        assert got.wait(5), "no command received"
    finally:
        sub.loop_stop()
        sub.disconnect()
    msg = received[0]
    assert msg.topic == f"{prefix}/commands/s324" and msg.qos == 1
    payload = json.loads(msg.payload)
    assert payload["proposal_id"] == pid and payload["kind"] == "close"
    assert payload["element"] == "s324" and payload["approved_by"] == "alice"
    assert [e["kind"] for e in audit.entries()][-1] == "command_sent"


def test_mqtt_actuator_failure_is_logged(whatif, tmp_path):
    with socket.socket() as s:           # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    audit = JsonlAuditLog(tmp_path / "audit.jsonl")
    gate = ApprovalGate(audit, MqttActuator(port=port, timeout_s=2), environ={"TWIN_OPERATOR_TOKEN": "ok"})
    pid = gate.propose("isolate_s324", whatif)
    with pytest.raises(RuntimeError, match=f"127.0.0.1:{port}: cannot connect"):
        gate.approve(pid, "alice", "ok")
    assert [e["kind"] for e in audit.entries()] == ["proposal", "approval", "command_failed"]
