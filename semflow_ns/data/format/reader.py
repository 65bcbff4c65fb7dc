"""``transforms.json`` -> :class:`~semflow_ns.data.format.records.SceneDescription`, following the schema table.

Every problem raises :class:`~semflow_ns.data.format.records.SceneFormatError` with the file and a JSON path
to the field at fault, so a bad scene fails before training starts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from semflow_ns.data.format.frame_files import (
    image_size,
    read_depth_map,
    read_flow,
    read_label_image,
    read_sparse_depth,
)
from semflow_ns.data.format.records import (
    SCENE_FILE,
    FrameRecord,
    InstanceInfo,
    Intrinsics,
    SceneDescription,
    SceneFormatError,
    SemanticClass,
)
from semflow_ns.data.format.schema import DISTORTION_KEYS, FRAME_KEYS, INTRINSIC_KEYS, SCENE_KEYS, Key, Kind, known_keys


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
    if default is not None and not any(k in obj for k in INTRINSIC_KEYS):
        return default
    d = default
    values = {k: reader.number(obj, k, where, None if d is None else float(getattr(d, k))) for k in INTRINSIC_KEYS}
    for k in DISTORTION_KEYS:
        values[k] = reader.number(obj, k, where, 0.0 if d is None else getattr(d, k))
    for k in ("fl_x", "fl_y", "w", "h"):
        if values[k] <= 0:
            raise reader.fail(f"{where}.{k}", f"must be positive, got {values[k]}")
    return Intrinsics(**{**values, "w": int(values["w"]), "h": int(values["h"])})  # type: ignore[arg-type]


SCENE_READ_ORDER = (
    Kind.CLASSES, Kind.INSTANCES, Kind.INTRINSICS, Kind.FRAMES, Kind.BOX, Kind.FLAG, Kind.DISTANCE, Kind.TRANSFORM,
    Kind.PATH,
)  # fmt: skip
"""Order in which the top-level keys are checked (rows of one kind keep their table order): the class list before
the instances that name classes, the camera keys before the frames that inherit them, the frames before the scalars,
the world's transform and point cloud last."""
FRAME_READ_ORDER = (Kind.TIME, Kind.INTRINSICS, "required path", Kind.NAME, Kind.MATRIX, Kind.PATH)
"""Order in which the keys of a frame are checked: time and camera, the image, its view set, its pose, its files."""


def _read_order(keys: tuple[Key, ...], order: tuple) -> list[Key]:
    def rank(key: Key) -> int:
        kind = "required path" if key.kind is Kind.PATH and key.required else key.kind
        return order.index(kind) if kind in order else len(order)

    return sorted(keys, key=rank)


def _frame_value(reader: _Reader, key: Key, obj: dict[str, Any], where: str, root: Path, intr: Optional[Intrinsics]):
    """The value of one FRAME_KEYS row of the frame ``obj``."""
    if key.kind is Kind.PATH:
        return reader.path(obj, key.json, where, root, required=key.required)
    if key.kind is Kind.MATRIX:
        return reader.matrix(obj, key.json, where)
    if key.kind is Kind.TIME:
        time = reader.number(obj, key.json, where)
        if not 0.0 <= time <= 1.0:
            raise reader.fail(f"{where}.{key.json}", f"{time} is outside [0, 1]")
        return time
    if key.kind is Kind.INTRINSICS:
        return _intrinsics(reader, obj, where, intr)
    if key.kind is Kind.NAME:
        value = obj.get(key.json, "")
        if not isinstance(value, str):
            raise reader.fail(f"{where}.{key.json}", f"expected a name (string), got {value!r}")
        return value
    raise AssertionError(f"frame key {key.json!r}: kind {key.kind} has no reader")


def _frame(reader: _Reader, obj: Any, where: str, root: Path, intr: Optional[Intrinsics]) -> FrameRecord:
    if not isinstance(obj, dict):
        raise reader.fail(where, f"expected an object, got {type(obj).__name__}")
    values = {
        key.attr: _frame_value(reader, key, obj, where, root, intr) for key in _read_order(FRAME_KEYS, FRAME_READ_ORDER)
    }
    return FrameRecord(**values)


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
        if f.depth is not None:
            try:
                read_depth_map(f.depth, size)
            except SceneFormatError as err:
                raise reader.fail(f"{where}.depth_path", str(err)) from err
        if f.sparse_depth is not None:
            try:
                read_sparse_depth(f.sparse_depth, size)
            except SceneFormatError as err:
                raise reader.fail(f"{where}.sparse_depth_path", str(err)) from err


