"""The int8 input-resolution diagnosis names the features one shared input scale flattens."""

import numpy as np

from edgeship.components.quantize.inputs import coarse_features


def test_small_range_column_next_to_a_large_one_is_named() -> None:
    rng = np.random.default_rng(0)
    x = np.stack([rng.uniform(300, 1700, 500), rng.uniform(0.5, 1.7, 500)], axis=1)
    encoding = {
        "kind": "tabular",
        "columns": [
            {"name": "proline", "dtype": "float", "fill": 700.0},
            {"name": "hue", "dtype": "float", "fill": 1.0},
        ],
    }
    scale = (x.max() - x.min()) / 255  # one scale for the whole tensor, as int8 input has
    found = coarse_features(x, encoding, scale)
    assert [c["feature"] for c in found] == ["hue"]
    assert found[0]["steps"] < 1
    assert coarse_features(x[:, :1], {"kind": "image"}, scale) == []
