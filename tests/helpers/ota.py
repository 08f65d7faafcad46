"""Helpers shared by the publisher and device tests (fixtures are in ``fixtures.py``)."""

from __future__ import annotations

import copy
import functools
import json
import os
import sys
from pathlib import Path

from edgeship.contract import index_path
from edgeship.edge_pusher import push
from edgeship.edge_pusher.repository import PublishResult, Release, Repository, content_key
from tests.helpers import REPO

HERE = Path(__file__).resolve().parent
PY = sys.executable


@functools.cache
def _custom_for(model_path: str, hardware: str = "cpu") -> dict:
    return push.build_release_custom(Path(model_path).read_bytes(), hardware, None, None,
                                     "run-test")


def release(tiny_models: Path, version: int, which: str = "a", name: str = "sensor",
            **kw) -> Release:
    """A Release of one of the tiny models with a real signed self-test."""
    path = tiny_models / ("model_int8.tflite" if which == "a" else "model_int8_b.tflite")
    custom = copy.deepcopy(_custom_for(str(path)))
    custom.update(kw.pop("custom", {}))
    return Release(path.read_bytes(), name, version, custom=custom, **kw)


def add_raw_target(repo: Repository, path: str, data: bytes, custom: dict,
                   index_entry: dict | None, channel: str) -> PublishResult:
    """Sign arbitrary bytes and custom metadata into ``repo``: repositories a normal publish
    refuses to build (a mislabelled build, a malformed field), as an attacker holding the
    online keys could. Uses the repository's transaction internals, as a test may."""

    def change(st) -> None:
        repo._put_target(st, path, data, custom)
        if index_entry is not None:
            index = _raw_index(repo, st, channel)
            index["models"].setdefault(index_entry["name"], []).append(
                {k: index_entry[k] for k in ("version", "hardware", "rollout")} | {"path": path})
            _put_raw_index(repo, st, channel, json.dumps(index).encode())

    return repo._transaction(change)


def sign_raw_index(repo: Repository, channel: str, data: bytes) -> PublishResult:
    """Sign ``data`` as ``channel``'s index, unchecked: an index the publisher refuses to
    write (a duplicate entry, a string version, deep nesting), as a holder of the online keys
    could sign it."""
    return repo._transaction(lambda st: _put_raw_index(repo, st, channel, data))


def _raw_index(repo: Repository, st, channel: str) -> dict:
    """The channel index as signed, without the publisher's checks (which refuse to build on
    a malformed one)."""
    path = index_path(channel)
    tf = repo._bin(st, repo._bin_for(st, path)).signed.targets.get(path)
    if tf is None:
        return {"channel": channel, "models": {}}
    return json.loads(repo.bucket.get(content_key(path, tf.hashes["sha256"])))


def _put_raw_index(repo: Repository, st, channel: str, data: bytes) -> None:
    repo._put_target(st, index_path(channel), data, {"kind": "index"})


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def blessing(path: Path, blessed: bool) -> str:
    """A TFX-style blessing folder."""
    path.mkdir(parents=True)
    (path / ("BLESSED" if blessed else "NOT_BLESSED")).write_text("")
    return str(path)


def push_to(quantized: Path, eb: str, qb: str, bucket, keys_dir, **kw):
    """Push ``quantized`` as model "sensor" with these blessings into ``bucket``."""
    return push.push(str(quantized), eb, qb, bucket_url=bucket.url, keys_dir=str(keys_dir),
                     model_name="sensor", **kw)
