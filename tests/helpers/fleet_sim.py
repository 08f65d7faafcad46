"""Fleet simulation: real device agents poll a real repository and report to a real Mosquitto,
while the rollout policy (``edgeship rollout watch``'s ``watch_once``) steers two rollouts.

Devices run in a few worker processes (device code only, as on a device), each polling its
share of the fleet every ``interval`` seconds, every device with its own MQTT credentials and
connection, registered (``fleet add-device --hardware --channel``) as the hardware it runs. A
quarter of the devices are a second hardware variant, ``arm``. The driver:

1. publishes v1 for both variants at 100 % and waits for the whole fleet to run it;
2. rollout A: publishes v2 at the first stage; the watcher advances it through its stages as
   devices report it healthy. Midway the broker is stopped for a while: devices keep polling
   and updating, the watcher decides nothing; then the broker comes back (persistence on);
3. rollout B: publishes v3, whose ``arm`` build fails its self-test on the devices (its signed
   self-test expects what no device computes, as a delegate difference would); the watcher
   revokes the ``arm`` build and takes the ``cpu`` build to 100 %.

It records the time from each publish to 95 % of the fleet updated, report bytes per device per
poll, broker messages per poll cycle, and the watcher's CPU time per cycle.

    .venv/bin/python -m tests.helpers.fleet_sim --devices 200 --processes 2 --interval 5 --json F

``tests/edge_pusher/fleet/test_fleet_sim.py`` runs it and checks the outcome;
``benchmarks/fleet_bench.py`` records its figures, and the watcher's cost at 2,000 devices.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VARIANTS = ("cpu", "arm")


def hardware_of(index: int) -> str:
    return "arm" if index % 4 == 3 else "cpu"


def device_ids(n: int) -> list[str]:
    return [f"dev-{i:04d}" for i in range(n)]


# ------------------------------------------------------------------ the devices (a worker)


def worker(spec_path: str) -> None:
    """Poll this worker's devices every ``interval`` s until the stop file appears; then write
    the counts of polls and reports."""
    from edgeship.device import Agent
    from edgeship.device.report import MqttReporter
    from edgeship.mqtt import BrokerLogin

    spec = json.loads(Path(spec_path).read_text())
    agents = []
    for device_id, hardware in spec["devices"]:
        password = Path(spec["passwords"], f"{device_id}.password").read_text().strip()
        reporter = MqttReporter(BrokerLogin(spec["broker"], device_id, password), device_id)
        agents.append(Agent(os.path.join(spec["states"], device_id), spec["repo"],
                            trusted_root=spec["trusted_root"], device_id=device_id,
                            hardware=hardware, reporter=reporter))
    polls = rounds = 0
    busy = 0.0
    while not os.path.exists(spec["stop"]):
        started = time.monotonic()
        for agent in agents:
            agent.poll_once()
            polls += 1
        rounds += 1
        spent = time.monotonic() - started
        busy += spent
        time.sleep(max(0.0, spec["interval"] - spent))
    Path(spec["stats"]).write_text(json.dumps({
        "polls": polls, "rounds": rounds, "busy_seconds": busy,
        "reports": sum(a.reporter.reports for a in agents),
        "report_bytes": sum(a.reporter.bytes for a in agents)}))
    for agent in agents:
        agent.reporter.close()


# ------------------------------------------------------------------ the driver


class Fleet:
    """The repository, broker and worker processes of one simulation in ``work``."""

    def __init__(self, work: Path, devices: int, processes: int, interval: float):
        from edgeship.edge_pusher import keys
        from edgeship.edge_pusher.buckets import FileBucket
        from edgeship.edge_pusher.fleet.broker import add_devices
        from edgeship.edge_pusher.repository import Repository
        from tests.helpers.mqtt import Broker

        self.work, self.interval = work, interval
        self.ids = device_ids(devices)
        self.hardware = {d: hardware_of(i) for i, d in enumerate(self.ids)}
        subprocess.run([sys.executable, str(HERE / "make_models.py"), str(work / "models")],
                       check=True, capture_output=True, timeout=600)
        keys.init_keys(work / "keys")
        self.repo = Repository(FileBucket(str(work / "bucket")), str(work / "keys"))
        self.broker = Broker(work / "broker")
        for variant in VARIANTS:  # the identity each may report for: the watcher reads it
            add_devices(self.broker.folder, [d for d in self.ids if self.hardware[d] == variant],
                        variant, "stable")
        self.broker.start()
        self.workers: list[subprocess.Popen] = []
        self.stats_files, self.spec_files = [], []
        for w in range(processes):
            mine = self.ids[w::processes]
            spec = {"devices": [(d, self.hardware[d]) for d in mine],
                    "passwords": str(self.broker.folder / "devices"),
                    "states": str(work / "devices"), "repo": str(work / "bucket"),
                    "trusted_root": str(work / "keys" / "root_history" / "1.root.json"),
                    "broker": self.broker.url, "interval": interval,
                    "stop": str(work / "stop"), "stats": str(work / f"stats-{w}.json")}
            (work / f"worker-{w}.json").write_text(json.dumps(spec))
            self.stats_files.append(work / f"stats-{w}.json")
            self.spec_files.append(work / f"worker-{w}.json")

    def start_devices(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(HERE.parent.parent))
        for spec in self.spec_files:
            log = open(spec.with_suffix(".log"), "wb")  # noqa: SIM115 - closed with the process
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "tests.helpers.fleet_sim", "--worker", str(spec)],
                env=env, stdout=log, stderr=subprocess.STDOUT))

    def stop_devices(self) -> dict[str, Any]:
        (self.work / "stop").write_text("")
        for process in self.workers:
            process.wait(timeout=300)
        totals: Counter = Counter()
        for path in self.stats_files:
            totals.update(json.loads(path.read_text()))
        return dict(totals)

    def close(self) -> None:
        (self.work / "stop").write_text("")
        for process in self.workers:
            if process.poll() is None:
                process.kill()
        self.broker.stop()

    def publish(self, version: int, rollout: int, bad_on: str | None = None) -> float:
        """Publish ``version`` for both variants at ``rollout`` %; the ``bad_on`` variant's
        signed self-test expects an output no device computes. Returns when it was signed."""
        from edgeship.contract import SelfTest
        from tests.helpers.ota import _custom_for, release

        releases = []
        for hardware in VARIANTS:
            which = "a" if version % 2 else "b"
            custom = {}
            if hardware == bad_on:
                model = "model_int8.tflite" if which == "a" else "model_int8_b.tflite"
                signed = SelfTest.from_dict(_custom_for(str(self.work / "models" / model))[
                    "self_test"])
                custom = {"self_test": SelfTest(signed.input, 1.0 - signed.expected_output,
                                                atol=0.0).as_dict()}
            releases.append(release(self.work / "models", version, which, hardware=hardware,
                                    rollout=rollout, custom=custom))
        self.repo.publish(releases)
        return time.monotonic()

    def registry(self):
        """The device registry as the watcher reads it (``devices.json``)."""
        from edgeship.edge_pusher.fleet.registry import read_registry, registry_path

        return read_registry(registry_path(self.broker.folder))

    def login(self):
        from edgeship.mqtt import BrokerLogin

        return BrokerLogin(self.broker.url, "fleet", self.broker.reader_password)

    def device_states(self) -> dict[str, dict]:
        """Each device's status from its own state folder (``device status``), verified
        against its TUF cache: the ground truth, independent of the reports."""
        from edgeship.device import device_status

        return {d: device_status(str(self.work / "devices" / d)) for d in self.ids}


def running(reports: dict[str, dict], version: int) -> float:
    on = sum(1 for r in reports.values() if (r.get("active") or {}).get("version") == version)
    return on / max(1, len(reports))


def steer(fleet: Fleet, policy, done, timeout: float, watch_every: float,
          outage: float = 0.0) -> dict[str, Any]:
    """Run watcher cycles every ``watch_every`` s until ``done(reports, index)`` or timeout,
    noting when ``done(reports, index, share_only=True)`` (95 %) first held. With ``outage``,
    the broker is stopped for that many seconds right after the watcher's first advance."""
    from edgeship.edge_pusher.fleet.reports import read_reports
    from edgeship.edge_pusher.fleet.watch import watch_once
    from edgeship.errors import OtaError

    started = time.monotonic()
    decisions, cpu, cycles, blind = [], [], 0, 0
    t95: float | None = None
    down: dict[str, Any] = {}
    while time.monotonic() - started < timeout:
        if down.get("until") and time.monotonic() >= down["until"]:
            down["updated_while_down"] = sum(
                a != b for a, b in zip(down.pop("versions"), _versions(fleet), strict=True))
            down["stages_after"] = _stages(fleet)
            down["until"] = None
            fleet.broker.start()
        cpu_start = time.process_time()
        try:
            reports = read_reports(fleet.login(), wait=30)
            made = watch_once(fleet.repo, reports.reports, "stable", policy,
                              registry=fleet.registry())
        except OtaError:
            blind += 1  # no data (the broker down, or no report yet): nothing decided
            time.sleep(watch_every)
            continue
        index = fleet.repo.read_index("stable")["models"]
        cpu.append(time.process_time() - cpu_start)
        cycles += 1
        decisions += [d.as_dict() for d in made if d.action not in ("hold", "done")]
        if t95 is None and done(reports.reports, index, share_only=True):
            t95 = time.monotonic() - started
        if done(reports.reports, index):
            break
        if outage and not down and any(d.action == "advance" for d in made):
            fleet.broker.stop()
            down = {"until": time.monotonic() + outage, "versions": _versions(fleet),
                    "stages_before": _stages(fleet)}
        time.sleep(watch_every)
    return {"seconds": time.monotonic() - started, "t95": t95, "decisions": decisions,
            "watch_cpu": cpu, "cycles": cycles, "blind_cycles": blind,
            "outage": {k: v for k, v in down.items() if k != "until"}}


