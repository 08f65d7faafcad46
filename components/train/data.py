"""Train's data: the splits as streams, never whole in memory, and a schedule that suits their size.

One pass over the train split gathers what the model needs before training (the encoding's
vocabularies and moments, the normaliser's mean and variance, the class counts) and checks every
example; then each epoch streams the split again through ``tf.data``, shuffled through a bounded
buffer and encoded in the graph by ``encode_tf``, the TensorFlow twin of the ``encode`` every
later step and device uses. Memory holds a few batches and the shuffle buffer, at any number
of rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from edgeship.components._dataset import (
    SHUFFLE_BUFFER,
    Moments,
    build_encoding,
    check_labels,
    encode,
    encode_tf,
    feature_spec,
    iter_batches,
    tfrecord_files,
)
from edgeship.components.progress import Progress
from edgeship.errors import InputError

#: Early stopping watches the loss on at most this many examples (the first, in file order):
#: enough to see it stop falling, cheap enough to measure after every epoch.
VALIDATION_EXAMPLES = 50_000
#: Tabular data: every HOLD_EVERY-th train example (in file order; ingest's split is a hash,
#: so these are a random tenth) is held back for early stopping and never trained on, so the
#: eval split stays unseen until the model is measured on it.
HOLD_EVERY = 10


def held_back(examples: int) -> int:
    """How many of ``examples`` train examples :func:`dataset`'s ``part="held"`` gives."""
    return math.ceil(examples / HOLD_EVERY)


@dataclass(frozen=True)
class Schedule:
    """How long to train, from the train split's size (the rule is in :func:`schedule`).

    An epoch here is what Keras validates after: ``passes_per_epoch`` passes over the split
    (one, unless the split is a handful of steps long, when several are grouped so that the
    loss on eval examples is not measured after every few steps)."""

    batch_size: int
    steps_per_epoch: int
    epochs: int
    min_epochs: int  # early stopping may not end the run before this epoch
    passes_per_epoch: int = 1

    @property
    def steps(self) -> int:
        return self.steps_per_epoch * self.epochs


#: Passes over a small split are grouped into epochs of at least this many steps.
MIN_EPOCH_STEPS = 50


def auto_batch_size(examples: int) -> int:
    """About 100 steps per pass at most sizes: 32 for a few thousand examples or fewer, up to
    512 from about 36,000 on (the power of two nearest examples / 100, in between)."""
    return int(min(512, max(32, 2 ** round(math.log2(max(examples, 1) / 100)))))


