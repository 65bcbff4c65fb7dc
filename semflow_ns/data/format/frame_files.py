"""Per-frame files of a scene: id label PNGs (16-bit ones may mark pixels without a label), optical-flow and
sparse-depth ``.npz`` files, and image sizes.

Every reading problem raises :class:`~semflow_ns.data.format.records.SceneFormatError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from semflow_ns.data.format.records import SceneFormatError

UNLABELLED_ID = 65535
"""Value of a 16-bit label image's pixels that have no label (read as -1, ignored like an unlabelled frame)."""


def read_label_image(path: Path) -> np.ndarray:
    """Reads a grey-level id PNG (8 or 16 bit) as int64 [H, W]; ``UNLABELLED_ID`` pixels read as -1."""
    with Image.open(path) as image:
        if image.mode not in ("L", "I;16", "I;16B", "I;16L", "I", "P"):
            raise SceneFormatError(
                f"{path}: label images must be single-channel id PNGs (8 or 16 bit), got PIL mode {image.mode!r}"
            )
        ids = np.asarray(image).astype(np.int64)
    ids[ids == UNLABELLED_ID] = -1
    return ids


MOTION_UNKNOWN = 128
"""Motion-mask value of pixels whose motion is unknown (0: static, 255: moving)."""


def motion_levels(mask: np.ndarray) -> np.ndarray:
    """float32 motion of an 8-bit motion mask: 1 moving (> 170), 0 static (< 85), -1 unknown (in between).

    Binary 0/255 masks read as moving/static; flow-estimated masks (``semflow-process-data``) also mark
    pixels whose motion they cannot tell with ``MOTION_UNKNOWN``.
    """
    out = np.full(mask.shape, -1.0, dtype=np.float32)
    out[mask > 170] = 1.0
    out[mask < 85] = 0.0
    return out


def write_label_image(path: Path, ids: np.ndarray) -> None:
    """Writes an id map as an 8-bit PNG when ids < 256, else as 16-bit; -1 (no label) is written as
    ``UNLABELLED_ID`` (16-bit)."""
    ids = np.asarray(ids)
    if ids.min() < -1 or ids.max() >= UNLABELLED_ID:
        raise ValueError(
            f"label ids must lie in [0, {UNLABELLED_ID - 1}] or be -1 (no label), got [{ids.min()}, {ids.max()}]"
        )
    ids = np.where(ids < 0, UNLABELLED_ID, ids)
    dtype = np.uint8 if ids.max() < 256 else np.uint16
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids.astype(dtype)).save(path)


def read_flow(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads a flow file: (flow float32 [H, W, 2] in pixels, mask bool [H, W])."""
    try:
        with np.load(path) as data:
            flow = data["flow"].astype(np.float32)
            mask = data["mask"].astype(bool) if "mask" in data else np.ones(flow.shape[:2], dtype=bool)
    except KeyError as err:
        raise SceneFormatError(f"{path}: flow files need an array named 'flow' ({err})") from err
    except (OSError, ValueError) as err:
        raise SceneFormatError(f"{path}: cannot read flow file ({err})") from err
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise SceneFormatError(f"{path}: 'flow' must have shape [H, W, 2], got {list(flow.shape)}")
    if mask.shape != flow.shape[:2]:
        raise SceneFormatError(f"{path}: 'mask' shape {list(mask.shape)} does not match flow {list(flow.shape[:2])}")
    return flow, mask


def write_flow(path: Path, flow: np.ndarray, mask: np.ndarray) -> None:
    """Writes flow as float16 (sub-0.01 px round-off at these magnitudes) with its consistency mask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, flow=flow.astype(np.float16), mask=mask.astype(np.uint8))


SPARSE_DEPTH_ARRAYS = ("xy", "depth", "error")
"""Arrays of a sparse-depth file: ``xy`` float32 [P, 2], ``depth`` float32 [P], ``error`` float32 [P]."""


def read_sparse_depth(path: Path, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Reads and checks a sparse-depth file of a frame of ``size`` (w, h): the arrays of ``SPARSE_DEPTH_ARRAYS``.

    Raises:
        SceneFormatError: unreadable, an array missing, inconsistent shapes, values that are not finite, a depth
            that is not positive, or a position outside the image (the message names the file and the array).
    """
    try:
        with np.load(path) as data:
            arrays = {name: np.asarray(data[name], dtype=np.float32) for name in SPARSE_DEPTH_ARRAYS if name in data}
    except (OSError, ValueError) as err:
        raise SceneFormatError(f"{path}: cannot read sparse-depth file ({err})") from err
    missing = [name for name in SPARSE_DEPTH_ARRAYS if name not in arrays]
    if missing:
        raise SceneFormatError(f"{path}: sparse-depth files need arrays {list(SPARSE_DEPTH_ARRAYS)}; missing {missing}")
    xy, depth = arrays["xy"], arrays["depth"]
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise SceneFormatError(f"{path}: 'xy' must have shape [P, 2], got {list(xy.shape)}")
    for name in ("depth", "error"):
        if arrays[name].shape != (len(xy),):
            raise SceneFormatError(
                f"{path}: '{name}' must have shape [{len(xy)}] like 'xy', got {list(arrays[name].shape)}"
            )
    for name, values in arrays.items():
        if not np.all(np.isfinite(values)):
            raise SceneFormatError(f"{path}: '{name}' contains NaN or inf")
    if np.any(depth <= 0):
        raise SceneFormatError(f"{path}: 'depth' must be positive, got minimum {float(depth.min())}")
    width, height = size
    outside = (xy[:, 0] < 0) | (xy[:, 0] > width) | (xy[:, 1] < 0) | (xy[:, 1] > height)
    if np.any(outside):
        first = xy[np.flatnonzero(outside)[0]].tolist()
        raise SceneFormatError(
            f"{path}: 'xy' has {int(outside.sum())} positions outside the {width}x{height} image, e.g. {first}"
        )
    return arrays


def write_sparse_depth(path: Path, xy: np.ndarray, depth: np.ndarray, error: np.ndarray) -> None:
    """Writes a sparse-depth file (float32 arrays ``xy`` [P, 2], ``depth`` [P], ``error`` [P])."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, xy=np.asarray(xy, np.float32).reshape(-1, 2), depth=np.asarray(depth, np.float32).reshape(-1),
        error=np.asarray(error, np.float32).reshape(-1),
    )  # fmt: skip


def read_depth_map(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Reads and checks a depth map of a frame of ``size`` (w, h): float32 [H, W] z-depth in world units, 0 where
    there is no measurement.

    Raises:
        SceneFormatError: unreadable, not a 2D array of the frame's size, NaN or inf, negative values, or no
            measurement at all (the message names the file and the problem).
    """
    try:
        depth = np.load(path)
    except (OSError, ValueError) as err:
        raise SceneFormatError(f"{path}: cannot read depth map ({err})") from err
    width, height = size
    if depth.ndim != 2 or depth.shape != (height, width):
        raise SceneFormatError(f"{path}: depth map of shape {list(depth.shape)}, expected [{height}, {width}] (h, w)")
    depth = depth.astype(np.float32)
    if not np.all(np.isfinite(depth)):
        raise SceneFormatError(f"{path}: depth map contains NaN or inf; write 0 where there is no measurement")
    if np.any(depth < 0):
        raise SceneFormatError(f"{path}: depth map has negative values (minimum {float(depth.min())})")
    if not np.any(depth > 0):
        raise SceneFormatError(f"{path}: depth map is all zero (no measurement)")
    return depth


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header."""
    with Image.open(path) as image:
        return image.size
