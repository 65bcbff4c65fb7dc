"""Label files from other tools: CVAT/Pascal-VOC label maps, name lists, and label images of any encoding.

Label image encodings (``LabelFormat``):

* ``binary`` - a grey mask, 0 = background and 255 (or 1) = foreground; read as class ids 0 / 1 (> 127, or
  > 0 for 0/1 masks);
* ``ids`` - a grey-level (8 or 16 bit) or palette PNG whose values are ids (DAVIS/VOS object ids, or class
  ids); the palette colours are ignored;
* ``color`` - an RGB PNG coloured by class, decoded through a label map (``labelmap.txt``); a colour that is
  not in the map is an error that reports the colour and its pixel count.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from semflow_ns.data.format import SceneFormatError, SemanticClass

LabelFormat = Literal["binary", "ids", "color"]


def _lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of the non-empty lines that are not ``#`` comments."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SceneFormatError(f"{path}: cannot read ({err})") from err
    return [
        (n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")
    ]


def read_labelmap(path: Path) -> list[SemanticClass]:
    """Reads a CVAT "Segmentation mask 1.1" / Pascal-VOC ``labelmap.txt``: ``name:R,G,B:parts:actions``.

    The header line (``# label:color_rgb:parts:actions``) and other ``#`` lines are skipped; the k-th class
    line is class id k (normally ``background`` first). Classes are returned static; see
    :func:`mark_dynamic`.

    Raises:
        SceneFormatError: naming the file and line of a line that does not parse, or a repeated name/colour.
    """
    classes: list[SemanticClass] = []
    for number, line in _lines(path):
        name, _, rest = line.partition(":")
        parts = rest.split(":")[0].split(",")
        values = [p.strip() for p in parts]
        if not name.strip() or len(values) != 3 or not all(v.isdigit() and int(v) <= 255 for v in values):
            raise SceneFormatError(
                f"{path}:{number}: cannot parse {line!r}: expected 'name:R,G,B::' with R, G, B integers in 0-255"
            )
        color = (int(values[0]), int(values[1]), int(values[2]))
        for other in classes:
            if other.name == name.strip() or other.color == color:
                raise SceneFormatError(
                    f"{path}:{number}: class {name.strip()!r} {color} repeats the name or colour of {other.name!r}"
                )
        classes.append(SemanticClass(name=name.strip(), color=color))
    if not classes:
        raise SceneFormatError(f"{path}: no class lines (expected 'name:R,G,B::' lines after the header)")
    return classes


def read_name_list(path: Path) -> list[tuple[int, str]]:
    """(line number, name) of every name in a one-name-per-line file (``foreground_object.txt``, class names)."""
    return _lines(path)


def mark_dynamic(
    classes: Sequence[SemanticClass], names: Sequence[tuple[int, str]], source: Path
) -> list[SemanticClass]:
    """The classes with ``dynamic=True`` for every listed name (``foreground_object.txt`` lines).

    Raises:
        SceneFormatError: naming ``source`` and the line of a name that is not a class.
    """
    known = {c.name for c in classes}
    for number, name in names:
        if name not in known:
            raise SceneFormatError(f"{source}:{number}: {name!r} is not a class of the label map {sorted(known)}")
    moving = {name for _, name in names}
    return [SemanticClass(c.name, c.color, c.name in moving) for c in classes]


def open_label(path: Path) -> Image.Image:
    """Opens a label image fully (so that the file is closed), with errors that name the file."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (OSError, UnidentifiedImageError) as err:
        raise SceneFormatError(f"{path}: cannot read the label image ({err})") from err


def colors_to_ids(rgb: np.ndarray, classes: Sequence[SemanticClass], path: Path, labelmap: Path) -> np.ndarray:
    """Class ids int64 [H, W] of a colour-coded label image uint8 [H, W, 3].

    Raises:
        SceneFormatError: naming ``path`` and listing the colours missing from ``labelmap`` with pixel counts.
    """
    keys = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    unique, inverse, counts = np.unique(keys.ravel(), return_inverse=True, return_counts=True)
    lookup = {(c.color[0] << 16) | (c.color[1] << 8) | c.color[2]: i for i, c in enumerate(classes)}
    missing = [(int(k), int(n)) for k, n in zip(unique, counts, strict=True) if int(k) not in lookup]
    if missing:
        missing.sort(key=lambda item: -item[1])
        shown = ", ".join(f"({k >> 16}, {(k >> 8) & 255}, {k & 255}): {n} px" for k, n in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise SceneFormatError(
            f"{path}: {len(missing)} colour(s) not in the label map {labelmap}: {shown}{more} "
            "(colours must match a 'name:R,G,B::' line exactly)"
        )
    ids = np.array([lookup[int(k)] for k in unique], dtype=np.int64)
    return ids[inverse].reshape(keys.shape)


def grey_values(image: Image.Image, path: Path) -> np.ndarray:
    """The values of a single-channel (or grey RGB) label image as int64 [H, W]; palette images give indices."""
    if image.mode in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
        return np.asarray(image).astype(np.int64)
    if image.mode in ("RGB", "RGBA", "LA"):
        array = np.asarray(image.convert("RGB"))
        if np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 0], array[..., 2]):
            return array[..., 0].astype(np.int64)
        raise SceneFormatError(
            f"{path}: an RGB label image with colours cannot be read as ids or a binary mask; "
            "colour-coded labels need a label map (--label-format color --labelmap FILE)"
        )
    raise SceneFormatError(f"{path}: unsupported label image mode {image.mode!r}")


def binary_ids(values: np.ndarray) -> np.ndarray:
    """Class ids 0/1 of a binary mask: > 127 is foreground, or > 0 when the mask holds only 0 and 1."""
    threshold = 0 if values.max(initial=0) <= 1 else 127
    return (values > threshold).astype(np.int64)


def read_label_ids(
    path: Path, label_format: LabelFormat, classes: Sequence[SemanticClass] = (), labelmap: Path | None = None
) -> np.ndarray:
    """Reads one label image as int64 [H, W] ids in the given encoding (see the module docstring).

    ``classes`` and ``labelmap`` (for messages) are needed for ``color``. For ``ids`` the values are returned
    as stored (callers map them to class ids).
    """
    image = open_label(path)
    if label_format == "color":
        if image.mode not in ("RGB", "RGBA", "P", "L", "LA"):
            raise SceneFormatError(f"{path}: colour-coded labels must be RGB or palette PNGs, got mode {image.mode!r}")
        return colors_to_ids(np.asarray(image.convert("RGB")), classes, path, labelmap or Path("labelmap"))
    values = grey_values(image, path)
    return binary_ids(values) if label_format == "binary" else values
