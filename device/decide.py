"""The device's rollout decisions, apart from all I/O: which build to take, where to go when
the active build is revoked, and which slot a repaired ``active`` pointer may name.

Every function here is a pure function of plain values: the signed, already verified channel
index and target records, what the slots hold, the builds this device refused, and the
device's identity. The agent (``edgeship.device.agent``) gathers those (python-tuf's updater,
the slots, ``bad_versions.json``), calls these functions, and carries out the
:class:`Decision` they return, as python-tuf keeps its trust decisions in a pure
``TrustedMetadataSet`` apart from its downloads. So the rules can be property-tested alone
(``tests/device/test_decide.py``).

The rules, in the order they apply (``rule`` in a decision names the one that decided):

1. ``no-index``: a channel without a signed index offers nothing.
2. ``model``: the model is the device's ``--model``, else the active build's name, else the one
   model the index lists for this hardware; two or more is ``ambiguous-model`` (refused).
3. ``invalid-index``: the model's entries for this hardware must each be well formed and list
   a (version, hardware) once, or the poll is refused (``invalid-metadata``): a build listed
   both revoked and active could otherwise be installed.
4. ``revoked``: when the index revokes the active build (of this device's channel and
   hardware), that build counts as refused from now on (the agent records it), and the device
   takes what the index would give a device with no model and the same refusals (rules 5-8
   with no floor); when that build is already in the other slot, proven, it switches back to
   it without a download (``revert``); when the index offers nothing, it keeps the revoked
   build, since some model beats none (``kept-revoked``).
5. ``floor``: otherwise a device never goes back: a build of the active model (same name,
   channel and hardware) at or below the active version is never taken.
6. ``not-active``/``refused``: a halted or revoked entry, and a build this device refused (it
   failed to load or self-test here, or was revoked), is never taken.
7. ``signed``: the signed target record, not the index, decides: an entry no signed targets
   metadata lists, or whose signed custom metadata is malformed, for another hardware, another
   channel, or names another model or version, refuses the poll. This applies to every
   candidate reached, covered or not, newest first.
8. ``covered``: the newest remaining entry whose index rollout covers this device (a stable
   hash of device id, model and version) is installed; none: ``up-to-date`` when the device
   runs this model, else ``no-model``.

Repair (``repair_pointer``): ``active`` may name only a slot proven against the signed
metadata; when it must be re-pointed, the newest proven build that this device has not
refused is taken, a refused (revoked) one only when no other is proven, and of two equal
versions the first slot: the same state always gives the same slot.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from edgeship.contract import (
    IndexEntry,
    index_entry,
    model_entries,
    rollout_covers,
    target_custom,
)
from edgeship.errors import OtaError

#: A channel index's models as ``edgeship.contract.channel_index`` returns them: name -> the
#: raw entries (each checked where it is used, so one bad entry of another model locks no
#: device out of the channel).
Models = Mapping[str, Sequence[Mapping[str, Any]]]

Action = Literal["install", "revert", "no-model", "up-to-date", "kept-revoked", "refuse"]


@dataclass(frozen=True)
class Identity:
    """Who the device is: its id (its rollout bucket), hardware, channel, and the model it was
    told to run (None: whatever it runs, or the channel's only one)."""

    device_id: str
    hardware: str
    channel: str
    model: str | None = None


@dataclass(frozen=True)
class Held:
    """A build a slot holds whose file still has the length and sha256 its meta.json
    records (``SlotStore.verified``)."""

    name: str
    version: int
    hardware: str
    channel: str
    length: int
    sha256: str

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Held:
        """From a slot's meta.json, already checked against ``slots.meta_shape``."""
        return cls(str(meta["name"]), int(meta["version"]), str(meta["hardware"]),
                   str(meta["channel"]), int(meta["length"]), str(meta["sha256"]))

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class Slots:
    """What the device runs (``active``) and what its other slot holds (``other``), each a
    verified build or None."""

    active: Held | None = None
    other: Held | None = None


@dataclass(frozen=True)
class Signed:
    """A target's signed record: its length, sha256 and custom metadata (unchecked: the
    rules check it)."""

    length: int
    sha256: str | None
    custom: object


@dataclass(frozen=True)
class Build:
    """A build the decision names, and the signed record it was checked against."""

    name: str
    version: int
    path: str
    signed: Signed


@dataclass(frozen=True)
class Decision:
    """What a poll does, and why: ``action``, the ``rule`` that decided (see the module's
    docstring), the ``reason`` code a poll result or refusal carries, a one-line ``message``,
    the version it reports, the ``build`` to install or revert to, and ``revoked``: the active
    build the index revoked, which the agent records as refused whatever the action."""

    action: Action
    rule: str
    message: str
    reason: str | None = None
    version: int | None = None
    build: Build | None = None
    revoked: Held | None = field(default=None)


def refused_key(name: str, version: int, hardware: str) -> str:
    """How ``bad_versions.json`` names a refused build."""
    return f"{name}/{version}/{hardware}"


# ---------------------------------------------------------------------- choosing


@dataclass(frozen=True)
class Plan:
    """What the index offers before any signed record is read: the model, the candidates in
    the order the rules read them (newest first, after rules 4-6), the revoked active build,
    or the refusal that ends the poll before any candidate."""

    name: str | None
    candidates: tuple[IndexEntry, ...] = ()
    revoked: Held | None = None
    same_model: bool = False
    refusal: Decision | None = None


def revoked_active(models: Models, active: Held | None, identity: Identity) -> Held | None:
    """The active build when the signed index revokes it for this device's hardware (and it
    is of this device's channel), else None. A malformed entry revokes nothing."""
    if active is None or (active.channel, active.hardware) != (identity.channel,
                                                              identity.hardware):
        return None
    for raw in models.get(active.name, ()):
        try:
            entry = index_entry(active.name, dict(raw))
        except OtaError:
            continue
        if (entry.version, entry.hardware, entry.state) == (active.version, identity.hardware,
                                                            "revoked"):
            return active
    return None


def plan(models: Models, slots: Slots, refused: Iterable[str], identity: Identity) -> Plan:
    """Rules 2-6: which model, and which of its entries are candidates."""
    revoked = revoked_active(models, slots.active, identity)
    refused = frozenset(refused)
    if revoked is not None:
        refused |= {refused_key(revoked.name, revoked.version, revoked.hardware)}
    active = slots.active
    name = identity.model or (active.name if active else None)
    if name is None:
        names = sorted(n for n, es in models.items()
                       if any(e.get("hardware") == identity.hardware for e in es))
        if len(names) > 1:
            return Plan(None, revoked=revoked, refusal=Decision(
                "refuse", "model", f"channel {identity.channel} has models "
                f"{', '.join(names)}; choose one with --model", "ambiguous-model",
                revoked=revoked))
        name = names[0] if names else None
    if name is None:
        return Plan(None, revoked=revoked)
    # in one order whatever the index's, so that a refusal names the same entry every time
    raw = sorted((dict(e) for e in models.get(name, ())), key=_canonical)
    try:
        entries = model_entries(name, raw, identity.hardware)
    except OtaError as e:
        return Plan(name, revoked=revoked, refusal=Decision(
            "refuse", "invalid-index", f"signed channel index: {name}: {e}",
            "invalid-metadata", revoked=revoked))
    # Versions only go up within (name, channel), and each hardware has its own builds, so
    # the active version says nothing about another channel's or hardware's numbering.
    same_model = active is not None and (active.name, active.channel, active.hardware) == (
        name, identity.channel, identity.hardware)
    # Rollback at the model level: never replace the active model with an older one, unless
    # the index revoked it: then what the index offers a device without a model replaces it.
    floor = active.version if active is not None and same_model and not revoked else 0
    # Halted and revoked builds reach no further device; the signed index, not the build,
    # carries the rollout, so an operator changes it without a new build.
    candidates = tuple(e for e in entries if e.version > floor and e.state == "active"
                       and refused_key(name, e.version, identity.hardware) not in refused)
    return Plan(name, candidates, revoked, same_model)


def check_signed(custom: object, name: str, version: int,
                 identity: Identity) -> Decision | None:
    """Rule 7 for one build's signed custom metadata: a refusal, or None when it is signed
    for this device as (``name``, ``version``). The signed target metadata, not the index,
    decides: a build for other hardware would fail or silently misbehave; one from another
    channel bypasses staged rollout."""
    what = f"{name} v{version}"
    try:
        checked = target_custom(custom)
    except OtaError as e:
        return Decision("refuse", "signed", f"{what}: {e}", "invalid-metadata")
    if checked.hardware != identity.hardware:
        return Decision("refuse", "signed", f"{what} is signed for hardware "
                        f"{checked.hardware!r}, this device is {identity.hardware!r}",
                        "wrong-hardware")
    if checked.channel != identity.channel:
        return Decision("refuse", "signed", f"{what} is signed for channel "
                        f"{checked.channel!r}, this device follows {identity.channel!r}",
                        "wrong-channel")
    if (checked.name, checked.version) != (name, version):
        return Decision("refuse", "signed", f"target metadata says {checked.name} "
                        f"v{checked.version}, index says {what}", "invalid-metadata")
    return None


def _canonical(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, default=repr)


def signed_verdict(entry: IndexEntry, signed: Signed | None, name: str,
                   identity: Identity) -> Decision | bool:
    """Rules 7-8 for one candidate: a refusal, True when it is the build to take, False to
    read on."""
    if signed is None:
        return Decision("refuse", "signed", f"index names {entry.path}, which no signed "
                        "targets metadata lists", "invalid-metadata")
    refusal = check_signed(signed.custom, name, entry.version, identity)
    if refusal is not None:
        return refusal
    return rollout_covers(entry.rollout, identity.device_id, name, entry.version)


def choose(models: Models | None, signed: Mapping[str, Signed | None], slots: Slots,
           refused: Iterable[str], identity: Identity) -> Decision:
    """What this poll does (rules 1-8). ``signed`` maps target paths to their signed records
    (None, or absent: no signed metadata lists the path); ``refused`` holds the
    ``bad_versions.json`` keys (:func:`refused_key`). A caller that fetches records lazily
    reads those of :func:`plan`'s candidates in order, stopping at the first on which
    :func:`signed_verdict` is not False: exactly the records this reads."""
    if models is None:
        return Decision("no-model", "no-index", f"no models on channel {identity.channel}")
    p = plan(models, slots, refused, identity)
    if p.refusal is not None:
        return p.refusal
    for entry in p.candidates:
        assert p.name is not None  # candidates are of a model
        verdict = signed_verdict(entry, signed.get(entry.path), p.name, identity)
        if isinstance(verdict, Decision):
            return Decision(verdict.action, verdict.rule, verdict.message, verdict.reason,
                            revoked=p.revoked)
        if verdict:
            return _take(Build(p.name, entry.version, entry.path, _known(signed, entry.path)),
                         slots, identity, p.revoked)
    active = slots.active
    if p.revoked is not None:
        return Decision("kept-revoked", "revoked", f"{p.revoked} is revoked, and the index "
                        "offers no other build to go back to: kept", "revoked-no-fallback",
                        p.revoked.version, revoked=p.revoked)
    if p.same_model and active is not None:
        return Decision("up-to-date", "floor", f"{p.name} v{active.version} is current",
                        version=active.version)
    return Decision("no-model", "covered", f"no {identity.hardware} build on channel "
                    f"{identity.channel} covers this device")


def _known(signed: Mapping[str, Signed | None], path: str) -> Signed:
    record = signed.get(path)
    assert record is not None  # signed_verdict refused an unlisted path
    return record


def _take(build: Build, slots: Slots, identity: Identity, revoked: Held | None) -> Decision:
    """Install ``build``; but when it replaces a revoked build and the other slot already
    holds exactly it (the signed length and sha256 too), switch back to that slot."""
    other = slots.other
    if revoked is not None and other is not None and (
            other.name, other.version, other.hardware, other.channel, other.length,
            other.sha256) == (build.name, build.version, identity.hardware, identity.channel,
                              build.signed.length, build.signed.sha256):
        return Decision("revert", "revoked", f"{revoked} is revoked; back to {other}",
                        "revoked", other.version, build, revoked)
    return Decision("install", "revoked" if revoked else "covered",
                    f"activated {build.name} v{build.version}", None, build.version, build,
                    revoked)


# ---------------------------------------------------------------------- repairing


@dataclass(frozen=True)
class PointerRepair:
    """What becomes of ``active`` after the slots were checked: ``keep`` it, ``activate``
    ``slot``, or ``remove`` it (no slot holds a proven build)."""

    action: Literal["keep", "activate", "remove"]
    slot: str | None = None


def repair_pointer(pointer: str | None, slots: Sequence[str], proven: Mapping[str, Held],
                   unknown: Iterable[str], refused: Iterable[str],
                   damaged: bool = False) -> PointerRepair:
    """``pointer``: the slot ``active`` names, None when there is none or it is ``damaged``
    (unreadable, naming no slot). ``proven``: the slots whose file is a signed build, with
    it; ``unknown``: slots holding a build that cannot be checked now (offline, a bin not
    cached), kept but never made active; ``refused``: the ``bad_versions.json`` keys.

    Only a proven slot may become active. A missing pointer with no proven slot stays
    missing (a device without a model); any other pointer that names no proven or unknown
    slot is removed then."""
    unknown = frozenset(unknown)
    if pointer is not None and (pointer in proven or pointer in unknown):
        return PointerRepair("keep", pointer)
    if not proven:
        return PointerRepair("keep" if pointer is None and not damaged else "remove")
    refused = frozenset(refused)
    order = [s for s in slots if s in proven]

    def rank(slot: str) -> tuple[bool, int]:
        held = proven[slot]
        return (refused_key(held.name, held.version, held.hardware) not in refused,
                held.version)

    return PointerRepair("activate", max(order, key=rank))  # max keeps the first of equals


def matching_build(found: tuple[int, str] | None,
                   builds: Iterable[tuple[str, int, Signed]]) -> tuple[str, int, Signed] | None:
    """The first of ``builds`` (name, version, signed record) whose signed length and sha256
    are ``found``, a file's: which signed build a slot with a damaged meta.json holds."""
    if found is None:
        return None
    for build in builds:
        if (build[2].length, build[2].sha256) == found:
            return build
    return None
