"""Compile every component to its ``component.yaml``: ``python -m edgeship.components._compile``.

Each ``components/<step>/component.py`` defines a KFP component named ``<step>``; the push
component lives in ``edge_pusher/component.py`` as ``push``. A test compiles them again and fails
when a checked-in YAML is stale.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def component_modules() -> list[tuple[str, str, Path]]:
    """(module, function name, yaml path) for every component in the tree."""
    found = []
    for path in sorted((ROOT / "components").glob("*/component.py")):
        step = path.parent.name
        found.append((f"edgeship.components.{step}.component", step, path.with_suffix(".yaml")))
    pusher = ROOT / "edge_pusher" / "component.py"
    if pusher.exists():
        found.append(("edgeship.edge_pusher.component", "push", pusher.with_suffix(".yaml")))
    return found


def compile_component(module: str, name: str, target: Path) -> None:
    from kfp import compiler

    component = getattr(importlib.import_module(module), name)
    compiler.Compiler().compile(component, str(target))


def main() -> int:
    for module, name, target in component_modules():
        compile_component(module, name, target)
        print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
