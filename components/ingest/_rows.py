"""What every kind's parsing produces: labelled items for the writer, or bad rows to count.

Workers never raise on bad data (a runner would wrap the error and retry the bundle); they emit
a :class:`BadRow`, and the step's driver decides after the pipeline whether to drop or fail.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from edgeship.components.ingest._tfexample import FeatureValue

# (split key, class name, features): the split key is what keeps related data in one split.
Item = tuple[str, str, dict[str, FeatureValue]]


@dataclass(frozen=True)
class BadRow:
    """A row, window or image that cannot become an example. ``fatal`` ones end the step."""

    source: str
    line: int  # 0 when the problem is the whole file (an image, an unreadable file)
    reason: str
    fatal: bool = False

    def where(self) -> str:
        return f"{self.source} line {self.line}" if self.line else self.source

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def in_eval(split_key: str, eval_ratio: float) -> bool:
    """Deterministic split: a stable hash of the key mapped to [0, 1) against the ratio.

    md5 is used as a well-spread, platform-independent hash (not for security); Python's own
    ``hash`` is salted per process and would move rows between splits on every run.
    """
    digest = hashlib.md5(split_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < eval_ratio


def natural_sorted(names: Any) -> list[str]:
    """Class names in order: numerically when every name is a number (so 2 < 10), else by name."""
    names = sorted(set(names))
    try:
        return sorted(names, key=lambda n: (float(n), n))
    except ValueError:
        return names
