"""Fleet figures in one run: a 200-device staged rollout (tests/helpers/fleet_sim.py: real agents,
repository and Mosquitto, every device registered with its hardware and channel as
``fleet add-device --hardware --channel`` does) and the rollout watcher's CPU time per cycle at
200 and 2,000 devices (registry read and reports vetted against it included), side by side.

    .venv/bin/python benchmarks/fleet_bench.py [--json fleet.json]

Prints the machine, the rollout's times, report bytes per device per poll, broker messages per
poll cycle, and the watcher's cost with the ratio between the two fleet sizes;
docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the simulation lives with the tests that check it

from _machine import machine_facts  # noqa: E402  (benchmarks/ is the script folder)

from tests.helpers.fleet_sim import simulate, watcher_cost  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--interval", type=float, default=10.0, help="device poll interval")
    parser.add_argument("--json")
    args = parser.parse_args()

    sim = simulate(devices=args.devices, processes=2, interval=args.interval, watch_every=2,
                   soak=2 * args.interval, outage=args.interval)
    costs = {n: watcher_cost(n) for n in (200, 2000)}
    result = {"machine": machine_facts(), "simulation": sim, "watcher": costs}

    print(f"machine: {result['machine']}")
    print(f"{args.devices} devices polling every {args.interval:g} s, watcher every 2 s, "
          f"soak {2 * args.interval:g} s, stages 5/25/100 %")
    for name in ("rollout_a", "rollout_b"):
        r = sim[name]
        print(f"  {name}: 95 % of the fleet (rollout_b: of its cpu devices) updated "
              f"{r['t95']:.0f} s after publish; done after {r['seconds']:.0f} s; "
              f"{r['cycles']} watcher cycles, {r['blind_cycles']} without broker")
    print(f"  report: {sim['report_bytes_per_poll']:.0f} bytes per device per poll; "
          f"{sim['messages_per_poll_cycle']:.0f} broker messages per poll cycle")
    print(f"  final: {sim['final']}")
    median = {n: statistics.median(c["cpu_seconds"]) for n, c in costs.items()}
    for n, c in costs.items():
        print(f"watcher at {n} devices: {1000 * median[n]:.0f} ms CPU per cycle (median of "
              f"{len(c['cpu_seconds'])}), {statistics.median(c['wall_seconds']):.2f} s wall; "
              f"{c['reports_read']} reports read")
    print(f"ratio 2000/200: {median[2000] / median[200]:.1f}x CPU for 10x devices")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
