"""Finding and checking the files of a DynNeRF/NSFF scene folder, before anything is converted.

Layout (one scene folder; ``labelmap.txt`` and ``foreground_object.txt`` may sit in its parent, the dataset
root, as in the Semantic Flow release)::

    poses_bounds.npy          N x 17 LLFF poses and bounds (required)
    images/                   N full-resolution frames (required unless images_<f>/ exists)
    images_<f>/               the frames downscaled by f (optional; created in the cache when missing)
    SegmentationClass_train/  colour-coded label PNGs (or SegmentationClass/, any SegmentationClass*/)
    labelmap.txt              CVAT / Pascal-VOC label map, "name:R,G,B::" lines after a header line
    foreground_object.txt     names of the moving classes, one per line
    motion_masks/             optional masks, non-zero = moving (used for frames without labels)
    flow/                     optional %03d_fwd.npz / %03d_bwd.npz (keys flow, mask); estimated when absent
    disp/                     ignored (the model uses no monocular depth)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from semflow_ns.data.dynnerf.llff import LLFFCameras, read_poses_bounds
from semflow_ns.data.format import SceneFormatError, SemanticClass, image_size
from semflow_ns.data.producers.files import check_frame_count, list_images, pair_files
from semflow_ns.data.producers.labels import mark_dynamic, read_labelmap, read_name_list


@dataclass(frozen=True)
class DynNeRFOptions:
    """How a DynNeRF folder is read (everything that changes the converted scene)."""

    downscale_factor: int = 2
    """Use images_<factor>/ (DynNeRF trains at factor 2); 1 uses images/."""
    labels_dir: str = "auto"
    """Label folder name; auto = SegmentationClass_train, SegmentationClass or another SegmentationClass*;
    none = ignore labels."""
    labelmap: Optional[Path] = None
    """Label map; default labelmap.txt in the scene folder, else in its parent."""
    foreground: Optional[Path] = None
    """Moving-class names; default foreground_object.txt in the scene folder, else in its parent."""
    resize_labels: bool = False
    """Resize labels of another size to the frames (nearest neighbour) instead of failing."""
    allow_missing_labels: bool = False
    """Frames without a label file are unlabelled instead of an error."""
    flow_preset: str = "medium"
    """OpenCV DIS preset used when flow/ is missing or incomplete."""


@dataclass
class DynNeRFLayout:
    """The checked inputs of one DynNeRF scene folder."""

    root: Path
    cameras: LLFFCameras
    full_images: Optional[list[Path]]
    """images/ (None when absent)."""
    images: Optional[list[Path]]
    """images_<factor>/ (None when it has to be created from images/)."""
    classes: list[SemanticClass]
    labels: list[Optional[Path]] = field(default_factory=list)
    label_sources: list[Path] = field(default_factory=list)
    """The label map and foreground list actually read."""
    motion_masks: list[Optional[Path]] = field(default_factory=list)
    flows: Optional[list[tuple[Optional[Path], Optional[Path]]]] = None
    """Per frame (fwd, bwd) flow files, or None when flow/ is missing or incomplete."""

    def input_files(self) -> list[Path]:
        """Every file the conversion reads (for the cache fingerprint)."""
        files = [self.root / "poses_bounds.npy", *self.label_sources]
        files += self.images if self.images is not None else (self.full_images or [])
        files += [p for p in self.labels if p is not None] + [p for p in self.motion_masks if p is not None]
        for fwd, bwd in self.flows or []:
            files += [p for p in (fwd, bwd) if p is not None]
        return files


def _beside(root: Path, name: str, override: Optional[Path]) -> Optional[Path]:
    if override is not None:
        if not Path(override).is_file():
            raise SceneFormatError(f"{override}: file not found")
        return Path(override)
    for folder in (root, root.parent):
        if (folder / name).is_file():
            return folder / name
    return None


def _labels_folder(root: Path, labels_dir: str) -> Optional[Path]:
    if labels_dir == "none":
        return None
    if labels_dir != "auto":
        if not (root / labels_dir).is_dir():
            raise SceneFormatError(f"{root / labels_dir}: label folder not found")
        return root / labels_dir
    for name in ("SegmentationClass_train", "SegmentationClass"):
        if (root / name).is_dir():
            return root / name
    others = sorted(p for p in root.glob("SegmentationClass*") if p.is_dir())
    return others[0] if others else None


def _classes(root: Path, options: DynNeRFOptions, has_labels: bool) -> tuple[list[SemanticClass], list[Path]]:
    labelmap = _beside(root, "labelmap.txt", options.labelmap)
    if labelmap is None:
        if has_labels:
            raise SceneFormatError(
                f"{root}: colour-coded labels need labelmap.txt (in the scene folder or its parent, or --labelmap)"
            )
        return [SemanticClass("background", (0, 0, 0))], []
    classes = read_labelmap(labelmap)
    foreground = _beside(root, "foreground_object.txt", options.foreground)
    if foreground is None:
        return classes, [labelmap]
    return mark_dynamic(classes, read_name_list(foreground), foreground), [labelmap, foreground]


def _flows(root: Path, count: int) -> Optional[list[tuple[Optional[Path], Optional[Path]]]]:
    folder = root / "flow"
    if not folder.is_dir():
        return None
    pairs = []
    for i in range(count):
        fwd = folder / f"{i:03d}_fwd.npz" if i < count - 1 else None
        bwd = folder / f"{i:03d}_bwd.npz" if i > 0 else None
        if any(p is not None and not p.is_file() for p in (fwd, bwd)):
            return None
        pairs.append((fwd, bwd))
    return pairs


def _checked_count(images: list[Path], cameras: LLFFCameras, root: Path) -> None:
    if len(images) != len(cameras):
        raise SceneFormatError(
            f"{root / 'poses_bounds.npy'}: {len(cameras)} rows but {images[0].parent} holds {len(images)} images "
            "(one row per image, in sorted order)"
        )


def read_layout(root: Path, options: DynNeRFOptions) -> DynNeRFLayout:
    """Finds and checks the inputs of a DynNeRF folder without converting anything.

    Raises:
        SceneFormatError: naming the file (and line or row) of the first problem found.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise SceneFormatError(f"{root}: DynNeRF scene folder not found")
    if not (root / "poses_bounds.npy").is_file():
        raise SceneFormatError(f"{root / 'poses_bounds.npy'}: not found; a DynNeRF/LLFF scene folder needs one")
    if options.downscale_factor < 1:
        raise SceneFormatError(f"--downscale-factor must be at least 1, got {options.downscale_factor}")
    cameras = read_poses_bounds(root / "poses_bounds.npy")
    full = list_images(root / "images") if (root / "images").is_dir() else None
    scaled_dir = root / ("images" if options.downscale_factor == 1 else f"images_{options.downscale_factor}")
    images = list_images(scaled_dir) if scaled_dir.is_dir() else None
    if images is None and full is None:
        raise SceneFormatError(f"{root}: neither images/ nor {scaled_dir.name}/ exists")
    frames = images if images is not None else full
    assert frames is not None
    _checked_count(frames, cameras, root)
    if full is not None and images is not None:
        _checked_count(full, cameras, root)
    check_frame_count(len(frames), root / "poses_bounds.npy")
    label_folder = _labels_folder(root, options.labels_dir)
    classes, sources = _classes(root, options, label_folder is not None)
    labels = [None] * len(frames)
    if label_folder is not None:
        files = list_images(label_folder, "label images")
        labels = pair_files(frames, files, f"label images in {label_folder}", options.allow_missing_labels)
    masks = [None] * len(frames)
    if (root / "motion_masks").is_dir():
        masks = pair_files(frames, list_images(root / "motion_masks", "motion masks"), "motion masks", True)
    layout = DynNeRFLayout(root, cameras, full, images, classes, labels, sources, masks, _flows(root, len(frames)))
    _check_image_sizes(layout)
    return layout


def _check_image_sizes(layout: DynNeRFLayout) -> None:
    for images in (layout.full_images, layout.images):
        if images is None:
            continue
        size = image_size(images[0])
        for path in images[1:]:
            if image_size(path) != size:
                raise SceneFormatError(f"{path}: {image_size(path)} (w, h) differs from {images[0].name} {size}")
