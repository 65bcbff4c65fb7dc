"""The semflow scene format: one ``transforms.json`` plus images, labels and optical flow.

This module is the single definition of the format. It reads and validates a scene folder
(:func:`load_scene`), writes one (:func:`save_scene`), and reads/writes the per-frame files
(label PNGs, flow ``.npz``). Every problem raises :class:`SceneFormatError` with the file and the
field at fault, so a bad scene fails before training starts.

The format extends nerfstudio's ``transforms.json`` (``file_path``, ``transform_matrix`` as an
OpenGL camera-to-world matrix, ``fl_x``/``fl_y``/``cx``/``cy``/``w``/``h``) with a per-frame
``time`` in [0, 1], semantic and instance label paths, forward/backward optical-flow paths, a class
list (name, colour, whether the class moves), optional held-out evaluation views and, for real
captures, ``unbounded: true`` (the content extends beyond ``scene_box``). The README section
"Data format" documents it for users.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image

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

    @property
    def dynamic_class_ids(self) -> list[int]:
        return [i for i, c in enumerate(self.classes) if c.dynamic]

    @property
    def has_labels(self) -> bool:
        return any(f.semantics is not None for f in self.frames)

    @property
    def has_instances(self) -> bool:
        return bool(self.instances) and any(f.instances is not None for f in self.frames)


# ----------------------------------------------------------------------------------------------
# Per-frame files


def read_label_image(path: Path) -> np.ndarray:
    """Reads a grey-level id PNG (8 or 16 bit) as int64 [H, W]."""
    with Image.open(path) as image:
        if image.mode not in ("L", "I;16", "I;16B", "I;16L", "I", "P"):
            raise SceneFormatError(
                f"{path}: label images must be single-channel id PNGs (8 or 16 bit), got PIL mode {image.mode!r}"
            )
        return np.asarray(image).astype(np.int64)


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
    """Writes an id map as an 8-bit PNG when ids < 256, else as 16-bit."""
    ids = np.asarray(ids)
    if ids.min() < 0 or ids.max() > 65535:
        raise ValueError(f"label ids must lie in [0, 65535], got [{ids.min()}, {ids.max()}]")
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


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header."""
    with Image.open(path) as image:
        return image.size


# ----------------------------------------------------------------------------------------------
# transforms.json -> SceneDescription


