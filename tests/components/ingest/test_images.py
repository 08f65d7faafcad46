"""Ingest of image folders: decode, grey/RGB, resize, split by path, undecodable files."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from edgeship.components.artifacts import read_examples_meta
from edgeship.components.ingest._images import MAX_IMAGE_SIZE, inspect, list_images
from edgeship.components.ingest._rows import in_eval
from edgeship.components.ingest.executor import run_ingest
from edgeship.errors import InputError
from tests.helpers.records import read_split

PER_CLASS = 6


def _image_folder(root: Path) -> Path:
    """Solid-colour images whose colour encodes (class, index), in PNG and JPEG, odd sizes."""
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            colour = (40 * i, 100 * c, 200)
            image = Image.new("RGB", (7 + i, 5), colour)
            image.save(root / name / f"{i}.png")  # lossless, so the colour survives exactly
    (root / "dog" / "notes.txt").write_text("not an image, skipped")
    Image.new("L", (3, 3), 128).save(root / "cat" / "extra.JPG")
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _image_folder(tmp_path_factory.mktemp("img") / "pets")


@pytest.fixture(scope="module")
def rgb(images: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("rgb") / "examples"
    summary = run_ingest("image", str(images), str(out), image_size=4, channels=3, eval_ratio=0.3)
    return out, summary


def test_meta_and_counts(rgb: tuple[Path, dict]) -> None:
    out, summary = rgb
    meta = read_examples_meta(out)
    assert meta["kind"] == "image" and meta["classes"] == ["cat", "dog"]
    assert meta["features"] == [{"name": "image", "dtype": "float", "shape": [4, 4, 3]}]
    assert meta["class_counts"]["train"]["cat"] + meta["class_counts"]["eval"]["cat"] == 7
    assert sum(summary["rows"].values()) == 2 * PER_CLASS + 1  # notes.txt is not an image


def test_pixels_are_resized_hwc_values_and_split_by_path(rgb: tuple[Path, dict]) -> None:
    out, _ = rgb
    seen = set()
    for split in ("train", "eval"):
        for example in read_split(out, split):
            pixels = example["image"]
            assert len(pixels) == 4 * 4 * 3
            colour = tuple(pixels[:3])
            assert pixels == list(colour) * 16  # a solid image stays solid after resizing
            label = example["label"][0]
            if colour == (128.0, 128.0, 128.0):  # the grey JPEG, converted to RGB
                path = "cat/extra.JPG"
            else:
                assert colour[1] == 100 * label and colour[2] == 200
                path = f"{('cat', 'dog')[label]}/{int(colour[0]) // 40}.png"
            assert in_eval(path, 0.3) == (split == "eval"), path
            seen.add(path)
    assert len(seen) == 2 * PER_CLASS + 1


def test_grey_conversion(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "grey"
    run_ingest("image", str(images), str(out), image_size=2, channels=1, eval_ratio=0.3)
    assert read_examples_meta(out)["features"][0]["shape"] == [2, 2, 1]
    examples = read_split(out, "train") + read_split(out, "eval")
    assert all(len(e["image"]) == 4 and len(set(e["image"])) == 1 for e in examples)
    assert {e["image"][0] for e in examples} >= {128.0}


def test_undecodable_image_fails_or_is_dropped_under_budget(images: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    _image_folder(broken)
    (broken / "dog" / "zz.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    failed = tmp_path / "failed"
    with pytest.raises(InputError, match=r"dog/zz\.png: cannot decode image"):
        run_ingest("image", str(broken), str(failed), image_size=4)
    assert not failed.exists()
    out = tmp_path / "kept"
    summary = run_ingest("image", str(broken), str(out), image_size=4, max_bad_rows=1)
    assert summary["bad_rows"] == 1 and sum(summary["rows"].values()) == 2 * PER_CLASS + 1


def test_empty_class_folder_and_single_class_are_refused(tmp_path: Path) -> None:
    root = _image_folder(tmp_path / "pets")
    (root / "bird").mkdir()
    with pytest.raises(InputError, match=r"pets/bird: class 'bird' has no \.png/\.jpg/\.jpeg"):
        run_ingest("image", str(root), str(tmp_path / "a"))
    single = tmp_path / "single"
    (single / "only").mkdir(parents=True)
    Image.new("L", (2, 2)).save(single / "only" / "1.png")
    with pytest.raises(InputError, match="found 1 class folder .'only'.; need at least 2"):
        run_ingest("image", str(single), str(tmp_path / "b"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_hidden_files_and_folders_inside_a_class_are_skipped(tmp_path: Path) -> None:
    root = _image_folder(tmp_path / "pets")
    for hidden in ("cat/.ipynb_checkpoints/0-checkpoint.png", "dog/sub/.cache/1.png"):
        (root / hidden).parent.mkdir(parents=True)
        Image.new("L", (2, 2)).save(root / hidden)
    (root / "dog" / "._0.png").write_bytes(b"\x00\x05\x16\x07 macOS AppleDouble metadata")
    Image.new("L", (2, 2)).save(root / "dog" / "sub" / "7.png")  # a visible subfolder counts
    classes, images = list_images(root)
    assert classes == ["cat", "dog"]
    assert len(images) == 2 * PER_CLASS + 2
    assert ("dog/sub/7.png", "dog") in images
    assert not [rel for rel, _ in images if "/." in rel]
    (root / "bird" / ".ipynb_checkpoints").mkdir(parents=True)
    Image.new("L", (2, 2)).save(root / "bird" / ".ipynb_checkpoints" / "x.png")
    with pytest.raises(InputError, match=r"pets/bird: class 'bird' has no \.png"):
        list_images(root)


# --- size and colour chosen from the images ---------------------------------------------------


def _saved(root: Path, name: str, image: Image.Image) -> str:
    root.mkdir(parents=True, exist_ok=True)
    image.save(root / name)
    return name


def test_the_commonest_longer_side_is_the_size_and_large_photos_are_capped(tmp_path: Path) -> None:
    names = [_saved(tmp_path, f"{i}.png", Image.new("RGB", (24, 10 + i), (90, 90, 90)))
             for i in range(3)] + [_saved(tmp_path, "big.png", Image.new("L", (40, 12)))]
    seen = inspect(tmp_path, names)
    assert seen.size == 24 and "3 of 4" in seen.size_reason
    capped = inspect(tmp_path, [_saved(tmp_path, "huge.png", Image.new("L", (300, 200)))])
    assert capped.size == MAX_IMAGE_SIZE and "capped" in capped.size_reason


def test_colour_only_when_an_image_has_it(tmp_path: Path) -> None:
    """A photo saved as RGB but grey in effect stays one channel: three would triple the model's
    input for nothing. A single coloured image makes the folder colour."""
    grey = [_saved(tmp_path, "l.png", Image.new("L", (8, 8), 30)),
            _saved(tmp_path, "rgb-grey.png", Image.new("RGB", (8, 8), (77, 77, 80)))]
    assert inspect(tmp_path, grey).channels == 1
    red = _saved(tmp_path, "red.png", Image.new("RGB", (8, 8), (200, 20, 20)))
    seen = inspect(tmp_path, [*grey, red])
    assert seen.channels == 3 and "1 of 3" in seen.channels_reason


def test_undecodable_files_are_left_to_ingest_unless_none_opens(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png")
    good = _saved(tmp_path, "good.png", Image.new("L", (6, 6)))
    assert inspect(tmp_path, ["broken.png", good]).size == 6
    with pytest.raises(InputError, match="none of the images could be opened"):
        inspect(tmp_path, ["broken.png"])
