"""The device side on every Python it supports: install size and agent memory, side by side.

    .venv/bin/python benchmarks/device_bench.py [--pythons 3.10 3.11 3.12 3.13] [--json F]

For each version, in one run: a fresh venv with the base install only (the wheel built from this
checkout, dependencies pinned by requirements-device.lock), its size (``du``), and the agent's
peak RSS (VmHWM) and wall time for a ``poll_once()`` that downloads, verifies, self-tests and
activates a model (first install), then for an A->B switch. The repository is a local folder
published with this checkout's publisher; the model is the tests' tiny int8 ``.tflite``, so the
memory is almost all runtime (numpy, LiteRT, python-tuf), not model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _machine import machine_facts  # (benchmarks/ is the script folder)
from ota_bench import find_model, release, release_custom

from edgeship.edge_pusher import keys
from edgeship.edge_pusher.buckets import FileBucket
from edgeship.edge_pusher.repository import Repository

ROOT = Path(__file__).resolve().parents[1]
UV = str(Path(sys.executable).parent / "uv")
LOCK = ROOT / "requirements-device.lock"

_POLL = """
import json, sys, time
from edgeship.device import Agent
agent = Agent(sys.argv[1], sys.argv[2], sys.argv[3], "bench-dev")
start = time.perf_counter()
result = agent.poll_once()
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec
hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
print(json.dumps({"action": result.action, "version": result.version, "seconds": seconds,
                  "max_rss_kib": hwm, "python": sys.version.split()[0],
                  "heavy": [m for m in ("tensorflow", "kfp", "boto3") if m in sys.modules]}))
"""


def du_kib(path: Path) -> int:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def install(version: str, work: Path, wheel: Path) -> Path:
    found = subprocess.run([str(ROOT / "manifests/scripts/find-python.sh"), version],
                           capture_output=True, text=True, check=True).stdout.strip()
    venv = work / f"py{version}"
    subprocess.run([UV, "venv", "--quiet", "--python", found, str(venv)], check=True)
    subprocess.run([UV, "pip", "install", "--quiet", "--python", str(venv / "bin/python"),
                    "-c", str(LOCK), str(wheel)], check=True)
    return venv


def measure(version: str, work: Path, wheel: Path, model: Path) -> dict:
    venv = install(version, work, wheel)
    site = next((venv / "lib").glob("python3*/site-packages"))
    kd = work / f"keys-{version}"
    keys.init_keys(kd)
    bucket = FileBucket(str(work / f"bucket-{version}"))
    repo = Repository(bucket, str(kd))
    custom = release_custom(model)
    polls = []
    for v in (1, 2):
        repo.publish([release(model, v, custom)])
        proc = subprocess.run([str(venv / "bin/python"), "-c", _POLL, str(work / f"dev-{version}"),
                               bucket.url, str(kd / "root.json")],
                              capture_output=True, text=True, check=True, cwd=work)
        polls.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert [p["action"] for p in polls] == ["updated", "updated"], polls
    assert not any(p["heavy"] for p in polls), polls
    biggest = sorted(((du_kib(p), p.name) for p in site.iterdir() if p.is_dir()), reverse=True)
    freeze = subprocess.run([UV, "pip", "freeze", "--python", str(venv / "bin/python")],
                            capture_output=True, text=True, check=True).stdout.split()
    numpy = next(p.split("==")[1] for p in freeze if p.startswith("numpy=="))
    return {"python": polls[0]["python"], "venv_mib": round(du_kib(venv) / 1024, 1),
            "site_packages_mib": round(du_kib(site) / 1024, 1), "numpy": numpy,
            "largest": [f"{n} {k / 1024:.1f} MiB" for k, n in biggest[:4]],
            "install_poll": {"max_rss_mib": round(polls[0]["max_rss_kib"] / 1024, 1),
                             "seconds": round(polls[0]["seconds"], 2)},
            "switch_poll": {"max_rss_mib": round(polls[1]["max_rss_kib"] / 1024, 1),
                            "seconds": round(polls[1]["seconds"], 2)},
            "packages": freeze}


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    ap.add_argument("--pythons", nargs="+", default=["3.10", "3.11", "3.12", "3.13"])
    ap.add_argument("--model")
    ap.add_argument("--json", help="also write results here")
    args = ap.parse_args()
    results: dict = {"machine": machine_facts(), "pythons": {}}
    print("machine:", json.dumps(results["machine"]))
    with tempfile.TemporaryDirectory(prefix="device-bench-") as tmp:
        work = Path(tmp)
        subprocess.run([UV, "build", "--quiet", "--wheel", "--out-dir", str(work), str(ROOT)],
                       check=True)
        (wheel,) = work.glob("edgeship-*.whl")
        model = find_model(args.model)
        print(f"{'python':<8} {'numpy':<7} {'venv MiB':>9} {'site MiB':>9} "
              f"{'install poll RSS':>17} {'switch poll RSS':>16} {'install poll s':>15}")
        for version in args.pythons:
            r = results["pythons"][version] = measure(version, work, wheel, model)
            install_rss, switch_rss = (r[k]["max_rss_mib"] for k in ("install_poll", "switch_poll"))
            print(f"{r['python']:<8} {r['numpy']:<7} {r['venv_mib']:>9} "
                  f"{r['site_packages_mib']:>9} {install_rss:>13} MiB {switch_rss:>12} MiB "
                  f"{r['install_poll']['seconds']:>15}", flush=True)
        base = results["pythons"][args.pythons[0]]
        for version in args.pythons[1:]:
            r = results["pythons"][version]
            print(f"{version} / {args.pythons[0]}: size "
                  f"{r['venv_mib'] / base['venv_mib']:.2f}x, install-poll RSS "
                  f"{r['install_poll']['max_rss_mib'] / base['install_poll']['max_rss_mib']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
