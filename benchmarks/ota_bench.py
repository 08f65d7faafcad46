"""OTA benchmark: what a poll, an update and a publish cost, and how metadata scales.

    .venv/bin/python benchmarks/ota_bench.py [--targets 10000] [--model F] [--json F]

Measured side by side in one run, on a local folder bucket (requests and bytes are what a device
would GET from any bucket; moto S3 timings are printed when moto is installed):

- idle poll (nothing new): requests and bytes         goal: <= 2 requests, <= 2 KB
- update: requests and bytes, and metadata overhead relative to the model
- publish time: first publish (creates the 64 bins) and later single-model publishes
- client metadata a fresh device downloads as the repository grows to N targets, with hashed
  bins versus what one flat targets.json would weigh

The device install's size and the agent's memory, per Python version, are device_bench.py's.

The model is a tiny real int8 .tflite (from the test cache, or built once with TensorFlow by
``tests/helpers/make_models.py``); only the benchmark harness may touch TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from _machine import machine_facts  # noqa: E402  (benchmarks/ is the script folder)
from tuf.ngclient import Updater  # noqa: E402

from edgeship.contract import index_path, target_path  # noqa: E402
from edgeship.device.agent import Agent  # noqa: E402
from edgeship.device.fetcher import CountingFetcher, FileFetcher  # noqa: E402
from edgeship.edge_pusher import keys, push  # noqa: E402
from edgeship.edge_pusher.buckets import FileBucket  # noqa: E402
from edgeship.edge_pusher.repository import Release, Repository  # noqa: E402


def find_model(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    out = Path(tempfile.mkdtemp(prefix="ota-bench-models-"))
    subprocess.run([sys.executable, str(ROOT / "tests/helpers/make_models.py"), str(out)],
                   check=True, capture_output=True)
    return out / "model_int8.tflite"


def release_custom(model: Path) -> dict:
    """The custom metadata push builds for a CPU release (its LiteRT self-test included)."""
    return push.build_release_custom(model.read_bytes(), "cpu", None, None, "bench-run")


def release(model: Path, version: int, custom: dict) -> Release:
    return Release(model.read_bytes(), "bench", version, custom=custom)


def bench_poll_and_update(work: Path, model: Path) -> dict:
    kd = work / "keys"
    keys.init_keys(kd)
    bucket = FileBucket(str(work / "bucket"))
    repo = Repository(bucket, str(kd))
    custom = release_custom(model)
    t0 = time.perf_counter()
    repo.publish([release(model, 1, custom)])
    first_publish = time.perf_counter() - t0
    times = []
    for v in range(2, 12):
        t0 = time.perf_counter()
        repo.publish([release(model, v, custom)])
        times.append(time.perf_counter() - t0)
    counter = CountingFetcher(FileFetcher())
    agent = Agent(str(work / "dev"), bucket.url, str(kd / "root.json"), "dev-1",
                  fetcher=counter)
    first = agent.poll_once()
    first_req, first_bytes = counter.requests, counter.bytes
    counter.reset()
    idle = agent.poll_once()
    idle_req, idle_bytes, idle_urls = counter.requests, counter.bytes, list(counter.urls)
    repo.publish([release(model, 12, custom)])
    counter.reset()
    upd = agent.poll_once()
    model_size = model.stat().st_size
    assert first.ok and idle.action == "up-to-date" and upd.action == "updated", (first, idle, upd)
    return {
        "model_bytes": model_size,
        "first_poll": {"requests": first_req, "bytes": first_bytes},
        "idle_poll": {"requests": idle_req, "bytes": idle_bytes,
                      "urls": [u.rsplit("/", 1)[1] for u in idle_urls]},
        "update": {"requests": counter.requests, "bytes": counter.bytes,
                   "metadata_bytes": counter.bytes - model_size,
                   "metadata_to_model": round((counter.bytes - model_size) / model_size, 2)},
        "publish_s": {"first": round(first_publish, 3),
                      "median": round(statistics.median(times), 3),
                      "max": round(max(times), 3)},
    }


def bench_s3_publish(work: Path, model: Path) -> dict | None:
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError:
        return None
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_REGION="us-east-1", AWS_ENDPOINT_URL=f"http://{host}:{port}")
        boto3.client("s3").create_bucket(Bucket="ota-bench")
        from edgeship.edge_pusher.buckets import open_bucket

        kd = work / "s3keys"
        keys.init_keys(kd)
        repo = Repository(open_bucket("s3://ota-bench/fleet"), str(kd))
        custom = release_custom(model)
        t0 = time.perf_counter()
        repo.publish([release(model, 1, custom)])
        first = time.perf_counter() - t0
        times = []
        for v in range(2, 7):
            t0 = time.perf_counter()
            repo.publish([release(model, v, custom)])
            times.append(time.perf_counter() - t0)
        return {"first": round(first, 3), "median": round(statistics.median(times), 3)}
    finally:
        server.stop()


def client_metadata_bytes(bucket: FileBucket, root: Path, name: str, version: int) -> dict:
    """What a brand-new device downloads (metadata only) to find and vet one model."""
    with tempfile.TemporaryDirectory() as d:
        counter = CountingFetcher(FileFetcher())
        up = Updater(d, f"{bucket.url}/metadata/", d, f"{bucket.url}/targets/", counter,
                     bootstrap=root.read_bytes())
        up.refresh()
        info = up.get_targetinfo(index_path("stable"))
        assert info is not None, "the index is not signed for"
        up.download_target(info, os.path.join(d, "index.json"))
        assert up.get_targetinfo(target_path(name, "stable", version, "cpu")) is not None
        return {"requests": counter.requests, "bytes": counter.bytes}


def bench_scaling(work: Path, model: Path, total: int) -> list[dict]:
    kd = work / "scale-keys"
    keys.init_keys(kd)
    bucket = FileBucket(str(work / "scale"))
    repo = Repository(bucket, str(kd))
    custom = release_custom(model)
    models = 10  # 10 model names, many versions each: how a real repository grows
    rows, done = [], 0
    checkpoints = [c for c in (100, 1000, 3000, 10000, total) if c <= total]
    batch_size = 250
    t_start = time.perf_counter()
    for checkpoint in sorted(set(checkpoints)):
        while done < checkpoint:
            n = min(batch_size, checkpoint - done)
            batch = []
            for i in range(n):
                name = f"model{(done + i) % models}"
                v = (done + i) // models + 1
                batch.append(Release(b"x%d" % (done + i), name, v, custom=custom))
            repo.publish(batch)
            done += n
        st = repo._load()
        bins = [repo._bin(st, n) for n in repo._bin_names(st)]
        flat = sum(len(b.to_bytes()) for b in bins)
        biggest = max(len(b.to_bytes()) for b in bins)
        client = client_metadata_bytes(bucket, kd / "root.json", "model0",
                                       (done - 1) // models + 1)
        rows.append({"targets": done, "client_metadata_bytes": client["bytes"],
                     "client_requests": client["requests"], "largest_bin_bytes": biggest,
                     "flat_targets_bytes_estimate": flat,
                     "flat_to_binned": round(flat / client["bytes"], 1),
                     "elapsed_s": round(time.perf_counter() - t_start, 1)})
        print(f"  {done:>6} targets: device metadata {client['bytes']:>9} B in "
              f"{client['requests']} requests; one flat targets.json ~{flat:>10} B "
              f"({rows[-1]['flat_to_binned']}x)", flush=True)
    return rows


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    ap = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    ap.add_argument("--targets", type=int, default=10000)
    ap.add_argument("--model")
    ap.add_argument("--json", help="also write results here")
    args = ap.parse_args()
    model = find_model(args.model)
    results: dict[str, Any] = {"machine": machine_facts()}
    with tempfile.TemporaryDirectory(prefix="ota-bench-") as tmp:
        work = Path(tmp)
        print("machine:", json.dumps(results["machine"]))
        r = results["poll"] = bench_poll_and_update(work, model)
        print(f"idle poll: {r['idle_poll']['requests']} requests, {r['idle_poll']['bytes']} B "
              f"({', '.join(r['idle_poll']['urls'])}); goal <= 2 requests, <= 2048 B")
        print(f"update: {r['update']['requests']} requests, {r['update']['bytes']} B for a "
              f"{r['model_bytes']} B model (metadata {r['update']['metadata_bytes']} B)")
        print(f"first poll of a new device: {r['first_poll']['requests']} requests, "
              f"{r['first_poll']['bytes']} B")
        print(f"publish (file://): first {r['publish_s']['first']} s, then median "
              f"{r['publish_s']['median']} s")
        s3 = results["publish_s3_s"] = bench_s3_publish(work, model)
        if s3:
            print(f"publish (moto S3 over HTTP): first {s3['first']} s, then median "
                  f"{s3['median']} s")
        print(f"scaling to {args.targets} targets (64 hashed bins):")
        results["scaling"] = bench_scaling(work, model, args.targets)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
