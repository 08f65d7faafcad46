"""The three built-in model families, sized for edge devices and built only from int8-safe ops.

Every model takes the one float32 tensor that ``edgeship.components._dataset.encode`` builds,
normalises it with an adapted ``keras.layers.Normalization`` as its first layer (so devices
feed raw values) and ends in a softmax. Layers are limited to those the TFLite converter maps
to full-integer kernels: convolutions (Conv1D lowers to Conv2D), separable/depthwise
convolutions, batch normalisation (folded or mul/add), Dense, pooling, ReLU and Softmax;
Dropout vanishes at inference. Keras is imported inside functions so that importing this
module stays cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeship.errors import InputError

FAMILIES = {"image": "ds_cnn", "sensor": "conv1d", "tabular": "mlp"}

# Defaults sized like small production edge models (37 k to 420 k parameters, 40 to 470 KiB
# as int8) rather than as small as the bundled datasets allow. Below roughly 30 k parameters a
# .tflite file is mostly fixed overhead (graph, names, and the per-channel scales and int64 zero
# points int8 adds), so int8 stops being the 4x smaller file devices download; at these sizes
# the bundled int8 files are 0.27-0.29 of float32 (docs/benchmarks.md) and still train in well
# under a minute on 2 CPU cores.
DEFAULTS: dict[str, dict[str, Any]] = {
    "image": {"filters": 96, "blocks": 4, "dropout": 0.1},
    "sensor": {"filters": 48, "kernel_size": 5, "blocks": 3, "dropout": 0.1},
    "tabular": {"units": [256, 128], "dropout": 0.1},
}


def resolve_hyperparameters(kind: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """Family defaults overridden by ``given``; unknown keys are an error, not silently ignored."""
    defaults = DEFAULTS[kind]
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise InputError(
            f"hyperparameters: unknown key(s) {unknown} for the {FAMILIES[kind]} family "
            f"(known: {sorted(defaults)})"
        )
    merged = {**defaults, **given}
    _check_positive_ints(merged, ("filters", "blocks", "kernel_size"))
    if "units" in merged:
        units = merged["units"]
        units = [units] if isinstance(units, int) else units
        if not units or not all(isinstance(u, int) and u > 0 for u in units):
            raise InputError(f"hyperparameters: 'units' must be positive integers, got {units!r}")
        merged["units"] = list(units)
    dropout = merged["dropout"]
    if not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise InputError(f"hyperparameters: 'dropout' must be in [0, 1), got {dropout!r}")
    return merged


def _check_positive_ints(params: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in params and not (isinstance(params[key], int) and params[key] > 0):
            raise InputError(
                f"hyperparameters: '{key}' must be a positive integer, got {params[key]!r}"
            )


def build_normalizer(mean, variance):
    """A Normalization layer with the training inputs' mean and variance per last axis
    (feature/channel), measured by streaming the split (``train.data.scan``).

    Constant features (variance 0) are safe: Keras divides by max(std, epsilon).
    """
    import keras

    return keras.layers.Normalization(axis=-1, mean=np.asarray(mean, dtype=np.float32),
                                      variance=np.asarray(variance, dtype=np.float32),
                                      name="normalize")


def build_model(
    kind: str, input_shape: tuple[int, ...], num_classes: int, hp: dict[str, Any], normalizer,
    blocks: list[tuple[int, int, int]] | None = None,
):
    """The built-in model for a data kind (``hp`` from :func:`resolve_hyperparameters`).
    ``blocks`` are a tabular input's one-hot blocks (``_dataset.string_blocks``): those with an
    embedding size get one."""
    if kind == "tabular":
        return _tabular_mlp(input_shape, num_classes, hp, normalizer, blocks or [])
    builders = {"image": _image_cnn, "sensor": _sensor_cnn}
    return builders[kind](input_shape, num_classes, hp, normalizer)


def _conv_bn_relu(x, conv, name: str):
    """conv (no bias) -> BatchNormalization -> ReLU: BN speeds up training of these small nets
    and the converter folds it into the convolution (or keeps an int8-safe mul/add).

    Momentum 0.9 rather than 0.99: small datasets give only a few hundred steps, and the moving
    statistics used at inference must have caught up with the batch statistics by then.
    """
    from keras import layers

    x = conv(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _image_cnn(input_shape, num_classes, hp, normalizer):
    """A small depthwise-separable CNN (MobileNet-style blocks) over [H, W, C].

    The stem strides by 2 on images of 16 pixels or more: a quarter of the compute, and a wider
    receptive field for the few blocks that follow.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="inputs")
    x = normalizer(inputs)
    filters = hp["filters"]
    stride = 2 if min(input_shape[0], input_shape[1]) >= 16 else 1
    stem = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name="stem")
    x = _conv_bn_relu(x, stem, "stem")
    for block in range(hp["blocks"]):
        filters *= 2 if block else 1
        sep = layers.SeparableConv2D(
            filters, 3, padding="same", use_bias=False, name=f"sep_conv{block}"
        )
        x = _conv_bn_relu(x, sep, f"sep_conv{block}")
        if min(x.shape[1], x.shape[2]) >= 4:
            x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(hp["dropout"], name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="ds_cnn")


def _sensor_cnn(input_shape, num_classes, hp, normalizer):
    """A 1-D CNN over [window, channels]: Conv1D blocks with pooling, then global average."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="inputs")
    x = normalizer(inputs)
    for block in range(hp["blocks"]):
        conv = layers.Conv1D(
            hp["filters"] * 2**block,
            hp["kernel_size"],
            padding="same",
            use_bias=False,
            name=f"conv{block}",
        )
        x = _conv_bn_relu(x, conv, f"conv{block}")
        if x.shape[1] >= 4:
            x = layers.MaxPooling1D(2, name=f"pool{block}")(x)
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    x = layers.Dropout(hp["dropout"], name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="conv1d")


def _tabular_mlp(input_shape, num_classes, hp, normalizer, blocks):
    """A multi-layer perceptron over the encoded feature vector; a wide one-hot block first
    goes through an embedding: a Dense layer without bias on the block's slice (an embedding
    lookup, as int8-safe StridedSlice and FullyConnected kernels)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="inputs")
    x = normalizer(inputs)
    embedded = [(at, width, size) for at, width, size in blocks if size]
    if embedded:
        parts, at = [], 0
        for start, width, size in embedded:
            if start > at:
                parts.append(x[:, at:start])
            parts.append(layers.Dense(size, use_bias=False, name=f"embed{start}")(
                x[:, start:start + width]))
            at = start + width
        if at < input_shape[0]:
            parts.append(x[:, at:])
        x = layers.Concatenate(name="embedded")(parts) if len(parts) > 1 else parts[0]
    for i, units in enumerate(hp["units"]):
        x = layers.Dense(units, activation="relu", name=f"dense{i}")(x)
    x = layers.Dropout(hp["dropout"], name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mlp")