def _frame_list(
    reader: _Reader, meta: dict[str, Any], key: Key, root: Path, top_intr: Optional[Intrinsics]
) -> list[FrameRecord]:
    """A list of frames. The required list (``frames``, the video) must be non-empty and in time order."""
    raw = meta.get(key.json, None if key.required else [])
    if key.required and (not isinstance(raw, list) or not raw):
        raise reader.fail(key.json, "expected a non-empty list of frames")
    if not isinstance(raw, list):
        raise reader.fail(key.json, "expected a list of frames")
    frames = [_frame(reader, f, f"{key.json}[{i}]", root, top_intr) for i, f in enumerate(raw)]
    for i in range(1, len(frames) if key.required else 0):
        if frames[i].time <= frames[i - 1].time:
            raise reader.fail(
                f"{key.json}[{i}].time",
                f"{frames[i].time} is not greater than {key.json}[{i - 1}].time = {frames[i - 1].time}; "
                "frames must be listed in time order",
            )
    return frames


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


def _transform(reader: _Reader, meta: dict[str, Any], key: str) -> Optional[np.ndarray]:
    """An optional top-level similarity (nerfstudio's 3x4 ``applied_transform``, or 4x4) as a [4, 4] array."""
    if meta.get(key) is None:
        return None
    try:
        mat = np.asarray(meta[key], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise reader.fail(key, f"expected a 3x4 (or 4x4) matrix of numbers ({err})") from err
    if mat.shape not in ((3, 4), (4, 4)) or not np.all(np.isfinite(mat)):
        raise reader.fail(key, f"expected a finite 3x4 (or 4x4) matrix, got {meta[key]}")
    if len(mat) == 4 and not np.array_equal(mat[3], [0.0, 0.0, 0.0, 1.0]):
        raise reader.fail(key, f"the last row of a 4x4 transform must be [0, 0, 0, 1], got {meta[key][3]}")
    return np.concatenate([mat[:3], [[0.0, 0.0, 0.0, 1.0]]], axis=0)


def _distance(reader: _Reader, meta: dict[str, Any], key: str) -> Optional[float]:
    """An optional top-level distance (None when absent or negative)."""
    value = reader.number(meta, key, "top level", -1.0)
    return value if value >= 0 else None


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

    values: dict[str, Any] = {"root": root}
    top_intr: Optional[Intrinsics] = None
    for key in _read_order(SCENE_KEYS, SCENE_READ_ORDER):
        if key.kind is Kind.INTRINSICS:
            top_intr = _intrinsics(reader, meta, "top level", None) if "fl_x" in meta else None
        elif key.kind is Kind.CLASSES:
            values[key.attr] = _classes(reader, meta.get(key.json))
        elif key.kind is Kind.INSTANCES:
            values[key.attr] = _instances(reader, meta.get(key.json), values["classes"])
        elif key.kind is Kind.FRAMES:
            values[key.attr] = _frame_list(reader, meta, key, root, top_intr)
        elif key.kind is Kind.BOX:
            values[key.attr] = _scene_box(reader, meta)
        elif key.kind is Kind.DISTANCE:
            values[key.attr] = _distance(reader, meta, key.json)
        elif key.kind is Kind.FLAG:
            values[key.attr] = _flag(reader, meta, key.json)
        elif key.kind is Kind.TRANSFORM:
            values[key.attr] = _transform(reader, meta, key.json)
        elif key.kind is Kind.PATH:
            values[key.attr] = reader.path(meta, key.json, "top level", root)
        elif key.kind is Kind.EXTRA:
            values[key.attr] = {k: v for k, v in meta.items() if k not in known_keys()}
        elif key.kind is not Kind.CONSTANT:
            raise AssertionError(f"scene key {key.json!r}: kind {key.kind} has no reader")
    near, far = values.get("near"), values.get("far")
    if near is not None and far is not None and far <= near:
        raise reader.fail("far", f"far ({far}) must be greater than near ({near})")
    scene = SceneDescription(**values)

    if check_files:
        num_inst = max((inst.id for inst in scene.instances), default=0) + 1
        _check_files(reader, scene.frames, "frames", len(scene.classes), num_inst)
        _check_files(reader, scene.eval_frames, "eval_frames", len(scene.classes), num_inst)
    return scene
