"""`edgeship fleet ...` and `edgeship rollout watch` from the command line, on a real broker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgeship.contract import device_topic, rollout_bucket
from edgeship.edge_pusher.fleet.registry import register
from tests.edge_pusher.fleet.test_broker import connect, report
from tests.edge_pusher.fleet.test_broker import publish as send
from tests.helpers.mqtt import Broker, free_port, need_mosquitto
from tests.helpers.ota import subprocess_env


def edgeship(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeship", *args], capture_output=True,
                          text=True, env=subprocess_env(), timeout=120)


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker")
    yield b
    b.stop()


def test_broker_config_and_add_device(tmp_path) -> None:
    need_mosquitto()
    folder = tmp_path / "broker"
    done = edgeship("fleet", "broker-config", str(folder), "--listen", "127.0.0.1:1883")
    assert done.returncode == 0, done.stderr
    assert "allow_anonymous false" in (folder / "mosquitto.conf").read_text()
    assert (folder / "fleet.password").stat().st_mode & 0o077 == 0
    added = edgeship("fleet", "add-device", "pump-1", "pump-2", "--dir", str(folder),
                     "--hardware", "cpu")
    assert added.returncode == 0, added.stderr
    users = [line.split(":")[0] for line in (folder / "passwords").read_text().splitlines()]
    assert users == ["fleet", "pump-1", "pump-2"]
    assert (folder / "devices" / "pump-2.password").stat().st_mode & 0o077 == 0
    reserved = edgeship("fleet", "add-device", "fleet", "--dir", str(folder), "--hardware", "x")
    assert reserved.returncode == 1 and "fleet reader's MQTT user" in reserved.stderr
    bad = edgeship("fleet", "add-device", "a/b", "--dir", str(folder), "--hardware", "x")
    assert bad.returncode == 1 and "invalid device id 'a/b'" in bad.stderr
    (tmp_path / "a-file").write_text("")
    unwritable = edgeship("fleet", "broker-config", str(tmp_path / "a-file" / "broker"))
    assert unwritable.returncode == 1 and unwritable.stderr.count("\n") == 1
    assert unwritable.stderr.startswith(f"edgeship: error: {tmp_path / 'a-file'}")
    tls = edgeship("fleet", "broker-config", str(folder), "--tls-cert", "x.pem")
    assert tls.returncode == 1 and "needs all of --tls-cert, --tls-key and --tls-ca" in tls.stderr


def test_status_and_watch_from_the_command_line(broker, repo, publish, bucket,
                                                keys_dir, tmp_path) -> None:
    ids = [f"d{i}" for i in range(3000) if rollout_bucket(f"d{i}", "sensor", 2) < 5][:3]
    passwords = {d: Path(broker.add_device(d)).read_text().strip() for d in ids}
    broker.start()
    publish(1)
    publish(2, which="b", rollout=5)
    for d in ids:
        send(connect(broker, d, passwords[d]), device_topic(d), report(d, 2))
    (broker.folder / "reader").write_text(broker.reader_password)
    flags = ["--broker", broker.url, "--password-file", str(broker.folder / "reader")]
    repo_flags = ["--bucket", bucket.url, "--keys", str(keys_dir)]

    status = edgeship("fleet", "status", *flags, *repo_flags, "--history",
                      str(tmp_path / "history.jsonl"))
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].split()[:4] == ["channel", "model", "version", "hardware"]
    assert lines[1].split()[:8] == ["stable", "sensor", "2", "cpu", "5%", "active", "3", "0"]
    assert lines[-1] == "3 devices reporting"
    as_json = json.loads(edgeship("fleet", "status", *flags, "--json").stdout)
    assert as_json["devices"] == 3 and as_json["builds"][0]["running"] == 3

    watch = edgeship("rollout", "watch", *flags, *repo_flags, "--soak", "0", "--min-healthy",
                     "3", "--log", str(tmp_path / "decisions.jsonl"))
    assert watch.returncode == 0, watch.stderr
    assert "sensor v2 (cpu) on stable: advance at 5% -> 25%: 3 healthy of 3 covered" \
        in watch.stdout
    (decision,) = [json.loads(line) for line in (tmp_path / "decisions.jsonl").open()]
    assert decision["counts"]["healthy"] == 3 and decision["to"] == 25

    page = tmp_path / "fleet.html"
    report_run = edgeship("fleet", "report", *flags, *repo_flags, "--html", str(page),
                          "--history", str(tmp_path / "history.jsonl"))
    assert report_run.returncode == 0, report_run.stderr
    assert page.read_text().count("<svg") == 3


def test_watch_with_the_broker_down_decides_nothing_and_fails_the_run(tmp_path, repo,
                                                                      publish,
                                                                      bucket, keys_dir):
    publish(1, rollout=5)
    (tmp_path / "reader").write_text("x")
    register(tmp_path, ["d1"], "cpu", "stable")  # devices.json beside the password file
    watch = edgeship("rollout", "watch", "--broker", f"mqtt://127.0.0.1:{free_port()}",
                     "--password-file", str(tmp_path / "reader"), "--bucket", bucket.url,
                     "--keys", str(keys_dir), "--soak", "0")
    assert watch.returncode == 1
    assert "no reports (cannot reach the broker" in watch.stderr and "nothing decided" in \
        watch.stderr
    assert repo.read_index("stable")["models"]["sensor"][0]["rollout"] == 5
