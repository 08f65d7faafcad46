"""Helpers shared by the OTA tests (imported by name; fixtures live in conftest.py)."""

from __future__ import annotations

import copy
import functools
import os
import sys
from pathlib import Path

from edge_pusher import push
from edge_pusher.repository import Release

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PY = sys.executable


@functools.cache
def _custom_for(model_path: str, hardware: str = "cpu") -> dict:
    return push.build_release_custom(model_path, hardware, {}, "int8", None, "run-test")


def release(tiny_models: Path, version: int, which: str = "a", name: str = "sensor",
            **kw) -> Release:
    """A Release of one of the tiny models with a real signed self-test."""
    path = tiny_models / ("model_int8.tflite" if which == "a" else "model_int8_b.tflite")
    custom = copy.deepcopy(_custom_for(str(path)))
    custom.update(kw.pop("custom", {}))
    return Release(path.read_bytes(), name, version, custom=custom, **kw)


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env
