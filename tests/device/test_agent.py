"""Device agent against real repositories with the real tuf.ngclient."""

from __future__ import annotations

import hashlib
import json
import os
import threading

import pytest

from edgeship.contract import rollout_bucket
from edgeship.device.agent import Agent, next_delay
from edgeship.device.fetcher import CountingFetcher, FileFetcher
from edgeship.edge_pusher import keys
from edgeship.edge_pusher.repository import Repository


def test_first_poll_installs_and_second_is_idle(publish, make_agent, model_bytes):
    publish(1)
    agent = make_agent()
    result = agent.poll_once()
    assert result.ok and result.action == "updated" and result.version == 1
    with open(agent.active_model_path(), "rb") as f:
        assert f.read() == model_bytes["a"]
    status = agent.status()
    assert status["active"]["version"] == 1 and status["active"]["slot"] == "a"
    assert status["active"]["sha256"] == hashlib.sha256(model_bytes["a"]).hexdigest()
    assert status["last_error"] is None and status["last_successful_check"]
    again = agent.poll_once()
    assert again.ok and again.action == "up-to-date"


def test_update_switches_slot_and_keeps_previous(publish, make_agent, model_bytes):
    publish(1)
    agent = make_agent()
    agent.poll_once()
    publish(2, which="b")
    result = agent.poll_once()
    assert result.action == "updated" and result.version == 2
    status = agent.status()
    assert status["active"]["slot"] == "b" and status["previous"] == {
        "name": "sensor", "version": 1, "slot": "a"}
    with open(agent.slots.model_path("a"), "rb") as f:
        assert f.read() == model_bytes["a"]  # rollback copy intact


def test_idle_poll_costs_two_requests_and_under_2kb(publish, make_agent, bucket):
    publish(1)
    counter = CountingFetcher(FileFetcher())
    agent = make_agent(fetcher=counter)
    agent.poll_once()
    counter.reset()
    assert agent.poll_once().action == "up-to-date"
    assert counter.requests <= 2, counter.urls
    assert counter.bytes <= 2048
    assert any(u.endswith("/metadata/timestamp.json") for u in counter.urls)


def test_rollout_picks_newest_build_that_covers_device(publish, make_agent):
    publish(1)
    # find a device inside and one outside a 30% rollout of v2
    inside = next(f"d{i}" for i in range(1000) if rollout_bucket(f"d{i}", "sensor", 2) < 30)
    outside = next(f"d{i}" for i in range(1000) if rollout_bucket(f"d{i}", "sensor", 2) >= 30)
    publish(2, which="b", rollout=30)
    a = make_agent("in", device_id=inside)
    b = make_agent("out", device_id=outside)
    assert a.poll_once().version == 2
    result = b.poll_once()
    assert result.ok and result.version == 1
    assert b.status()["active"]["version"] == 1


def test_rollout_bucket_is_stable_and_spread():
    assert rollout_bucket("dev", "m", 3) == rollout_bucket("dev", "m", 3)
    buckets = [rollout_bucket(f"d{i}", "m", 1) for i in range(2000)]
    share = sum(b < 25 for b in buckets) / len(buckets)
    assert 0.2 < share < 0.3


def test_device_ignores_other_hardware_and_channel_builds(publish, make_agent):
    publish(1, hardware="edgetpu")
    publish(1, channel="beta")
    agent = make_agent()
    result = agent.poll_once()
    assert result.ok and result.action == "no-model" and agent.active_model_path() is None
    beta = make_agent("beta", channel="beta")
    assert beta.poll_once().version == 1


def test_device_never_goes_back_to_an_older_version(publish, make_agent, tiny_models, repo):
    publish(5)
    agent = make_agent()
    agent.poll_once()
    # a fresh name on the same channel must not confuse the device about its own model
    publish(1, name="other")
    assert agent.poll_once().action == "up-to-date"
    assert agent.status()["active"]["version"] == 5


def test_device_moved_to_another_channel_takes_that_channels_build(publish, make_agent):
    """Versions only go up within (name, channel): beta v5 says nothing about stable v1."""
    publish(5, channel="beta")
    publish(1, which="b")
    beta = make_agent(channel="beta")
    assert beta.poll_once().version == 5
    moved = make_agent(channel="stable")  # same state dir, firmware now follows stable
    result = moved.poll_once()
    assert result.action == "updated" and result.version == 1, result
    active = moved.status()["active"]
    assert (active["channel"], active["version"]) == ("stable", 1)


def test_switching_to_another_model_name(publish, make_agent):
    publish(5, name="alpha")
    publish(1, name="beta")
    agent = make_agent(model="alpha")
    assert agent.poll_once().version == 5
    moved = make_agent(model="beta")  # same state dir, firmware now wants "beta"
    result = moved.poll_once()
    assert result.action == "updated" and moved.status()["active"]["name"] == "beta"
    assert moved.status()["previous"]["name"] == "alpha"


