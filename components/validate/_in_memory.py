"""TFDV statistics of a split without a Beam pipeline (validate's lean path for small data).

TFDV's ``GenerateStatistics`` is a Beam transform; on a few hundred rows building and running
its pipeline costs seconds while the statistics take a fraction of one. TFDV also ships the
in-memory form of the same generators (``stats_impl.get_generators(in_memory=True)``, what
``generate_statistics_in_memory`` runs on one Arrow batch): here they are fed the split's
TFRecords batch by batch, decoded with tfx_bsl's Example decoder as ``TFExampleRecord`` decodes
them in the Beam path, so memory holds the generators' accumulators and one batch, never the
split.

The one difference between the two: in memory, TFDV computes the top values and the number of
unique values of string features with sketches (Misra-Gries with ``MG_SKETCH_SIZE`` buckets,
KMV with 16,384) where its Beam path counts exactly. A Misra-Gries sketch is exact while a
feature has at most as many distinct values as it has buckets, so :func:`exact` tells whether
the sketches held the truth; when not, the caller computes the split's statistics with Beam.

TensorFlow, TFDV and tfx_bsl are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import statistics_pb2

# TFDV 1.16's in-memory Misra-Gries sketch size (stats_impl._DEFAULT_MG_SKETCH_SIZE): top values
# are exact while a string feature has at most this many distinct values.
MG_SKETCH_SIZE = 1024
# Records decoded per Arrow batch: 4,096 ran 1M rows in 7.0 s where 1,000 took 13.1 s (the
# generators' per-batch cost dominates small batches); a batch of this size is a few MB.
BATCH_ROWS = 4096


def statistics(
    files: Iterable[str], count: Callable[[int], object] | None = None
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """The statistics ``tfdv.GenerateStatistics(tfdv.StatsOptions())`` computes for the
    examples in ``files`` (gzipped TFRecords of ``tf.train.Example``), without Beam.

    ``count`` is called with each batch's number of rows (progress). TensorFlow's read errors
    (a corrupt file) propagate as ``tf.errors.OpError``, as Beam's reader raises them.
    """
    import tensorflow as tf
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl
    from tensorflow_data_validation.statistics.generators import stats_generator
    from tfx_bsl.coders import example_coder

    options = tfdv.StatsOptions()
    # in memory, TFDV returns combiner generators only (its generate_statistics_in_memory casts)
    generators = cast(list[stats_generator.CombinerStatsGenerator],
                      stats_impl.get_generators(options, in_memory=True))
    accumulators = [generator.create_accumulator() for generator in generators]
    decoder = example_coder.ExamplesToRecordBatchDecoder()
    dataset = tf.data.TFRecordDataset(list(files), compression_type="GZIP").batch(BATCH_ROWS)
    for records in dataset.as_numpy_iterator():
        batch = decoder.DecodeBatch(list(records))
        accumulators = [
            generator.add_input(accumulator, batch)
            for generator, accumulator in zip(generators, accumulators, strict=True)
        ]
        if count is not None:
            count(batch.num_rows)
    return stats_impl.extract_statistics_output(accumulators, generators)


def exact(stats: statistics_pb2.DatasetFeatureStatisticsList) -> bool:
    """Whether the sketches were exact: no string feature has more distinct values than the
    Misra-Gries sketch has buckets (the KMV sketch of unique values is larger still)."""
    return all(
        feature.string_stats.unique <= MG_SKETCH_SIZE
        for dataset in stats.datasets
        for feature in dataset.features
        if feature.HasField("string_stats")
    )
