"""The KFP artifact types of edgeship's steps, named as TFX names them.

KFP's own types cover examples (``Dataset``), models (``Model``) and what its UI shows
(``Metrics``, ``ClassificationMetrics``, ``Markdown``); a blessing, statistics, a schema,
anomalies, an evaluation, a training run's logs or a push would otherwise be a bare
``Artifact``, which any output can be wired into. Typed, a pipeline that passes the statistics
where a blessing is expected fails when it is compiled, and the type says what the folder
holds (as TFX's ``standard_artifacts`` and Google's
``google_cloud_pipeline_components.types.artifact_types`` do). A bare ``Artifact`` still
connects to any of them, as KFP allows.

Each class documents its folder's layout (``edgeship.components.artifacts`` reads and writes
them). They live in the root package because the steps (``edgeship.components``) and the
publisher's push step (``edgeship.edge_pusher``, which imports no step) both name them; the TFX
wrappers use TFX's own types of the same names (``edgeship.tfx``).

Schema titles: KFP's SDK accepts only the ``system.`` and ``google.`` namespaces
(``kfp.dsl.types.type_utils.validate_schema_title``: a component with any other does not
compile, and its YAML does not load). These are not Google's types, so they are ``system.``
with TFX's type names. A compiled component imports this module (KFP writes the import into
its command), which the image has.
"""

from __future__ import annotations

# kfp ships neither stubs nor py.typed; the type checker reads its classes from its source.
from kfp import dsl  # pyright: ignore[reportMissingTypeStubs]

__all__ = ["ExampleAnomalies", "ExampleStatistics", "ModelBlessing", "ModelEvaluation",
           "ModelRun", "PushedModel", "Schema"]

#: The version of every type here; KFP compares its major part when wiring an output to an input.
SCHEMA_VERSION = "0.0.1"


class ExampleStatistics(dsl.Artifact):
    """Statistics of examples per split (TFX's StatisticsGen layout):
    ``Split-<name>/FeatureStats.pb``, a binary ``DatasetFeatureStatisticsList``."""

    schema_title = "system.ExampleStatistics"
    schema_version = SCHEMA_VERSION


class Schema(dsl.Artifact):
    """A data schema: ``schema.pbtxt``, a TensorFlow Metadata ``Schema`` text proto."""

    schema_title = "system.Schema"
    schema_version = SCHEMA_VERSION


class ExampleAnomalies(dsl.Artifact):
    """Anomalies of examples against a schema, per split (TFX's ExampleValidator layout):
    ``Split-<name>/SchemaDiff.pb``, a binary ``Anomalies`` proto (no ``anomaly_info``: clean)."""

    schema_title = "system.ExampleAnomalies"
    schema_version = SCHEMA_VERSION


class ModelRun(dsl.Artifact):
    """The logs of a training run: TensorBoard's event files (``tensorboard --logdir``), as
    TFX's Trainer writes its ModelRun."""

    schema_title = "system.ModelRun"
    schema_version = SCHEMA_VERSION


class ModelBlessing(dsl.Artifact):
    """A verdict on a model: a ``BLESSED`` or a ``NOT_BLESSED`` file whose text is the verdict
    and its reasons (TFX's ModelBlessing layout). Anything but ``BLESSED`` alone is not blessed."""

    schema_title = "system.ModelBlessing"
    schema_version = SCHEMA_VERSION


class ModelEvaluation(dsl.Artifact):
    """A model's evaluation: TFMA's results (``metrics-*``, ``plots-*``,
    ``validations.tfrecord``, ``eval_config.json``; ``tfma.load_eval_result``) and
    ``metrics.json``, as TFX's Evaluator writes its ModelEvaluation."""

    schema_title = "system.ModelEvaluation"
    schema_version = SCHEMA_VERSION


class PushedModel(dsl.Artifact):
    """What a push did: ``PUSHED`` or ``NOT_PUSHED`` (one line saying why) and
    ``push_result.json``, as TFX's Pusher marks its output."""

    schema_title = "system.PushedModel"
    schema_version = SCHEMA_VERSION
