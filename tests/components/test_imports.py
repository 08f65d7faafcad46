"""Importing a step (executor, component, helpers) imports none of the heavy ML stack: a
pipeline compiles, and a step's module loads, in well under a second. TensorFlow, TFDV, TFMA and
Beam are imported inside the functions that use them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO

HEAVY = ("tensorflow", "keras", "tf_keras", "tensorflow_data_validation",
         "tensorflow_model_analysis", "apache_beam")
STEPS = {
    "ingest": ["executor", "component", "datasets"],
    "validate": ["executor", "component"],
    "train": ["executor", "component", "models"],
    "evaluate": ["executor", "component"],
    "quantize": ["executor", "component", "measure", "report"],
}


@pytest.mark.parametrize("step", STEPS)
def test_importing_a_step_imports_no_heavy_ml_library(step: str) -> None:
    modules = [f"edgeship.components.{step}.{name}" for name in STEPS[step]]
    code = (f"import json, sys\nimport {', '.join(modules)}\n"
            f"print(json.dumps([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, check=True, timeout=300)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


PACKAGES = {
    **{f"edgeship.components.{step}": [f"{step.capitalize()}Params", f"run_{step}", step]
       for step in STEPS},
    "edgeship.edge_pusher": ["PushParams", "run_push", "push_component"],
}


@pytest.mark.parametrize("package", PACKAGES)
def test_a_step_package_exports_its_params_executor_and_component_lazily(package: str) -> None:
    """``import edgeship.components.train`` loads neither kfp nor TensorFlow; reading its
    params and executor loads no kfp; reading its component does, and gives the KFP component
    of the step's own module."""
    params, executor, component = PACKAGES[package]
    code = (
        "import json, sys, importlib\n"
        f"package = importlib.import_module({package!r})\n"
        "def loaded(): return sorted({m.split('.')[0] for m in sys.modules} & "
        f"{{'kfp', *{HEAVY!r}}})\n"
        "seen = {'import': loaded(), 'all': sorted(package.__all__)}\n"
        f"getattr(package, {params!r}), getattr(package, {executor!r})\n"
        "seen['params and executor'] = loaded()\n"
        f"made = getattr(package, {component!r})\n"
        "seen['component'] = loaded()\n"
        "seen['type'] = type(made).__name__\n"
        f"seen['listed'] = {{{params!r}, {executor!r}, {component!r}}} <= set(dir(package))\n"
        "print(json.dumps(seen))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["import"] == [] and seen["params and executor"] == []
    assert seen["component"] == ["kfp"] and seen["type"] == "PythonComponent"
    assert seen["all"] == sorted(PACKAGES[package]) and seen["listed"]


def test_a_name_a_package_does_not_export_is_an_attribute_error() -> None:
    import edgeship.components.train as train

    with pytest.raises(AttributeError, match="no attribute 'TrainParms'"):
        train.TrainParms  # noqa: B018 - the read is the test
