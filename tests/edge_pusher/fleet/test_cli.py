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
    # a device named twice is one device (it ended in an internal error); --model binds it
    again = edgeship("fleet", "add-device", "pump-3", "pump-3", "--dir", str(folder),
                     "--hardware", "cpu", "--model", "sensor")
    assert again.returncode == 0 and again.stdout.count("pump-3: password in") == 1, \
        again.stderr
    assert "registered as cpu on stable, model sensor" in again.stdout
    assert json.loads((folder / "devices.json").read_text())["devices"]["pump-3"] == {
        "hardware": "cpu", "channel": "stable", "model": "sensor"}
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


def test_watch_on_a_mistyped_bucket_or_channel_fails_in_one_line(tmp_path, repo, publish,
                                                                  bucket, keys_dir) -> None:
    """Issue 18: `rollout watch --once` on a mistyped --bucket or --channel printed nothing
    and exited 0, so a CronJob looked healthy while doing nothing; `fleet status` showed an
    empty fleet."""
    publish(1)
    (tmp_path / "reader").write_text("x")
    register(tmp_path, ["d1"], "cpu", "stable")
    flags = ["--broker", f"mqtt://127.0.0.1:{free_port()}", "--password-file",
             str(tmp_path / "reader"), "--keys", str(keys_dir)]
    empty = tmp_path / "typo"
    empty.mkdir()
    for command in (["rollout", "watch"], ["fleet", "status"]):  # status showed nothing, 0
        done = edgeship(*command, *flags, "--bucket", f"file://{empty}")
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert "holds no repository (no metadata/timestamp.json): check --bucket" in done.stderr
        assert not list(empty.iterdir())  # nothing created there
        done = edgeship(*command, *flags, "--bucket", bucket.url, "--channel", "stabel")
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert "channel 'stabel' has no index" in done.stderr and "check --channel" in \
            done.stderr


@pytest.mark.parametrize("bad", [["--soak", "nan"], ["--soak", "-1"], ["--interval", "-1"],
                                 ["--interval", "0"], ["--interval", "inf"],
                                 ["--max-report-age", "nan"], ["--max-failure-share", "1.5"],
                                 ["--min-healthy", "1.5"], ["--min-failures", "-2"],
                                 ["--stages", "1_0,2_5,10_0"], ["--stages", "5,٢٥,100"]])
def test_non_finite_or_negative_numbers_are_usage_errors(bad, tmp_path) -> None:
    """Issue 18: `--soak nan` skipped the soak; `--interval -1` spun."""
    done = edgeship("rollout", "watch", "--broker", "mqtt://127.0.0.1:1", "--password-file",
                    str(tmp_path / "x"), "--bucket", f"file://{tmp_path}", "--keys",
                    str(tmp_path), *bad)
    assert done.returncode == 2 and bad[0] in done.stderr, done.stderr


def test_the_watcher_needs_the_registry(tmp_path, repo, publish, bucket, keys_dir) -> None:
    publish(1)
    (tmp_path / "reader").write_text("x")
    done = edgeship("rollout", "watch", "--broker", f"mqtt://127.0.0.1:{free_port()}",
                    "--password-file", str(tmp_path / "reader"), "--bucket", bucket.url,
                    "--keys", str(keys_dir))
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert f"{tmp_path / 'devices.json'}: no device registry; register each device with " \
        "'edgeship fleet add-device ID --hardware H --channel C" in done.stderr


