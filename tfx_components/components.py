"""edgeship's six steps as TFX components, over the same executors as the KFP steps.

Each takes and makes TFX's standard artifacts, so it mixes with TFX's own components:

    Ingest(kind, data_path, ...)                       -> examples: Examples
    Validate(examples, [curated_schema], [baseline_statistics])
                                -> statistics: ExampleStatistics, schema: Schema,
                                   anomalies: ExampleAnomalies
    Train(examples)                                    -> model: Model, model_run: ModelRun
    Evaluate(examples, model, [baseline_model])        -> evaluation: ModelEvaluation,
                                                          blessing: ModelBlessing
    Quantize(model, examples, [model_blessing])        -> quantized: Model, blessing: ModelBlessing
    EdgePusher(quantized, [model_blessing], [quantize_blessing], bucket_url=, model_name=)
                                                       -> pushed_model: PushedModel

Parameters are the steps' own (``IngestParams``, ``TrainParams``, ...; see each step's README);
a parameter that names a folder of another step (``schema_path``,
``baseline_statistics_path``, ``baseline_model_path``) is an input channel here instead.
"""

from __future__ import annotations

import dataclasses
import tempfile
from typing import Any

from tfx.types import standard_artifacts as sa

from edgeship.components.evaluate.executor import EvaluateParams, run_evaluate
from edgeship.components.ingest.executor import IngestParams, run_ingest
from edgeship.components.quantize.executor import QuantizeParams, run_quantize
from edgeship.components.train.executor import TrainParams, run_train
from edgeship.components.validate.executor import ValidateParams, run_validate
from edgeship.edge_pusher.push import PushParams, push
from edgeship.tfx._base import StepExecutor, make_component, set_blessed

SPLITS = '["train", "eval"]'  # TFX's encoding of split names, as artifact_utils writes it


class IngestExecutor(StepExecutor):
    STEP, PARAMS = "ingest", IngestParams

    def run(self, inputs: dict[str, Any], outputs: dict[str, Any],
            p: IngestParams) -> dict[str, Any]:
        examples = outputs["examples"]
        summary = run_ingest(p.kind, p.data_path, examples.uri, p)
        examples.split_names = SPLITS
        return summary


class ValidateExecutor(StepExecutor):
    STEP, PARAMS = "validate", ValidateParams

    def run(self, inputs: dict[str, Any], outputs: dict[str, Any],
            p: ValidateParams) -> dict[str, Any]:
        curated, baseline = inputs.get("curated_schema"), inputs.get("baseline_statistics")
        p = dataclasses.replace(p, schema_path=curated.uri if curated else p.schema_path,
                                baseline_statistics_path=(baseline.uri if baseline
                                                          else p.baseline_statistics_path))
        summary = run_validate(inputs["examples"].uri, outputs["statistics"].uri,
                               outputs["schema"].uri, outputs["anomalies"].uri, p)
        for name in ("statistics", "anomalies"):
            outputs[name].split_names = inputs["examples"].split_names
        return summary


class TrainExecutor(StepExecutor):
    STEP, PARAMS = "train", TrainParams

    def run(self, inputs: dict[str, Any], outputs: dict[str, Any],
            p: TrainParams) -> dict[str, Any]:
        return run_train(inputs["examples"].uri, outputs["model"].uri, p,
                         logs_dir=outputs["model_run"].uri)


class EvaluateExecutor(StepExecutor):
    STEP, PARAMS = "evaluate", EvaluateParams

    def run(self, inputs: dict[str, Any], outputs: dict[str, Any],
            p: EvaluateParams) -> dict[str, Any]:
        baseline = inputs.get("baseline_model")
        if baseline:
            p = dataclasses.replace(p, baseline_model_path=baseline.uri)
        summary = run_evaluate(inputs["examples"].uri, inputs["model"].uri,
                               outputs["blessing"].uri, outputs["evaluation"].uri, p)
        set_blessed(outputs["blessing"], summary["blessed"], inputs["model"], baseline)
        return summary


class QuantizeExecutor(StepExecutor):
    STEP, PARAMS = "quantize", QuantizeParams

    def run(self, inputs: dict[str, Any], outputs: dict[str, Any],
            p: QuantizeParams) -> dict[str, Any]:
        blessing = inputs.get("model_blessing")
        with tempfile.TemporaryDirectory() as report:  # the Markdown report is KFP's UI output
            summary = run_quantize(inputs["model"].uri, inputs["examples"].uri,
                                   outputs["quantized"].uri, outputs["blessing"].uri, report, p,
                                   model_blessing_dir=blessing.uri if blessing else "")
        set_blessed(outputs["blessing"], summary["blessed"], inputs["model"])
        return summary


class PushExecutor(StepExecutor):
    STEP, PARAMS = "push", PushParams

    def run(self, inputs: dict[str, Any], outputs: dict[str, Any],
            p: PushParams) -> dict[str, Any]:
        model_blessing = inputs.get("model_blessing")
        quantize_blessing = inputs.get("quantize_blessing")
        pushed = outputs["pushed_model"]
        outcome = push(inputs["quantized"].uri, model_blessing.uri if model_blessing else None,
                       quantize_blessing.uri if quantize_blessing else None, p,
                       output_dir=pushed.uri)
        # The custom properties TFX's Pusher sets.
        pushed.set_int_custom_property("pushed", int(outcome.pushed))
        if outcome.pushed:
            pushed.set_string_custom_property("pushed_destination", outcome.bucket)
            pushed.set_string_custom_property("pushed_version", str(outcome.version))
        return {"pushed": outcome.pushed, "message": outcome.line()}


Ingest = make_component(
    "Ingest", IngestExecutor, {}, {"examples": sa.Examples},
    "CSV, image folder or bundled data -> Examples (Split-train/, Split-eval/).")
Validate = make_component(
    "Validate", ValidateExecutor,
    {"examples": (sa.Examples, False), "curated_schema": (sa.Schema, True),
     "baseline_statistics": (sa.ExampleStatistics, True)},
    {"statistics": sa.ExampleStatistics, "schema": sa.Schema,
     "anomalies": sa.ExampleAnomalies},
    "TFDV statistics, schema and anomalies per split; fails the run on anomalies.")
Train = make_component(
    "Train", TrainExecutor, {"examples": (sa.Examples, False)},
    {"model": sa.Model, "model_run": sa.ModelRun},
    "A Keras model streamed from the Examples, exported to Format-Serving/.")
Evaluate = make_component(
    "Evaluate", EvaluateExecutor,
    {"examples": (sa.Examples, False), "model": (sa.Model, False),
     "baseline_model": (sa.Model, True)},
    {"evaluation": sa.ModelEvaluation, "blessing": sa.ModelBlessing},
    "TFMA metrics on the eval split; blesses the model (TFX's `blessed` property and files).")
Quantize = make_component(
    "Quantize", QuantizeExecutor,
    {"model": (sa.Model, False), "examples": (sa.Examples, False),
     "model_blessing": (sa.ModelBlessing, True)},
    {"quantized": sa.Model, "blessing": sa.ModelBlessing},
    "TFLite variants measured with LiteRT on the eval split; blesses int8.")
EdgePusher = make_component(
    "EdgePusher", PushExecutor,
    {"quantized": (sa.Model, False), "model_blessing": (sa.ModelBlessing, True),
     "quantize_blessing": (sa.ModelBlessing, True)},
    {"pushed_model": sa.PushedModel},
    "Signs and publishes the blessed int8 model to the OTA bucket devices poll.")
