"""Listing image folders, pairing per-frame files with frames, and fingerprinting inputs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Optional

from semflow_ns.data.format import SceneFormatError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
"""File name endings (lower case) treated as images."""


def natural_key(path: Path) -> tuple:
    """Sort key comparing the digit runs of a file name as numbers (``frame_2`` before ``frame_10``)."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name))


def list_images(folder: Path, what: str = "images") -> list[Path]:
    """The image files of ``folder`` (not recursive, hidden files skipped) in natural name order.

    Raises:
        SceneFormatError: the folder does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SceneFormatError(f"{folder}: {what} folder not found")
    files = [
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    ]
    if not files:
        raise SceneFormatError(f"{folder}: no {what} ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    return sorted(files, key=natural_key)


def _names(paths: Iterable[Path], limit: int = 5) -> str:
    names = [p.name for p in paths]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def pair_files(
    frames: Sequence[Path], files: Sequence[Path], what: str, allow_missing: bool = False
) -> list[Optional[Path]]:
    """Matches per-frame files (labels, masks) to frames; returns one file (or None) per frame.

    Files are matched by stem (``00012.jpg`` <-> ``00012.png``). When no stem matches at all and the counts
    are equal, they are paired in sorted order (the convention of the DynNeRF loaders).

    Args:
        frames: the frame images, in video order.
        files: the per-frame files.
        what: description for messages, e.g. "label images in /data/masks".
        allow_missing: frames without a file get None instead of an error.

    Raises:
        SceneFormatError: a file matches no frame, or a frame has no file (unless ``allow_missing``).
    """
    by_stem = {p.stem: p for p in files}
    frame_stems = [p.stem for p in frames]
    matched = [by_stem.get(stem) for stem in frame_stems]
    if not any(m is not None for m in matched) and len(files) == len(frames):
        return list(sorted(files, key=natural_key))
    stems = set(frame_stems)
    orphans = [p for p in files if p.stem not in stems]
    if orphans:
        raise SceneFormatError(
            f"{orphans[0].parent}: {len(orphans)} {what} match no frame by name: {_names(orphans)} "
            f"({len(files)} files for {len(frames)} frames; files pair with frames by name without the extension)"
        )
    missing = [f for f, m in zip(frames, matched, strict=True) if m is None]
    if missing and not allow_missing:
        folder = files[0].parent if files else "the folder"
        raise SceneFormatError(
            f"{folder}: {len(missing)} frame(s) have no {what}: {_names(missing)} "
            f"({len(files)} files for {len(frames)} frames)"
        )
    return matched


def fingerprint(files: Iterable[Path], settings: str, length: int = 12) -> str:
    """Hex digest of ``settings`` and the names and contents of ``files`` (changes when any input changes)."""
    digest = hashlib.blake2b(settings.encode("utf-8"), digest_size=16)
    for path in files:
        digest.update(f"\n{path.name}\n".encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:length]


def check_frame_count(count: int, source: Path, minimum: int = 3) -> None:
    """Raises SceneFormatError naming ``source`` when a video has fewer than ``minimum`` frames."""
    if count < minimum:
        raise SceneFormatError(
            f"{source}: {count} frame(s); a dynamic scene needs at least {minimum} (flow and time need neighbours)"
        )