def test_add_device_records_identities_in_the_registry(tmp_path) -> None:
    folder = tmp_path / "broker"
    assert edgeship("fleet", "broker-config", str(folder), "--listen",
                    "127.0.0.1:1883").returncode == 0
    assert edgeship("fleet", "add-device", "pump-1", "--dir", str(folder)).returncode == 2
    done = edgeship("fleet", "add-device", "pump-1", "pump-2", "--dir", str(folder),
                    "--hardware", "edgetpu", "--channel", "beta")
    assert done.returncode == 0, done.stderr
    assert "pump-2: password in" in done.stdout and "registered as edgetpu on beta" in done.stdout
    done = edgeship("fleet", "add-device", "pump-2", "--dir", str(folder), "--hardware", "cpu")
    registry = json.loads((folder / "devices.json").read_text())
    assert registry["devices"] == {"pump-1": {"hardware": "edgetpu", "channel": "beta"},
                                   "pump-2": {"hardware": "cpu", "channel": "stable"}}
    bad = edgeship("fleet", "add-device", "pump-3", "--dir", str(folder), "--hardware", "a/b")
    assert bad.returncode == 1 and "invalid hardware 'a/b'" in bad.stderr
    assert "pump-3" not in (folder / "passwords").read_text()  # nothing half-done
    (folder / "devices.json").write_text("{")
    broken = edgeship("fleet", "add-device", "pump-4", "--dir", str(folder), "--hardware", "cpu")
    assert broken.returncode == 1 and "devices.json: the device registry is not JSON" in \
        broken.stderr
    assert "pump-4" not in (folder / "passwords").read_text()


def test_status_flags_what_it_did_not_count_and_escapes_device_text(broker, tmp_path) -> None:
    """Unregistered devices and devices claiming another hardware are shown, not counted;
    device text reaches the terminal escaped (issue 18); one device is "1 device" (issue
    25)."""
    pw = {d: Path(broker.add_device(d)).read_text().strip() for d in ("pump-1", "pump-2")}
    pw["stray"] = broker.add_device("stray")
    registry = json.loads((broker.folder / "devices.json").read_text())
    del registry["devices"]["stray"]  # had a login once, no longer registered
    (broker.folder / "devices.json").write_text(json.dumps(registry))
    pw["stray"] = Path(pw["stray"]).read_text().strip()
    broker.start()
    fake = json.loads(report("pump-1"))
    fake["refused"] = {"sensor/2/cpu": "x\nstable  sensor  9  cpu\x1b[2J"}
    send(connect(broker, "pump-1", pw["pump-1"]), device_topic("pump-1"),
         json.dumps(fake).encode())
    arm = json.loads(report("pump-2")) | {"hardware": "arm"}
    send(connect(broker, "pump-2", pw["pump-2"]), device_topic("pump-2"),
         json.dumps(arm).encode())
    send(connect(broker, "stray", pw["stray"]), device_topic("stray"), report("stray"))
    (broker.folder / "reader").write_text(broker.reader_password)
    flags = ["--broker", broker.url, "--password-file", str(broker.folder / "reader")]
    status = edgeship("fleet", "status", *flags)
    assert status.returncode == 0, status.stderr
    # a reason that is no refusal code (here one that would draw a row and clear the screen)
    # reaches the operator as "other", and the cut is said
    assert "\x1b" not in status.stdout and "sensor  9" not in status.stdout
    lines = status.stdout.splitlines()
    assert "other 1" in lines[1], lines
    assert lines[3:] == [  # the header, v2 (refused), v1
        "1 device reporting", "1 unregistered device ignored: stray",
        "pump-2 ignored: claims 'arm' on 'stable', registered as cpu on stable",
        "1 report cut (e.g. edgeship/devices/pump-1/state: 1 refusals, 1 kept (1 reasons that "
        "are not refusal codes shown as 'other'))"], lines
    as_json = json.loads(edgeship("fleet", "status", *flags, "--json").stdout)
    assert (as_json["unregistered"], list(as_json["mismatched"])) == (["stray"], ["pump-2"])

    (broker.folder / "devices.json").unlink()
    unchecked = edgeship("fleet", "status", *flags)
    assert unchecked.returncode == 0 and "3 devices reporting" in unchecked.stdout
    assert "no device registry at" in unchecked.stdout and "shown unchecked" in unchecked.stdout


