"""The rollout rules (``edgeship.device.decide``) on generated, adversarial inputs: indexes with
every entry state, duplicate and malformed entries, signed records for other hardware, channels,
models and versions or none at all, slots holding anything, any refused builds.

The agent carries out what these functions decide (``tests/edge_pusher/test_rollout.py`` and
``tests/device/test_agent.py`` check that end to end, on a real signed repository)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edgeship.contract import ENTRY_STATES, rollout_covers, target_path
from edgeship.device import decide
from edgeship.device.decide import Decision, Held, Identity, Signed, Slots

NAMES = ("m", "n")
HARDWARE = ("cpu", "arm")
CHANNELS = ("stable", "beta")
SLOTS = ("a", "b")
#: For these tests only (a profile loaded here would change every later test module's).
rules = settings(max_examples=250, deadline=None)

identities = st.builds(Identity, st.sampled_from(["dev-1", "dev-2", "cam-0042", "x"]),
                       st.sampled_from(HARDWARE), st.sampled_from(CHANNELS),
                       st.none() | st.sampled_from(NAMES))
versions = st.integers(1, 6)


@st.composite
def index_entries(draw: st.DrawFn, name: str, channel: str) -> dict[str, Any]:
    version, hardware = draw(versions), draw(st.sampled_from(HARDWARE))
    entry: dict[str, Any] = {
        "version": version, "hardware": hardware,
        "path": target_path(name, channel, version, hardware),
        "rollout": draw(st.sampled_from([0, 100]) | st.integers(0, 100)),
    }
    state = draw(st.none() | st.sampled_from(ENTRY_STATES))
    if state is not None:  # a version 1 index has no state: active
        entry["state"] = state
    if draw(st.integers(0, 19)) == 0:  # now and then malformed
        entry[draw(st.sampled_from(["version", "rollout", "state", "path"]))] = "2"
    return entry


@st.composite
def indexes(draw: st.DrawFn, channel: str) -> dict[str, list[dict[str, Any]]]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=2))
    return {name: draw(st.lists(index_entries(name, channel), max_size=6)) for name in names}


def signed_custom(name: str, version: int, hardware: str, channel: str) -> dict[str, Any]:
    return {"schema_version": 1, "name": name, "version": version, "hardware": hardware,
            "channel": channel, "rollout": 100, "self_test": {}}


@st.composite
def records(draw: st.DrawFn, entry: dict[str, Any], name: str,
            channel: str) -> Signed | None:
    """The signed record of an entry's path: mostly what the index says, else lies."""
    version = entry["version"] if isinstance(entry["version"], int) else 1
    custom = signed_custom(name, version, entry["hardware"], channel)
    lie = draw(st.integers(0, 9))
    if lie == 0:
        return None  # no signed metadata lists it
    if lie == 1:
        field = draw(st.sampled_from(["name", "version", "hardware", "channel"]))
        custom[field] = draw({"name": st.sampled_from(NAMES), "version": versions,
                              "hardware": st.sampled_from(HARDWARE),
                              "channel": st.sampled_from(CHANNELS)}[field])
    if lie == 2:
        custom = draw(st.sampled_from([None, [], {"name": name}, custom | {"version": True},
                                       custom | {"schema_version": 9}]))
    return Signed(draw(st.integers(1, 3)), draw(st.sampled_from(["s1", "s2"])), custom)


helds = st.builds(Held, st.sampled_from(NAMES), versions, st.sampled_from(HARDWARE),
                  st.sampled_from(CHANNELS), st.integers(1, 3), st.sampled_from(["s1", "s2"]))


