"""Names shared by the publisher and the device: target paths, the channel index, rollout buckets.

Kept free of heavy imports because devices import it. Both sides must compute exactly the same
strings and hashes, so they live in one place.
"""

from __future__ import annotations

import hashlib
import re

from edge_pusher.errors import OtaError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

#: Hardware classes a target can be built for. Free-form beyond these is allowed, but these are
#: the ones the push component emits.
KNOWN_HARDWARE = ("cpu", "edgetpu")


def check_name(kind: str, value: str) -> str:
    """Reject names that could escape a path segment or collide after URL quoting."""
    if not isinstance(value, str) or not _NAME_RE.match(value) or value in (".", ".."):
        raise OtaError(
            f"invalid {kind} {value!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def check_version(value) -> int:
    """Versions are positive integers so that 'newer' has one meaning everywhere."""
    try:
        version = int(value)
    except (TypeError, ValueError):
        raise OtaError(f"invalid version {value!r}: must be a positive integer") from None
    if version < 1 or str(version) != str(value).strip():
        raise OtaError(f"invalid version {value!r}: must be a positive integer")
    return version


def check_rollout(value) -> int:
    try:
        pct = int(value)
    except (TypeError, ValueError):
        raise OtaError(f"invalid rollout {value!r}: must be an integer 0..100") from None
    if not 0 <= pct <= 100:
        raise OtaError(f"invalid rollout {value!r}: must be an integer 0..100")
    return pct


def target_path(name: str, channel: str, version: int, hardware: str) -> str:
    """The TUF target path of one model build.

    Name, channel, version and hardware are all in the path, so two builds can never share a
    path, and a path says what it is even before its signed custom metadata is read.
    """
    return f"models/{name}/{channel}/{version}/{hardware}/model.tflite"


def index_path(channel: str) -> str:
    """The signed per-channel index that lets a device find candidates without listing bins."""
    return f"index/{channel}.json"


def rollout_bucket(device_id: str, name: str, version: int) -> int:
    """A stable 0..99 bucket for (device, model, version).

    Hashing the version too means a device that is in the first 10% for one release is not
    always the guinea pig for every release.
    """
    digest = hashlib.sha256(f"{device_id}\0{name}\0{version}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def rollout_covers(rollout: int, device_id: str, name: str, version: int) -> bool:
    return rollout_bucket(device_id, name, version) < int(rollout)


def canonical_safe(obj):
    """Make ``obj`` encodable as TUF canonical JSON, which has no floats.

    Floats become their shortest round-trip decimal string ("0.0078125"); readers turn them back
    with ``float()``. Tuples become lists, numpy scalars plain numbers.
    """
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return repr(obj)
    if isinstance(obj, dict):
        return {str(k): canonical_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [canonical_safe(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalar
        return canonical_safe(obj.item())
    if hasattr(obj, "tolist"):  # numpy array
        return canonical_safe(obj.tolist())
    raise TypeError(f"cannot put {type(obj).__name__} into signed metadata")
