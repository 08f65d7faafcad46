"""Shared pytest set-up: quiet TensorFlow logs and keep every run on the CPU, deterministically."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Fixtures the publisher and device tests share: tiny real models, keys, repositories, servers.
pytest_plugins = ["tests.helpers.fixtures"]

# tests/tfx/ runs in .venv-tfx (Python 3.10 with TFX; `make test-tfx`): the main environment has
# kfp, which cannot share one with TFX, so it leaves those tests out rather than skip them.
try:
    import tfx  # noqa: F401
except ImportError:
    collect_ignore = ["tfx"]


def pytest_report_header() -> str | None:
    """Say so when tests/tfx/ is left out, rather than leave it out silently."""
    if "collect_ignore" in globals():
        return "tests/tfx/ left out: no TFX in this environment (make test-tfx runs them)"
    return None
