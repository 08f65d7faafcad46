"""KFP interface of the evaluate step; the work is in ``edgeship.components.evaluate.executor``."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from edgeship.artifact_types import ModelBlessing, ModelEvaluation
from edgeship.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    examples: Input[Dataset],
    model: Input[Model],
    blessing: Output[ModelBlessing],
    evaluation: Output[ModelEvaluation],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    baseline_model_path: str = "",
    slice_feature: str = "",
    min_accuracy: float = 0.0,
    max_accuracy_decrease: float = -1.0,
    beam_pipeline_args: list = [],  # noqa: B006 - KFP needs a literal default; never mutated
    eval_examples: int = 50000,
    require_beats_majority: bool = True,
    min_lift_over_majority: float = 0.0,
    min_class_recall: float = 0.0,
) -> str:
    """Evaluate a model on the eval split with TensorFlow Model Analysis and bless it, or not.

    Runs the model's serving signature (and the baseline's) over the eval examples and lets TFMA
    compute accuracy, per-class precision/recall (top-1), a confusion matrix and, with a
    baseline, the change in each; thresholds on the overall eval split decide the blessing, as
    TFX's Evaluator does. By default the blessing also needs evidence that the model beats
    always answering the commonest class: the lower bound of a 95 % Wilson interval on its
    accuracy must be above the eval split's majority share. Metrics and the confusion matrix
    also go to the KFP UI.

    Args:
        examples: Examples artifact written by ingest: ``Split-eval/`` gzipped TFRecord
            ``tf.Example``s plus ``examples_meta.json``. Example: ``ingest``'s ``examples``.
        model: Model written by train: ``Format-Serving/`` SavedModel (``serving_default``:
            ``inputs`` float32 [None, *input_shape] -> ``probabilities`` [None, num_classes])
            and ``model_meta.json`` (classes, input encoding). Example: ``train``'s ``model``.
        blessing: Output folder holding ``BLESSED`` or ``NOT_BLESSED`` (TFX ModelBlessing
            layout); the file's text is the one-line verdict (e.g. ``NOT BLESSED: accuracy
            76.1% [75.8%, 76.4%] on 65,400 eval examples does not beat the majority class
            'on time' (76.3%)``), each check, and the numbers measured. Metadata
            ``{"blessed", "verdict", "examples", "accuracy", "accuracy_interval",
            "majority_share", "balanced_accuracy", "macro_f1"}``.
        evaluation: Output folder with TFMA's results (``metrics-*``, ``plots-*``,
            ``validations.tfrecord``, ``eval_config.json``; open with
            ``tfma.load_eval_result(path, model_name="candidate")``) and ``metrics.json``:
            ``{"accuracy": 0.96, "per_class": {"low": {"precision": .., "recall": ..}},
            "confusion_matrix": [[61, 2], [2, 35]], "classes": ["low", "high"],
            "slices": {"colour": {"red": {"accuracy": .., "examples": 27}}}, ...}``
            (matrix rows are actual classes, columns predicted).
        metrics: KFP Metrics: ``accuracy``, ``accuracy_lower_95``, ``accuracy_upper_95``,
            ``examples``, ``majority_share``, ``balanced_accuracy``, ``macro_f1``, ``blessed``
            (1/0), ``baseline_accuracy`` (with a baseline), ``precision_<class>``,
            ``recall_<class>``, ``f1_<class>``.
        classification_metrics: KFP ClassificationMetrics: the confusion matrix with class names.
        baseline_model_path: Optional folder, as seen by this step, of a model in the same
            layout as ``model`` (e.g. the model serving now, from an earlier run); enables the
            change threshold. A path, not an artifact input: kfp.local (2.13) fails on an
            optional input artifact that is not passed (kubeflow/pipelines#13061). Empty: no
            baseline. Example: ``"/mnt/models/current"``.
        slice_feature: Also report metrics per value of this one-valued feature (a string or
            numeric tabular feature, a passthrough such as the sensor group id, or ``label``).
            Empty: overall only. Example: ``"colour"``.
        min_accuracy: Value threshold: bless only if accuracy >= this (0 to 1; 0 = no
            threshold). Example: ``0.9``.
        max_accuracy_decrease: Change threshold: bless only if accuracy is at most this much
            below the baseline's (0 to 1; -1 = no threshold). Example: ``0.01``.
        beam_pipeline_args: Beam options for the TFMA pipeline; without --runner, Beam's
            in-process FnApiRunner (DirectRunner would first try to download the Prism runner).
            Example: ``["--direct_num_workers=2"]``.
        eval_examples: Evaluate on a seeded uniform sample of this many eval examples when the
            split is larger (TFMA's memory and time grow with the examples); 0 evaluates the
            whole split. The summary states both counts. Example: ``50000``.
        require_beats_majority: Bless only when the lower bound of the 95 % Wilson interval on
            the accuracy is above the eval split's majority share (plus
            ``min_lift_over_majority``): a model that answers the commonest class, or does no
            better, is refused. ``False`` turns this evidence check off. Example: ``True``.
        min_lift_over_majority: Margin (0 to below 1) the accuracy's lower bound must clear
            above the majority share; 0 means it must merely be above it. Example: ``0.02``.
        min_class_recall: Bless only if every class with eval examples has at least this
            recall (0 to 1; 0 = no threshold). Example: ``0.5``.

    Returns:
        The step summary as JSON: ``{"accuracy", "blessed", "verdict", "reasons",
        "per_class", "confusion_matrix", "classes", "examples", "accuracy_interval",
        "majority_class", "majority_share", "balanced_accuracy", "macro_f1",
        "train_warning", "baseline_accuracy"?}``.
    """
    import json

    from edgeship.components.evaluate.executor import EvaluateParams, kfp_metrics, run_evaluate
    from edgeship.components.progress import heartbeat
    from edgeship.errors import step_errors

    with step_errors("evaluate"), heartbeat("evaluate"):
        params = EvaluateParams.of(locals())
        result = run_evaluate(examples.path, model.path, blessing.path, evaluation.path, params)
    for name, value in kfp_metrics(result).items():
        metrics.log_metric(name, value)
    classification_metrics.log_confusion_matrix(result["classes"], result["confusion_matrix"])
    blessing.metadata.update({key: result[key] for key in (
        "blessed", "verdict", "examples", "accuracy", "accuracy_interval", "majority_share",
        "balanced_accuracy", "macro_f1")})
    evaluation.metadata.update({"format": "tfma", "accuracy": result["accuracy"]})
    return json.dumps(result, sort_keys=True)