@st.composite
def worlds(draw: st.DrawFn) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Signed | None],
                                     Slots, set[str], Identity]:
    """(index models, signed records by path, slots, refused keys, identity)."""
    who = draw(identities)
    models = draw(indexes(who.channel))
    signed = {e["path"]: draw(records(e, name, who.channel))
              for name, entries in models.items() for e in entries
              if isinstance(e.get("path"), str)}
    # the slots: anything, or builds the index lists (so that revocations and reverts occur)
    listed = [Held(name, e["version"], e["hardware"], who.channel, 1, "s1")
              for name, entries in models.items() for e in entries
              if isinstance(e["version"], int)]
    slot = helds | st.sampled_from(listed) if listed else helds
    slots = Slots(draw(st.none() | slot), draw(st.none() | slot))
    keys = [decide.refused_key(n, v, h) for n in NAMES for v in range(1, 7) for h in HARDWARE]
    refused = set(draw(st.lists(st.sampled_from(keys), max_size=4)))
    return models, signed, slots, refused, who


def raw_entries_of(models: dict[str, list[dict[str, Any]]], name: str, version: int,
                   hardware: str) -> list[dict[str, Any]]:
    return [e for e in models.get(name, []) if (e.get("version"), e.get("hardware")) == (
        version, hardware)]


@rules
@given(worlds())
def test_a_chosen_build_is_one_the_index_offers_this_device_and_the_signed_record_confirms(
        world: Any) -> None:
    """Never a revoked or halted build, never one this device refused, never one for other
    hardware, another channel or another model, never one its rollout does not cover, never a
    record that is not signed as what the index says."""
    models, signed, slots, refused, who = world
    decision = decide.choose(models, signed, slots, refused, who)
    if decision.build is None:
        return
    build = decision.build
    (entry,) = raw_entries_of(models, build.name, build.version, who.hardware)
    assert entry.get("state", "active") == "active"
    assert decide.refused_key(build.name, build.version, who.hardware) not in refused
    active = slots.active
    assert build.name == (who.model or (active.name if active else build.name))
    custom = build.signed.custom
    assert isinstance(custom, dict)
    assert (custom["name"], custom["version"], custom["hardware"], custom["channel"]) == (
        build.name, build.version, who.hardware, who.channel)
    assert signed[build.path] == build.signed and entry["path"] == build.path
    assert rollout_covers(entry["rollout"], who.device_id, build.name, build.version)


@rules
@given(worlds())
def test_a_revoked_build_is_never_chosen_and_is_always_recorded_as_refused(world: Any) -> None:
    models, signed, slots, refused, who = world
    decision = decide.choose(models, signed, slots, refused, who)
    if decision.build is not None:
        revoked = [e for e in raw_entries_of(models, decision.build.name,
                                             decision.build.version, who.hardware)
                   if e.get("state") == "revoked"]
        assert revoked == []
    active = slots.active
    if active is not None and (active.hardware, active.channel) == (who.hardware, who.channel) \
            and any(e.get("state") == "revoked" and isinstance(e.get("path"), str)
                    and e.get("version") == active.version and e.get("hardware") == who.hardware
                    and isinstance(e.get("rollout"), int)
                    for e in models.get(active.name, [])):
        assert decision.revoked == active


@rules
@given(worlds())
def test_never_below_the_active_version_of_the_same_model_unless_it_is_revoked(
        world: Any) -> None:
    models, signed, slots, refused, who = world
    decision = decide.choose(models, signed, slots, refused, who)
    active = slots.active
    if decision.build is None or active is None or decision.revoked is not None:
        return
    if (active.name, active.hardware, active.channel) == (decision.build.name, who.hardware,
                                                          who.channel):
        assert decision.build.version > active.version


@rules
@given(worlds())
def test_the_fallback_from_a_revoked_build_is_what_the_index_gives_a_device_with_no_model(
        world: Any) -> None:
    models, signed, slots, refused, who = world
    decision = decide.choose(models, signed, slots, refused, who)
    gone = decision.revoked
    if gone is None:
        return
    fresh_who = Identity(who.device_id, who.hardware, who.channel, who.model or gone.name)
    fresh = decide.choose(models, signed, Slots(), refused | {
        decide.refused_key(gone.name, gone.version, gone.hardware)}, fresh_who)
    if fresh.action == "install":
        assert decision.action in ("install", "revert") and decision.build == fresh.build
    elif fresh.action == "refuse":
        assert (decision.action, decision.reason, decision.message) == (
            "refuse", fresh.reason, fresh.message)
    else:
        assert fresh.action == "no-model"
        assert (decision.action, decision.reason, decision.version) == (
            "kept-revoked", "revoked-no-fallback", gone.version)


