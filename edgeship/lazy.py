"""Names a package exports but imports only when they are first used (PEP 562).

A step package exports its parameters, its executor and its KFP component (as
``google_cloud_pipeline_components`` exports its ops), but importing the package must not import
kfp (the executors run under TFX, whose environment has none) or TensorFlow (seconds, and a
pipeline compiles without it). So the package names what it exports, and where each name lives,
and :func:`lazy_exports` gives it the module ``__getattr__`` and ``__dir__`` that import the
defining module when a name is first read. Type checkers and editors read the same names from
the package's ``if TYPE_CHECKING:`` imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, which exports each name of ``where`` from
    the submodule it maps to: ``"executor"`` (the same name there) or ``"push:push"`` (another
    name there, when the package's name for it would clash with a submodule)."""

    def __getattr__(name: str) -> object:  # noqa: N807 - the name PEP 562 looks for
        found = where.get(name)
        if found is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = found.partition(":")
        value: object = getattr(importlib.import_module(f"{package}.{module}"), attribute or name)
        setattr(sys.modules[package], name, value)  # read once; later reads find it directly
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the name PEP 562 looks for
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__
