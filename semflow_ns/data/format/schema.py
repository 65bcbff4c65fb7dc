"""The schema of ``transforms.json``: one table row per stored key, followed by the reader, the writer and the
check that sorts unknown top-level keys into ``SceneDescription.extra``.

Adding a key to the format is one row here (plus the field of the record it fills, in
:mod:`semflow_ns.data.format.records`): a row names the JSON key, the record attribute and the kind of value,
and the kind decides how the key is read, validated and written (:mod:`~semflow_ns.data.format.reader`,
:mod:`~semflow_ns.data.format.writer`). Rows are listed in the order the writer emits them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """How a key is read and written."""

    PATH = "path"
    """A file path relative to the scene folder; read as an absolute path to an existing file."""
    MATRIX = "matrix"
    """A 4x4 (or 3x4) camera-to-world matrix of finite numbers."""
    TRANSFORM = "transform"
    """A similarity of the world, written as nerfstudio writes ``applied_transform``: its top three rows (3x4).
    Read from 3x4 or 4x4 (scenes written before the plugin followed nerfstudio here store all four rows)."""
    TIME = "time"
    """A number in [0, 1]."""
    NAME = "name"
    """A string; written only when non-empty."""
    INTRINSICS = "intrinsics"
    """The pinhole/OpenCV camera keys (:data:`INTRINSIC_KEYS`, :data:`DISTORTION_KEYS`, ``camera_model``);
    a frame inherits the top-level values it leaves out."""
    CONSTANT = "constant"
    """Written with the value in :data:`CONSTANTS`; ignored on reading."""
    BOX = "box"
    """``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` with max > min."""
    DISTANCE = "distance"
    """An optional non-negative number."""
    FLAG = "flag"
    """An optional boolean, false when absent; written only when true."""
    CLASSES = "classes"
    """The non-empty class list ``[{name, color, dynamic}]``."""
    INSTANCES = "instances"
    """The instance list ``[{id, class, name}]``."""
    FRAMES = "frames"
    """A list of frames (see :data:`FRAME_KEYS`)."""
    EXTRA = "extra"
    """Where the writer puts the unrecognised top-level keys kept in ``SceneDescription.extra``."""


@dataclass(frozen=True)
class Key:
    """One row of the schema."""

    json: str
    """Key in transforms.json ("" for the rows that stand for a group of keys or for the extra keys)."""
    attr: str
    """Attribute of the record (FrameRecord or SceneDescription)."""
    kind: Kind
    required: bool = False
    """Reading fails when the key is missing; writing always emits it."""


INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
DISTORTION_KEYS = ("k1", "k2", "p1", "p2")
CONSTANTS = {"format": "semflow"}
"""Values of the CONSTANT rows other than ``version`` (which is FORMAT_VERSION)."""

FRAME_KEYS: tuple[Key, ...] = (
    Key("file_path", "image", Kind.PATH, required=True),
    Key("transform_matrix", "camera_to_world", Kind.MATRIX, required=True),
    Key("time", "time", Kind.TIME, required=True),
    Key("", "intrinsics", Kind.INTRINSICS, required=True),
    Key("semantics_path", "semantics", Kind.PATH),
    Key("instance_path", "instances", Kind.PATH),
    Key("flow_fwd_path", "flow_fwd", Kind.PATH),
    Key("flow_bwd_path", "flow_bwd", Kind.PATH),
    Key("motion_mask_path", "motion_mask", Kind.PATH),
    Key("depth_path", "depth", Kind.PATH),
    Key("sparse_depth_path", "sparse_depth", Kind.PATH),
    Key("view_set", "view_set", Kind.NAME),
)
"""The keys of one entry of ``frames`` / ``eval_frames`` (a FrameRecord)."""

SCENE_KEYS: tuple[Key, ...] = (
    Key("format", "", Kind.CONSTANT, required=True),
    Key("version", "", Kind.CONSTANT, required=True),
    Key("", "", Kind.INTRINSICS),
    Key("scene_box", "scene_box", Kind.BOX),
    Key("near", "near", Kind.DISTANCE),
    Key("far", "far", Kind.DISTANCE),
    Key("unbounded", "unbounded", Kind.FLAG),
    Key("motion_masks_from_labels", "motion_masks_from_labels", Kind.FLAG),
    Key("approximate_poses", "approximate_poses", Kind.FLAG),
    Key("classes", "classes", Kind.CLASSES, required=True),
    Key("instances", "instances", Kind.INSTANCES),
    Key("applied_transform", "applied_transform", Kind.TRANSFORM),
    Key("ply_file_path", "point_cloud", Kind.PATH),
    Key("", "extra", Kind.EXTRA),
    Key("frames", "frames", Kind.FRAMES, required=True),
    Key("eval_frames", "eval_frames", Kind.FRAMES),
)
"""The top-level keys (a SceneDescription)."""


def known_keys(keys: tuple[Key, ...] = SCENE_KEYS) -> set[str]:
    """The JSON keys the schema reads; other top-level keys are kept as ``extra``."""
    known = {key.json for key in keys if key.json}
    if any(key.kind is Kind.INTRINSICS for key in keys):
        known |= {*INTRINSIC_KEYS, *DISTORTION_KEYS, "camera_model"}
    return known
