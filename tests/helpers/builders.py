"""Small, learnable Examples artifacts written exactly as ingest lays them out.

Tests of validate, train, evaluate and quantize use these so that each executor can be tested
alone, on data that takes a second to write and a few seconds to learn.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.components._dataset import build_encoding, encode, load_split
from edgeship.components.artifacts import (
    EXAMPLES_META,
    LABEL_FEATURE,
    MODEL_META,
    SERVING_DIR,
    read_examples_meta,
    split_dir,
    write_json,
)


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C of a length header or a record."""
    import crcmod.predefined  # installed with apache-beam

    crc = crcmod.predefined.mkCrcFun("crc-32c")(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _tf_example(row: dict[str, Any]) -> bytes:
    from tensorflow.core.example import example_pb2, feature_pb2

    features = {}
    for name, value in row.items():
        if value is None:
            continue
        if name == LABEL_FEATURE:
            features[name] = feature_pb2.Feature(int64_list=feature_pb2.Int64List(value=[value]))
        elif isinstance(value, str):
            features[name] = feature_pb2.Feature(
                bytes_list=feature_pb2.BytesList(value=[value.encode()])
            )
        else:
            flat = np.asarray(value, dtype=np.float32).reshape(-1).tolist()
            features[name] = feature_pb2.Feature(float_list=feature_pb2.FloatList(value=flat))
    example = example_pb2.Example(features=feature_pb2.Features(feature=features))
    return example.SerializeToString()


def write_tfrecord_gz(path: Path, records: list[bytes]) -> None:
    with gzip.open(path, "wb") as out:
        for record in records:
            header = struct.pack("<Q", len(record))
            out.write(header + struct.pack("<I", masked_crc(header)))
            out.write(record + struct.pack("<I", masked_crc(record)))


def read_tfrecord_gz(path: Path) -> list[bytes]:
    """The records of one gzipped TFRecord file, checking both CRCs of every record."""
    records = []
    with gzip.open(path, "rb") as handle:
        while header := handle.read(12):
            (length,) = struct.unpack("<Q", header[:8])
            assert struct.unpack("<I", header[8:])[0] == masked_crc(header[:8])
            data = handle.read(length)
            assert struct.unpack("<I", handle.read(4))[0] == masked_crc(data)
            records.append(data)
    return records


def write_examples(
    examples_dir: Path,
    kind: str,
    features: list[dict[str, Any]],
    classes: list[str],
    rows: dict[str, list[dict[str, Any]]],
) -> Path:
    """Write an Examples artifact: ``rows[split]`` is a list of {feature: value, "label": int}."""
    examples_dir.mkdir(parents=True, exist_ok=True)
    for split, split_rows in rows.items():
        folder = split_dir(examples_dir, split)
        folder.mkdir(parents=True, exist_ok=True)
        write_tfrecord_gz(
            folder / "data-00000-of-00001.tfrecord.gz", [_tf_example(r) for r in split_rows]
        )
    meta = {
        "kind": kind,
        "label_feature": LABEL_FEATURE,
        "classes": classes,
        "features": features,
        "counts": {split: len(r) for split, r in rows.items()},
        "bad_rows": 0,
        "source": "tests/helpers/builders.py",
    }
    write_json(examples_dir / EXAMPLES_META, meta)
    return examples_dir


def _split(rows: list[dict[str, Any]], eval_share: float = 0.25) -> dict[str, list]:
    cut = int(len(rows) * (1 - eval_share))
    return {"train": rows[:cut], "eval": rows[cut:]}


def tabular_examples(examples_dir: Path, n: int = 400, seed: int = 0) -> Path:
    """Two numeric features and one string feature; the class follows x + (colour == red)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        x = float(rng.normal())
        y = float(rng.normal())
        colour = str(rng.choice(["red", "green", "blue"]))
        score = x + (1.5 if colour == "red" else 0.0) + 0.1 * y
        rows.append({"x": x, "y": y, "colour": colour, LABEL_FEATURE: int(score > 0.5)})
    features = [
        {"name": "x", "dtype": "float", "shape": [1]},
        {"name": "y", "dtype": "float", "shape": [1]},
        {"name": "colour", "dtype": "string", "shape": [1]},
    ]
    return write_examples(examples_dir, "tabular", features, ["low", "high"], _split(rows))


def sensor_examples(examples_dir: Path, n: int = 300, window: int = 32, seed: int = 0) -> Path:
    """Three channels; class 0 is noise, class 1 a 4-cycle sine, class 2 an 8-cycle sine."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, window, endpoint=False)
    rows = []
    for i in range(n):
        label = i % 3
        base = 0.0 if label == 0 else np.sin((4 if label == 1 else 8) * t + rng.uniform(0, 6))
        row = {
            name: base * gain + rng.normal(0, 0.3, window)
            for name, gain in (("ax", 1.0), ("ay", 0.5), ("az", 0.2))
        }
        row[LABEL_FEATURE] = label
        rows.append(row)
    features = [{"name": c, "dtype": "float", "shape": [window]} for c in ("ax", "ay", "az")]
    classes = ["idle", "slow", "fast"]
    return write_examples(examples_dir, "sensor", features, classes, _split(rows))


def image_examples(examples_dir: Path, n: int = 300, size: int = 8, seed: int = 0) -> Path:
    """Grey images: class 0 bright on the left half, class 1 on the right half."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        img = rng.uniform(0, 60, (size, size, 1))
        half = slice(0, size // 2) if label == 0 else slice(size // 2, size)
        img[:, half, :] += 150
        rows.append({"image": img, LABEL_FEATURE: label})
    features = [{"name": "image", "dtype": "float", "shape": [size, size, 1]}]
    return write_examples(examples_dir, "image", features, ["left", "right"], _split(rows))


def export_model(model_dir: Path, model, encoding: dict, classes: list[str], kind: str) -> Path:
    """Export as train does: Format-Serving/ with serving_default(inputs) -> probabilities."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda inputs: {"probabilities": model(inputs)},
        input_signature=[
            tf.TensorSpec([None, *encoding["input_shape"]], tf.float32, name="inputs")
        ],
    )
    archive.write_out(str(model_dir / SERVING_DIR), verbose=False)
    write_json(
        model_dir / MODEL_META,
        {
            "kind": kind,
            "classes": classes,
            "encoding": encoding,
            "input_name": "inputs",
            "output_name": "probabilities",
            "input_shape": encoding["input_shape"],
            "num_classes": len(classes),
        },
    )
    return model_dir


