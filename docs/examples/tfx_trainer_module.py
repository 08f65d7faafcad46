"""A TFX Trainer module file whose model edgeship's ``Quantize`` and ``EdgePusher`` can take.

TFX's Evaluator (and InfraValidator, and TF Serving) feed a model serialized ``tf.Example``s, so
``serving_default`` takes those, as in TFX's own examples. TFLite cannot take strings: quantize
converts a second signature, ``serving_float``, that takes one float32 tensor of the features in
``FEATURE_KEYS`` order and returns the class scores. Both signatures run the same Keras model, so
the model the Evaluator blessed is the one quantized. In the pipeline::

    Quantize(model=trainer.outputs["model"], examples=example_gen.outputs["examples"],
             model_blessing=evaluator.outputs["blessing"], signature="serving_float",
             label_key=LABEL_KEY, feature_keys=FEATURE_KEYS, classes=["ok", "fault"])

Used as ``Trainer(module_file=...)`` with the Examples of TFX's ``CsvExampleGen`` on a CSV with
the columns below (floats; the label an integer class index). A test runs it.
"""

import keras
import tensorflow as tf

FEATURE_KEYS = ["vibration", "current", "temperature"]  # scaled to similar ranges: see quantize
LABEL_KEY = "fault"
CLASSES = 2


def _feature_spec() -> dict:
    spec = {key: tf.io.FixedLenFeature([], tf.float32) for key in FEATURE_KEYS}
    spec[LABEL_KEY] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def _features(parsed: dict) -> tf.Tensor:
    """The float input both signatures feed the model: the features stacked in order."""
    return tf.stack([parsed[key] for key in FEATURE_KEYS], axis=1)


def _dataset(file_patterns: list, batch_size: int = 32) -> tf.data.Dataset:
    files = [path for pattern in file_patterns for path in tf.io.gfile.glob(pattern)]
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    parsed = records.batch(batch_size).map(
        lambda batch: tf.io.parse_example(batch, _feature_spec()))
    return parsed.map(lambda p: (_features(p), p[LABEL_KEY]))


def run_fn(fn_args) -> None:
    """TFX Trainer's entry point (``tfx.components.FnArgs``)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((len(FEATURE_KEYS),), name="readings"),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(CLASSES, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    # Trainer(train_args=TrainArgs(num_steps=...), eval_args=EvalArgs(num_steps=...))
    model.fit(_dataset(fn_args.train_files).repeat(), epochs=1,
              steps_per_epoch=fn_args.train_steps,
              validation_data=_dataset(fn_args.eval_files), validation_steps=fn_args.eval_steps,
              verbose=0)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",  # TFX's Evaluator and serving: serialized tf.Examples
        fn=lambda examples: model(_features(tf.io.parse_example(
            examples, {k: v for k, v in _feature_spec().items() if k != LABEL_KEY}))),
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
    )
    archive.add_endpoint(
        name="serving_float",  # edgeship's Quantize: one float32 tensor, as TFLite needs
        fn=lambda readings: model(readings),
        input_signature=[tf.TensorSpec([None, len(FEATURE_KEYS)], tf.float32, name="readings")],
    )
    archive.write_out(fn_args.serving_model_dir)
