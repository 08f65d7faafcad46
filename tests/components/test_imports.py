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
