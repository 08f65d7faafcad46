"""Soak: simulated devices poll an HTTP bucket that injects faults, while a publisher releases.

The bucket (a folder served on 127.0.0.1) answers a share of requests with a fault chosen at
random: a dropped connection, a 503, a body cut short, a slow drip, or a replay of an older
``timestamp.json``. A publisher thread releases a new version every few seconds. The devices
run in a subprocess of their own (device code only, as on a device), polling concurrently;
after every poll each records what it runs and whether ``device status`` calls it verified
against the signed metadata. When the soak ends, faults stop and every device polls until it
runs the newest version.

    .venv/bin/python -m tests.helpers.soak --devices 48 --seconds 180 [--json F]

prints the fault counts and outcomes (``docs/benchmarks.md`` records a run);
``tests/device/test_soak.py`` runs a shorter one and checks them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.helpers.servers import ScriptedServer

FAULTS = ("drop", "error-503", "truncate", "drip", "stale-timestamp")
FAULTS_OFF = "faults-off"  # created in the work folder when the soak's faults end


class FaultyBucket:
    """A folder over HTTP on 127.0.0.1 that answers ``rate`` of requests with a fault."""

    def __init__(self, root: str, rate: float, seed: int = 0):
        self.rate, self.rng, self.lock = rate, random.Random(seed), threading.Lock()
        self.counts: Counter[str] = Counter()
        self.timestamps: list[bytes] = []
        self.server = ScriptedServer(lambda handler: self.answer(handler, root))
        self.url = self.server.url

    def answer(self, handler, root: str) -> None:
        path = os.path.join(root, handler.path.lstrip("/").split("?")[0])
        try:
            data = Path(path).read_bytes()
        except OSError:
            handler.send_error(404)
            return
        with self.lock:
            fault = self.rng.choice(FAULTS) if self.rng.random() < self.rate else None
            if path.endswith("/timestamp.json"):
                if not self.timestamps or self.timestamps[-1] != data:
                    self.timestamps.append(data)
                if fault == "stale-timestamp" and len(self.timestamps) > 1:
                    data = self.rng.choice(self.timestamps[:-1])
                elif fault == "stale-timestamp":
                    fault = None
            elif fault == "stale-timestamp":
                fault = None
            self.counts[fault or "none"] += 1
        if fault == "drop":
            handler.close_connection = True
            return
        if fault == "error-503":
            handler.send_error(503)
            return
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if fault == "truncate":
            handler.wfile.write(data[: len(data) // 2])
        elif fault == "drip":
            for byte in data[:40]:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.2)
        else:
            handler.wfile.write(data)
        handler.close_connection = True

    def stop_faults(self) -> None:
        with self.lock:
            self.rate = 0.0

    def close(self) -> None:
        self.server.close()


# --------------------------------------------------------------------------- device process


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def run_devices(work: Path, url: str, root_json: str, devices: int, seconds: float,
                threads: int) -> None:
    """Poll as ``devices`` devices for ``seconds`` (and then until the faults are off and
    every device is up to date), writing one JSON line per poll and per memory sample."""
    from edgeship.device.agent import Agent
    from edgeship.device.fetcher import TransferLimits

    limits = TransferLimits(file_seconds=10, min_bytes_per_second=2000, grace_seconds=0.5,
                            poll_seconds=20, socket_seconds=2)
    agents = [Agent(str(work / "devices" / f"d{i:03d}"), url, trusted_root=root_json,
                    device_id=f"d{i:03d}", limits=limits) for i in range(devices)]
    log = (work / "devices.jsonl").open("w")
    lock = threading.Lock()

    def poll(agent: Agent, phase: str) -> dict:
        result = agent.poll_once()
        active = agent.status()["active"] or {}
        record = {"device": agent.device_id, "phase": phase, "action": result.action,
                  "reason": result.reason, "version": active.get("version"),
                  "sha256": active.get("sha256"), "verified": active.get("verified")}
        with lock:
            log.write(json.dumps(record) + "\n")
            log.flush()
        return record

    start = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        while time.monotonic() - start < seconds:
            list(pool.map(lambda a: poll(a, "faults"), agents))
            log.write(json.dumps({"rss_kib": _rss_kib(), "t": time.monotonic() - start}) + "\n")
        while not (work / FAULTS_OFF).exists():
            time.sleep(0.1)
        latest = json.loads((work / FAULTS_OFF).read_text())["latest"]
        for _ in range(5):  # a device backs off only between polls; here polls are direct
            records = list(pool.map(lambda a: poll(a, "final"), agents))
            if all(r["version"] == latest for r in records):
                break
    log.write(json.dumps({"rss_kib": _rss_kib(), "t": time.monotonic() - start}) + "\n")
    log.close()


# --------------------------------------------------------------------------- the soak


def soak(work: Path, models: Path, devices: int = 24, seconds: float = 40.0,
         fault_rate: float = 0.3, publish_every: float = 3.0, threads: int = 6,
         seed: int = 0) -> dict:
    """Run a soak in ``work``; return its summary (see :func:`summarize`)."""
    from edgeship.edge_pusher import keys
    from edgeship.edge_pusher.buckets import FileBucket
    from edgeship.edge_pusher.repository import Repository
    from tests.helpers.ota import release, subprocess_env

    keys.init_keys(work / "keys")
    bucket_dir = work / "bucket"
    repo = Repository(FileBucket(str(bucket_dir)), str(work / "keys"), lock_wait=30)
    published: dict[int, str] = {}

    def publish(version: int) -> None:
        rel = release(models, version, "a" if version % 2 else "b")
        repo.publish([rel])
        published[version] = hashlib.sha256(rel.data).hexdigest()

    publish(1)
    bucket = FaultyBucket(str(bucket_dir), fault_rate, seed)
    stop = threading.Event()

    def publisher() -> None:
        version = 2
        while not stop.wait(publish_every):
            publish(version)
            version += 1

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.soak", "devices", "--work", str(work), "--url",
         bucket.url, "--root", str(work / "keys" / "root_history" / "1.root.json"),
         "--devices", str(devices), "--seconds", str(seconds), "--threads", str(threads)],
        env=subprocess_env(), stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(seconds)
        stop.set()
        thread.join()
        bucket.stop_faults()
        (work / FAULTS_OFF).write_text(json.dumps({"latest": max(published)}))
        _, stderr = proc.communicate(timeout=seconds * 4 + 300)
    finally:
        proc.kill()
        bucket.close()
    if proc.returncode != 0:
        raise RuntimeError(f"the devices process failed:\n{stderr[-3000:]}")
    return summarize(work / "devices.jsonl", published, dict(bucket.counts), devices, seconds)


def summarize(log: Path, published: dict[int, str], faults: dict[str, int], devices: int,
              seconds: float) -> dict:
    polls, samples = [], []
    for line in log.read_text().splitlines():
        record = json.loads(line)
        (samples if "rss_kib" in record else polls).append(record)
    final = {}
    for record in polls:
        final[record["device"]] = record
    # Anything a device ran must be a build that was published, byte for byte.
    unverified = [r for r in polls if r["version"] is not None and (
        published.get(r["version"]) != r["sha256"] or r["verified"] is not True)]
    half = len(samples) // 2
    return {
        "devices": devices, "seconds": seconds, "versions_published": len(published),
        "requests": sum(faults.values()), "faults": faults,
        "polls": Counter(r["action"] for r in polls if r["phase"] == "faults"),
        "refusals": Counter(r["reason"] for r in polls if r["reason"]),
        "ran_unverified": len(unverified),
        "final_versions": Counter(r["version"] for r in final.values()),
        "final_verified": sum(r["verified"] is True for r in final.values()),
        "latest": max(published),
        "rss_mib_first_half_max": max((s["rss_kib"] for s in samples[:half]), default=0) / 1024,
        "rss_mib_second_half_max": max((s["rss_kib"] for s in samples[half:]), default=0) / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("devices")  # the device process, started by soak()
    d.add_argument("--work", type=Path, required=True)
    d.add_argument("--url", required=True)
    d.add_argument("--root", required=True)
    d.add_argument("--devices", type=int, required=True)
    d.add_argument("--seconds", type=float, required=True)
    d.add_argument("--threads", type=int, required=True)
    parser.add_argument("--devices", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.command == "devices":
        run_devices(args.work, args.url, args.root, args.devices, args.seconds, args.threads)
        return 0
    import logging

    logging.basicConfig(level=logging.ERROR)
    from tests.helpers.ota import HERE, subprocess_env

    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"  # tiny real int8 models, made with TensorFlow
        subprocess.run([sys.executable, str(HERE / "make_models.py"), str(models)], check=True,
                       capture_output=True, env=subprocess_env())
        summary = soak(Path(tmp), models, args.devices, args.seconds, args.fault_rate)
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
