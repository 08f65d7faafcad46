"""Train a small Keras model on an Examples artifact and export it for full-integer conversion.

Output (``model_dir``)::

    Format-Serving/     SavedModel; signature ``serving_default``:
                        inputs: float32 [None, *input_shape] -> probabilities: float32 [None, K]
    model_meta.json     kind, classes, encoding, input/output names and shapes, family,
                        hyperparameters, seed, measured train/eval accuracy, epochs, parameters

The model's one input is the tensor ``edgeship.components._dataset.encode`` builds outside
the graph, so no string op reaches the exported graph. TensorFlow is imported only inside functions.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.components._artifacts import (
    EXAMPLES_META,
    MODEL_META,
    SERVING_DIR,
    atomic_output_dir,
    read_examples_meta,
    write_json,
)
from edgeship.components._dataset import build_encoding, check_labels, encode, load_split
from edgeship.components._params import StepParams, is_int, is_number, require
from edgeship.components._serving import (  # noqa: F401 - predict and load_serving_fn are public here too
    INPUT_NAME,
    OUTPUT_NAME,
    SIGNATURE,
    load_serving_fn,
    predict,
)
from edgeship.components.train import models
from edgeship.errors import InputError

log = logging.getLogger(__name__)

EARLY_STOP_PATIENCE = 5


@dataclass(frozen=True)
class TrainParams(StepParams):
    """Train's parameters (the component's, one for one); see the train README."""

    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 0.003
    module_file: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    seed: int = 42

    def check(self) -> None:
        require(is_int(self.epochs) and self.epochs >= 1, "epochs", self.epochs,
                "a positive integer")
        require(is_int(self.batch_size) and self.batch_size >= 1, "batch_size",
                self.batch_size, "a positive integer")
        require(is_number(self.learning_rate) and math.isfinite(self.learning_rate)
                and self.learning_rate > 0, "learning_rate", self.learning_rate,
                "a positive number")
        require(isinstance(self.hyperparameters, dict), "hyperparameters",
                self.hyperparameters, "an object of settings")
        require(is_int(self.seed), "seed", self.seed, "an integer")


def run_train(
    examples_dir: str,
    model_dir: str,
    params: TrainParams | None = None,
    *,
    logs_dir: str = "",
    **overrides: Any,
) -> dict:
    """Train on ``Split-train``, early-stop on ``Split-eval``, export to ``model_dir``.

    The parameters are :class:`TrainParams` (or the same names as keywords); ``logs_dir``
    receives TensorBoard logs when given. Returns ``{"train_accuracy", "eval_accuracy",
    "epochs", "parameters", "model"}``; both accuracies are measured on the exported weights,
    not taken from the training history.
    """
    p = TrainParams.build(params, **overrides)
    epochs, batch_size, learning_rate, seed = p.epochs, p.batch_size, p.learning_rate, p.seed
    module_file, hyperparameters = p.module_file, p.hyperparameters
    meta = _checked_meta(examples_dir)
    user_build = _load_module_file(module_file) if module_file else None
    given = _whole_numbers_as_ints(dict(hyperparameters or {}))
    hp = given if user_build else models.resolve_hyperparameters(meta["kind"], given)

    train_cols, y_train = load_split(examples_dir, "train", meta)
    eval_cols, y_eval = load_split(examples_dir, "eval", meta)
    classes = meta["classes"]
    _check_labels(examples_dir, "train", y_train, classes, need_two=True)
    _check_labels(examples_dir, "eval", y_eval, classes, need_two=False)
    encoding = build_encoding(meta, train_cols)
    x_train = _encoded_inputs(examples_dir, "train", encoding, train_cols)
    x_eval = _encoded_inputs(examples_dir, "eval", encoding, eval_cols)
    input_shape = tuple(int(d) for d in encoding["input_shape"])

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    normalizer = models.build_normalizer(x_train)
    if user_build:
        model = _user_model(module_file, user_build, input_shape, len(classes), hp, normalizer)
        family = f"module_file:{Path(module_file).name}"
    else:
        model = models.build_model(meta["kind"], input_shape, len(classes), hp, normalizer)
        family = models.FAMILIES[meta["kind"]]
    log.info(
        "training %s (%d parameters) on %d examples", family, model.count_params(), len(x_train)
    )

    with atomic_output_dir(model_dir) as out, _optional_atomic(logs_dir) as logs:
        history = _fit(
            model, x_train, y_train, x_eval, y_eval, epochs, batch_size, learning_rate, logs
        )
        _export(model, out / SERVING_DIR, input_shape, len(classes))
        train_accuracy, eval_accuracy = _exported_accuracies(
            out, len(classes), (x_train, y_train), (x_eval, y_eval)
        )
        model_meta = {
            "kind": meta["kind"],
            "classes": list(classes),
            "encoding": encoding,
            "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME,
            "input_shape": list(input_shape),
            "num_classes": len(classes),
            "family": family,
            "hyperparameters": hp,
            "seed": seed,
            "train_accuracy": train_accuracy,
            "eval_accuracy": eval_accuracy,
            "epochs_run": len(history.epoch),
            "parameters": int(model.count_params()),
        }
        write_json(out / MODEL_META, model_meta)
    log.info(
        "train accuracy %.3f, eval accuracy %.3f after %d epochs",
        train_accuracy,
        eval_accuracy,
        model_meta["epochs_run"],
    )
    return {
        "train_accuracy": train_accuracy,
        "eval_accuracy": eval_accuracy,
        "epochs": model_meta["epochs_run"],
        "parameters": model_meta["parameters"],
        "model": str(model_dir),
    }


# --- checks -------------------------------------------------------------------------------


def _checked_meta(examples_dir: str) -> dict[str, Any]:
    """examples_meta.json (checked by the shared reader), with at least two classes to learn."""
    meta = read_examples_meta(examples_dir)
    if len(meta["classes"]) < 2:
        raise InputError(
            f"{Path(examples_dir) / EXAMPLES_META}: needs at least 2 classes to train a "
            f"classifier, found {meta['classes']}"
        )
    return meta


def _check_labels(
    examples_dir: str, split: str, labels: np.ndarray, classes: list[str], need_two: bool
) -> None:
    where = f"{examples_dir} split '{split}'"
    if labels.size == 0:
        raise InputError(f"{where}: no examples")
    check_labels(where, labels, classes)
    present = np.unique(labels)
    if need_two and present.size < 2:
        raise InputError(
            f"{where}: every example has class '{classes[present[0]]}'; "
            "training needs at least 2 classes"
        )


def _encoded_inputs(examples_dir: str, split: str, encoding: dict, columns) -> np.ndarray:
    """The split encoded as model inputs; NaN/inf in image or sensor inputs is an error (tabular
    gaps are filled by the encoding)."""
    where = f"{examples_dir} split '{split}'"
    x = encode(encoding, columns, where)
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InputError(f"{where}: example {row} has NaN or inf values")
    return x


def _whole_numbers_as_ints(value: Any) -> Any:
    """Undo KFP's number widening: dict parameters travel as protobuf Structs, so ``16`` arrives
    as ``16.0`` and would break ``Conv2D(filters)``. Whole floats become ints, recursively."""
    if isinstance(value, dict):
        return {k: _whole_numbers_as_ints(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_whole_numbers_as_ints(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- module file ----------------------------------------------------------------------------


def _load_module_file(module_file: str):
    """Import a user module file and return its ``build_model`` (like TFX Trainer's)."""
    path = Path(module_file)
    if not path.is_file():
        raise InputError(f"{path}: module file not found")
    name = f"edgeship_user_module_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's code: report it as their input, in one line
        raise InputError(f"{path}: import failed: {type(err).__name__}: {err}") from err
    build = getattr(module, "build_model", None)
    if not callable(build):
        raise InputError(
            f"{path}: defines no build_model(input_shape, num_classes, hyperparameters, normalizer)"
        )
    return build


def _user_model(module_file, build, input_shape, num_classes, hp, normalizer):
    """Call the user's build_model and check it fits the export contract."""
    import keras

    path = Path(module_file)
    try:
        model = build(input_shape, num_classes, hp, normalizer)
    except Exception as err:
        raise InputError(f"{path}: build_model failed: {type(err).__name__}: {err}") from err
    if not isinstance(model, keras.Model):
        raise InputError(f"{path}: build_model returned {type(model).__name__}, not keras.Model")
    try:
        out = model(np.zeros((2, *input_shape), dtype=np.float32), training=False)
    except Exception as err:
        raise InputError(
            f"{path}: the model does not accept inputs of shape [None, "
            f"{', '.join(map(str, input_shape))}]: {type(err).__name__}: {err}"
        ) from err
    out = np.asarray(out)
    if out.shape != (2, num_classes):
        raise InputError(
            f"{path}: build_model's output has shape [None, "
            f"{', '.join(map(str, out.shape[1:]))}], expected [None, {num_classes}]"
        )
    if not (np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-3)):
        raise InputError(f"{path}: build_model's output must be softmax probabilities")
    return model


