"""The tabular encoding learnt from the train split, class weights, the held-back part, and a
model with an embedding that converts to a full-integer TFLite model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from edgeship.components._dataset import (
    CLIP,
    MIN_COUNT,
    build_encoding,
    embedding_size,
    encode,
    input_names,
    load_split,
    string_blocks,
)
from edgeship.components.artifacts import MODEL_META, SERVING_DIR, read_examples_meta
from edgeship.components.train import data
from edgeship.components.train.executor import class_weights
from tests.helpers.builders import write_examples

META = {"kind": "tabular", "features": [
    {"name": "city", "dtype": "string", "shape": [1]},
    {"name": "price", "dtype": "float", "shape": [1]},
    {"name": "size", "dtype": "float", "shape": [1]},
    {"name": "const", "dtype": "float", "shape": [1]},
    {"name": "mode", "dtype": "string", "shape": [1]},
]}


def _columns(n: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # 60 cities with Zipf-like counts: the rare ones are seen fewer than MIN_COUNT times
    weights = 1.0 / np.arange(1, 61) ** 1.3
    city = rng.choice([f"c{i}" for i in range(60)], size=n, p=weights / weights.sum())
    size = rng.normal(50, 10, n).astype(np.float32)
    size[::10] = np.nan  # gaps: a missing-value indicator
    return {"city": city.astype(object),
            "price": rng.lognormal(3, 1.5, n).astype(np.float32),  # heavy tail, positive
            "size": size,
            "const": np.full(n, 7.0, np.float32),
            "mode": np.array(["auto"] * n, dtype=object)}


def test_vocabulary_is_the_frequent_values_and_the_rest_share_one_slot() -> None:
    columns = _columns()
    encoding = build_encoding(META, columns)
    (city,) = [c for c in encoding["columns"] if c["name"] == "city"]
    counts = {v: int((columns["city"] == v).sum()) for v in set(columns["city"])}
    assert set(city["vocab"]) == {v for v, n in counts.items() if n >= MIN_COUNT}
    assert city["vocab"] == sorted(city["vocab"], key=lambda v: (-counts[v], v))
    assert city["distinct"] == len(counts) and city["oov"]
    x = encode(encoding, {**columns, "city": np.array(["c0", "nowhere", None], object),
                          **{k: columns[k][:3] for k in ("price", "size", "const", "mode")}})
    block = x[:, :len(city["vocab"]) + 1]
    assert block[0, city["vocab"].index("c0")] == 1 and block[0].sum() == 1
    assert block[1, -1] == 1 and block[1].sum() == 1  # unseen: the out-of-vocabulary slot
    assert block[2].sum() == 0  # missing: all zeros


def test_numeric_columns_are_scaled_robustly_logged_when_heavy_and_flag_gaps() -> None:
    columns = _columns()
    encoding = build_encoding(META, columns)
    by_name = {c["name"]: c for c in encoding["columns"]}
    assert by_name["price"]["log"] and not by_name["size"]["log"]
    assert by_name["size"]["missing"] and not by_name["price"]["missing"]
    assert encoding["dropped"] == {"const": "one value in the train split (7)",
                                   "mode": "one value in the train split ('auto')"}
    x = encode(encoding, columns)
    names = input_names(encoding)
    assert len(names) == x.shape[1] == encoding["input_shape"][0]
    price = x[:, names.index("price")]
    size = x[:, names.index("size")]
    # median 0 and interquartile range 1.349: a normal column comes out with unit spread
    assert abs(np.median(price)) < 0.05 and abs(np.median(size)) < 0.05
    q1, q3 = np.percentile(size[~np.isnan(columns["size"])], [25, 75])
    assert abs((q3 - q1) - 1.349) < 0.1
    assert np.abs(x).max() <= CLIP
    gaps = x[:, names.index("size (missing)")]
    np.testing.assert_array_equal(gaps, np.isnan(columns["size"]).astype(np.float32))
    assert x[np.isnan(columns["size"]), names.index("size")].tolist() == pytest.approx(
        [0.0] * int(np.isnan(columns["size"]).sum()), abs=0.05)  # filled with the median


def test_an_outlier_in_eval_is_clipped_and_a_negative_value_of_a_logged_column_is_finite() -> None:
    encoding = build_encoding(META, _columns())
    names = input_names(encoding)
    odd = {k: v[:2].copy() for k, v in _columns().items()}
    odd["price"] = np.array([-5.0, 1e30], np.float32)
    odd["size"] = np.array([1e9, -1e9], np.float32)
    x = encode(encoding, odd)
    assert np.isfinite(x).all()
    assert x[:, names.index("size")].tolist() == [CLIP, -CLIP]


@pytest.mark.parametrize(("width", "size"), [(2, 0), (3, 0), (4, 0), (5, 4), (10, 6), (61, 16),
                                             (4001, 16)])
def test_embedding_size_rule(width: int, size: int) -> None:
    assert embedding_size(width) == size
    if size:
        assert size == min(16, math.ceil(1.6 * width**0.56))


def test_string_blocks_place_each_one_hot_block() -> None:
    encoding = build_encoding(META, _columns())
    (block,) = string_blocks(encoding)
    names = input_names(encoding)
    start, width, size = block
    assert names[start].startswith("city=") and names[start + width - 1] == "city=<other>"
    assert size == embedding_size(width)


def test_class_weights_only_on_a_skewed_split_square_root_balanced() -> None:
    assert class_weights(np.array([50, 50]), "auto") is None
    assert class_weights(np.array([76, 24]), "auto") is None  # flights: weights cost accuracy
    assert class_weights(np.array([90, 10]), "auto") is None
    assert class_weights(np.array([95, 5]), "none") is None
    auto = class_weights(np.array([96, 4]), "auto")
    balanced = class_weights(np.array([80, 20]), "balanced")
    assert auto is not None and balanced is not None
    assert balanced[1] / balanced[0] == pytest.approx(4.0, rel=1e-3)
    assert auto[1] / auto[0] == pytest.approx(math.sqrt(24), rel=1e-3)
    assert (np.array(auto) * [96, 4]).sum() == pytest.approx(100, rel=1e-3)
    assert (np.array(balanced) * [80, 20]).sum() == pytest.approx(100, rel=1e-3)
    with_empty = class_weights(np.array([90, 10, 0]), "balanced")
    assert with_empty is not None and with_empty[2] == 0.0


def _examples(tmp_path: Path, n: int = 600, skew: float = 0.5) -> Path:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        shop = f"s{rng.integers(40)}"
        spend = float(rng.lognormal(2, 1))
        score = int(shop[1:]) % 2 + (spend > 10)
        label = int(score >= 1) if rng.random() > skew else 0
        rows.append({"shop": shop, "spend": spend, "index": float(i), "label": label})
    features = [{"name": "shop", "dtype": "string", "shape": [1]},
                {"name": "spend", "dtype": "float", "shape": [1]},
                {"name": "index", "dtype": "float", "shape": [1]}]
    cut = int(n * 0.8)
    return write_examples(tmp_path / "ex", "tabular", features, ["no", "yes"],
                          {"train": rows[:cut], "eval": rows[cut:]})


def test_the_held_back_part_and_the_fitted_part_split_train_between_them(
    tmp_path: Path,
) -> None:
    examples = _examples(tmp_path)
    meta = read_examples_meta(examples)
    encoding = build_encoding(meta, load_split(examples, "train", meta)[0])
    names = input_names(encoding)

    def indices(part: str) -> list[float]:
        batches = data.dataset(str(examples), "train", meta, encoding, 64, part=part,
                               examples=480)
        spend_at = names.index("index")
        column = encoding["columns"][[c["name"] for c in encoding["columns"]].index("index")]
        return sorted(round(float(v) * column["std"] + column["mean"])
                      for x, _ in batches for v in x.numpy()[:, spend_at])

    held, fit = indices("held"), indices("fit")
    assert len(held) == data.held_back(480) == 48 and len(fit) == 432
    assert held == list(range(0, 480, data.HOLD_EVERY))
    assert sorted(held + fit) == list(range(480))


def test_weighted_batches_carry_each_examples_class_weight(tmp_path: Path) -> None:
    examples = _examples(tmp_path)
    meta = read_examples_meta(examples)
    encoding = build_encoding(meta, load_split(examples, "train", meta)[0])
    for _, y, w in data.dataset(str(examples), "train", meta, encoding, 64, one_hot=False,
                                class_weights=[0.5, 2.0]):
        np.testing.assert_array_equal(w.numpy(), np.where(y.numpy() == 1, 2.0, 0.5))


@pytest.mark.slow
def test_a_trained_model_with_an_embedding_converts_to_full_int8(tmp_path: Path) -> None:
    from edgeship.components.quantize.convert import convert
    from edgeship.components.train.executor import run_train

    examples = _examples(tmp_path, n=800, skew=0.7)
    summary = run_train(str(examples), str(tmp_path / "model"), epochs=3, min_steps=60,
                        max_steps=200, class_weights="balanced")
    meta = json.loads((tmp_path / "model" / MODEL_META).read_text())
    assert meta["class_weights"] and any("class weights (balanced)" in line
                                         for line in summary["decisions"])
    assert any(line.startswith("shop: 40 of 40 values") and "embedded in" in line
               for line in summary["decisions"])
    columns = load_split(examples, "train", read_examples_meta(examples))[0]
    calibration = encode(meta["encoding"], columns)[:200]
    content = convert(str(tmp_path / "model" / SERVING_DIR), "int8", calibration)
    assert content[4:8] == b"TFL3"
