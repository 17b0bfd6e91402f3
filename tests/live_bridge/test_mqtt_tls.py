"""Broker login and TLS against a real private Mosquitto: a CA and a server certificate made
with openssl, a password file made with mosquitto_passwd, anonymous access refused."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import threading
import uuid

import pytest

from live_bridge.bridge import Bridge
from live_bridge.checks import Checker
from live_bridge.mqtt import BrokerUnreachable, MqttSettings, Publisher, free_port
from live_bridge.store import open_store
from tests.live_bridge.test_mqtt import T0, readings, registry, wait_for

TOOLS = ("mosquitto", "openssl", "mosquitto_passwd")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason=f"needs {', '.join(TOOLS)} on PATH")


def _run(*cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_broker(tmp_path):
    d = tmp_path
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=d)
    _run("mosquitto_passwd", "-b", "-c", "passwd", "sensor-gw", "s3cret", cwd=d)
    port = free_port()
    (d / "mosquitto.conf").write_text(
        f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\n"
        f"cafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n"
        f"allow_anonymous false\npassword_file {d}/passwd\n"
        f"persistence false\nlog_dest file {d}/mosquitto.log\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(d / "mosquitto.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import socket
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port, str(d / "ca.crt")
    finally:
        proc.terminate()
        proc.wait(10)


def test_readings_over_tls_with_a_password_are_stored(tls_broker, tmp_path):
    port, ca = tls_broker
    tag = uuid.uuid4().hex[:8]
    settings = MqttSettings(host="localhost", port=port, username="sensor-gw",
                            password="s3cret", ca_certs=ca, client_id=f"tls-{tag}",
                            prefix=f"tls{tag}")
    good = readings(30)
    with open_store(f"sqlite:///{tmp_path}/s.db") as store:
        bridge = Bridge(registry(), store, Checker(registry(), now=None, future_tolerance_s=86400))
        done = threading.Event()
        runner = threading.Thread(target=bridge.run_mqtt, args=(settings,),
                                  kwargs={"stop": done.is_set})
        runner.start()
        try:
            assert bridge.ready.wait(15), "the bridge did not subscribe over TLS"
            with Publisher(settings, client_id=f"tls-pub-{tag}") as pub:
                pub.publish_readings(good, batch=50)
                pub.flush()
            wait_for(lambda: bridge.counts.received == len(good), 15, "the readings")
        finally:
            done.set()
            runner.join(30)
        assert store.count() == len(good)
        assert store.readings(wide=True).index.min() == T0


def test_a_wrong_password_is_refused(tls_broker):
    port, ca = tls_broker
    settings = MqttSettings(host="localhost", port=port, username="sensor-gw",
                            password="wrong", ca_certs=ca, client_id="tls-bad")
    with pytest.raises(BrokerUnreachable, match="login"):
        Publisher(settings, client_id="tls-bad-pub").connect(timeout_s=3)