def schedule(examples: int, epochs: int, batch_size: int, min_steps: int,
             max_steps: int) -> Schedule:
    """The training schedule for ``examples`` train examples.

    - batch size: ``batch_size``, or :func:`auto_batch_size` when it is 0;
    - at least ``min_steps`` optimisation steps, whatever ``epochs`` says, so that a small
      dataset is learnt (a few hundred examples are only a handful of steps per pass), and
      early stopping cannot end the run before them;
    - at most ``max_steps`` steps, so that time grows with the data only up to a bound: a large
      split gets fewer passes (a partial one when one pass is more than the budget);
    - between the two, ``epochs`` passes over the split;
    - passes of fewer than ``MIN_EPOCH_STEPS`` steps are grouped into epochs of at least that
      many, so that validating does not cost more than training.
    """
    batch = batch_size or auto_batch_size(examples)
    per_pass = max(1, math.ceil(examples / batch))
    if per_pass >= max_steps:
        return Schedule(batch, max_steps, 1, 1)
    floor = math.ceil(min_steps / per_pass)
    ceiling = max(1, max_steps // per_pass)
    passes = min(max(epochs, floor), ceiling)
    group = max(1, min(passes, math.ceil(MIN_EPOCH_STEPS / per_pass)))
    epochs = max(1, min(math.ceil(passes / group), max_steps // (per_pass * group)))
    return Schedule(batch, per_pass * group, epochs,
                    min(math.ceil(min(floor, passes) / group), epochs), group)


@dataclass
class TrainData:
    """What one pass over the train split tells before training."""

    encoding: dict[str, Any]
    input_shape: tuple[int, ...]
    class_counts: np.ndarray
    input_mean: np.ndarray = field(repr=False)
    input_variance: np.ndarray = field(repr=False)

    @property
    def examples(self) -> int:
        return int(self.class_counts.sum())


def scan(examples_dir: str, meta: dict[str, Any], progress: Progress | None = None
         ) -> TrainData:
    """Gather the encoding, the encoded inputs' per-feature moments (for the normaliser) and
    the class counts, streaming the train split (twice for tabular data, whose encoding must be
    known before its inputs are)."""
    classes = meta["classes"]
    if meta["kind"] == "tabular":
        encoding = build_encoding(meta, (c for c, _ in _batches(examples_dir, "train", meta)))
    else:
        encoding = build_encoding(meta, {})
    moments = Moments()
    counts = np.zeros(len(classes), dtype=np.int64)
    where = f"{examples_dir} split 'train'"
    seen = 0
    for columns, labels in _batches(examples_dir, "train", meta):
        x = encoded(encoding, columns, where, seen)
        check_labels(where, labels, classes, seen)
        counts += np.bincount(labels, minlength=len(classes))
        moments.add(x.reshape(-1, x.shape[-1]))
        seen += len(labels)
        if progress:
            progress.update(lambda n=seen: f"reading the train split: {n} examples")
    mean, std = moments.mean_std()
    if encoding.get("version", 1) >= 2:
        # the encoding scales numeric columns already; one-hot and indicator columns must stay
        # 0/1 (scaling a rare category by its tiny variance gives inputs in the hundreds)
        mean, std = np.zeros_like(mean), np.ones_like(std)
    return TrainData(encoding, tuple(int(d) for d in encoding["input_shape"]), counts,
                     mean, std**2)


def dataset(examples_dir: str, split: str, meta: dict[str, Any], encoding: dict[str, Any],
            batch_size: int, *, seed: int | None = None, limit: int | None = None,
            examples: int | None = None, one_hot: bool = True, part: str = "all",
            class_weights: list[float] | None = None) -> Any:
    """A ``tf.data.Dataset`` of (inputs, labels) batches streamed from the split's TFRecords:
    read, parsed and encoded (:func:`encode_tf`) in TensorFlow's own threads, with no Python in
    the loop. The labels and inputs were checked by :func:`scan` (and the eval split by the
    caller) before this runs.

    With ``seed`` the examples are shuffled through a bounded buffer, in a new order on each
    pass, the same for the same seed. Labels are one-hot (for label smoothing) unless
    ``one_hot`` is False. ``examples``, the split's size when the caller has counted it, gives
    the stream a known length: Keras then knows where an epoch ends instead of running into
    the end of the data (and warning that it "ran out of data"). ``part`` "fit" leaves out
    every ``HOLD_EVERY``-th example, "held" gives only those (``examples`` is still the whole
    split's count). With ``class_weights`` each batch carries a weight per example, its
    class's.
    """
    import tensorflow as tf

    records = tf.data.TFRecordDataset(tfrecord_files(examples_dir, split),
                                      compression_type="GZIP")
    if part != "all":
        keep_held = part == "held"
        # (cast: TensorFlow's stubs type the enumerated elements as one tuple, but tf.data
        # unpacks them into the two arguments)
        numbered = cast(Any, records.enumerate())
        records = numbered.filter(
            lambda i, _: tf.equal(i % HOLD_EVERY, 0) == keep_held).map(lambda _, r: r)
        if examples is not None:
            examples = held_back(examples) if keep_held else examples - held_back(examples)
    if seed is not None:
        records = records.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    if limit is not None:
        records = records.take(limit)
    spec = feature_spec(meta)
    label = meta["label_feature"]
    num_classes = len(meta["classes"])

    weights = None if class_weights is None else tf.constant(class_weights, tf.float32)

    def parse(serialized):
        features = tf.io.parse_example(serialized, spec)
        labels = features[label]
        x, y = encode_tf(encoding, features), tf.one_hot(labels, num_classes) if one_hot else labels
        return (x, y) if weights is None else (x, y, tf.gather(weights, labels))

    batches = records.batch(batch_size)
    if examples is not None:
        counted = examples if limit is None else min(examples, limit)
        batches = batches.apply(
            tf.data.experimental.assert_cardinality(math.ceil(counted / batch_size)))
    return batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _batches(examples_dir: str, split: str, meta: dict[str, Any]):
    return iter_batches(examples_dir, split, meta)


def encoded(encoding: dict[str, Any], columns: Any, where: str, first: int) -> np.ndarray:
    """A batch encoded as model inputs; NaN/inf in image or sensor inputs is an error naming the
    example (tabular gaps are filled by the encoding). ``first`` is the batch's first index."""
    x = encode(encoding, columns, where)
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        raise InputError(f"{where}: example {first + int(np.flatnonzero(~finite)[0])} has NaN "
                         "or inf values")
    return x
