"""Issue 18's one-device attacks on the rollout watcher, replayed for real: device agents poll
a signed repository and report to a real Mosquitto configured by ``broker-config``; each
attacker is a registered device with its own valid MQTT login, publishing whatever report it
likes on its own topic. None of them changes a decision; the honest devices' reports still
move the rollout."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edgeship.contract import device_topic, rollout_covers
from edgeship.edge_pusher.fleet.registry import read_registry, registry_path
from edgeship.edge_pusher.fleet.reports import read_reports
from edgeship.edge_pusher.fleet.watch import Policy, watch_once
from edgeship.mqtt import BrokerLogin
from tests.edge_pusher.fleet.test_broker import connect
from tests.edge_pusher.fleet.test_broker import publish as send
from tests.helpers.mqtt import Broker


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker")
    yield b
    b.stop()


def ids(inside: bool, n: int, prefix: str) -> list[str]:
    """``n`` ids that v2's rollout at 25 % covers (``inside``) or does not."""
    return [f"{prefix}{i}" for i in range(3000)
            if rollout_covers(25, f"{prefix}{i}", "sensor", 2) == inside][:n]


def lie(device_id: str, hardware: str, version: int, health: str | None,
        refused: dict[str, str] | None = None) -> bytes:
    """A report as an attacker writes it: well-formed, fresh, and false."""
    now = datetime.now(timezone.utc).isoformat()
    return json.dumps({
        "schema_version": 1, "device_id": device_id, "hardware": hardware, "channel": "stable",
        "time": now, "last_result": {},
        "active": {"name": "sensor", "version": version, "sha256": "0" * 64, "verified": True},
        "refused": refused or {},
        "health": None if health is None else {"state": health, "name": "sensor",
                                               "version": version, "reason": "", "at": now},
    }).encode()


def test_one_device_logins_change_no_decision(broker, repo, publish, make_agent) -> None:
    from edgeship.device.report import MqttReporter

    honest = ids(True, 4, "pump-") + ids(False, 2, "pump-")
    outsider = ids(False, 1, "evil-out-")[0]  # the stage does not cover it
    spoofer, doubler = ids(True, 2, "evil-in-")  # covered, registered as cpu
    passwords = {d: Path(broker.add_device(d, "cpu", "stable")).read_text().strip()
                 for d in [*honest, outsider, spoofer, doubler]}
    broker.start()

    def poll_all() -> None:
        for d in honest:
            agent = make_agent(state=d, device_id=d, reporter=MqttReporter(
                BrokerLogin(broker.url, d, passwords[d]), d))
            agent.poll_once()
            assert agent.reporter.flush(10)
            agent.reporter.close()

    def attack(device_id: str, payload: bytes) -> None:
        client = connect(broker, device_id, passwords[device_id])
        send(client, device_topic(device_id), payload)
        client.loop_stop()
        client.disconnect()

    def cycle(policy: Policy) -> dict[str, object]:
        reports = read_reports(BrokerLogin(broker.url, "fleet", broker.reader_password))
        made = watch_once(repo, reports.reports, "stable", policy,
                          registry=read_registry(registry_path(broker.folder)))
        return {d.hardware: d for d in made}

    def stage(hardware: str) -> int:
        return {e["hardware"]: e["rollout"] for e in repo.read_index("stable")["models"][
            "sensor"] if e["version"] == 2}[hardware]

    publish(1)
    poll_all()  # every honest device runs v1
    publish(2, which="b", rollout=25)
    publish(2, which="b", rollout=25, hardware="arm")

    # 1. an uncovered device claims v2 runs healthily on it, before any covered device took
    #    it (this advanced 25 % -> 50 %); 2. a cpu device claims to be arm and healthy on
    #    arm's v2, which no arm device reported on
    attack(outsider, lie(outsider, "cpu", 2, "healthy"))
    attack(spoofer, lie(spoofer, "arm", 2, "healthy"))
    eager = Policy(stages=(5, 25, 50, 100), min_healthy=1, soak_seconds=0)
    decided = cycle(eager)
    assert (decided["cpu"].action, decided["cpu"].counts["healthy"]) == ("hold", 0)
    assert decided["cpu"].counts["ignored"]["uncovered"]["ids"] == [outsider]
    assert decided["arm"].action == "hold", decided["arm"].line()
    assert decided["arm"].counts["ignored"]["mismatched"]["ids"] == [spoofer]
    assert f"1 mismatched ({spoofer})" in decided["arm"].line()
    assert (stage("cpu"), stage("arm")) == (25, 25)

    # 3. the covered devices take v2 and run it healthily; one covered device reports v2 both
    #    unhealthy and refused, under two spellings of its key (this revoked v2 with
    #    --min-failures 2: "2 of 6 devices that tried it failed")
    time.sleep(1.1)  # a new second: the agents' reports are newer than the attackers'
    poll_all()
    attack(doubler, lie(doubler, "cpu", 2, "unhealthy",
                        {"sensor/2/cpu": "self-test-failed", "sensor/02/cpu": "self-test-failed"}))
    strict = Policy(stages=(5, 25, 50, 100), min_healthy=3, min_failures=2, soak_seconds=0,
                    max_failure_share=0.2, on_failure="revoke")
    decided = cycle(strict)
    cpu = decided["cpu"]
    assert (cpu.counts["healthy"], cpu.counts["failures"], cpu.counts["tried"]) == (4, 1, 5)
    assert (cpu.action, cpu.to) == ("advance", 50), cpu.line()
    assert stage("cpu") == 50
    states = {e["hardware"]: e["state"] for e in repo.read_index("stable")["models"]["sensor"]
              if e["version"] == 2}
    assert states == {"cpu": "active", "arm": "active"}
