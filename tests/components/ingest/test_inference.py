"""Column types: a stray non-number in a numeric column is a bad row, not a string column."""

from pathlib import Path

import pytest

from edgeship.components.ingest.executor import run_ingest
from edgeship.errors import InputError


def _csv(path: Path, bad_line: int | None) -> Path:
    lines = ["speed,mode,label"]
    for i in range(60):
        speed = "n/a" if i + 2 == bad_line else f"{i * 0.5:.1f}"
        lines.append(f"{speed},{'eco' if i % 2 else 'sport'},{'slow' if i < 30 else 'fast'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_non_number_in_a_numeric_column_names_its_line(tmp_path: Path) -> None:
    data = _csv(tmp_path / "cars.csv", bad_line=17)
    with pytest.raises(InputError, match=r"cars\.csv.*line 17.*speed"):
        run_ingest("tabular", str(data), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_the_same_row_is_dropped_and_counted_under_max_bad_rows(tmp_path: Path) -> None:
    data = _csv(tmp_path / "cars.csv", bad_line=17)
    summary = run_ingest("tabular", str(data), str(tmp_path / "out"), max_bad_rows=1)
    assert summary["bad_rows"] == 1
    assert sum(summary["rows"].values()) == 59
