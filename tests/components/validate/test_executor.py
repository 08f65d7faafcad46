"""The validate executor on small Examples artifacts: TFX layouts that TFDV loads back, curated
schemas that new data breaks, and drift against baseline statistics (bad input: test_errors).

Each TFDV run costs seconds, so the runs happen once in module-scoped fixtures and the tests
read what they wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship.components.artifacts import LABEL_FEATURE
from edgeship.components.validate.executor import load_schema, run_validate
from edgeship.errors import InputError
from tests.helpers import builders
from tests.helpers.checks import assert_nothing_written

TABULAR_FEATURES = [
    {"name": "x", "dtype": "float", "shape": [1]},
    {"name": "y", "dtype": "float", "shape": [1]},
    {"name": "colour", "dtype": "string", "shape": [1]},
]


def tabular_rows(n: int, seed: int, x_shift: float = 0.0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "x": float(rng.normal()) + x_shift,
            "y": float(rng.normal()),
            "colour": str(rng.choice(["red", "green", "blue"])),
            LABEL_FEATURE: i % 2,
        }
        for i in range(n)
    ]


def outputs(root: Path) -> dict[str, str]:
    return {name: str(root / name) for name in ("statistics_dir", "schema_dir", "anomalies_dir")}


def run(examples: Path, root: Path, **kwargs: Any) -> dict[str, Any]:
    o = outputs(root)
    return run_validate(
        str(examples), o["statistics_dir"], o["schema_dir"], o["anomalies_dir"], **kwargs
    )




@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Tabular examples validated with an inferred schema: the baseline for the other tests."""
    root = tmp_path_factory.mktemp("clean")
    examples = builders.tabular_examples(root / "examples")
    summary = run(examples, root / "out")
    return {"examples": examples, "out": root / "out", "summary": summary}


def test_outputs_follow_tfx_layouts_and_load_with_tfdv(clean: dict[str, Any]) -> None:
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    out, summary = clean["out"], clean["summary"]
    for split, count in (("train", 300), ("eval", 100)):
        stats_file = out / "statistics_dir" / f"Split-{split}" / "FeatureStats.pb"
        stats = tfdv.load_stats_binary(str(stats_file))
        assert stats.datasets[0].num_examples == count
        assert {f.path.step[0] for f in stats.datasets[0].features} == {"x", "y", "colour", "label"}
        diff = (out / "anomalies_dir" / f"Split-{split}" / "SchemaDiff.pb").read_bytes()
        assert not anomalies_pb2.Anomalies.FromString(diff).anomaly_info
    schema = tfdv.load_schema_text(str(out / "schema_dir" / "schema.pbtxt"))
    by_name = {f.name: f for f in schema.feature}
    assert set(by_name) == {"x", "y", "colour", "label"}
    assert (by_name["label"].int_domain.min, by_name["label"].int_domain.max) == (0, 1)
    assert set(tfdv.get_domain(schema, "colour").value) == {"red", "green", "blue"}
    assert summary["num_anomalies"] == 0
    assert summary["anomalies"] == {"train": [], "eval": []}
    assert summary["statistics"] == {"train": 300, "eval": 100}
    assert summary["features"] == 4 and summary["schema"] == "inferred"
    assert not list(out.glob(".*partial*")), "scratch folders must not remain"


def test_load_schema_accepts_folder_or_file(clean: dict[str, Any]) -> None:
    folder = clean["out"] / "schema_dir"
    assert load_schema(folder) == load_schema(folder / "schema.pbtxt")
    assert {f.name for f in load_schema(folder).feature} == {"x", "y", "colour", "label"}


