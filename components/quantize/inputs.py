"""Diagnosing int8 input resolution: how many int8 steps each input feature gets.

A full-integer model quantizes its whole input tensor with ONE scale. When the features that
share it have very different ranges (a tabular column in the thousands next to one below 1),
the small ones fall into a step or two and the model cannot see them, however well it learned
them; a Normalization layer inside the model comes too late, after the input is quantized.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeship.components._dataset import input_names

MIN_STEPS = 16  # fewer distinct levels than this across a feature's range loses it


def feature_names(encoding: dict[str, Any], width: int) -> list[str]:
    """A name per position of the input's last axis, from the encoding train recorded."""
    kind = encoding.get("kind")
    if kind == "sensor":
        return list(encoding["columns"])
    if kind == "tabular":
        return input_names(encoding)
    return [f"channel {i}" for i in range(width)]


def coarse_features(x: np.ndarray, encoding: dict[str, Any], scale: float) -> list[dict]:
    """Features whose eval range (1st..99th percentile) spans fewer than MIN_STEPS int8 steps."""
    flat = x.reshape(-1, x.shape[-1])
    names = feature_names(encoding, flat.shape[1])
    if len(names) != flat.shape[1] or scale <= 0:
        names = [f"feature {i}" for i in range(flat.shape[1])]
    low, high = np.percentile(flat, [1, 99], axis=0)
    steps = (high - low) / scale
    return [
        {"feature": names[i], "range": [float(low[i]), float(high[i])], "steps": float(steps[i])}
        for i in np.argsort(steps)
        if steps[i] < MIN_STEPS
    ]
