""":class:`~semflow_ns.data.format.records.SceneDescription` -> ``transforms.json``, following the schema table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from semflow_ns.data.format.records import FORMAT_VERSION, SCENE_FILE, FrameRecord, Intrinsics, SceneDescription
from semflow_ns.data.format.schema import CONSTANTS, DISTORTION_KEYS, FRAME_KEYS, INTRINSIC_KEYS, SCENE_KEYS, Kind


def _relative(path: Optional[Path], root: Path) -> Optional[str]:
    if path is None:
        return None
    path = Path(path)
    return (path if not path.is_absolute() else path.relative_to(root)).as_posix()


def _intrinsics_json(intr: Intrinsics) -> dict[str, Any]:
    out: dict[str, Any] = {"camera_model": "OPENCV" if intr.has_distortion else "PINHOLE"}
    out.update({k: getattr(intr, k) for k in INTRINSIC_KEYS})
    if intr.has_distortion:
        out.update({k: getattr(intr, k) for k in DISTORTION_KEYS})
    return out


def _frame_intrinsics(intr: Intrinsics, shared: Optional[Intrinsics]) -> dict[str, Any]:
    """A frame's camera keys: none when it has the shared (top-level) intrinsics."""
    if intr == shared:
        return {}
    out = _intrinsics_json(intr)
    if shared is not None and shared.has_distortion:
        # distortion terms a frame leaves out are inherited from the top level on reading
        out.update({k: getattr(intr, k) for k in DISTORTION_KEYS})
    return out


def _frame_json(frame: FrameRecord, root: Path, shared: Optional[Intrinsics]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in FRAME_KEYS:
        value = getattr(frame, key.attr)
        if key.kind is Kind.INTRINSICS:
            out.update(_frame_intrinsics(value, shared))
        elif key.kind is Kind.PATH:
            if value is not None:
                out[key.json] = _relative(value, root)
        elif key.kind is Kind.MATRIX:
            out[key.json] = np.asarray(value, dtype=np.float64).tolist()
        elif key.kind is Kind.TIME:
            out[key.json] = float(value)
        elif key.kind is Kind.NAME:
            if value:
                out[key.json] = value
        else:
            raise AssertionError(f"frame key {key.json!r}: kind {key.kind} has no writer")
    return out


def _scene_value(kind: Kind, value: Any, root: Path, shared: Optional[Intrinsics]) -> Any:
    """The JSON value of one SCENE_KEYS row, or None to leave the key out."""
    if kind is Kind.BOX:
        return None if value is None else np.asarray(value, dtype=np.float64).tolist()
    if kind is Kind.DISTANCE:
        return None if value is None else float(value)
    if kind is Kind.FLAG:
        return True if value else None
    if kind is Kind.TRANSFORM:
        return None if value is None else np.asarray(value, dtype=np.float64)[:3].tolist()
    if kind is Kind.PATH:
        return _relative(value, root)
    if kind is Kind.CLASSES:
        return [{"name": c.name, "color": list(c.color), "dynamic": c.dynamic} for c in value]
    if kind is Kind.INSTANCES:
        return [{"id": i.id, "class": i.class_name, "name": i.name} for i in value] if value else None
    if kind is Kind.FRAMES:
        return [_frame_json(f, root, shared) for f in value]
    raise AssertionError(f"kind {kind} has no writer")


def save_scene(scene: SceneDescription) -> Path:
    """Writes ``scene.root/transforms.json``. File paths must lie inside ``scene.root``."""
    root = Path(scene.root)
    intrinsics = {f.intrinsics for f in scene.frames}
    shared = next(iter(intrinsics)) if len(intrinsics) == 1 else None
    meta: dict[str, Any] = {}
    for key in SCENE_KEYS:
        if key.kind is Kind.CONSTANT:
            meta[key.json] = FORMAT_VERSION if key.json == "version" else CONSTANTS[key.json]
        elif key.kind is Kind.INTRINSICS:
            meta.update({} if shared is None else _intrinsics_json(shared))
        elif key.kind is Kind.EXTRA:
            meta.update(scene.extra)
        else:
            value = _scene_value(key.kind, getattr(scene, key.attr), root, shared)
            if value is not None and (key.required or value != []):
                meta[key.json] = value
    root.mkdir(parents=True, exist_ok=True)
    path = root / SCENE_FILE
    path.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return path
