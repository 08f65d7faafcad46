"""Every checked-in component.yaml is current, loads with KFP, and names our image."""

from pathlib import Path

import pytest

from components._compile import compile_component, component_modules
from components._image import IMAGE

COMPONENTS = component_modules()


@pytest.mark.parametrize("module,name,target", COMPONENTS, ids=[c[1] for c in COMPONENTS])
def test_component_yaml_is_current(module: str, name: str, target: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "component.yaml"
    compile_component(module, name, fresh)
    assert target.exists(), f"{target} missing: run python -m components._compile"
    assert fresh.read_text() == target.read_text(), (
        f"{target} is stale: run python -m components._compile"
    )


@pytest.mark.parametrize("module,name,target", COMPONENTS, ids=[c[1] for c in COMPONENTS])
def test_component_yaml_loads_and_uses_our_image(module: str, name: str, target: Path) -> None:
    from kfp import components

    loaded = components.load_component_from_file(str(target))
    assert loaded.name == name
    text = target.read_text()
    assert f"image: {IMAGE}" in text
    assert "pip install" not in text, "components must not install packages at run time"
