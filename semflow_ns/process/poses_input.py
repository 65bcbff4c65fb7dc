"""Camera poses supplied by the user instead of structure from motion.

* ``transforms.json`` (nerfstudio): OpenGL camera-to-world ``transform_matrix`` per frame, intrinsics at the
  top level or per frame (``fl_x, fl_y, cx, cy, w, h`` and optional ``k1, k2, p1, p2``). Frames pair with the
  input frames by file-name stem (video input: in order). Scene points come from its ``ply_file_path``
  (nerfstudio's ``sparse_pc.ply``) when present; otherwise the depth range is ``--bounds NEAR FAR`` or, when
  that is not given, an assumed 0.1-100 (with a warning).
* ``poses_bounds.npy`` (LLFF): one row per input frame in sorted order, with the depth bounds.

Intrinsics are rescaled to the output resolution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from semflow_ns.data.dynnerf.llff import read_poses_bounds
from semflow_ns.data.format import Intrinsics, SceneFormatError
from semflow_ns.data.producers.files import natural_key
from semflow_ns.data.producers.point_cloud import read_point_cloud
from semflow_ns.process.frames import InputFrame

DEFAULT_BOUNDS = (0.1, 100.0)
"""Depth range assumed for transforms.json poses without a point cloud or --bounds."""


@dataclass
class SuppliedPoses:
    """Poses of the kept frames in the user's world, with whatever depth information came with them."""

    camera_to_world: np.ndarray
    """[N, 4, 4] OpenGL camera-to-world."""
    intrinsics: list[Intrinsics]
    """At the output resolution."""
    bounds: Optional[np.ndarray] = None
    """[N, 2] near/far depths, when known."""
    points: Optional[np.ndarray] = None
    """[M, 3] scene points, when known."""


def _scaled(intr: Intrinsics, width: int, height: int) -> Intrinsics:
    sx, sy = width / intr.w, height / intr.h
    return Intrinsics(
        intr.fl_x * sx, intr.fl_y * sy, intr.cx * sx, intr.cy * sy, width, height, intr.k1, intr.k2, intr.p1, intr.p2
    )


def _json_intrinsics(path: Path, obj: dict[str, Any], top: dict[str, Any], where: str) -> Intrinsics:
    def value(key: str, default: Optional[float] = None) -> float:
        found = obj.get(key, top.get(key, default))
        if isinstance(found, bool) or not isinstance(found, (int, float)):
            raise SceneFormatError(f"{path}: {where}: missing or non-numeric '{key}' (needed for the intrinsics)")
        return float(found)

    fl_x = value("fl_x")
    extra = {k: value(k, 0.0) for k in ("k1", "k2", "p1", "p2")}
    return Intrinsics(fl_x, value("fl_y", fl_x), value("cx"), value("cy"), int(value("w")), int(value("h")), **extra)


def _ply_points(path: Path, meta: dict[str, Any]) -> Optional[np.ndarray]:
    if not meta.get("ply_file_path"):
        return None
    ply = path.parent / str(meta["ply_file_path"])
    try:
        return read_point_cloud(ply)[0]
    except (OSError, KeyError, ValueError) as err:
        raise SceneFormatError(f"{path}: ply_file_path: cannot read points from {ply} ({err})") from err


def from_transforms(path: Path, frames: list[InputFrame], by_order: bool) -> SuppliedPoses:
    """Poses of ``frames`` from a nerfstudio ``transforms.json`` (see the module docstring)."""
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = meta["frames"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise SceneFormatError(f"{path}: not a readable nerfstudio transforms.json with 'frames' ({err})") from err
    if by_order:
        ordered = sorted(entries, key=lambda e: natural_key(Path(str(e.get("file_path", "")))))
        chosen = [ordered[f.position] if f.position < len(ordered) else None for f in frames]
    else:
        by_stem = {Path(str(e.get("file_path", ""))).stem: e for e in entries if isinstance(e, dict)}
        chosen = [by_stem.get(f.name) for f in frames]
    missing = [f.name for f, e in zip(frames, chosen, strict=True) if e is None]
    if missing:
        raise SceneFormatError(
            f"{path}: frames: no pose for frame(s) {missing[:5]} ({len(entries)} frames in the file)"
        )
    c2w, intrinsics = [], []
    for frame, entry in zip(frames, chosen, strict=True):
        where = f"frames[{entries.index(entry)}]"
        matrix = np.asarray(entry.get("transform_matrix"), dtype=np.float64)
        if matrix.shape not in ((4, 4), (3, 4)) or not np.all(np.isfinite(matrix)):
            raise SceneFormatError(f"{path}: {where}.transform_matrix: expected a finite 4x4 matrix")
        c2w.append(np.concatenate([matrix[:3], [[0, 0, 0, 1]]]))
        intrinsics.append(_scaled(_json_intrinsics(path, entry, meta, where), frame.rgb.shape[1], frame.rgb.shape[0]))
    return SuppliedPoses(np.stack(c2w), intrinsics, points=_ply_points(path, meta))


def from_poses_bounds(path: Path, frames: list[InputFrame], total: int) -> SuppliedPoses:
    """Poses of ``frames`` from an LLFF ``poses_bounds.npy`` with one row per input frame (``total`` rows)."""
    cameras = read_poses_bounds(path)
    if len(cameras) != total:
        raise SceneFormatError(f"{path}: {len(cameras)} rows, but the input has {total} frames (one row per frame)")
    rows = [f.position for f in frames]
    intrinsics = []
    for frame, row in zip(frames, rows, strict=True):
        height, width = frame.rgb.shape[:2]
        focal = cameras.hwf[row, 2] * width / cameras.hwf[row, 1]
        intrinsics.append(Intrinsics(focal, focal, width / 2.0, height / 2.0, width, height))
    return SuppliedPoses(cameras.camera_to_world[rows], intrinsics, bounds=cameras.bounds[rows])