def _stages(fleet: Fleet) -> dict[str, int]:
    return {f"v{e['version']} {e['hardware']}": e["rollout"]
            for e in fleet.repo.read_index("stable")["models"]["sensor"]}


def _versions(fleet: Fleet) -> list:
    states = fleet.device_states()
    return [(states[d]["active"] or {}).get("version") for d in fleet.ids]


def simulate(devices: int = 200, processes: int = 2, interval: float = 5.0,
             watch_every: float = 2.0, soak: float = 6.0, outage: float = 8.0,
             work: Path | None = None) -> dict[str, Any]:
    from edgeship.edge_pusher.fleet.watch import Policy

    work = work or Path(tempfile.mkdtemp(prefix="edgeship-fleet-"))
    fleet = Fleet(work, devices, processes, interval)
    # min_failures=1: a 5 % stage covers one or two of the 50 arm devices
    policy = Policy(stages=(5, 25, 100), min_healthy=2, soak_seconds=soak,
                    max_failure_share=0.2, on_failure="revoke", min_failures=1)
    result: dict[str, Any] = {"devices": devices, "processes": processes,
                              "interval": interval, "watch_every": watch_every, "soak": soak}
    try:
        fleet.publish(1, 100)
        fleet.start_devices()
        wait_all = steer(fleet, policy, lambda r, i, share_only=False:
                         len(r) == devices and running(r, 1) == 1.0,
                         timeout=600, watch_every=watch_every)
        result["first_install_seconds"] = wait_all["seconds"]

        fleet.publish(2, 5)
        result["rollout_a"] = steer(
            fleet, policy, lambda r, i, share_only=False: running(r, 2) >= (
                0.95 if share_only else 1.0), timeout=900, watch_every=watch_every,
            outage=outage)

        fleet.publish(3, 5, bad_on="arm")
        cpu_ids = [d for d in fleet.ids if fleet.hardware[d] == "cpu"]

        def b_done(r, index, share_only=False):
            arm = {(e["hardware"], e["version"]): e for e in index["sensor"]}[("arm", 3)]
            on_cpu = sum(1 for d in cpu_ids if (r.get(d, {}).get("active") or {}).get(
                "version") == 3) / len(cpu_ids)
            return arm["state"] == "revoked" and on_cpu >= (0.95 if share_only else 1.0)

        result["rollout_b"] = steer(fleet, policy, b_done, timeout=900,
                                    watch_every=watch_every)
        time.sleep(2 * interval)  # every device polls again after the last decision
        result["workers"] = fleet.stop_devices()
        states = fleet.device_states()
        result["final"] = {
            "versions": dict(Counter(f"{fleet.hardware[d]} v{(s['active'] or {}).get('version')}"
                                     for d, s in states.items())),
            "verified": sum(1 for s in states.values() if (s["active"] or {}).get("verified")),
            "refused": dict(Counter(reason for s in states.values()
                                    for reason in _refusals(s, fleet))),
        }
        w = result["workers"]
        result["report_bytes_per_poll"] = w["report_bytes"] / max(1, w["reports"])
        result["messages_per_poll_cycle"] = w["reports"] / max(1, w["rounds"] / processes)
        result["index"] = fleet.repo.read_index("stable")["models"]["sensor"]
    finally:
        fleet.close()
    return result


