"""The records a scene folder is read into and written from (see :mod:`semflow_ns.data.format`).

Each field that is stored in ``transforms.json`` has one row in :mod:`semflow_ns.data.format.schema`, which
the reader and the writer both follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

SCENE_FILE = "transforms.json"
FORMAT_VERSION = 1


class SceneFormatError(ValueError):
    """A scene folder breaks the semflow format. The message names the file and the field."""


@dataclass(frozen=True)
class SemanticClass:
    """One semantic class; its id is its index in the class list."""

    name: str
    color: tuple[int, int, int]
    """Display colour, 0-255 RGB."""
    dynamic: bool = False
    """True for classes that move (used for motion masks and the dynamic/static split)."""


@dataclass(frozen=True)
class InstanceInfo:
    """One object instance; instance label images store ``id`` (0 means "no instance")."""

    id: int
    class_name: str
    name: str


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels, with optional OpenCV radial/tangential distortion."""

    fl_x: float
    fl_y: float
    cx: float
    cy: float
    w: int
    h: int
    k1: float = 0.0
    k2: float = 0.0
    p1: float = 0.0
    p2: float = 0.0

    @property
    def has_distortion(self) -> bool:
        return any(v != 0.0 for v in (self.k1, self.k2, self.p1, self.p2))


@dataclass
class FrameRecord:
    """One image of the scene with everything attached to it. Paths are absolute once loaded."""

    image: Path
    camera_to_world: np.ndarray
    """4x4 camera-to-world matrix, OpenGL camera axes (x right, y up, looking down -z)."""
    time: float
    """Normalised time in [0, 1]."""
    intrinsics: Intrinsics
    semantics: Optional[Path] = None
    """Grey-level PNG (8 or 16 bit) of class ids; None for an unlabelled frame."""
    instances: Optional[Path] = None
    """Grey-level PNG (8 or 16 bit) of instance ids, 0 = no instance."""
    flow_fwd: Optional[Path] = None
    """``.npz`` with ``flow`` [H, W, 2] (pixels, frame i -> i+1) and ``mask`` [H, W] (consistent)."""
    flow_bwd: Optional[Path] = None
    """Same as ``flow_fwd`` for frame i -> i-1."""
    motion_mask: Optional[Path] = None
    """8-bit PNG, > 127 where something moves. Only read for frames without semantic labels."""
    depth: Optional[Path] = None
    """``.npy`` float32 [H, W] of z-depth along the camera axis in world units (evaluation only)."""
    sparse_depth: Optional[Path] = None
    """``.npz`` of the SfM points the frame sees (frames with an exact SfM pose): ``xy`` float32 [P, 2] pixel
    positions (x right, y down, pixel centres at +0.5), ``depth`` float32 [P] z-depth along the camera axis in
    world units, ``error`` float32 [P] reprojection error in pixels."""
    view_set: str = ""
    """Name of the group a held-out view belongs to (the demo: ``nearby`` or ``novel``); scores are also reported
    per group. Empty for video frames and ungrouped views."""


@dataclass
class SceneDescription:
    """A whole scene folder: the training video, optional held-out views, and the label vocabulary."""

    root: Path
    classes: list[SemanticClass]
    frames: list[FrameRecord]
    """The monocular video in time order (training frames)."""
    eval_frames: list[FrameRecord] = field(default_factory=list)
    """Held-out views (other cameras at the video's times), with ground truth for evaluation."""
    instances: list[InstanceInfo] = field(default_factory=list)
    scene_box: Optional[np.ndarray] = None
    """[2, 3] axis-aligned bounds (min, max) of the scene in world units, if known."""
    near: Optional[float] = None
    far: Optional[float] = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Unrecognised top-level keys, kept so that tools can round-trip them."""
    unbounded: bool = False
    """True for real, unbounded (e.g. forward-facing) scenes: content extends beyond ``scene_box``, which
    bounds only the well-observed part; models contract space outside it and sample in disparity."""
    motion_masks_from_labels: bool = False
    """True when the motion masks were derived from the semantic labels (not an independent source), so a
    frame whose labels are withheld (label subsets) must not keep its motion mask either."""
    approximate_poses: bool = False
    """True when the cameras are only approximate (e.g. rotation-only estimates from a video on which
    structure from motion failed); models refine the poses during training by default."""
    applied_transform: Optional[np.ndarray] = None
    """[4, 4] similarity ``x_scene = applied_transform @ [x_source, 1]`` that took the world of the source (SfM,
    supplied poses, DynNeRF's ``poses_bounds.npy``) to this scene's world; None when no transform is recorded.
    Stored as nerfstudio's 3x4 ``applied_transform`` (its top three rows)."""
    point_cloud: Optional[Path] = None
    """PLY of scene points (``x, y, z``, ``red, green, blue``) in this scene's world, the world of the frames'
    ``transform_matrix``; nerfstudio's ``ply_file_path`` (what splatfacto starts from)."""

    @property
    def dynamic_class_ids(self) -> list[int]:
        return [i for i, c in enumerate(self.classes) if c.dynamic]

    @property
    def has_labels(self) -> bool:
        return any(f.semantics is not None for f in self.frames)

    @property
    def has_instances(self) -> bool:
        return bool(self.instances) and any(f.instances is not None for f in self.frames)
