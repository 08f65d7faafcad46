"""atomic_output_dir: an output replaces only an empty folder or an earlier edgeship output."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.components.artifacts import (
    EXAMPLES_META,
    atomic_output_dir,
    read_examples_meta,
    write_json,
)
from edgeship.components.ingest.executor import run_ingest
from edgeship.errors import InputError

REFUSED = r"exists and is not an earlier edgeship output; choose an empty or new folder"


def _write(final: Path, name: str) -> None:
    with atomic_output_dir(final) as out:
        (out / name).write_text(name)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_a_rerun_replaces_the_earlier_output(tmp_path: Path) -> None:
    final = tmp_path / "out"
    _write(final, "first.txt")
    _write(final, "second.txt")
    assert _names(final) == ["second.txt"]
    assert _names(tmp_path) == ["out"]  # no scratch folder left


def test_an_empty_folder_is_replaced(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.mkdir()  # as KFP pre-creates output folders
    _write(final, "model.txt")
    assert _names(final) == ["model.txt"]


def test_a_folder_of_user_files_is_refused_and_kept(tmp_path: Path) -> None:
    final = tmp_path / "proj"
    final.mkdir()
    (final / "wine.csv").write_text("x,label\n")
    with pytest.raises(InputError, match=rf"^{final}: {REFUSED}$"):
        _write(final, "model.txt")
    assert _names(final) == ["wine.csv"]
    assert (final / "wine.csv").read_text() == "x,label\n"
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]  # no scratch folder left


def test_a_file_at_the_output_path_is_refused_and_kept(tmp_path: Path) -> None:
    final = tmp_path / "wine.csv"
    final.write_text("x,label\n")
    with pytest.raises(InputError, match=REFUSED):
        _write(final, "model.txt")
    assert final.read_text() == "x,label\n"


def test_user_files_that_appear_during_the_run_are_kept(tmp_path: Path) -> None:
    final = tmp_path / "out"
    with pytest.raises(InputError, match=REFUSED), atomic_output_dir(final) as out:
        (out / "model.txt").write_text("model")
        final.mkdir()
        (final / "notes.txt").write_text("mine")
    assert _names(final) == ["notes.txt"]
    assert _names(tmp_path) == ["out"]


def test_ingest_into_the_folder_holding_its_csv_keeps_the_csv(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    csv = proj / "wine.csv"
    csv.write_text("x,label\n" + "".join(f"{i % 5},{'ab'[i % 2]}\n" for i in range(20)))
    (proj / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=REFUSED) as err:
        run_ingest("tabular", str(csv), str(proj))
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in proj.iterdir()) == ["notes.txt", "wine.csv"]


@pytest.mark.parametrize(
    "meta,message",
    [
        ({"kind": "tabular", "label_feature": "label", "features": []}, "'classes' must be"),
        ({"kind": "audio"}, "'kind' must be one of"),
        (
            {"kind": "image", "label_feature": "label", "classes": ["a", "b"],
             "features": [{"name": "image", "dtype": "float", "shape": [8, 8]}]},
            "exactly one feature of shape",
        ),
    ],
)
def test_malformed_examples_meta_is_one_line_naming_the_file(tmp_path: Path, meta, message):
    """Every step reads examples_meta.json through this reader, so each gets the same check."""
    write_json(tmp_path / EXAMPLES_META, meta)
    with pytest.raises(InputError, match=message) as err:
        read_examples_meta(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / EXAMPLES_META}: ")
    assert "\n" not in str(err.value)