@pytest.fixture(scope="module")
def violating(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """New data against the clean schema: strings in float 'x' (train), a new colour (eval)."""
    train = tabular_rows(80, seed=1)
    for row in train:
        row["x"] = "n/a"
    held_out = tabular_rows(40, seed=2)
    for row in held_out[::4]:
        row["colour"] = "purple"
    return builders.write_examples(
        tmp_path_factory.mktemp("violating") / "examples",
        "tabular",
        TABULAR_FEATURES,
        ["low", "high"],
        {"train": train, "eval": held_out},
    )


def test_curated_schema_violation_fails_naming_features_and_leaves_nothing(
    clean: dict[str, Any], violating: Path, tmp_path: Path
) -> None:
    schema_file = clean["out"] / "schema_dir" / "schema.pbtxt"
    with pytest.raises(InputError) as caught:
        run(violating, tmp_path / "out", schema_path=str(schema_file))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("validate: anomalies in Split-train: 'x': Unexpected data type")
    assert "Split-eval: 'colour': Unexpected string values" in message and "purple" in message
    assert_nothing_written(tmp_path / "out")


def test_without_fail_on_anomalies_outputs_are_written(
    clean: dict[str, Any], violating: Path, tmp_path: Path
) -> None:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    summary = run(
        violating, tmp_path, schema_path=str(clean["out"] / "schema_dir"), fail_on_anomalies=False
    )
    assert summary["num_anomalies"] == 2
    assert [line.split(":")[0] for line in summary["anomalies"]["train"]] == ["'x'"]
    assert [line.split(":")[0] for line in summary["anomalies"]["eval"]] == ["'colour'"]
    diff = (tmp_path / "anomalies_dir" / "Split-eval" / "SchemaDiff.pb").read_bytes()
    assert set(anomalies_pb2.Anomalies.FromString(diff).anomaly_info) == {"colour"}
    # the curated schema is the one written, unchanged
    assert load_schema(tmp_path / "schema_dir") == load_schema(clean["out"] / "schema_dir")
    assert (tmp_path / "statistics_dir" / "Split-train" / "FeatureStats.pb").is_file()


def test_drift_trips_js_threshold_on_shifted_data(clean: dict[str, Any], tmp_path: Path) -> None:
    shifted = builders.write_examples(
        tmp_path / "examples",
        "tabular",
        TABULAR_FEATURES,
        ["low", "high"],
        {"train": tabular_rows(300, seed=3, x_shift=3.0), "eval": tabular_rows(100, seed=4)},
    )
    with pytest.raises(InputError) as caught:
        run(
            shifted,
            tmp_path / "out",
            baseline_statistics_path=str(clean["out"] / "statistics_dir"),
            drift_js_threshold=0.1,
        )
    message = str(caught.value)
    assert "Split-train: 'x': High approximate Jensen-Shannon divergence" in message
    assert "'y'" not in message, "an undrifted feature must not be reported"
    assert_nothing_written(tmp_path / "out")


def test_identical_data_passes_drift_check(clean: dict[str, Any], tmp_path: Path) -> None:
    stats_file = clean["out"] / "statistics_dir" / "Split-train" / "FeatureStats.pb"
    summary = run(
        clean["examples"],
        tmp_path,
        schema_path=str(clean["out"] / "schema_dir" / "schema.pbtxt"),
        baseline_statistics_path=str(stats_file),
        drift_js_threshold=0.1,
        drift_linf_threshold=0.1,
    )
    assert summary["num_anomalies"] == 0
    assert summary["drift"]["x"]["JENSEN_SHANNON_DIVERGENCE"] == pytest.approx(0.0, abs=1e-6)
    assert summary["drift"]["colour"]["L_INFTY"] == pytest.approx(0.0, abs=1e-6)
    schema = load_schema(tmp_path / "schema_dir")
    comparators = {f.name: f.drift_comparator for f in schema.feature}
    assert comparators["x"].jensen_shannon_divergence.threshold == pytest.approx(0.1)
    assert comparators["colour"].infinity_norm.threshold == pytest.approx(0.1)


def test_sensor_schema_has_window_shapes_and_ignores_group_ids(tmp_path: Path) -> None:
    """A passthrough group id gets no vocabulary: eval's unseen machines are not anomalies."""
    window = 16
    rng = np.random.default_rng(0)
    rows = {
        split: [
            {
                "ax": rng.normal(size=window),
                "ay": rng.normal(size=window),
                "machine": f"{split}-m{i % 3}",
                LABEL_FEATURE: i % 2,
            }
            for i in range(n)
        ]
        for split, n in (("train", 60), ("eval", 20))
    }
    features = [{"name": c, "dtype": "float", "shape": [window]} for c in ("ax", "ay")]
    examples = builders.write_examples(
        tmp_path / "examples", "sensor", features, ["ok", "fault"], rows
    )
    summary = run(examples, tmp_path / "out")
    assert summary["num_anomalies"] == 0
    schema = load_schema(tmp_path / "out" / "schema_dir")
    by_name = {f.name: f for f in schema.feature}
    assert [d.size for d in by_name["ax"].shape.dim] == [window]
    assert not by_name["machine"].HasField("domain") and not schema.string_domain


def test_drift_comparators_pair_with_types_and_skip_passthrough_features() -> None:
    from tensorflow_metadata.proto.v0 import schema_pb2

    from edgeship.components.validate.executor import _set_drift_comparators

    schema = schema_pb2.Schema()
    for name, kind in (
        ("x", schema_pb2.FLOAT),
        ("colour", schema_pb2.BYTES),
        ("label", schema_pb2.INT),
        ("machine", schema_pb2.BYTES),
    ):
        schema.feature.add(name=name, type=kind)
    _set_drift_comparators(schema, linf=0.2, js=0.3, model_inputs={"x", "colour", "label"})
    by_name = {f.name: f for f in schema.feature}
    assert by_name["x"].drift_comparator.jensen_shannon_divergence.threshold == pytest.approx(0.3)
    assert by_name["label"].drift_comparator.jensen_shannon_divergence.threshold == (
        pytest.approx(0.3)
    )
    assert by_name["colour"].drift_comparator.infinity_norm.threshold == pytest.approx(0.2)
    assert not by_name["machine"].HasField("drift_comparator")


def test_image_feature_is_one_fixed_shape_float(tmp_path: Path) -> None:
    examples = builders.image_examples(tmp_path / "examples", n=60, size=8)
    summary = run(examples, tmp_path / "out")
    assert summary["num_anomalies"] == 0
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = load_schema(tmp_path / "out" / "schema_dir")
    (image,) = [f for f in schema.feature if f.name == "image"]
    assert image.type == schema_pb2.FLOAT
    assert [d.size for d in image.shape.dim] == [64]