@rules
@given(worlds())
def test_a_device_never_switches_back_to_an_unproven_slot(world: Any) -> None:
    """A revert activates the other slot only when it holds exactly the build chosen: its
    name, version, hardware, channel and signed length and sha256."""
    models, signed, slots, refused, who = world
    decision = decide.choose(models, signed, slots, refused, who)
    if decision.action != "revert":
        return
    assert decision.build is not None and decision.revoked is not None
    other = slots.other
    assert other is not None
    assert (other.name, other.version, other.hardware, other.channel, other.length,
            other.sha256) == (decision.build.name, decision.build.version, who.hardware,
                              who.channel, decision.build.signed.length,
                              decision.build.signed.sha256)
    assert decision.version == other.version


@rules
@given(worlds(), st.randoms(use_true_random=False))
def test_the_decision_is_deterministic_and_ignores_the_order_of_the_index(
        world: Any, rng: Any) -> None:
    models, signed, slots, refused, who = world
    decision = decide.choose(models, signed, slots, refused, who)
    shuffled_names = list(models)
    rng.shuffle(shuffled_names)
    shuffled = {name: rng.sample(models[name], len(models[name])) for name in shuffled_names}
    keys = list(refused)
    rng.shuffle(keys)
    again = decide.choose(shuffled, dict(reversed(signed.items())), slots, keys, who)
    assert again == decision
    assert decide.choose(models, signed, slots, refused, who) == decision


@rules
@given(worlds())
def test_a_lazy_reader_fetches_exactly_the_records_choose_reads(world: Any) -> None:
    """The agent fetches signed records one at a time (each may cost a download) and stops
    where ``signed_verdict`` stops; with only those records the decision is the same."""
    models, signed, slots, refused, who = world
    p = decide.plan(models, slots, refused, who)
    fetched: dict[str, Signed | None] = {}
    for entry in p.candidates:
        assert p.name is not None
        fetched[entry.path] = signed.get(entry.path)
        if decide.signed_verdict(entry, fetched[entry.path], p.name, who) is not False:
            break
    assert decide.choose(models, fetched, slots, refused, who) == decide.choose(
        models, signed, slots, refused, who)


def test_without_an_index_there_is_nothing_to_take() -> None:
    who = Identity("dev-1", "cpu", "stable")
    assert decide.choose(None, {}, Slots(), (), who) == Decision(
        "no-model", "no-index", "no models on channel stable")


def test_two_models_and_no_model_chosen_is_ambiguous() -> None:
    who = Identity("dev-1", "cpu", "stable")
    entry = {"version": 1, "hardware": "cpu", "rollout": 100}
    models = {n: [entry | {"path": target_path(n, "stable", 1, "cpu")}] for n in NAMES}
    decision = decide.choose(models, {}, Slots(), (), who)
    assert (decision.action, decision.reason, decision.rule) == ("refuse", "ambiguous-model",
                                                                 "model")
    assert decision.message == "channel stable has models m, n; choose one with --model"


# ---------------------------------------------------------------------- repairing

pointers = st.none() | st.sampled_from(SLOTS)


@st.composite
def slot_states(draw: st.DrawFn) -> tuple[str | None, bool, dict[str, Held], set[str],
                                          set[str]]:
    """(pointer, damaged, proven, unknown, refused)."""
    damaged = draw(st.booleans())
    pointer = None if damaged else draw(pointers)
    kinds = {s: draw(st.sampled_from(["proven", "unknown", "empty"])) for s in SLOTS}
    proven = {s: draw(helds) for s in SLOTS if kinds[s] == "proven"}
    unknown = {s for s in SLOTS if kinds[s] == "unknown"}
    refused = {decide.refused_key(h.name, h.version, h.hardware) for h in proven.values()
               if draw(st.booleans())}
    return pointer, damaged, proven, unknown, refused


