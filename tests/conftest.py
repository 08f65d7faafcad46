"""Shared pytest set-up: quiet TensorFlow logs and keep every run on the CPU, deterministically."""

import atexit
import os
import shutil
import tempfile

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Never the user's ~/.cache/edgeship: fixtures wider than a test (a module's shared pipeline run)
# use this session's own step cache; each test gets an empty one (_own_step_cache).
SESSION_CACHE = tempfile.mkdtemp(prefix="edgeship-test-step-cache-")
atexit.register(shutil.rmtree, SESSION_CACHE, ignore_errors=True)
os.environ["EDGESHIP_CACHE_DIR"] = SESSION_CACHE

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


@pytest.fixture(autouse=True)
def _own_step_cache(tmp_path_factory: pytest.TempPathFactory,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with an empty step cache of its own (never the user's ~/.cache), so a
    test that runs a pipeline sees its steps run; a test about the cache shares one on purpose."""
    monkeypatch.setenv("EDGESHIP_CACHE_DIR", str(tmp_path_factory.mktemp("step-cache")))



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first. Two workers take the tests a file at a time (``--dist loadfile``: a
    file's tests share module-wide fixtures, such as one pipeline run that many tests assert
    on), in the order collected; a long file that started last would leave one worker running
    it alone for the last minutes."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
