"""Fuzzing what a device parses (hypothesis): the signed channel index, a target's custom
metadata and self-test, and its own state folder.

Each target starts from a seed corpus kept in ``fuzz_corpus/`` (files exactly as a real publish
and a real device wrote them) and from arbitrary JSON, mutating parts of a seed into anything.
The property is the same everywhere: the parser returns a checked value or raises the one error
it documents, never anything else. A bounded run is part of ``make test``;
``EDGESHIP_FUZZ_EXAMPLES=20000 pytest tests/device/test_fuzz.py`` runs longer. Any crash found
becomes an ``@example`` here (hypothesis also keeps failing inputs in ``.hypothesis/``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edgeship.contract import (
    ENTRY_STATES,
    SelfTest,
    TargetCustom,
    channel_index,
    index_entry,
    target_custom,
)
from edgeship.device import selftest
from edgeship.device.agent import PollResult
from edgeship.device.checked import Damaged, read_checked
from edgeship.device.slots import meta_shape
from edgeship.device.state import _status_shape, device_status
from edgeship.errors import ModelCheckError, OtaError

CORPUS = Path(__file__).parent / "fuzz_corpus"
EXAMPLES = int(os.environ.get("EDGESHIP_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def seed(name: str) -> Any:
    return json.loads((CORPUS / name).read_text())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=20) | st.sampled_from(["float32", "cpu", "stable", "sensor", "", "../x"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _paths(child, (*prefix, i))
    return found


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return copy


@st.composite
def mutated(draw, name: str) -> Any:
    """A seed with up to three of its parts (or the whole) replaced by arbitrary JSON."""
    value = seed(name)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(value)))
        value = _replace(value, path, draw(json_values))
    return value


def inputs(name: str):
    return mutated(name) | json_values


# --------------------------------------------------------------------------- bucket side


@FUZZ
@given(inputs("channel_index.json"))
def test_channel_index(value: Any) -> None:
    try:
        models = channel_index(value)
    except OtaError:
        return
    for name, entries in models.items():
        for entry in entries:
            try:
                checked = index_entry(name, entry)
            except OtaError:
                continue
            assert 1 <= checked.version <= 2**63 - 1 and isinstance(checked.path, str)
            assert 0 <= checked.rollout <= 100 and checked.state in ENTRY_STATES


@FUZZ
@given(inputs("target_custom.json"))
@example({**seed("target_custom.json"), "version": True})
@example({**seed("target_custom.json"), "rollout": 10**30})
def test_target_custom(value: Any) -> None:
    try:
        checked = target_custom(value)
    except OtaError:
        return
    assert isinstance(checked, TargetCustom) and 0 <= checked.rollout <= 100


self_tests = (mutated("target_custom.json").map(
    lambda custom: custom.get("self_test") if isinstance(custom, dict) else custom)
    | json_values)


@FUZZ
@given(self_tests)
@example({"input": {"dtype": "float32", "shape": [2**40, 0], "b64": ""},
          "expected_output": {"dtype": "float32", "shape": [], "b64": "AAAAAA=="}})
def test_self_test_decoding(value: Any) -> None:
    try:
        test = SelfTest.from_dict(value)
    except OtaError:
        return
    assert np.isfinite(test.atol) and test.atol >= 0
    assert isinstance(test.differs(np.zeros(test.expected_output.size)), str)


@settings(max_examples=max(20, EXAMPLES // 10), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(value=self_tests)
def test_self_test_run_on_a_real_model(tiny_models: Path, value: Any) -> None:
    """Whatever the signed self-test holds, running it ends in a pass or a ModelCheckError."""
    try:
        selftest.check(str(tiny_models / "model_int8.tflite"), value)
    except ModelCheckError:
        pass


# --------------------------------------------------------------------------- device side

STATE_FILES = {"status.json": _status_shape, "slot_meta.json": meta_shape}


@FUZZ
@given(name=st.sampled_from(sorted(STATE_FILES)), data=st.data())
def test_the_state_reader(name: str, data: st.DataObject) -> None:
    raw = data.draw(inputs(name).map(lambda v: json.dumps(v).encode()) | st.binary(max_size=64))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        Path(path).write_bytes(raw)
        value = read_checked(path, STATE_FILES[name], name)
    assert value is None or isinstance(value, Damaged) or STATE_FILES[name](value) is None


#: Every path of a state folder, with what the fuzzer may put there.
STATE_PATHS = {
    "status.json": "status.json", "bad_versions.json": "bad_versions.json",
    "slots/a/meta.json": "slot_meta.json", "slots/b/meta.json": "slot_meta.json",
    "cache/index-stable.json": "channel_index.json", "active": None,
    "slots/a/model.tflite": None, "slots/b/model.tflite": None, "slots/b": None,
    "tuf/timestamp.json": None, "tuf/snapshot.json": None, "tuf/targets.json": None,
    "trusted_root.json": None, "tuf": None, "status.json.tmp": None, "active.tmp": None,
    "tuf/root_history/2.root.json": None,
}


@st.composite
def damage(draw) -> dict[str, tuple[str, bytes]]:
    """Up to four state paths, each deleted, made a folder, a link, a FIFO or a 3 GiB sparse
    file, or given other bytes."""
    chosen = draw(st.lists(st.sampled_from(sorted(STATE_PATHS)), max_size=4, unique=True))
    done = {}
    for path in chosen:
        corpus = STATE_PATHS[path]
        content = st.binary(max_size=32) | json_values.map(lambda v: json.dumps(v).encode())
        if corpus:
            content = content | mutated(corpus).map(lambda v: json.dumps(v).encode())
        kind = draw(st.sampled_from(["delete", "dir", "bytes", "bytes", "symlink", "fifo",
                                     "huge"]))
        done[path] = (kind, draw(content) if kind == "bytes" else b"")
    return done


def _blocked(state: str, rel: str) -> bool:
    """Whether any folder between ``state`` and ``rel`` is not a folder (a file, a link, a
    FIFO): ``tuf`` made a file blocks ``tuf/root_history/2.root.json``, not only its parent
    (found with EDGESHIP_FUZZ_EXAMPLES=20000: makedirs then failed on the file)."""
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        ancestor = os.path.join(state, *parts[:i])
        if os.path.islink(ancestor) or (os.path.lexists(ancestor)
                                        and not os.path.isdir(ancestor)):
            return True
    return False


def _apply(state: str, changes: dict[str, tuple[str, bytes]]) -> None:
    for rel, (kind, data) in changes.items():
        path = os.path.join(state, rel)
        if kind == "edit":  # the file as it is, with some fields changed
            Path(path).write_text(json.dumps(json.loads(Path(path).read_text())
                                             | json.loads(data)))
            continue
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        if kind == "delete":
            continue
        if _blocked(state, rel):
            continue  # an earlier change made an ancestor a file, a link or a FIFO
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if kind == "dir":
            os.makedirs(path)
        elif kind == "symlink":
            os.symlink("/dev/zero", path)  # reading it never ends
        elif kind == "fifo":
            os.mkfifo(path)  # opening it blocks
        elif kind == "huge":  # 3 GiB, sparse: read whole, it ended every poll in MemoryError
            Path(path).write_bytes(b"")
            os.truncate(path, 3 << 30)
        else:
            Path(path).write_bytes(data)


@settings(max_examples=max(25, EXAMPLES // 6), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(changes=damage())
# Found in review: a meta.json naming a build the signed metadata does not list.
@example(changes={"slots/a/meta.json": ("edit", b'{"version": 999}')})
@example(changes={"slots/a/meta.json": ("edit", b'{"name": "x"}')})
# Found by hypothesis: a change below a folder an earlier change made a symlink.
@example(changes={"slots/b/meta.json": ("delete", b""), "slots/b": ("symlink", b""),
                  "slots/b/model.tflite": ("dir", b"")})
# Found by hypothesis (20,000 examples): a change two folders below one made a file.
@example(changes={"tuf": ("bytes", b"x"), "tuf/root_history/2.root.json": ("bytes", b"{}")})
def test_any_state_folder_polls_and_reports(publish, make_agent, tiny_models, tmp_path,
                                            changes) -> None:
    """The property of the hardening issue: whatever the state folder holds, ``poll_once``
    never raises, ``device status`` never fails, and afterwards the device runs a model that
    verifies against the signed metadata (the only one published)."""
    pristine = tmp_path / "pristine"
    if not pristine.exists():
        publish(1)
        assert make_agent("pristine").poll_once().version == 1
    state = tempfile.mkdtemp(dir=tmp_path)
    shutil.rmtree(state)
    shutil.copytree(pristine, state, symlinks=True)
    _apply(state, changes)
    assert isinstance(device_status(state), dict)
    agent = make_agent(os.path.relpath(state, tmp_path))
    result = agent.poll_once()
    assert isinstance(result, PollResult)
    status = device_status(state)
    listed_bad = "sensor/1/cpu" in status["bad_versions"]
    assert result.ok or listed_bad, (result, changes)
    if not listed_bad:
        assert status["active"]["verified"] is True, (status, changes)
        published = (tiny_models / "model_int8.tflite").read_bytes()
        with open(agent.active_model_path(), "rb") as f:
            assert hashlib.sha256(f.read()).digest() == hashlib.sha256(published).digest()
    again = agent.poll_once()  # and the repair is done once
    assert again.ok or listed_bad
    assert device_status(state)["damaged"] == [] or listed_bad


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.json")))
def test_the_corpus_is_what_edgeship_writes(name: str) -> None:
    """The seeds parse as they are: a corpus that drifted from the real formats would only
    fuzz error paths."""
    value = seed(name)
    check = {"channel_index.json": channel_index, "target_custom.json": target_custom,
             "status.json": lambda v: _status_shape(v) is None or pytest.fail(_status_shape(v)),
             "slot_meta.json": lambda v: meta_shape(v) is None or pytest.fail(meta_shape(v)),
             "bad_versions.json": lambda v: isinstance(v, dict)}[name]
    check(value)
