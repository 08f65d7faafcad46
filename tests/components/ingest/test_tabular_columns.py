"""Columns of a raw CSV that cannot be features: identifiers, free text, dates, exclude_columns."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from edgeship.components.artifacts import read_examples_meta
from edgeship.components.ingest import _tabular
from edgeship.components.ingest._csv import Record
from edgeship.components.ingest.executor import run_ingest
from edgeship.errors import InputError
from tests.helpers.records import read_split

WORDS = "the pump ran hot after a long shift and then stopped near valve seven".split()


def _raw_rows(n: int = 120, seed: int = 0) -> list[str]:
    """A table as published: a row number, a customer code, a comment, a date, a city of many
    values, a small categorical, a number, the label."""
    rng = random.Random(seed)
    rows = ["row,customer,comment,visited,city,colour,amount,outcome"]
    for i in range(n):
        comment = " ".join(rng.choice(WORDS) for _ in range(8))
        day = f"2024-{1 + i % 12:02d}-{1 + i % 27:02d} {i % 24:02d}:30:00"
        city = f"town{rng.randrange(90)}"
        colour = rng.choice(["red", "blue"])
        amount = rng.random() * 10
        outcome = "yes" if (colour == "red") ^ (amount > 5) else "no"
        rows.append(f"{i + 1},C{1000 + 7 * i},\"{comment}\",{day},{city},{colour},"
                    f"{amount:.3f},{outcome}")
    return rows


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("raw")
    src = root / "raw.csv"
    src.write_text("\n".join(_raw_rows()) + "\n")
    out = root / "examples"
    summary = run_ingest("tabular", str(src), str(out), label="outcome")
    return out, summary


def test_identifiers_and_free_text_are_left_out_and_dates_become_parts(
    raw: tuple[Path, dict],
) -> None:
    out, summary = raw
    meta = read_examples_meta(out)
    names = [f["name"] for f in meta["features"]]
    assert names == ["visited_year", "visited_month", "visited_day", "visited_weekday",
                     "visited_hour", "city", "colour", "amount"]
    assert set(meta["excluded_columns"]) == {"row", "customer", "comment"}
    assert "identifier" in meta["excluded_columns"]["row"]
    assert "identifier" in meta["excluded_columns"]["customer"]
    assert "free text" in meta["excluded_columns"]["comment"]
    lines = summary["columns"]
    assert len(lines) == 4  # one line per column left out or parsed
    assert any(line.startswith("visited: a date") for line in lines)


def test_date_parts_are_the_dates_numbers(raw: tuple[Path, dict]) -> None:
    out, _ = raw
    for example in read_split(out, "train")[:5]:
        month, day = example["visited_month"][0], example["visited_day"][0]
        assert 1 <= month <= 12 and 1 <= day <= 27
        assert example["visited_year"] == [2024.0]
        assert example["visited_hour"][0] % 1 == 0.5  # hh:30


def test_exclude_columns_leaves_out_named_columns_and_refuses_unknown_ones(
    tmp_path: Path,
) -> None:
    src = tmp_path / "raw.csv"
    src.write_text("\n".join(_raw_rows()) + "\n")
    out = tmp_path / "examples"
    summary = run_ingest("tabular", str(src), str(out), label="outcome",
                         exclude_columns="city, colour")
    meta = read_examples_meta(out)
    assert {"city", "colour"} <= set(meta["excluded_columns"])
    assert "city" not in [f["name"] for f in meta["features"]]
    assert "city: left out, named in exclude_columns" in summary["columns"]
    with pytest.raises(InputError, match="exclude_columns names column 'town'"):
        run_ingest("tabular", str(src), str(tmp_path / "x"), label="outcome",
                   exclude_columns="town")
    with pytest.raises(InputError, match="exclude_columns names the label"):
        run_ingest("tabular", str(src), str(tmp_path / "y"), label="outcome",
                   exclude_columns="outcome")


def _profile(columns: dict[str, list[str]], types: dict[str, str],
             overrides: dict[str, str] | None = None) -> _tabular.ColumnPlan:
    header = list(columns)
    sample = [list(row) for row in zip(*columns.values(), strict=True)]
    return _tabular.profile_columns(header, types, sample, "label", overrides or {}, [],
                                    "t.csv")


def test_stock_sentences_repeated_are_free_text_and_long_category_names_are_not() -> None:
    n = 60
    stock = ["Nest never observed with full clutch.", "Not enough blood for isotopes.",
             "Sexing primers did not amplify.", "Adult not sampled.",
             "No blood sample obtained.", "No delta15N data received from lab."]
    plan = _profile(
        {"comments": [stock[i % 6] for i in range(n)],     # 6 distinct in 60: 10 %
         "category": [("Home and Kitchen Appliances", "Garden Tools and Supplies")[i % 2]
                      for i in range(n)],                  # 2 distinct: a category
         "label": ["a"] * n},
        {"comments": "string", "category": "string", "label": "string"})
    assert list(plan.excluded) == ["comments"] and "free text" in plan.excluded["comments"]


def test_a_small_or_repetitive_column_is_kept() -> None:
    n = 50
    plan = _profile(
        {"code": [f"c{i % 5}" for i in range(n)],           # repeats: a category
         "measure": [str(i * 1.5) for i in range(n)],        # distinct but not whole numbers
         "count": [str((i * 37) % 101) for i in range(n)],   # distinct whole, shuffled, no id name
         "label": ["a"] * n},
        {"code": "string", "measure": "float", "count": "float", "label": "string"})
    assert plan.excluded == {} and plan.dates == {}
    few = _profile({"name": [f"n{i}" for i in range(10)], "label": ["a"] * 10},
                   {"name": "string", "label": "string"})
    assert few.excluded == {}  # too few values to judge


def test_id_named_whole_numbers_are_identifiers_unless_typed_by_the_user() -> None:
    n = 50
    ids = [str((i * 37) % 101) for i in range(n)]
    types = {"user_id": "float", "label": "string"}
    assert "user_id" in _profile({"user_id": ids, "label": ["a"] * n}, types).excluded
    kept = _profile({"user_id": ids, "label": ["a"] * n}, types, {"user_id": "float"})
    assert kept.excluded == {}


@pytest.mark.parametrize(("text", "fmt_parts"), [
    ("2024-03-05", (2024, 3, 5, 1)),
    ("03/05/2024", (2024, 3, 5, 1)),
    ("05.03.2024", (2024, 3, 5, 1)),
])
def test_date_formats(text: str, fmt_parts: tuple[int, ...]) -> None:
    n = 30
    plan = _profile({"when": [text] * n, "label": ["a"] * n},
                    {"when": "string", "label": "string"})
    column = plan.dates["when"]
    assert column.parts == _tabular.DATE_PARTS
    features = _tabular.date_parts(column, text)
    assert [features[f"when_{p}"] for p in _tabular.DATE_PARTS] == [[float(v)] for v in fmt_parts]
    assert _tabular.date_parts(column, "not a date") == dict.fromkeys(column.feature_names())


def test_a_date_part_that_clashes_with_a_column_is_an_error() -> None:
    n = 30
    with pytest.raises(InputError, match="'when_year', which is already a column"):
        _profile({"when": ["2024-01-01"] * n, "when_year": ["1"] * n, "label": ["a"] * n},
                 {"when": "string", "when_year": "float", "label": "string"})


def test_parse_row_skips_excluded_columns_without_checking_them() -> None:
    plan = _tabular.ColumnPlan(excluded={"note": "named in exclude_columns"})
    item = _tabular.parse_row(Record("t.csv", 2, ["1.5", "anything", "yes"]),
                              ["x", "note", "label"], {"x": "float", "note": "float",
                                                       "label": "string"}, "label", plan)
    assert not isinstance(item, _tabular.BadRow)
    assert item[2] == {"x": [1.5]}


def test_r_and_database_missing_spellings_are_missing_not_bad(tmp_path: Path) -> None:
    lines = ["x,colour,label"] + [
        f"{'NA' if i % 5 == 0 else i * 0.5},{'NULL' if i % 7 == 0 else 'red'},{'ab'[i % 2]}"
        for i in range(40)]
    src = tmp_path / "r.csv"
    src.write_text("\n".join(lines) + "\n")
    summary = run_ingest("tabular", str(src), str(tmp_path / "out"))
    assert summary["bad_rows"] == 0
    meta = read_examples_meta(tmp_path / "out")
    assert [f["dtype"] for f in meta["features"]] == ["float", "string"]
    examples = read_split(tmp_path / "out", "train") + read_split(tmp_path / "out", "eval")
    assert sum("x" not in e for e in examples) == 8
    assert sum("colour" not in e for e in examples) == 6
    assert {e["colour"][0] for e in examples if "colour" in e} == {"red"}
