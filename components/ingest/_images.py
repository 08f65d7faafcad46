"""Image folders (``<class>/*.png|*.jpg|*.jpeg``) to items: resized pixels as floats 0..255."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edgeship.components.ingest._rows import BadRow, Item
from edgeship.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_FEATURE = "image"
#: Images are never made larger than this by default: an edge model's cost grows with pixels.
MAX_IMAGE_SIZE = 64
#: How many images are opened to choose the size and colour (spread evenly over the folder).
INSPECTED_IMAGES = 200
#: A colour image whose channels never differ by more than this (0..255) is grey in effect.
GREY_TOLERANCE = 8


@dataclass(frozen=True)
class Seen:
    """The size and colour ingest gives images when not told, and why."""

    size: int
    size_reason: str
    channels: int
    channels_reason: str


def inspect(root: Path, images: list[str]) -> Seen:
    """Choose the square size and the channels from the images themselves: the most common
    longer side, capped at ``MAX_IMAGE_SIZE``; colour (3) when any image has it, else grey (1).
    Up to ``INSPECTED_IMAGES`` images, spread evenly over the sorted list, are opened."""
    import numpy as np
    from PIL import Image

    step = max(1, len(images) // INSPECTED_IMAGES)
    sides: Counter[int] = Counter()
    colour = opened = 0
    for relative in images[::step][:INSPECTED_IMAGES]:
        try:
            with Image.open(root / relative) as image:
                sides[max(image.size)] += 1
                opened += 1
                if image.mode in ("1", "L", "LA", "I", "I;16", "F"):
                    continue
                rgb = np.asarray(image.convert("RGB").resize((16, 16)), dtype=np.int16)
        except Exception:  # noqa: BLE001 - undecodable files are ingest's bad rows, later
            continue
        if int(np.abs(np.diff(rgb, axis=2)).max()) > GREY_TOLERANCE:
            colour += 1
    if not opened:
        raise InputError(f"{root}: none of the images could be opened to choose their size")
    common, count = sides.most_common(1)[0]
    size = min(common, MAX_IMAGE_SIZE)
    size_reason = (f"{count} of {opened} inspected images are {common} pixels on their longer "
                   f"side" + (f", capped at {MAX_IMAGE_SIZE}" if size < common else ""))
    channels = 3 if colour else 1
    channels_reason = (f"{colour} of {opened} inspected images have colour" if colour else
                       f"none of {opened} inspected images has colour")
    return Seen(size, size_reason, channels, channels_reason)


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
