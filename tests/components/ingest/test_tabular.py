"""Ingest of tabular CSV: typed features, missing cells, content-hash split, bad-row budget."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from edgeship.components.artifacts import read_examples_meta
from edgeship.components.ingest import _csv, _tabular
from edgeship.components.ingest._rows import BadRow
from edgeship.components.ingest.executor import run_ingest
from edgeship.errors import InputError
from tests.helpers.records import read_split

HEADER = "x,colour,zip,species"


def _rows(n: int = 40) -> list[str]:
    rows = []
    for i in range(n):
        x = "" if i % 10 == 3 else f"{i * 0.5:g}"  # every tenth x is missing
        colour = "" if i % 10 == 7 else ("red" if i % 3 else "blue")
        rows.append(f"{x},{colour},{1000 + i},{'setosa' if i % 2 else 'virginica'}")
    return rows


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def _split_rows(out: Path, split: str) -> set[tuple]:
    classes = read_examples_meta(out)["classes"]
    rows = set()
    for ex in read_split(out, split):
        x = f"{ex['x'][0]:g}" if "x" in ex else ""  # an empty cell is a missing feature
        colour = ex["colour"][0] if "colour" in ex else ""
        rows.add((x, colour, ex["zip"][0], classes[ex["label"][0]]))
    return rows


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[str]]:
    root = tmp_path_factory.mktemp("tabular")
    rows = _rows()
    src = _write(root / "plants.csv", rows)
    out = root / "examples"
    summary = run_ingest(
        "tabular", str(src), str(out), label="species", column_types={"zip": "string"}
    )
    return out, summary, rows


def test_meta_types_classes_and_counts(ingested: tuple[Path, dict, list[str]]) -> None:
    out, summary, rows = ingested
    meta = read_examples_meta(out)
    assert meta["kind"] == "tabular"
    assert meta["label_feature"] == "label"
    assert meta["classes"] == ["setosa", "virginica"]
    assert meta["features"] == [
        {"name": "x", "dtype": "float", "shape": [1]},
        {"name": "colour", "dtype": "string", "shape": [1]},
        {"name": "zip", "dtype": "string", "shape": [1]},  # numeric-looking, overridden
    ]
    assert meta["counts"]["train"] + meta["counts"]["eval"] == len(rows)
    assert meta["counts"]["eval"] > 0 and meta["bad_rows"] == 0
    assert summary["rows"] == meta["counts"] and summary["examples"] == str(out)
    assert sorted((out / "Split-train").glob("*.gz")) and sorted((out / "Split-eval").glob("*.gz"))


def test_values_round_trip_with_missing_cells(ingested: tuple[Path, dict, list[str]]) -> None:
    out, _, rows = ingested
    got = _split_rows(out, "train") | _split_rows(out, "eval")
    expected = {tuple(r.split(",")) for r in rows}
    assert got == expected  # empty cells came back as missing (NaN / None), labels by index


def test_split_follows_row_content_not_file_order(
    ingested: tuple[Path, dict, list[str]], tmp_path: Path
) -> None:
    out, _, rows = ingested
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    again = tmp_path / "again"
    run_ingest(
        "tabular",
        str(_write(tmp_path / "shuffled.csv", shuffled)),
        str(again),
        label="species",
        column_types={"zip": "string"},
    )
    assert _split_rows(again, "eval") == _split_rows(out, "eval")
    assert _split_rows(again, "train") == _split_rows(out, "train")


def test_bad_rows_dropped_within_budget_and_fail_beyond(tmp_path: Path) -> None:
    rows = _rows()
    rows[4] = "2.5,red,1004"  # line 6: a field short
    rows[9] = "abc,red,1009,setosa"  # line 11: not a number in numeric column x
    src = _write(tmp_path / "bad.csv", rows)
    out = tmp_path / "ok"
    types = {"x": "float"}  # "abc" is within the sample, so inference alone would say string
    summary = run_ingest(
        "tabular", str(src), str(out), label="species", max_bad_rows=2, column_types=types
    )
    assert summary["bad_rows"] == 2
    assert sum(summary["rows"].values()) == len(rows) - 2
    assert read_examples_meta(out)["bad_rows"] == 2

    failed = tmp_path / "failed"
    with pytest.raises(InputError, match=r"bad\.csv line 6: expected 4 fields, found 3") as err:
        run_ingest(
            "tabular", str(src), str(failed), label="species", max_bad_rows=1, column_types=types
        )
    assert "max_bad_rows=1" in str(err.value) and "\n" not in str(err.value)
    assert not failed.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".failed")]


def test_types_come_from_the_first_rows_and_later_rows_that_contradict_are_bad(
    tmp_path: Path,
) -> None:
    numbers = [f"{i},a" for i in range(_csv.SAMPLE_ROWS)]
    src = _write_plain(tmp_path / "late.csv", "v,label", [*numbers, "oops,b"])
    header = _csv.read_headers([src])
    types = _csv.infer_types([src], header)
    assert types == {"v": "float", "label": "string"}
    last = list(_csv.iter_records(src))[-1]
    assert last.line == _csv.SAMPLE_ROWS + 2
    bad = _tabular.parse_row(last, header, types, "label")
    assert isinstance(bad, BadRow)
    assert bad.where() == f"{src} line {_csv.SAMPLE_ROWS + 2}"
    assert "column 'v': 'oops' is not a number" in bad.reason


def _write_plain(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_a_file_sorted_by_class_is_written_mixed(tmp_path: Path) -> None:
    """Training shuffles through a bounded buffer; a split written in the input's order would
    feed it one class at a time from a file sorted by class (or by time)."""
    lines = ["x,y,label"] + [f"{i * 0.001:.3f},{i % 7},{c}" for c in "abcd" for i in range(500)]
    source = tmp_path / "sorted.csv"
    source.write_text("\n".join(lines) + "\n")
    run_ingest("tabular", str(source), str(tmp_path / "out"))
    first = [row["label"][0] for row in read_split(tmp_path / "out", "train")[:100]]
    assert len(set(first)) == 4, first  # every class within the first hundred records
    again = tmp_path / "again"
    run_ingest("tabular", str(source), str(again))
    assert read_split(again, "train") == read_split(tmp_path / "out", "train")  # deterministic