class _Reader:
    """Typed field access that reports the file and a JSON path on every error."""

    def __init__(self, file: Path):
        self.file = file

    def fail(self, where: str, message: str) -> SceneFormatError:
        return SceneFormatError(f"{self.file}: {where}: {message}")

    def number(self, obj: dict[str, Any], key: str, where: str, default: Optional[float] = None) -> float:
        if key not in obj or obj[key] is None:
            if default is None:
                raise self.fail(where, f"missing required field '{key}'")
            return default
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(f"{where}.{key}", f"expected a finite number, got {value!r}")
        return float(value)

    def path(self, obj: dict[str, Any], key: str, where: str, root: Path, required: bool = False) -> Optional[Path]:
        value = obj.get(key)
        if value is None:
            if required:
                raise self.fail(where, f"missing required field '{key}'")
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}.{key}", f"expected a relative file path, got {value!r}")
        path = (root / value).resolve()
        if not path.is_file():
            raise self.fail(f"{where}.{key}", f"file {path} does not exist")
        return path

    def matrix(self, obj: dict[str, Any], key: str, where: str) -> np.ndarray:
        if key not in obj:
            raise self.fail(where, f"missing required field '{key}'")
        try:
            mat = np.asarray(obj[key], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise self.fail(f"{where}.{key}", f"expected a 4x4 (or 3x4) matrix of numbers ({err})") from err
        if mat.shape == (3, 4):
            mat = np.concatenate([mat, [[0.0, 0.0, 0.0, 1.0]]], axis=0)
        if mat.shape != (4, 4):
            raise self.fail(f"{where}.{key}", f"expected a 4x4 (or 3x4) matrix, got shape {list(mat.shape)}")
        if not np.all(np.isfinite(mat)):
            raise self.fail(f"{where}.{key}", "contains NaN or inf")
        return mat


def _intrinsics(reader: _Reader, obj: dict[str, Any], where: str, default: Optional[Intrinsics]) -> Intrinsics:
    keys = ("fl_x", "fl_y", "cx", "cy", "w", "h")
    if default is not None and not any(k in obj for k in keys):
        return default
    d = default
    values = {k: reader.number(obj, k, where, None if d is None else float(getattr(d, k))) for k in keys}
    for k in ("k1", "k2", "p1", "p2"):
        values[k] = reader.number(obj, k, where, 0.0 if d is None else getattr(d, k))
    for k in ("fl_x", "fl_y", "w", "h"):
        if values[k] <= 0:
            raise reader.fail(f"{where}.{k}", f"must be positive, got {values[k]}")
    return Intrinsics(**{**values, "w": int(values["w"]), "h": int(values["h"])})  # type: ignore[arg-type]


def _frame(reader: _Reader, obj: Any, where: str, root: Path, intr: Optional[Intrinsics]) -> FrameRecord:
    if not isinstance(obj, dict):
        raise reader.fail(where, f"expected an object, got {type(obj).__name__}")
    time = reader.number(obj, "time", where)
    if not 0.0 <= time <= 1.0:
        raise reader.fail(f"{where}.time", f"{time} is outside [0, 1]")
    frame_intr = _intrinsics(reader, obj, where, intr)
    image = reader.path(obj, "file_path", where, root, required=True)
    assert image is not None
    view_set = obj.get("view_set", "")
    if not isinstance(view_set, str):
        raise reader.fail(f"{where}.view_set", f"expected a name (string), got {view_set!r}")
    return FrameRecord(
        image=image,
        camera_to_world=reader.matrix(obj, "transform_matrix", where),
        time=time,
        intrinsics=frame_intr,
        semantics=reader.path(obj, "semantics_path", where, root),
        instances=reader.path(obj, "instance_path", where, root),
        flow_fwd=reader.path(obj, "flow_fwd_path", where, root),
        flow_bwd=reader.path(obj, "flow_bwd_path", where, root),
        motion_mask=reader.path(obj, "motion_mask_path", where, root),
        depth=reader.path(obj, "depth_path", where, root),
        view_set=view_set,
    )


def _classes(reader: _Reader, raw: Any) -> list[SemanticClass]:
    if not isinstance(raw, list) or not raw:
        raise reader.fail("classes", "expected a non-empty list of {name, color, dynamic}")
    classes = []
    for i, c in enumerate(raw):
        where = f"classes[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
            raise reader.fail(where, "expected an object with a non-empty 'name'")
        color = c.get("color")
        if (
            not isinstance(color, (list, tuple))
            or len(color) != 3
            or not all(isinstance(v, int) and 0 <= v <= 255 for v in color)
        ):
            raise reader.fail(f"{where}.color", f"expected [r, g, b] integers in 0-255, got {color!r}")
        dynamic = c.get("dynamic", False)
        if not isinstance(dynamic, bool):
            raise reader.fail(f"{where}.dynamic", f"expected true or false, got {dynamic!r}")
        classes.append(SemanticClass(name=c["name"], color=(color[0], color[1], color[2]), dynamic=dynamic))
    names = [c.name for c in classes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise reader.fail("classes", f"duplicate class names {duplicates}")
    return classes


def _instances(reader: _Reader, raw: Any, classes: Sequence[SemanticClass]) -> list[InstanceInfo]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise reader.fail("instances", "expected a list of {id, class, name}")
    names = {c.name for c in classes}
    out = []
    for i, inst in enumerate(raw):
        where = f"instances[{i}]"
        if not isinstance(inst, dict):
            raise reader.fail(where, "expected an object")
        inst_id = inst.get("id")
        if isinstance(inst_id, bool) or not isinstance(inst_id, int) or inst_id < 1:
            raise reader.fail(f"{where}.id", f"expected an integer >= 1 (0 means 'no instance'), got {inst_id!r}")
        cls = inst.get("class")
        if cls not in names:
            raise reader.fail(f"{where}.class", f"{cls!r} is not in the class list {sorted(names)}")
        out.append(InstanceInfo(id=inst_id, class_name=cls, name=str(inst.get("name", f"{cls} {inst_id}"))))
    ids = [inst.id for inst in out]
    if len(set(ids)) != len(ids):
        raise reader.fail("instances", "instance ids must be unique")
    return out


def _check_files(reader: _Reader, frames: Sequence[FrameRecord], key: str, num_classes: int, num_inst: int) -> None:
    """Checks sizes of every per-frame file and the range of label ids."""
    for i, f in enumerate(frames):
        where = f"{key}[{i}]"
        size = (f.intrinsics.w, f.intrinsics.h)
        if image_size(f.image) != size:
            raise reader.fail(f"{where}.file_path", f"{f.image} is {image_size(f.image)} (w, h) but w, h = {size}")
        for field_name, path in (("semantics_path", f.semantics), ("instance_path", f.instances)):
            if path is None:
                continue
            ids = read_label_image(path)
            if (ids.shape[1], ids.shape[0]) != size:
                raise reader.fail(f"{where}.{field_name}", f"{path} is {ids.shape[::-1]} (w, h) but w, h = {size}")
            limit = num_classes if field_name == "semantics_path" else num_inst
            if ids.max() >= limit:
                what = "class ids" if field_name == "semantics_path" else "instance ids"
                raise reader.fail(
                    f"{where}.{field_name}",
                    f"{path} contains id {int(ids.max())}, but the {what} only go up to {limit - 1}",
                )
        for field_name, path in (("flow_fwd_path", f.flow_fwd), ("flow_bwd_path", f.flow_bwd)):
            if path is None:
                continue
            flow, _ = read_flow(path)
            if (flow.shape[1], flow.shape[0]) != size:
                raise reader.fail(f"{where}.{field_name}", f"{path} is {flow.shape[1::-1]} (w, h) but w, h = {size}")
        if f.motion_mask is not None and image_size(f.motion_mask) != size:
            raise reader.fail(f"{where}.motion_mask_path", f"{f.motion_mask} does not match the image size {size}")


def _frame_lists(
    reader: _Reader, meta: dict[str, Any], root: Path, top_intr: Optional[Intrinsics]
) -> tuple[list[FrameRecord], list[FrameRecord]]:
    """The ``frames`` (checked to be in time order) and ``eval_frames`` lists."""
    raw_frames = meta.get("frames")
    if not isinstance(raw_frames, list) or not raw_frames:
        raise reader.fail("frames", "expected a non-empty list of frames")
    frames = [_frame(reader, f, f"frames[{i}]", root, top_intr) for i, f in enumerate(raw_frames)]
    for i in range(1, len(frames)):
        if frames[i].time <= frames[i - 1].time:
            raise reader.fail(
                f"frames[{i}].time",
                f"{frames[i].time} is not greater than frames[{i - 1}].time = {frames[i - 1].time}; "
                "frames must be listed in time order",
            )
    raw_eval = meta.get("eval_frames", [])
    if not isinstance(raw_eval, list):
        raise reader.fail("eval_frames", "expected a list of frames")
    eval_frames = [_frame(reader, f, f"eval_frames[{i}]", root, top_intr) for i, f in enumerate(raw_eval)]
    return frames, eval_frames


def _scene_box(reader: _Reader, meta: dict[str, Any]) -> Optional[np.ndarray]:
    """The optional top-level ``scene_box`` [[xmin, ymin, zmin], [xmax, ymax, zmax]] as a [2, 3] array."""
    if meta.get("scene_box") is None:
        return None
    try:
        scene_box = np.asarray(meta["scene_box"], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise reader.fail("scene_box", f"expected [[xmin, ymin, zmin], [xmax, ymax, zmax]] ({err})") from err
    if scene_box.shape != (2, 3) or not np.all(np.isfinite(scene_box)) or np.any(scene_box[1] <= scene_box[0]):
        raise reader.fail(
            "scene_box",
            f"expected [[xmin, ymin, zmin], [xmax, ymax, zmax]] with max > min, got {meta['scene_box']}",
        )
    return scene_box


def _flag(reader: _Reader, meta: dict[str, Any], key: str) -> bool:
    """An optional top-level boolean (false when absent)."""
    value = meta.get(key, False)
    if not isinstance(value, bool):
        raise reader.fail(key, f"expected true or false, got {value!r}")
    return value


def load_scene(root: Path, check_files: bool = True) -> SceneDescription:
    """Reads and validates ``root/transforms.json``.

    Args:
        root: the scene folder.
        check_files: also open every referenced file to check sizes and label ids.

    Raises:
        SceneFormatError: naming the file and the field at fault.
    """
    root = Path(root).expanduser().resolve()
    file = root / SCENE_FILE
    if not file.is_file():
        raise SceneFormatError(
            f"{file}: not found; a semflow scene folder needs a {SCENE_FILE} (see README, 'Data format')"
        )
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SceneFormatError(f"{file}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from err
    reader = _Reader(file)
    if not isinstance(meta, dict):
        raise reader.fail("top level", "expected a JSON object")

    classes = _classes(reader, meta.get("classes"))
    instances = _instances(reader, meta.get("instances"), classes)
    top_intr = _intrinsics(reader, meta, "top level", None) if "fl_x" in meta else None
    frames, eval_frames = _frame_lists(reader, meta, root, top_intr)

    scene_box = _scene_box(reader, meta)
    unbounded = _flag(reader, meta, "unbounded")
    masks_from_labels = _flag(reader, meta, "motion_masks_from_labels")
    approximate_poses = _flag(reader, meta, "approximate_poses")
    near = reader.number(meta, "near", "top level", -1.0)
    far = reader.number(meta, "far", "top level", -1.0)
    if near >= 0 and far >= 0 and far <= near:
        raise reader.fail("far", f"far ({far}) must be greater than near ({near})")

    if check_files:
        num_inst = max((inst.id for inst in instances), default=0) + 1
        _check_files(reader, frames, "frames", len(classes), num_inst)
        _check_files(reader, eval_frames, "eval_frames", len(classes), num_inst)

    known = {"classes", "instances", "frames", "eval_frames", "scene_box", "near", "far", "fl_x", "fl_y", "cx", "cy"}
    known |= {"w", "h", "k1", "k2", "p1", "p2", "camera_model", "format", "version"}
    known |= {"unbounded", "motion_masks_from_labels", "approximate_poses"}
    return SceneDescription(
        root=root,
        classes=classes,
        frames=frames,
        eval_frames=eval_frames,
        instances=instances,
        scene_box=scene_box,
        near=near if near >= 0 else None,
        far=far if far >= 0 else None,
        extra={k: v for k, v in meta.items() if k not in known},
        unbounded=unbounded,
        motion_masks_from_labels=masks_from_labels,
        approximate_poses=approximate_poses,
    )


# ----------------------------------------------------------------------------------------------
# SceneDescription -> transforms.json


def _relative(path: Optional[Path], root: Path) -> Optional[str]:
    if path is None:
        return None
    path = Path(path)
    return (path if not path.is_absolute() else path.relative_to(root)).as_posix()


def _frame_json(frame: FrameRecord, root: Path, shared: Optional[Intrinsics]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "file_path": _relative(frame.image, root),
        "transform_matrix": np.asarray(frame.camera_to_world, dtype=np.float64).tolist(),
        "time": float(frame.time),
    }
    if frame.intrinsics != shared:
        out.update(_intrinsics_json(frame.intrinsics))
        if shared is not None and shared.has_distortion:
            # distortion terms a frame leaves out are inherited from the top level on reading
            out.update({k: getattr(frame.intrinsics, k) for k in ("k1", "k2", "p1", "p2")})
    for key, path in (
        ("semantics_path", frame.semantics),
        ("instance_path", frame.instances),
        ("flow_fwd_path", frame.flow_fwd),
        ("flow_bwd_path", frame.flow_bwd),
        ("motion_mask_path", frame.motion_mask),
        ("depth_path", frame.depth),
    ):
        if path is not None:
            out[key] = _relative(path, root)
    if frame.view_set:
        out["view_set"] = frame.view_set
    return out


def _intrinsics_json(intr: Intrinsics) -> dict[str, Any]:
    out: dict[str, Any] = {"camera_model": "OPENCV" if intr.has_distortion else "PINHOLE"}
    out.update({k: getattr(intr, k) for k in ("fl_x", "fl_y", "cx", "cy", "w", "h")})
    if intr.has_distortion:
        out.update({k: getattr(intr, k) for k in ("k1", "k2", "p1", "p2")})
    return out


def save_scene(scene: SceneDescription) -> Path:
    """Writes ``scene.root/transforms.json``. File paths must lie inside ``scene.root``."""
    root = Path(scene.root)
    intrinsics = {f.intrinsics for f in scene.frames}
    shared = next(iter(intrinsics)) if len(intrinsics) == 1 else None
    meta: dict[str, Any] = {"format": "semflow", "version": FORMAT_VERSION}
    if shared is not None:
        meta.update(_intrinsics_json(shared))
    if scene.scene_box is not None:
        meta["scene_box"] = np.asarray(scene.scene_box, dtype=np.float64).tolist()
    if scene.near is not None:
        meta["near"] = float(scene.near)
    if scene.far is not None:
        meta["far"] = float(scene.far)
    if scene.unbounded:
        meta["unbounded"] = True
    if scene.motion_masks_from_labels:
        meta["motion_masks_from_labels"] = True
    if scene.approximate_poses:
        meta["approximate_poses"] = True
    meta["classes"] = [{"name": c.name, "color": list(c.color), "dynamic": c.dynamic} for c in scene.classes]
    if scene.instances:
        meta["instances"] = [{"id": i.id, "class": i.class_name, "name": i.name} for i in scene.instances]
    meta.update(scene.extra)
    meta["frames"] = [_frame_json(f, root, shared) for f in scene.frames]
    if scene.eval_frames:
        meta["eval_frames"] = [_frame_json(f, root, shared) for f in scene.eval_frames]
    root.mkdir(parents=True, exist_ok=True)
    path = root / SCENE_FILE
    path.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return path
