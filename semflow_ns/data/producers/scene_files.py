"""The one writer of per-frame files, shared by the three scene producers (demo generator, ``semflow-process-data``,
DynNeRF conversion), and the image reader they share.

A frame named ``name`` of a scene (or of a sub-folder such as ``eval``) gets, under that folder,
``images/<name>.png`` (or a copy of its source image), ``semantics/<name>.png`` and ``instances/<name>.png``
(id PNGs, see :func:`~semflow_ns.data.format.write_label_image`), ``motion_masks/<name>.png`` (0 static, 255 moving, 128 unknown),
``depth/<name>.npy`` and ``flow/<name>_fwd.npz`` / ``flow/<name>_bwd.npz``. The writers return the paths as
:class:`~semflow_ns.data.format.FrameRecord` keyword arguments.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from semflow_ns.data.format import SceneFormatError, write_flow, write_label_image
from semflow_ns.data.producers.optical_flow import FrameFlow


def read_rgb(path: Path) -> np.ndarray:
    """uint8 RGB [H, W, 3] of an image file, with an error naming the file when it cannot be read."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise SceneFormatError(f"{path}: cannot read the image ({err})") from err


def write_frame_files(
    folder: Path,
    name: str,
    image: Union[np.ndarray, Path, None] = None,
    semantics: Optional[np.ndarray] = None,
    instances: Optional[np.ndarray] = None,
    motion: Optional[np.ndarray] = None,
    depth: Optional[np.ndarray] = None,
) -> dict[str, Path]:
    """Writes the files of frame ``name`` into ``folder``.

    Args:
        image: uint8 RGB [H, W, 3], written as PNG, or an image file, copied (its suffix in lower case); None
            for a frame whose image is written already.
        semantics: class ids [H, W]; instances: instance ids [H, W] (0 = none).
        motion: bool [H, W], True where something moves (written 0/255), or uint8 [H, W] mask levels (0 static,
            255 moving, ``MOTION_UNKNOWN`` unknown) written as they are.
        depth: float32 [H, W] z-depth.

    Returns:
        The written paths by FrameRecord field (``image``, ``semantics``, ``instances``, ``motion_mask``, ``depth``).
    """
    folder = Path(folder)
    paths: dict[str, Path] = {}
    if image is not None:
        (folder / "images").mkdir(parents=True, exist_ok=True)
    if isinstance(image, Path):
        paths["image"] = folder / "images" / f"{name}{image.suffix.lower()}"
        shutil.copyfile(image, paths["image"])
    elif image is not None:
        paths["image"] = folder / "images" / f"{name}.png"
        Image.fromarray(image).save(paths["image"])
    for key, ids in (("semantics", semantics), ("instances", instances)):
        if ids is not None:
            paths[key] = folder / key / f"{name}.png"
            write_label_image(paths[key], ids)
    if motion is not None:
        paths["motion_mask"] = folder / "motion_masks" / f"{name}.png"
        paths["motion_mask"].parent.mkdir(parents=True, exist_ok=True)
        motion = np.asarray(motion)
        levels = motion.astype(np.uint8) * 255 if motion.dtype == bool else motion.astype(np.uint8)
        Image.fromarray(levels).save(paths["motion_mask"])
    if depth is not None:
        paths["depth"] = folder / "depth" / f"{name}.npy"
        paths["depth"].parent.mkdir(parents=True, exist_ok=True)
        np.save(paths["depth"], depth)
    return paths


def write_flow_files(folder: Path, names: Sequence[str], flows: Sequence[FrameFlow]) -> list[dict[str, Path]]:
    """Writes ``flow/<name>_fwd.npz`` and ``flow/<name>_bwd.npz`` of every frame that has that direction.

    Returns:
        Per frame, the written paths by FrameRecord field (``flow_fwd``, ``flow_bwd``).
    """
    records: list[dict[str, Path]] = []
    for name, flow in zip(names, flows, strict=True):
        record: dict[str, Path] = {}
        for key, values, mask in (("flow_fwd", flow.fwd, flow.fwd_mask), ("flow_bwd", flow.bwd, flow.bwd_mask)):
            if values is not None and mask is not None:
                record[key] = Path(folder) / "flow" / f"{name}_{key[-3:]}.npz"
                write_flow(record[key], values, mask)
        records.append(record)
    return records


def consistent_fraction(flows: Sequence[FrameFlow]) -> float:
    """Share of the forward and backward flow pixels of ``flows`` that pass the forward-backward check."""
    masks = [
        mask.ravel()
        for flow in flows
        for values, mask in ((flow.fwd, flow.fwd_mask), (flow.bwd, flow.bwd_mask))
        if values is not None and mask is not None
    ]
    return float(np.concatenate(masks).mean())
