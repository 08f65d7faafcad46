"""Image folders (``<class>/*.png|*.jpg|*.jpeg``) to items: resized pixels as floats 0..255."""

from __future__ import annotations

from pathlib import Path

from edgeship.components.ingest._rows import BadRow, Item
from edgeship.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_FEATURE = "image"


def list_images(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Class names (sorted) and (relative path, class) for every image, checked up front.

    Hidden files and folders are skipped, as are files other than PNG/JPEG. A class folder
    without images is an error: the class could never be learnt.
    """
    if not root.exists():
        raise InputError(f"{root}: no such folder")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; images go in <folder>/<class>/*.png|*.jpg")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError(f"{root}: no class folders; images go in <folder>/<class>/*.png|*.jpg")
    images: list[tuple[str, str]] = []
    for name in classes:
        found = _images_in(root, name)
        if not found:
            raise InputError(f"{root / name}: class '{name}' has no .png/.jpg/.jpeg images")
        images.extend((rel, name) for rel in found)
    return classes, images


def _images_in(root: Path, name: str) -> list[str]:
    """Sorted paths, relative to ``root``, of the images anywhere under class folder ``name``.

    Hidden files and folders are skipped: ``.ipynb_checkpoints`` copies and macOS ``._x.png``
    metadata files are not images of the class.
    """
    found = []
    for path in (root / name).rglob("*"):
        relative = path.relative_to(root)
        hidden = any(part.startswith(".") for part in relative.parts)
        if not hidden and path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            found.append(relative.as_posix())
    return sorted(found)


def load_image(
    root: str, relative: str, class_name: str, size: int, channels: int
) -> Item | BadRow:
    """Decode, convert to grey or RGB, resize to ``size`` x ``size`` (bilinear), flatten HWC."""
    import numpy as np
    from PIL import Image

    path = Path(root) / relative
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not later
            converted = image.convert("L" if channels == 1 else "RGB")
            resized = converted.resize((size, size), Image.Resampling.BILINEAR)
    except Exception as err:  # noqa: BLE001 - Pillow raises many types for undecodable files
        return BadRow(str(path), 0, f"cannot decode image ({type(err).__name__}: {err})")
    pixels = np.asarray(resized, dtype=np.float32).reshape(-1)
    return relative, class_name, {IMAGE_FEATURE: pixels.tolist()}
