"""KFP interface of the train step; the work is in ``edgeship.components.train.executor``."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from edgeship.artifact_types import ModelRun
from edgeship.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    examples: Input[Dataset],
    model: Output[Model],
    logs: Output[ModelRun],
    epochs: int = 30,
    batch_size: int = 0,
    learning_rate: float = 0.003,
    module_file: str = "",
    hyperparameters: dict = {},  # noqa: B006 - KFP needs a literal default; never mutated
    seed: int = 42,
    min_steps: int = 500,
    max_steps: int = 10000,
    label_smoothing: float = 0.1,
    class_weights: str = "auto",
) -> str:
    """Train a small Keras classifier for edge devices and export it as a SavedModel.

    The family follows the kind of the examples: a depthwise-separable CNN for images, a 1-D CNN
    for sensor windows, an MLP for tabular features; normalisation is inside the model and the
    exported graph holds only ops that convert to a full-integer TFLite model. Training is
    deterministic for a given seed and stops early when the eval loss stops improving.

    Args:
        examples: Examples artifact written by ingest: ``Split-train/`` and ``Split-eval/``
            folders of gzipped TFRecord ``tf.Example``s plus ``examples_meta.json``
            (kind, classes, features). Example: the ``examples`` output of ``ingest``.
        model: Output folder. ``Format-Serving/`` holds a SavedModel whose ``serving_default``
            signature maps ``inputs`` (float32 [None, *input_shape]) to ``probabilities``
            (float32 [None, num_classes]); ``model_meta.json`` records classes, the input
            encoding, family, hyper-parameters, seed, measured train/eval accuracy, epochs run
            and parameter count. Example: ``{"eval_accuracy": 0.97, "family": "conv1d", ...}``.
        logs: Output folder of TensorBoard event files, ``train/`` and ``validation/``
            (open with ``tensorboard --logdir <path>``).
        epochs: Passes over the train split (early stopping may end sooner), held between
            ``min_steps`` and ``max_steps`` optimisation steps. Example: ``30``.
        batch_size: Examples per gradient step; 0 fits it to the data: 32 for a few thousand
            examples or fewer, growing to 512 from about 36,000 on. Example: ``0``.
        learning_rate: Adam learning rate. Example: ``0.003``.
        module_file: Path (inside the container) to a Python file defining
            ``build_model(input_shape, num_classes, hyperparameters, normalizer)`` that returns
            a ``keras.Model`` ending in softmax; replaces the built-in family. Empty: built-in.
            Example: ``"/pipelines/my_model.py"``.
        hyperparameters: Settings overriding the family's defaults (``DEFAULTS`` in
            ``components/train/models.py``, listed in the train README); unknown keys are an
            error. Example: ``{"filters": 16, "blocks": 2}`` for a smaller sensor model.
            With a module file, given to its ``build_model`` instead.
        seed: Seed for weights, shuffling and dropout; the same seed gives the same model.
        min_steps: At least this many optimisation steps, however few examples; early
            stopping waits for them. Example: ``500``.
        max_steps: At most this many steps, however many examples: fewer passes (or part of
            one) over a large split. Example: ``10000``.
        label_smoothing: Share of each label spread evenly over all classes; it keeps the
            logits in a range an int8 output quantizes well. 0 turns it off. Example: ``0.1``.
        class_weights: "auto" weighs each class by the square root of n / (K * n_class) when
            the commonest class holds more than 90 % of the train split; "balanced" by
            n / (K * n_class) always; "none" never. The summary's "decisions" says which.

    Returns:
        The step summary as JSON: ``{"train_accuracy", "eval_accuracy", "epochs",
        "parameters", "model", "warning"}``; ``warning`` says when the model learnt nothing
        (eval accuracy no better than always answering the commonest class, give or take a
        tenth of the gap to a perfect score).
    """
    import json

    from edgeship.components.progress import heartbeat
    from edgeship.components.train.executor import TrainParams, run_train
    from edgeship.errors import step_errors

    with step_errors("train"), heartbeat("train"):
        params = TrainParams.of(locals())
        result = run_train(examples.path, model.path, params, logs_dir=logs.path)
    model.metadata.update(
        {
            "framework": "tensorflow",
            "format": "SavedModel (Format-Serving)",
            "train_accuracy": result["train_accuracy"],
            "eval_accuracy": result["eval_accuracy"],
            "parameters": result["parameters"],
        }
    )
    logs.metadata.update({"format": "tensorboard", "runs": ["train", "validation"]})
    return json.dumps(result, sort_keys=True)
