"""The quantize README's pipeline with a user's own training step (no edgeship train or
evaluate), run as the README shows it under kfp.local: quantize and push come from their
``component.yaml``, the data is a CSV, and a device activates the published model."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO


def readme_pipeline() -> str:
    """The README's python snippet that defines ``my_pipeline`` with ``train_my_model``."""
    text = (REPO / "components" / "quantize" / "README.md").read_text()
    found = [code for code in re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
             if "def train_my_model" in code]
    assert len(found) == 1, "the quantize README no longer shows the user-trained pipeline"
    return found[0]


def motor_csv(path: Path, rows: int = 400) -> Path:
    """Scaled motor readings; a fault shows as high vibration and current together."""
    rng = np.random.default_rng(7)
    vibration, current, temperature = rng.normal(size=(3, rows))
    fault = vibration + 0.8 * current > 0.3
    lines = ["state,vibration,current,temperature"] + [
        f"{'fault' if f else 'ok'},{v:.5f},{c:.5f},{t:.5f}"
        for f, v, c, t in zip(fault, vibration, current, temperature, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_the_readme_pipeline_trains_quantizes_pushes_and_a_device_activates(tmp_path) -> None:
    from kfp import local

    from edgeship.device import Agent
    from edgeship.edge_pusher import keys

    keys.init_keys(tmp_path / "keys")
    data = motor_csv(tmp_path / "motor.csv")
    # a module file, as a user has it: KFP reads a component's source with inspect
    module_file = tmp_path / "my_pipeline.py"
    module_file.write_text(readme_pipeline())
    spec = importlib.util.spec_from_file_location("my_pipeline", module_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    local.init(runner=local.SubprocessRunner(use_venv=False),
               pipeline_root=str(tmp_path / "runs"))
    module.my_pipeline(data_uri=str(data), bucket_url=str(tmp_path / "bucket"),
                         keys_dir=str(tmp_path / "keys"))

    (quantized,) = (tmp_path / "runs").glob("my-training-edgeship-delivery-*/quantize/quantized")
    report = (quantized / "quantization_report.json").read_text()
    assert '"blessed": true' in report and '"trained_by": "user"' in (
        quantized / "model_meta.json").read_text()
    agent = Agent(str(tmp_path / "device"), str(tmp_path / "bucket"), device_id="motor-1",
                  trusted_root=str(tmp_path / "keys" / "root_history" / "1.root.json"))
    assert agent.poll_once().action == "updated"
    active = agent.status()["active"]
    assert active["name"] == "motor" and active["verified"] is True