def train_and_export(
    examples_dir: Path, model_dir: Path, build, epochs: int = 40, seed: int = 0
) -> Path:
    """Train ``build(input_shape, num_classes, train_x)`` briefly and export it as train does."""
    import keras

    keras.utils.set_random_seed(seed)
    meta = read_examples_meta(examples_dir)
    train_cols, y_train = load_split(examples_dir, "train", meta)
    encoding = build_encoding(meta, train_cols)
    x_train = encode(encoding, train_cols)
    shape = list(x_train.shape[1:])
    model = build(shape, len(meta["classes"]), x_train)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    export_model(model_dir, model, encoding, meta["classes"], meta["kind"])
    return model_dir


def tabular_mlp(shape, num_classes, x_train, middle=None):
    import keras

    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(x_train)
    inputs = keras.Input(shape)
    x = keras.layers.Dense(16, activation="relu")(norm(inputs))
    if middle is not None:
        x = middle(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


def photo_folder(root: Path, per_class: int = 60, size: int = 32, seed: int = 0) -> Path:
    """``root/<class>/*.png``: bright shapes on dark noisy backgrounds, ``size``x``size`` RGB.
    The classes differ in shape and in colour (of equal brightness): grey pictures of a
    smaller size lose much of what tells them apart."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    colours = {"circle": (230, 40, 40), "square": (40, 200, 40), "triangle": (60, 60, 255)}
    for name, colour in colours.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
            image = Image.fromarray(noise, "RGB")
            draw = ImageDraw.Draw(image)
            half = int(rng.integers(size // 6, size // 3))
            cx, cy = (int(v) for v in rng.integers(half, size - half, size=2))
            box = (cx - half, cy - half, cx + half, cy + half)
            shade = tuple(int(min(255, c * rng.uniform(0.8, 1.1))) for c in colour)
            if name == "circle":
                draw.ellipse(box, fill=shade)
            elif name == "square":
                draw.rectangle(box, fill=shade)
            else:
                draw.polygon([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)],
                             fill=shade)
            image.save(folder / f"{i:03d}.png")
    return root
