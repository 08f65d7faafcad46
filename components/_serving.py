"""Running the float model's ``serving_default`` signature: one way for train, evaluate and
any caller, with errors that say which model and what is wrong with it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeship.components.artifacts import SERVING_DIR
from edgeship.errors import InputError

SIGNATURE = "serving_default"
INPUT_NAME = "inputs"
OUTPUT_NAME = "probabilities"


def load_serving_fn(model_dir: str | os.PathLike):
    """The exported signature: call it as ``fn(inputs=x)["probabilities"]``.

    The loaded SavedModel is kept on the function: signatures hold only weak references to the
    variables, which vanish if the object is garbage-collected.
    """
    import tensorflow as tf

    path = Path(model_dir) / SERVING_DIR
    if not (path / "saved_model.pb").is_file():
        raise InputError(f"{path}: no SavedModel (saved_model.pb missing)")
    try:
        loaded = tf.saved_model.load(str(path))
    except (OSError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path}: not a loadable SavedModel ({first})") from None
    if SIGNATURE not in loaded.signatures:
        raise InputError(f"{path}: SavedModel has no '{SIGNATURE}' signature")
    fn = loaded.signatures[SIGNATURE]
    specs = fn.structured_input_signature[1]
    if INPUT_NAME not in specs or OUTPUT_NAME not in fn.structured_outputs:
        raise InputError(
            f"{path}: signature '{SIGNATURE}' must take '{INPUT_NAME}' and return '{OUTPUT_NAME}'"
        )
    fn._edgeship_saved_model = loaded
    return fn


class Predictor:
    """The float model's ``serving_default``, loaded once and checked, for batch after batch."""

    def __init__(self, model_dir: str | os.PathLike, num_classes: int | None = None):
        self.fn = load_serving_fn(model_dir)
        self.path = Path(model_dir) / SERVING_DIR
        self.input_shape = tuple(self.fn.structured_input_signature[1][INPUT_NAME].shape[1:])
        self.classes = int(self.fn.structured_outputs[OUTPUT_NAME].shape[-1])
        if num_classes is not None and self.classes != num_classes:
            raise InputError(
                f"{self.path}: '{OUTPUT_NAME}' has {self.classes} values per example, expected "
                f"{num_classes} (one probability per class)"
            )

    def __call__(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities [N, num_classes] for encoded inputs ``x``."""
        import tensorflow as tf

        x = np.asarray(x, dtype=np.float32)
        expected = self.input_shape
        if x.ndim != len(expected) + 1 or any(
            e is not None and e != got for e, got in zip(expected, x.shape[1:], strict=False)
        ):
            raise InputError(
                f"{self.path}: model expects inputs of shape [N, {', '.join(map(str, expected))}]"
                f", got {list(x.shape)}: the model does not match these examples"
            )
        if len(x) == 0:
            return np.zeros((0, self.classes), dtype=np.float32)
        parts = [
            self.fn(**{INPUT_NAME: tf.constant(x[i : i + batch_size])})[OUTPUT_NAME].numpy()
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(parts).astype(np.float32)


def predict(
    model_dir: str | os.PathLike,
    x: np.ndarray,
    batch_size: int = 256,
    num_classes: int | None = None,
) -> np.ndarray:
    """Class probabilities [N, num_classes] of the float model for encoded inputs ``x``."""
    return Predictor(model_dir, num_classes)(x, batch_size)
