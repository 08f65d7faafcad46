"""The inferred schema: small string domains are checked, large or text-like ones are not."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from edgeship.components.validate.executor import _small_domain, infer_schema, run_validate
from tests.components.ingest.test_tabular_columns import _raw_rows

pd = pytest.importorskip("pandas")
tfdv = pytest.importorskip("tensorflow_data_validation")

META = {"label_feature": "label", "classes": ["a", "b"],
        "features": [{"name": "colour", "dtype": "string", "shape": [1]},
                     {"name": "city", "dtype": "string", "shape": [1]},
                     {"name": "x", "dtype": "float", "shape": [1]}]}


def _stats(frame):
    return tfdv.generate_statistics_from_dataframe(frame)


def _train():
    rng = random.Random(1)
    n = 200
    return pd.DataFrame({
        "colour": [rng.choice(["red", "blue", "green"]) for _ in range(n)],
        "city": [f"town{rng.randrange(80)}" for _ in range(n)],  # under 3 rows per value
        "x": [rng.random() for _ in range(n)],
        "label": [rng.randrange(2) for _ in range(n)],
    })


def _anomalous_features(schema, frame) -> set[str]:
    anomalies = tfdv.validate_statistics(_stats(frame), schema)
    return set(anomalies.anomaly_info)


def test_new_values_of_a_large_domain_pass_and_of_a_small_one_fail() -> None:
    schema = infer_schema(_stats(_train()), META)
    domains = {f.name for f in schema.feature if f.HasField("domain")}
    assert "colour" in domains and "city" not in domains
    unseen_city = _train().assign(city=[f"village{i}" for i in range(200)])
    assert _anomalous_features(schema, unseen_city) == set()
    unseen_colour = _train().assign(colour=["purple"] * 200)
    assert _anomalous_features(schema, unseen_colour) == {"colour"}


def test_a_missing_column_and_a_type_change_are_still_anomalies() -> None:
    schema = infer_schema(_stats(_train()), META)
    assert _anomalous_features(schema, _train().drop(columns=["x"])) == {"x"}
    assert "city" in _anomalous_features(schema, _train().assign(city=[1.5] * 200))


@pytest.mark.parametrize(("unique", "values", "small"), [
    (3, 200, True), (20, 40, True), (20, 39, False), (15, 15, False),
    (21, 210, True), (21, 209, False), (100, 1000, True), (101, 100_000, False)])
def test_small_domain_rule(unique: int, values: int, small: bool) -> None:
    assert _small_domain(unique, values) is small


def test_a_raw_csv_with_text_ids_and_a_many_valued_column_validates(tmp_path: Path) -> None:
    from edgeship.components.ingest.executor import run_ingest

    src = tmp_path / "raw.csv"
    src.write_text("\n".join(_raw_rows(300, seed=3)) + "\n")
    run_ingest("tabular", str(src), str(tmp_path / "examples"), label="outcome")
    summary = run_validate(str(tmp_path / "examples"), str(tmp_path / "stats"),
                           str(tmp_path / "schema"), str(tmp_path / "anomalies"))
    assert summary["num_anomalies"] == 0