# --- training and export --------------------------------------------------------------------


@contextlib.contextmanager
def _optional_atomic(path: str):
    if not path:
        yield None
        return
    with atomic_output_dir(path) as scratch:
        yield scratch


def _fit(model, x_train, y_train, x_eval, y_eval, epochs, batch_size, learning_rate, logs_dir):
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=EARLY_STOP_PATIENCE, restore_best_weights=True
        )
    ]
    if logs_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(logs_dir)))
    return model.fit(
        x_train,
        y_train,
        validation_data=(x_eval, y_eval),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    )


def _exported_accuracies(
    model_dir: Path, num_classes: int, *splits: tuple[np.ndarray, np.ndarray]
) -> list[float]:
    """Accuracy of each (x, y) split, measured on the exported SavedModel (one load): the model
    later steps and devices get, not the in-memory Keras object."""
    x = np.concatenate([split[0] for split in splits])
    predicted = np.argmax(predict(model_dir, x, num_classes=num_classes), axis=1)
    accuracies, start = [], 0
    for _, y in splits:
        accuracies.append(float(np.mean(predicted[start : start + len(y)] == y)))
        start += len(y)
    return accuracies


def _export(model, path: Path, input_shape: tuple[int, ...], num_classes: int) -> None:
    """Write the SavedModel with fixed names, then load it back to prove the signature."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE,
        fn=lambda inputs: {OUTPUT_NAME: model(inputs, training=False)},
        input_signature=[tf.TensorSpec([None, *input_shape], tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(str(path), verbose=False)
    _verify_signature(path, input_shape, num_classes)


def _verify_signature(path: Path, input_shape: tuple[int, ...], num_classes: int) -> None:
    import tensorflow as tf

    fn = tf.saved_model.load(str(path)).signatures[SIGNATURE]
    inputs = fn.structured_input_signature[1]
    outputs = fn.structured_outputs
    want_in = [None, *input_shape]
    if (
        list(inputs) != [INPUT_NAME]
        or inputs[INPUT_NAME].dtype != tf.float32
        or inputs[INPUT_NAME].shape.as_list() != want_in
    ):
        raise RuntimeError(f"{path}: exported signature inputs are {inputs}, expected {want_in}")
    if (
        list(outputs) != [OUTPUT_NAME]
        or outputs[OUTPUT_NAME].dtype != tf.float32
        or outputs[OUTPUT_NAME].shape.as_list() != [None, num_classes]
    ):
        raise RuntimeError(f"{path}: exported signature outputs are {outputs}")

