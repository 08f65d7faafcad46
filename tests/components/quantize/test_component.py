"""The quantize KFP component under kfp.local: the executor runs inside it, the blessing input
reaches it, and its outputs land where KFP expects them."""

from __future__ import annotations

import json

import pytest

from edgeship.components.artifacts import write_blessing
from tests.helpers import builders
from tests.helpers.builders import tabular_mlp, train_and_export


@pytest.mark.slow
def test_component_runs_under_kfp_local(tmp_path) -> None:
    from kfp import dsl, local

    from edgeship.components.quantize.component import quantize

    # any trained model will do: the step's verdict here comes from evaluate's NOT_BLESSED
    examples = builders.tabular_examples(tmp_path / "data" / "examples", n=200)
    model = train_and_export(examples, tmp_path / "data" / "model", tabular_mlp, epochs=2)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))

    write_blessing(tmp_path / "evaluated", False, ["evaluate: accuracy too low"])

    def only_quantize(model_uri, examples_uri, blessing_uri):
        trained = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model)
        data = dsl.importer(artifact_uri=examples_uri, artifact_class=dsl.Dataset)
        blessing = dsl.importer(artifact_uri=blessing_uri, artifact_class=dsl.Artifact)
        task = quantize(
            model=trained.output,
            examples=data.output,
            model_blessing=blessing.output,
            variants=["int8"],
        )
        return task.outputs["Output"]

    # real types, not the strings `from __future__ import annotations` would leave for KFP
    only_quantize.__annotations__ = {
        "model_uri": str,
        "examples_uri": str,
        "blessing_uri": str,
        "return": str,
    }
    only_quantize = dsl.pipeline(only_quantize)
    run = only_quantize(
        model_uri=str(model), examples_uri=str(examples), blessing_uri=str(tmp_path / "evaluated")
    )
    summary = json.loads(run.output)
    assert list(summary["variants"]) == ["int8"]
    assert summary["blessed"] is False  # evaluate's NOT_BLESSED reached the step
    assert any("evaluate did not bless" in r for r in summary["reasons"])
    (step,) = tmp_path.glob("only-quantize-*/quantize")
    report = json.loads((step / "quantized" / "quantization_report.json").read_text())
    assert (
        report["blessed"] is False
        and report["variants"]["int8"]["accuracy"] == (summary["variants"]["int8"]["accuracy"])
    )
    assert (step / "blessing" / "NOT_BLESSED").is_file()
    assert (step / "report").read_text().startswith("# Quantization report")
    assert '"int8_accuracy"' in (step / "executor_output.json").read_text()  # KFP Metrics
