"""A fleet of 200 simulated devices (real agents in two processes, a real repository, a real
Mosquitto) through two rollouts steered by the policy: one that advances to 100 % (with the
broker down midway), and one whose build for one hardware variant fails its self-test, which the
policy revokes. Slow (minutes): marked, and still run by ``make test``."""

from __future__ import annotations

import pytest

from tests.helpers.fleet_sim import simulate


@pytest.mark.slow
def test_two_staged_rollouts_over_200_devices(tmp_path) -> None:
    result = simulate(devices=200, processes=2, interval=4, watch_every=2, soak=5, outage=6,
                      work=tmp_path)

    a = result["rollout_a"]
    advanced = {(d["hardware"], d["to"]) for d in a["decisions"] if d["action"] == "advance"}
    assert advanced == {("cpu", 25), ("cpu", 100), ("arm", 25), ("arm", 100)}, a["decisions"]
    assert a["t95"] is not None  # 95 % of the fleet on v2 was seen
    # broker down: the watcher saw no data and changed nothing; devices kept updating
    outage = a["outage"]
    assert a["blind_cycles"] >= 1
    assert outage["stages_before"] == outage["stages_after"]
    assert outage["updated_while_down"] > 0

    b = result["rollout_b"]
    (revoked,) = [d for d in b["decisions"] if d["action"] == "revoke"]
    assert (revoked["hardware"], revoked["version"]) == ("arm", 3)
    assert revoked["counts"]["failures"] >= 1 and revoked["counts"]["running"] == 0
    index = {(e["hardware"], e["version"]): e for e in result["index"]}
    assert index[("arm", 3)]["state"] == "revoked"
    assert (index[("cpu", 3)]["state"], index[("cpu", 3)]["rollout"]) == ("active", 100)

    # every device runs a model verified against the signed metadata; no arm device runs v3
    final = result["final"]
    assert final["verified"] == 200
    assert final["versions"] == {"cpu v3": 150, "arm v2": 50}
    assert set(final["refused"]) == {"sensor/3/arm self-test-failed"}
    assert result["report_bytes_per_poll"] < 1024
    assert result["messages_per_poll_cycle"] == pytest.approx(200, rel=0.05)
