"""Turning per-frame masks or label images into the scene's classes, instances and class-id maps.

Encodings (``--label-format``; ``auto`` picks ``color`` when a label map is given, else ``binary`` when every
value is 0 or 255, else ``ids``):

* ``binary`` - classes ``background`` (static) and ``object`` (moving);
* ``ids`` - every distinct non-zero id is an object: by default one class per id (``object_<id>``, moving)
  and one instance per id (instance id = the id). A class-names file names the ids (its k-th name is id k);
  ids given the same name share one class and stay separate instances (e.g. ``person`` for ids 1 and 2);
* ``color`` - classes from the label map (``name:R,G,B::`` lines); moving classes from ``--dynamic-classes``,
  else from ``foreground_object.txt`` beside the label map, else every class but the first.

``--dynamic-classes a,b`` overrides which classes move for every encoding; by default all but id 0 move.
Instance maps are written for ``ids`` only (instances of moving classes; 0 elsewhere).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import cv2
import numpy as np

from semflow_ns.data.format import InstanceInfo, SceneFormatError, SemanticClass
from semflow_ns.data.producers.labels import (
    binary_ids,
    grey_values,
    mark_dynamic,
    open_label,
    read_labelmap,
    read_name_list,
)
from semflow_ns.data.producers.labels import colors_to_ids as decode_colors
from semflow_ns.process.frames import InputFrame

LabelFormatOption = Literal["auto", "binary", "ids", "color"]


@dataclass(frozen=True)
class LabelOptions:
    """How the label files are read (the ``semflow-process-data`` label options)."""

    label_format: LabelFormatOption = "auto"
    labelmap: Optional[Path] = None
    class_names: Optional[Path] = None
    dynamic_classes: Optional[str] = None
    resize_labels: bool = False


@dataclass
class Labels:
    """Decoded labels of the kept frames, at the output resolution."""

    classes: list[SemanticClass]
    instances: list[InstanceInfo]
    semantics: list[Optional[np.ndarray]]
    """int64 [H, W] class ids per frame, None for an unlabelled frame."""
    instance_ids: Optional[list[Optional[np.ndarray]]]
    """int64 [H, W] instance ids per frame (``ids`` encoding only)."""
    label_format: str


def palette(count: int) -> list[tuple[int, int, int]]:
    """``count`` distinct display colours: black first (background), then well-spread hues."""
    colors = [(0, 0, 0)]
    for k in range(1, count):
        r, g, b = colorsys.hsv_to_rgb((k * 0.618034) % 1.0, 0.75, 0.95 if k % 2 else 0.7)
        colors.append((round(255 * r), round(255 * g), round(255 * b)))
    return colors[:count]


def _raw(path: Path, frame: InputFrame, options: LabelOptions, classes: list[SemanticClass]) -> np.ndarray:
    """Raw values (or colour class ids) of one label file, checked against and resized to its frame."""
    image = open_label(path)
    if image.size != frame.source_size and not options.resize_labels:
        raise SceneFormatError(
            f"{path}: label is {image.size} (w, h) but its frame {frame.source or frame.name} is {frame.source_size}; "
            "pass --resize-labels to resize labels with nearest neighbour"
        )
    if options.label_format == "color":
        assert options.labelmap is not None
        values = decode_colors(np.asarray(image.convert("RGB")), classes, path, options.labelmap)
    else:
        values = grey_values(image, path)
    height, width = frame.rgb.shape[:2]
    if values.shape != (height, width):
        values = cv2.resize(values.astype(np.int32), (width, height), interpolation=cv2.INTER_NEAREST)
    return values.astype(np.int64)


def _with_dynamics(classes: list[SemanticClass], options: LabelOptions, default: set[str]) -> list[SemanticClass]:
    if options.dynamic_classes is None:
        return [SemanticClass(c.name, c.color, c.name in default) for c in classes]
    names = [n.strip() for n in options.dynamic_classes.split(",") if n.strip()]
    unknown = sorted(set(names) - {c.name for c in classes})
    if unknown:
        raise SceneFormatError(
            f"--dynamic-classes: {unknown} are not classes; the classes are {[c.name for c in classes]}"
        )
    return [SemanticClass(c.name, c.color, c.name in names) for c in classes]


def _color_classes(options: LabelOptions) -> list[SemanticClass]:
    if options.labelmap is None:
        raise SceneFormatError("--label-format color needs --labelmap FILE ('name:R,G,B::' lines after a header)")
    classes = read_labelmap(options.labelmap)
    foreground = options.labelmap.parent / "foreground_object.txt"
    if options.dynamic_classes is None and foreground.is_file():
        return mark_dynamic(classes, read_name_list(foreground), foreground)
    return _with_dynamics(classes, options, {c.name for c in classes[1:]})


def _id_names(values: list[int], options: LabelOptions, files: list[Path]) -> dict[int, str]:
    if options.class_names is None:
        return {v: ("background" if v == 0 else f"object_{v}") for v in values}
    names = [name for _, name in read_name_list(options.class_names)]
    missing = [v for v in values if v >= len(names)]
    if missing:
        raise SceneFormatError(
            f"{options.class_names}: names ids 0-{len(names) - 1}, but the labels hold id {missing[0]} "
            f"(labels in {files[0].parent})"
        )
    return {v: names[v] for v in values}


def _id_labels(raw: list[Optional[np.ndarray]], options: LabelOptions, files: list[Path]) -> Labels:
    values = sorted({int(v) for r in raw if r is not None for v in np.unique(r)} | {0})
    names = _id_names(values, options, files)
    ordered = list(dict.fromkeys(names[v] for v in values))
    colors = palette(len(ordered))
    classes = [SemanticClass(n, colors[i]) for i, n in enumerate(ordered)]
    classes = _with_dynamics(classes, options, {n for n in ordered if n != names[0]})
    lut = np.zeros(max(values) + 1, dtype=np.int64)
    for v in values:
        lut[v] = ordered.index(names[v])
    moving = np.array([classes[lut[v]].dynamic and v != 0 for v in range(len(lut))])
    instances = [InstanceInfo(v, names[v], f"{names[v]} {v}") for v in values if moving[v]]
    semantics = [None if r is None else lut[r] for r in raw]
    instance_ids = [None if r is None else np.where(moving[r], r, 0) for r in raw] if instances else None
    return Labels(classes, instances, semantics, instance_ids, "ids")


def _binary_labels(raw: list[Optional[np.ndarray]], options: LabelOptions) -> Labels:
    names = ["background", "object"]
    if options.class_names is not None:
        listed = [name for _, name in read_name_list(options.class_names)]
        if len(listed) < 2:
            raise SceneFormatError(f"{options.class_names}: binary masks need two names (background, foreground)")
        names = listed[:2]
    classes = _with_dynamics(
        [SemanticClass(names[0], (0, 0, 0)), SemanticClass(names[1], palette(2)[1])], options, {names[1]}
    )
    return Labels(classes, [], [None if r is None else binary_ids(r) for r in raw], None, "binary")


def read_labels(frames: list[InputFrame], files: list[Optional[Path]], options: LabelOptions) -> Labels:
    """Decodes the label file of every kept frame (None = unlabelled) into classes, instances and id maps.

    Raises:
        SceneFormatError: naming the label file (or label map / class-names file and line) at fault: an
            unreadable file, a size that differs from its frame (without ``resize_labels``), a colour missing
            from the label map, an id without a class name, an unknown dynamic class.
    """
    label_format = options.label_format
    if label_format == "auto":
        label_format = "color" if options.labelmap is not None else "ids"
    resolved = LabelOptions(
        label_format, options.labelmap, options.class_names, options.dynamic_classes, options.resize_labels
    )
    classes = _color_classes(resolved) if label_format == "color" else []
    raw = [None if f is None else _raw(f, frame, resolved, classes) for f, frame in zip(files, frames, strict=True)]
    present = [p for p in files if p is not None]
    if label_format == "color":
        return Labels(classes, [], raw, None, "color")
    values = {int(v) for r in raw if r is not None for v in np.unique(r)}
    if options.label_format == "binary" or (options.label_format == "auto" and values <= {0, 255} and 255 in values):
        return _binary_labels(raw, resolved)
    return _id_labels(raw, resolved, present)