def test_broker_config_absolute_tls_paths_and_a_plaintext_warning(tmp_path,
                                                                 monkeypatch) -> None:
    """Issue 18 and 25: TLS paths were written as given (relative), so Mosquitto started from
    another folder could not load them; a plaintext listener on every interface was written
    without a word."""
    from tests.edge_pusher.fleet.test_broker import self_signed

    self_signed(tmp_path / "pki")
    done = subprocess.run(
        [sys.executable, "-m", "edgeship", "fleet", "broker-config", "broker", "--listen",
         "0.0.0.0:8883", "--tls-cert", "pki/broker.pem", "--tls-key", "pki/broker.key",
         "--tls-ca", "pki/ca.pem"], capture_output=True, text=True, env=subprocess_env(),
        timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and "plaintext" not in done.stderr, done.stderr
    conf = (tmp_path / "broker" / "mosquitto.conf").read_text()
    assert f"cafile {tmp_path / 'pki' / 'ca.pem'}\n" in conf
    assert f"certfile {tmp_path / 'pki' / 'broker.pem'}\n" in conf
    assert "//" not in done.stdout  # issue 25: broker//fleet.password
    plain = edgeship("fleet", "broker-config", str(tmp_path / "b2"))
    assert plain.returncode == 0
    assert "warning: 0.0.0.0:1883 is a plaintext listener beyond this machine" in plain.stderr
    local = edgeship("fleet", "broker-config", str(tmp_path / "b3"), "--listen",
                     "127.0.0.1:1883")
    assert local.returncode == 0 and "plaintext" not in local.stderr


def test_the_printed_start_command_starts_mosquitto_as_root(tmp_path) -> None:
    """Issue 25: as root, `mosquitto -c .../mosquitto.conf` (broker-config's hint, and
    fleet.md's) exited with `Unable to open pwfile`: Mosquitto drops to the `mosquitto` user
    before reading the 0600 password file. broker-config gives it the files it reads, and
    add-device keeps them its own."""
    import os
    import shlex
    import shutil
    import signal
    import socket
    import tempfile
    import time

    mosquitto = need_mosquitto()
    if os.geteuid() != 0:
        pytest.skip("checks what Mosquitto does when started as root; not root here")
    base = Path(tempfile.mkdtemp(prefix="edgeship-root-broker-"))
    base.chmod(0o755)  # as /etc/mosquitto is: the broker's user can enter it
    port = free_port()
    process = None
    try:
        done = edgeship("fleet", "broker-config", str(base / "broker"), "--listen",
                        f"127.0.0.1:{port}")
        assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
        command = shlex.split(done.stdout.split("start it with: ", 1)[1].splitlines()[0])
        assert command[0] == "mosquitto"
        log = open(base / "log", "wb")  # noqa: SIM115 - closed with the process below
        process = subprocess.Popen([mosquitto, *command[1:]], stdout=log,
                                   stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        assert process.poll() is None, (base / "log").read_text()
        added = edgeship("fleet", "add-device", "pump-1", "--dir", str(base / "broker"),
                         "--hardware", "cpu")
        assert added.returncode == 0, added.stderr
        process.send_signal(signal.SIGHUP)  # reads the rewritten password file
        time.sleep(0.3)
        broker = type("B", (), {"port": port})()
        password = (base / "broker" / "devices" / "pump-1.password").read_text().strip()
        client = connect(broker, "pump-1", password)
        send(client, device_topic("pump-1"), report("pump-1"))
        client.loop_stop()
        from edgeship.edge_pusher.fleet.reports import read_reports
        from edgeship.mqtt import BrokerLogin

        reader = BrokerLogin(f"mqtt://127.0.0.1:{port}", "fleet",
                             (base / "broker" / "fleet.password").read_text().strip())
        assert set(read_reports(reader).reports) == {"pump-1"}
        assert process.poll() is None and "Unable to open" not in (base / "log").read_text()
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(base)