@rules
@given(slot_states())
def test_repair_points_active_only_at_a_proven_slot(state: Any) -> None:
    pointer, damaged, proven, unknown, refused = state
    repair = decide.repair_pointer(pointer, SLOTS, proven, unknown, refused, damaged)
    if repair.action == "activate":
        assert repair.slot in proven
        assert pointer not in proven and pointer not in unknown
    elif repair.action == "keep":  # a slot proven, or one that cannot be checked offline
        assert repair.slot == pointer
        assert pointer in proven or pointer in unknown or (
            pointer is None and not damaged and not proven)
    else:
        assert not proven and (pointer is not None or damaged)


@rules
@given(slot_states())
def test_repair_prefers_a_build_this_device_did_not_refuse_and_then_the_newest(
        state: Any) -> None:
    pointer, damaged, proven, unknown, refused = state
    repair = decide.repair_pointer(pointer, SLOTS, proven, unknown, refused, damaged)
    if repair.action != "activate":
        return
    assert repair.slot is not None

    def key(h: Held) -> str:
        return decide.refused_key(h.name, h.version, h.hardware)

    chosen = proven[repair.slot]
    fine = [h for h in proven.values() if key(h) not in refused]
    if fine:
        assert key(chosen) not in refused
        assert chosen.version == max(h.version for h in fine)
    else:
        assert chosen.version == max(h.version for h in proven.values())


@rules
@given(slot_states())
def test_repair_is_the_same_whatever_order_its_inputs_come_in(state: Any) -> None:
    pointer, damaged, proven, unknown, refused = state
    repair = decide.repair_pointer(pointer, SLOTS, proven, unknown, refused, damaged)
    backwards = dict(reversed(proven.items()))
    assert decide.repair_pointer(pointer, SLOTS, backwards, sorted(unknown, reverse=True),
                                 sorted(refused), damaged) == repair


def test_repair_of_two_equal_versions_takes_the_first_slot_in_any_order() -> None:
    """Found in review: of two proven slots with one version (one build on two channels),
    which became active depended on the iteration order of a set of slot names, which
    Python's string hashing changes from one process to the next."""
    stable = Held("m", 3, "cpu", "stable", 1, "s1")
    beta = Held("m", 3, "cpu", "beta", 1, "s2")
    for proven in ({"a": stable, "b": beta}, {"b": beta, "a": stable}):
        assert decide.repair_pointer(None, SLOTS, proven, (), (), damaged=True) == \
            decide.PointerRepair("activate", "a")


def test_repair_does_not_go_back_to_a_revoked_build_when_the_other_slot_is_proven() -> None:
    """Found in review: with ``active`` damaged, repair took the newest proven build even
    when this device had refused it (revoked), so an offline device went back to a revoked
    model until it could poll again."""
    revoked, good = Held("m", 2, "cpu", "stable", 1, "s2"), Held("m", 1, "cpu", "stable", 1, "s1")
    repair = decide.repair_pointer(None, SLOTS, {"a": good, "b": revoked}, (),
                                   {decide.refused_key("m", 2, "cpu")}, damaged=True)
    assert repair == decide.PointerRepair("activate", "a")
    only_refused = decide.repair_pointer(None, SLOTS, {"b": revoked}, (),
                                         {decide.refused_key("m", 2, "cpu")}, damaged=True)
    assert only_refused == decide.PointerRepair("activate", "b")  # some model beats none


def test_a_damaged_meta_is_matched_to_the_first_signed_build_of_its_length_and_sha256() -> None:
    builds = [("m", 2, Signed(5, "x", None)), ("m", 1, Signed(4, "y", None)),
              ("n", 1, Signed(4, "y", None))]
    assert decide.matching_build((4, "y"), builds) == builds[1]
    assert decide.matching_build((4, "z"), builds) is None
    assert decide.matching_build(None, builds) is None