def _refusals(status: dict, fleet: Fleet) -> list[str]:
    from edgeship.device.state import StateDir

    bad = StateDir(str(fleet.work / "devices" / status["device_id"])).bad_versions()
    return [f"{key} {entry['reason']}" for key, entry in bad.items()]


# ------------------------------------------------------------------ the watcher at scale


def watcher_cost(devices: int, cycles: int = 3, work: Path | None = None) -> dict[str, Any]:
    """The watcher's CPU time per cycle over ``devices`` retained reports. The reports are a
    real device's report under ``devices`` ids, published by a test-only user the ACL lets
    write every device topic (so that thousands of devices need no thousands of agents)."""
    from edgeship.edge_pusher.fleet.registry import register
    from edgeship.edge_pusher.fleet.reports import read_reports
    from edgeship.edge_pusher.fleet.watch import Policy, watch_once

    work = work or Path(tempfile.mkdtemp(prefix="edgeship-watch-"))
    fleet = Fleet(work, 0, 0, 1.0)
    try:
        ids = device_ids(devices)
        for variant in VARIANTS:
            register(fleet.broker.folder, [d for i, d in enumerate(ids)
                                           if hardware_of(i) == variant], variant, "stable")
        fleet.publish(1, 100)
        fleet.publish(2, 25)
        fleet.broker.stop()
        simulator = fleet.broker.simulator()
        fleet.broker.start()
        client = simulator()
        now = datetime.now(timezone.utc).isoformat()
        for i, device_id in enumerate(device_ids(devices)):
            version = 2 if i % 4 == 0 else 1
            report = {"schema_version": 1, "device_id": device_id, "hardware": hardware_of(i),
                      "channel": "stable", "agent_version": "0.1.0", "time": now,
                      "active": {"name": "sensor", "version": version, "sha256": "0" * 64,
                                 "verified": True},
                      "previous": {"name": "sensor", "version": 1} if version == 2 else None,
                      "last_check": now, "last_result": {"action": "up-to-date",
                                                         "reason": None},
                      "self_test": None, "refused": {}, "health": None}
            info = client.publish(f"edgeship/devices/{device_id}/state",
                                  json.dumps(report).encode(), qos=1, retain=True)
        info.wait_for_publish(60)
        client.loop_stop()
        client.disconnect()
        policy = Policy(soak_seconds=10**9)  # measure the decision, do not act on it
        cpu, wall, seen = [], [], 0
        for _ in range(cycles):
            started, cpu_start = time.monotonic(), time.process_time()
            reports = read_reports(fleet.login(), wait=60)
            watch_once(fleet.repo, reports.reports, "stable", policy,
                       registry=fleet.registry())
            cpu.append(time.process_time() - cpu_start)
            wall.append(time.monotonic() - started)
            seen = len(reports.reports)
        return {"devices": devices, "reports_read": seen, "cpu_seconds": cpu,
                "wall_seconds": wall}
    finally:
        fleet.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--watch-every", type=float, default=2.0)
    parser.add_argument("--soak", type=float, default=6.0)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    result = simulate(args.devices, args.processes, args.interval, args.watch_every, args.soak)
    text = json.dumps(result, indent=2, default=str)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
