"""The semflow scene format: one ``transforms.json`` plus images, labels and optical flow.

This package is the single definition of the format. It reads and validates a scene folder
(:func:`load_scene`), writes one (:func:`save_scene`), and reads/writes the per-frame files
(label PNGs, flow ``.npz``). Every problem raises :class:`SceneFormatError` with the file and the
field at fault, so a bad scene fails before training starts.

The format extends nerfstudio's ``transforms.json`` (``file_path``, ``transform_matrix`` as an
OpenGL camera-to-world matrix, ``fl_x``/``fl_y``/``cx``/``cy``/``w``/``h``) with a per-frame
``time`` in [0, 1], semantic and instance label paths, forward/backward optical-flow paths, a class
list (name, colour, whether the class moves), optional held-out evaluation views and, for real
captures, ``unbounded: true`` (the content extends beyond ``scene_box``). ``applied_transform`` (3x4) and
``ply_file_path`` keep nerfstudio's meaning, so that nerfstudio's own ``nerfstudio-data`` reads a scene too. The
README section "Data format" documents it for users.

Modules: :mod:`~semflow_ns.data.format.records` (the dataclasses), :mod:`~semflow_ns.data.format.schema` (one
row per stored key, shared by :mod:`~semflow_ns.data.format.reader` and :mod:`~semflow_ns.data.format.writer`),
:mod:`~semflow_ns.data.format.frame_files` (label PNGs, motion-mask levels and flow files).
"""

from semflow_ns.data.format.frame_files import (
    MOTION_UNKNOWN,
    UNLABELLED_ID,
    image_size,
    motion_levels,
    read_depth_map,
    read_flow,
    read_label_image,
    read_sparse_depth,
    write_flow,
    write_label_image,
    write_sparse_depth,
)
from semflow_ns.data.format.reader import load_scene
from semflow_ns.data.format.records import (
    FORMAT_VERSION,
    SCENE_FILE,
    FrameRecord,
    InstanceInfo,
    Intrinsics,
    SceneDescription,
    SceneFormatError,
    SemanticClass,
)
from semflow_ns.data.format.writer import save_scene

__all__ = [
    "FORMAT_VERSION",
    "MOTION_UNKNOWN",
    "SCENE_FILE",
    "FrameRecord",
    "InstanceInfo",
    "Intrinsics",
    "SceneDescription",
    "SceneFormatError",
    "SemanticClass",
    "UNLABELLED_ID",
    "image_size",
    "load_scene",
    "motion_levels",
    "read_depth_map",
    "read_flow",
    "read_label_image",
    "read_sparse_depth",
    "save_scene",
    "write_flow",
    "write_label_image",
    "write_sparse_depth",
]
