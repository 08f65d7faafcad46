"""A device's report: what it says, that it reaches a real broker on its own topic, and that
reporting never blocks or fails a poll (broker down, broker back, a reporter that breaks)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgeship.device.report import MqttReporter, build_report
from edgeship.edge_pusher.fleet.reports import read_reports
from edgeship.mqtt import BrokerLogin
from tests.helpers.mqtt import Broker
from tests.helpers.ota import subprocess_env


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker")
    yield b
    b.stop()


def reader(broker: Broker) -> BrokerLogin:
    return BrokerLogin(broker.url, "fleet", broker.reader_password)


def device_login(broker: Broker, device_id: str) -> BrokerLogin:
    password = Path(broker.add_device(device_id)).read_text().strip()
    return BrokerLogin(broker.url, device_id, password)


def wait_for(condition, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    return None


def test_the_report_says_what_the_device_runs_and_refused(publish, make_agent, repo) -> None:
    publish(1)
    agent = make_agent(device_id="pump-7")
    agent.poll_once()
    publish(2, which="b")
    agent.poll_once()
    repo.change_rollout("sensor", 2, state="revoked")
    agent.poll_once()
    agent.state.set_health("unhealthy", "  temperature   readings\nstuck ")
    report = build_report(agent.state_dir)
    assert report["schema_version"] == 1 and report["device_id"] == "pump-7"
    assert (report["hardware"], report["channel"]) == ("cpu", "stable")
    assert report["active"] | {"sha256": "x"} == {"name": "sensor", "version": 1,
                                                  "sha256": "x", "verified": True}
    assert report["previous"] == {"name": "sensor", "version": 2}
    assert report["last_result"] == {"action": "reverted", "reason": "revoked"}
    assert report["refused"] == {"sensor/2/cpu": "revoked"}
    assert report["health"] | {"at": "t"} == {"state": "unhealthy", "reason":
                                              "temperature readings stuck", "name": "sensor",
                                              "version": 1, "at": "t"}
    assert len(json.dumps(report, separators=(",", ":"))) < 1024


def test_every_poll_reports_to_the_broker_on_the_devices_own_topic(broker, publish,
                                                                   make_agent) -> None:
    login = device_login(broker, "pump-7")
    broker.start()
    publish(1)
    reporter = MqttReporter(login, "pump-7")
    try:
        agent = make_agent(device_id="pump-7", reporter=reporter)
        assert agent.poll_once().action == "updated"
        assert reporter.flush(5)
        got = read_reports(reader(broker))
        assert got.reports["pump-7"]["active"]["version"] == 1
        assert got.reports["pump-7"]["last_result"]["action"] == "updated"
    finally:
        reporter.close()


def test_a_poll_with_the_broker_down_succeeds_and_reports_once_it_is_back(
        broker, publish, make_agent) -> None:
    login = device_login(broker, "pump-7")
    publish(1)
    reporter = MqttReporter(login, "pump-7")  # the broker is not running yet
    try:
        agent = make_agent(device_id="pump-7", reporter=reporter)
        assert agent.poll_once().action == "updated"
        assert agent.poll_once().action == "up-to-date"
        assert reporter.reports == 2 and not reporter.flush(0.2)  # handed over, not sent
        broker.start()
        got = wait_for(lambda: read_reports(reader(broker)).reports.get("pump-7"), 15)
        assert got and got["last_result"]["action"] == "up-to-date"  # the newest report
    finally:
        reporter.close()


def test_a_reporter_that_breaks_never_fails_the_poll(publish, make_agent, caplog) -> None:
    class Broken:
        def publish(self, report):
            raise RuntimeError("socket gone")

    publish(1)
    agent = make_agent(reporter=Broken())
    assert agent.poll_once().action == "updated"
    assert "report not sent: socket gone" in caplog.text


def edgeship(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeship", *args], capture_output=True,
                          text=True, env=subprocess_env(), timeout=120)


def test_the_command_line_reports_polls_and_the_applications_health(
        broker, publish, bucket, keys_dir, tmp_path) -> None:
    password_file = broker.add_device("pump-7")
    broker.start()
    publish(1)
    state = str(tmp_path / "device")
    flags = ["--report-to", broker.url, "--mqtt-password-file", password_file]
    poll = edgeship("device", "poll", "--repo", bucket.url, "--trusted-root",
                    str(keys_dir / "root_history" / "1.root.json"), "--state-dir", state,
                    "--device-id", "pump-7", "--once", *flags)
    assert poll.returncode == 0, poll.stderr
    assert read_reports(reader(broker)).reports["pump-7"]["health"] is None
    health = edgeship("device", "report-health", "unhealthy", "--reason", "drifting",
                      "--state-dir", state, *flags)
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout)["version"] == 1
    said = read_reports(reader(broker)).reports["pump-7"]["health"]
    assert (said["state"], said["reason"], said["version"]) == ("unhealthy", "drifting", 1)


def test_report_health_needs_an_active_model(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    nothing = edgeship("device", "report-health", "healthy", "--state-dir",
                       str(tmp_path / "empty"))
    assert nothing.returncode == 1 and "no active model" in nothing.stderr
    assert nothing.stderr.count("\n") == 1


@pytest.mark.parametrize("flags", [["--report-to", "http://broker:1883"],
                                   ["--report-to", "mqtts://broker:8883", "--mqtt-ca", "/no"],
                                   ["--report-to", "mqtt://broker", "--mqtt-password-file", "/no"]])
def test_a_reporting_misconfiguration_never_fails_the_poll(publish, bucket, keys_dir, tmp_path,
                                                           flags) -> None:
    """Found in review: a bad --report-to, CA or password file stopped the poll."""
    publish(1)
    poll = edgeship("device", "poll", "--repo", bucket.url, "--trusted-root",
                    str(keys_dir / "root_history" / "1.root.json"), "--state-dir",
                    str(tmp_path / "d"), "--device-id", "d", "--once", *flags)
    assert poll.returncode == 0, poll.stderr
    assert json.loads(poll.stdout)["action"] == "updated"
    assert poll.stderr.startswith("edgeship: warning: not reporting: ")


def test_reports_keep_flowing_from_a_device_polling_forever(broker, publish,
                                                            make_agent) -> None:
    login = device_login(broker, "pump-7")
    broker.start()
    publish(1)
    reporter = MqttReporter(login, "pump-7")
    stop = threading.Event()
    agent = make_agent(device_id="pump-7", reporter=reporter)
    worker = threading.Thread(target=agent.run_forever, args=(0.2,), kwargs={"stop": stop})
    worker.start()
    try:
        assert wait_for(lambda: read_reports(reader(broker)).reports.get("pump-7"))
        publish(2, which="b")
        got = wait_for(lambda: (r := read_reports(reader(broker)).reports.get("pump-7"))
                       and r["active"]["version"] == 2 and r)
        assert got and got["previous"] == {"name": "sensor", "version": 1}
    finally:
        stop.set()
        worker.join(10)
        reporter.close()


def test_report_health_with_a_bad_broker_url_records_and_warns(publish, make_agent) -> None:
    """Found in review: with reporting not set up, report-health crashed on None."""
    publish(1)
    agent = make_agent()
    agent.poll_once()
    done = edgeship("device", "report-health", "unhealthy", "--state-dir", agent.state_dir,
                    "--report-to", "http://nowhere")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("edgeship: warning: not reporting: ")
    assert agent.state.health()["state"] == "unhealthy"


def test_a_reconnecting_reporter_sends_the_state_as_it_is_now(broker, publish,
                                                              make_agent) -> None:
    """Found in review: report-health from another process (same MQTT user, so the same
    client id) knocked the poller off; the poller came back with its older report and hid
    the verdict until its next poll. A reporter with a source rebuilds on every connect."""
    login = device_login(broker, "pump-7")
    broker.start()
    publish(1)
    agent = make_agent(device_id="pump-7")
    reporter = MqttReporter(login, "pump-7", source=lambda: build_report(agent.state_dir))
    agent.reporter = reporter
    try:
        agent.poll_once()
        assert reporter.flush(5)
        password = str(broker.folder / "devices" / "pump-7.password")
        health = edgeship("device", "report-health", "unhealthy", "--reason", "stuck",
                          "--state-dir", agent.state_dir, "--report-to", broker.url,
                          "--mqtt-password-file", password)
        assert health.returncode == 0, health.stderr
        assert wait_for(lambda: reporter.connects >= 2, 30)  # knocked off, and back
        assert reporter.flush(10)  # and what it sent on coming back is acknowledged
        said = read_reports(reader(broker)).reports["pump-7"]["health"]
        assert said and said["state"] == "unhealthy"
    finally:
        reporter.close()
