"""Every checked-in component.yaml is current, loads with KFP, and names our image."""

from pathlib import Path

import pytest
import yaml

from edgeship.components._compile import compile_component, component_modules
from edgeship.image import IMAGE
from tests.helpers import REPO

COMPONENTS = component_modules()


@pytest.mark.parametrize("module,name,target", COMPONENTS, ids=[c[1] for c in COMPONENTS])
def test_component_yaml_is_current(module: str, name: str, target: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "component.yaml"
    compile_component(module, name, fresh)
    assert target.exists(), f"{target} missing: run python -m edgeship.components._compile"
    assert fresh.read_text() == target.read_text(), (
        f"{target} is stale: run python -m edgeship.components._compile"
    )


@pytest.mark.parametrize("module,name,target", COMPONENTS, ids=[c[1] for c in COMPONENTS])
def test_component_yaml_loads_and_uses_our_image(module: str, name: str, target: Path) -> None:
    from kfp import components

    loaded = components.load_component_from_file(str(target))
    assert loaded.name == name
    text = target.read_text()
    assert f"image: {IMAGE}" in text
    assert "pip install" not in text, "components must not install packages at run time"


def test_loaded_components_drop_into_another_pipeline(tmp_path: Path) -> None:
    """A user's own pipeline built only from the compiled YAMLs compiles to valid IR."""
    from kfp import compiler, components, dsl

    root = REPO / "components"
    ingest = components.load_component_from_file(str(root / "ingest" / "component.yaml"))
    validate = components.load_component_from_file(str(root / "validate" / "component.yaml"))
    train = components.load_component_from_file(str(root / "train" / "component.yaml"))

    @dsl.pipeline(name="my-own-pipeline")
    def my_pipeline(csv_path: str) -> None:
        examples = ingest(kind="tabular", data_path=csv_path, label="y").outputs["examples"]
        checked = validate(examples=examples)
        train(examples=examples, epochs=3).after(checked)

    target = tmp_path / "mine.yaml"
    compiler.Compiler().compile(my_pipeline, str(target))
    ir = yaml.safe_load(target.read_text())
    assert {"comp-ingest", "comp-validate", "comp-train"} <= set(ir["components"])
    assert set(ir["root"]["inputDefinitions"]["parameters"]) == {"csv_path"}
    tasks = ir["root"]["dag"]["tasks"]
    assert tasks["train"]["dependentTasks"] == ["ingest", "validate"]
    # The IR loads back as a component, as KFP does when it is submitted or reused.
    assert components.load_component_from_file(str(target)).name == "my-own-pipeline"


def test_push_keys_dir_default_is_the_images_keys_folder() -> None:
    from edgeship.edge_pusher.component import push
    from edgeship.image import KEYS_DIR

    assert push.component_spec.inputs["keys_dir"].default == KEYS_DIR


@pytest.mark.parametrize("module,name,target", COMPONENTS, ids=[c[1] for c in COMPONENTS])
def test_component_source_defines_its_function_on_its_own(module: str, name: str, target: Path):
    """KFP runs the function's source as a script of its own: a default or annotation that
    names a module-level constant fails there (NameError) though it compiles fine here."""
    ir = yaml.safe_load(target.read_text())
    for executor in ir["deploymentSpec"]["executors"].values():
        source = executor["container"]["command"][-1]
        namespace: dict = {}
        exec(compile(source, f"{target}:embedded", "exec"), namespace)  # noqa: S102
        assert callable(namespace[name])


def test_every_component_module_imports_by_its_installed_name(tmp_path: Path) -> None:
    """`python -m edgeship.components._compile` must work from any folder, not only from a
    checkout whose top-level folders happen to be importable."""
    import subprocess
    import sys

    code = ("import importlib\n"
            "from edgeship.components._compile import component_modules\n"
            "for module, name, _ in component_modules():\n"
            "    getattr(importlib.import_module(module), name)\n")
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(module.startswith("edgeship.") for module, _, _ in COMPONENTS)