def test_ambiguous_model_needs_model_flag(publish, make_agent):
    publish(1, name="alpha")
    publish(1, name="beta")
    agent = make_agent()
    result = agent.poll_once()
    assert not result.ok and result.reason == "ambiguous-model"
    chosen = make_agent("chosen", model="beta")
    assert chosen.poll_once().ok and chosen.status()["active"]["name"] == "beta"


def test_device_follows_root_chain_after_key_rotation(publish, make_agent, repo, keys_dir,
                                                      bucket):
    publish(1)
    agent = make_agent()
    agent.poll_once()
    for role in ("timestamp", "snapshot", "targets", "root"):
        keys.rotate(keys_dir, role)
    publish(2, which="b")  # re-signs every role with the new keys
    result = agent.poll_once()
    assert result.ok and result.version == 2, result
    assert os.path.isfile(agent.state_dir + "/tuf/root_history/5.root.json")
    # and a brand-new device that only knows root v1 walks the whole chain
    fresh = make_agent("fresh")
    assert fresh.poll_once().version == 2
    with open(fresh.state_dir + "/tuf/root.json") as f:
        assert json.load(f)["signed"]["version"] == 5


def test_rotation_without_publish_then_refresh(publish, make_agent, repo, keys_dir):
    publish(1)
    agent = make_agent()
    agent.poll_once()
    keys.rotate(keys_dir, "timestamp")
    Repository(repo.bucket, str(keys_dir)).refresh()
    assert agent.poll_once().action == "up-to-date"
    assert agent.status()["last_error"] is None


def test_run_forever_backs_off_and_stops(make_agent, tmp_path):
    agent = make_agent(repo_url="http://127.0.0.1:9")  # nothing listens on the discard port
    stop = threading.Event()
    results = []

    def on_result(r):
        results.append(r)
        if len(results) == 2:
            stop.set()

    agent.run_forever(0.01, stop=stop, on_result=on_result)
    assert [r.reason for r in results] == ["bucket-unreachable"] * 2
    assert next_delay(10, 0, jitter=0) == 10
    assert next_delay(10, 3, jitter=0) == 80


def test_backoff_never_polls_faster_than_the_interval():
    assert next_delay(10, 30, jitter=0) == 3600  # capped at max_backoff
    assert next_delay(86400, 1, jitter=0) == 86400  # interval above the cap: keep the interval
    assert next_delay(86400, 5, jitter=0, max_backoff=60) == 86400
    assert next_delay(10, 30, jitter=0, max_backoff=600) == 600
    assert 9 <= next_delay(10, 0, jitter=0.1) <= 11


def test_status_of_untouched_state_dir(tmp_path):
    status = Agent(str(tmp_path / "s"), "file:///x").status()
    assert status["active"] is None and status["last_error"] is None


def test_a_missing_trusted_root_is_named(publish, make_agent, tmp_path):
    publish(1)
    missing = tmp_path / "firmware" / "root.json"
    agent = Agent(str(tmp_path / "device"), make_agent().repo_url, trusted_root=str(missing),
                  device_id="dev-1")
    result = agent.poll_once()
    assert (result.ok, result.reason) == (False, "no-trusted-root")
    assert result.message.startswith(f"{missing}: no such file")


def test_an_internal_error_is_a_refusal_code_with_its_traceback_in_the_debug_log(
        make_agent, publish, monkeypatch, caplog):
    """A bug in the agent must not kill the polling loop: the poll ends as `internal-error`,
    and whoever debugs the device finds the traceback at debug level."""
    import logging

    publish(1)
    agent = make_agent()

    def broken(*_args):
        raise KeyError("bug")

    monkeypatch.setattr(agent, "_choose", broken)
    with caplog.at_level(logging.DEBUG, logger="edgeship.device.agent"):
        result = agent.poll_once()
    assert (result.ok, result.reason) == (False, "internal-error")
    assert agent.status()["last_error"]["reason"] == "internal-error"
    (record,) = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert record.exc_info[0] is KeyError


@pytest.mark.parametrize("name,content", [("status.json", "[]"), ("bad_versions.json", "5"),
                                          ("status.json", '"text"')])
def test_a_state_file_of_the_wrong_json_type_is_rewritten_not_trusted(make_agent, publish, name,
                                                                     content):
    publish(1)
    agent = make_agent()
    os.makedirs(agent.state_dir, exist_ok=True)
    with open(os.path.join(agent.state_dir, name), "w") as f:
        f.write(content)
    assert agent.poll_once().version == 1  # never raises, whatever the file held
    status = agent.status()
    assert status["active"]["version"] == 1 and status["bad_versions"] == []
