"""The OTA contract the publisher writes and the device reads: names, versions, the signed
custom metadata, the channel index and the self-test."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeship import contract
from edgeship.errors import OtaError


@pytest.mark.parametrize("value", [1, "7", 2**63 - 1])
def test_versions_are_integers_from_1_to_2_63_minus_1(value) -> None:
    assert contract.check_version(value) == int(value)


@pytest.mark.parametrize("value", [0, -1, 2**63, "99999999999999999999999999", "1.0", 1.5, True,
                                   None, "x", float("nan")])
def test_any_other_version_is_refused(value) -> None:
    with pytest.raises(OtaError, match="invalid version"):
        contract.check_version(value)


@pytest.mark.parametrize("value", [-1, 101, "50%", True, 12.5])
def test_rollouts_are_integer_percentages(value) -> None:
    with pytest.raises(OtaError, match="invalid rollout"):
        contract.check_rollout(value)


def _custom(**changes):
    base = {"schema_version": 1, "name": "sensor", "version": 3, "hardware": "cpu",
            "channel": "stable", "rollout": 10, "self_test": {}}
    return {**base, **changes}


def test_target_custom_metadata_is_checked_field_by_field() -> None:
    parsed = contract.target_custom(_custom())
    assert (parsed.name, parsed.version, parsed.rollout) == ("sensor", 3, 10)
    assert contract.target_custom({k: v for k, v in _custom().items() if k != "schema_version"})
    for change, message in [({"version": 2**63}, "invalid version"),
                            ({"version": "3"}, "version .3. is not an integer"),
                            ({"hardware": "../cpu"}, "invalid hardware"),
                            ({"rollout": 200}, "invalid rollout"),
                            ({"self_test": None}, "no signed self-test"),
                            ({"schema_version": 2}, "schema_version 2")]:
        with pytest.raises(OtaError, match=message):
            contract.target_custom(_custom(**change))
    with pytest.raises(OtaError, match="not an object"):
        contract.target_custom([])


def test_channel_index_shape_and_entries_are_checked() -> None:
    entry = {"version": 1, "hardware": "cpu", "rollout": 100, "path": "models/x"}
    assert contract.channel_index({"models": {"m": [entry]}}) == {"m": [entry]}
    for index in ({}, {"models": []}, {"models": {"m": {}}}, {"models": {"m": [3]}},
                  {"models": {}, "schema_version": 9}):
        with pytest.raises(OtaError):
            contract.channel_index(index)
    assert contract.index_entry("m", entry) == contract.IndexEntry(1, "cpu", "models/x", 100,
                                                                   "active")
    assert contract.index_entry("m", entry | {"state": "revoked"}).state == "revoked"
    assert contract.channel_index({"models": {}, "schema_version": 2}) == {}
    for bad in ({"version": 1, "hardware": "cpu"}, entry | {"version": 0},
                entry | {"version": 2**63}, entry | {"hardware": "../x"},
                entry | {"rollout": 101}, entry | {"rollout": "5"}, entry | {"rollout": True},
                entry | {"state": "paused"}):
        with pytest.raises(OtaError):
            contract.index_entry("m", bad)


def test_a_self_test_round_trips_through_its_signed_form() -> None:
    test = contract.SelfTest(np.ones((1, 4), np.float32), np.array([[0.25, 0.75]]), 0.01, 0.0)
    back = contract.SelfTest.from_dict(contract.canonical_safe(test.as_dict()))
    assert np.array_equal(back.input, test.input) and back.atol == 0.01
    assert back.differs(np.array([0.25, 0.75])) == ""
    assert "differs from the expected output by up to 0.1" in back.differs([0.35, 0.75])
    assert "has 3 values, expected 2" in back.differs([0.1, 0.2, 0.3])


@pytest.mark.parametrize("broken,message", [
    ({"input": "x"}, "input must be"),
    ({"input": {"dtype": "float32", "shape": [2], "b64": "!!"}}, "not valid base64"),
    ({"input": {"dtype": "float32", "shape": [3], "b64": "AAAAAAAAAAA="}}, "has 2 values"),
    ({"input": {"dtype": "float32", "shape": [-1], "b64": ""}}, "malformed shape"),
    ({"atol": "nan"}, "tolerances must be finite"),
    ({"atol": "lots"}, "tolerances are not numbers"),
])
def test_a_malformed_self_test_is_refused_naming_the_part(broken, message) -> None:
    good = contract.SelfTest(np.zeros(2, np.float32), np.zeros(2, np.float32), 0.1).as_dict()
    with pytest.raises(OtaError, match=message):
        contract.SelfTest.from_dict(good | broken)


def test_self_test_tolerance_is_a_step_and_a_half_or_float_noise() -> None:
    assert contract.self_test_tolerance(0.004) == (pytest.approx(0.006), 0.0)
    assert contract.self_test_tolerance(None) == (1e-3, 1e-3)


@pytest.mark.parametrize("value", ["sensor\n", "sensor\r\n", "\nsensor", "a/b", "a b", ".", "..",
                                   "-x", "x" * 65, "", "s\x00"])
def test_a_name_is_a_full_match_no_trailing_newline(value) -> None:
    # `$` matches before a final newline: "sensor\n" once passed and became a path segment
    with pytest.raises(OtaError, match="invalid model name"):
        contract.check_name("model name", value)


@given(st.text(max_size=70))
def test_a_name_that_passes_is_one_safe_path_segment(value) -> None:
    try:
        contract.check_name("channel", value)
    except OtaError:
        return
    assert value.isascii() and value.strip() == value and "/" not in value
    assert all(c.isalnum() or c in "._-" for c in value) and 1 <= len(value) <= 64
    assert contract.topic_device_id(f"edgeship/devices/{value}/state") == value


def test_an_index_version_is_a_json_integer_not_a_string() -> None:
    entry = {"version": 2, "hardware": "cpu", "rollout": 100, "path": "models/x"}
    with pytest.raises(OtaError, match="version '2' is not an integer"):
        contract.index_entry("m", entry | {"version": "2"})
    with pytest.raises(OtaError, match="version True is not an integer"):
        contract.index_entry("m", entry | {"version": True})


def _deep(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("index", [
    {"models": {}, "channel": {"nested": 1}},
    {"models": {"m": [{"version": 1, "hardware": "cpu", "rollout": 1, "path": "p",
                       "since": _deep(50_000)}]}},
])
def test_an_index_nesting_beyond_its_schema_is_malformed(index) -> None:
    with pytest.raises(OtaError, match="nests deeper than the index's schema"):
        contract.channel_index(index)


def test_a_build_listed_twice_is_refused_whatever_its_states() -> None:
    entry = {"version": 3, "hardware": "cpu", "rollout": 100, "path": "models/m/3"}
    twice = [entry | {"state": "revoked"}, entry | {"state": "active"}]
    with pytest.raises(OtaError, match="lists m v3 \\(cpu\\) twice"):
        contract.model_entries("m", twice)
    with pytest.raises(OtaError, match="twice"):
        contract.model_entries("m", twice, "cpu")
    # another hardware's builds are not read, so their faults are not this device's
    assert contract.model_entries("m", twice, "arm") == []
    other = entry | {"version": 4}
    assert [e.version for e in contract.model_entries("m", [entry, other])] == [4, 3]


@pytest.mark.parametrize("value", ["5\n", " 5", "\u20035\u3000", "\x0b5\x0c", "05", "+5", "5.0",
                                   "٥"])
def test_a_padded_or_lookalike_version_string_is_refused(value) -> None:
    with pytest.raises(OtaError, match="invalid version"):
        contract.check_version(value)


def test_signed_json_with_a_repeated_key_has_no_one_meaning() -> None:
    with pytest.raises(ValueError, match="'sensor' appears twice"):
        contract.load_json(b'{"models": {"sensor": [], "sensor": []}}')
    with pytest.raises(ValueError, match="nested too deeply"):
        contract.load_json("[" * 100_000 + "]" * 100_000)
    assert contract.load_json(b'{"a": {"b": 1}}') == {"a": {"b": 1}}


@pytest.mark.parametrize("since, ok", [("2026-12-07T19:00:00Z", True), (5, False),
                                       ("2026-12-07T19:00:00", False),
                                       ("2026-13-07T19:00:00Z", False),
                                       ("2026-12-07T19:00:00+00:00", False)])
def test_an_index_entry_since_is_a_utc_time(since, ok) -> None:
    entry = {"version": 1, "hardware": "cpu", "rollout": 5, "path": "p", "since": since}
    if ok:
        assert contract.index_entry("m", entry).version == 1
    else:
        with pytest.raises(OtaError, match="is not a UTC time"):
            contract.index_entry("m", entry)


def test_an_index_schema_version_is_an_integer() -> None:
    for schema in (2.0, True, "2"):
        with pytest.raises(OtaError, match="schema_version"):
            contract.channel_index({"models": {}, "schema_version": schema})
