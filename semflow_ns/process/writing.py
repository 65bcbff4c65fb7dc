"""The slow stages of ``semflow-process-data``: camera geometry (SfM or supplied), optical flow, writing.

The world of the written scene is normalised like DynNeRF's (see :mod:`semflow_ns.data.producers.scene_geometry`);
the similarity applied to the SfM / supplied world is stored as ``applied_transform`` in transforms.json (3x4, as
nerfstudio stores it), and the SfM / supplied points, moved into the normalised world, as ``sparse_pc.ply``
(``ply_file_path``), so that nerfstudio's own ``nerfstudio-data`` reads the scene too.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pycolmap
from PIL import Image
from rich.console import Console

from semflow_ns.data.format import (
    FrameRecord,
    InstanceInfo,
    Intrinsics,
    SceneDescription,
    SemanticClass,
    load_scene,
    save_scene,
)
from semflow_ns.data.producers.optical_flow import FrameFlow
from semflow_ns.data.producers.point_cloud import POINT_CLOUD_FILE, point_colors, write_point_cloud
from semflow_ns.data.producers.scene_files import consistent_fraction, write_flow_files, write_frame_files
from semflow_ns.data.producers.scene_geometry import (
    bounds_from_points,
    forward_facing_normalization,
    unbounded_scene_range,
)
from semflow_ns.process.flow_tracks import static_for_tracking
from semflow_ns.process.frames import InputFrame, frame_times
from semflow_ns.process.label_input import Labels, palette
from semflow_ns.process.objects import ObjectOptions, find_objects, object_labels
from semflow_ns.process.observations import Observations
from semflow_ns.process.options import PoseStats, ProcessOptions, ProcessReport
from semflow_ns.process.pose_chain import estimate_poses
from semflow_ns.process.pose_steps import ChainInputs
from semflow_ns.process.poses_input import DEFAULT_BOUNDS, SuppliedPoses
from semflow_ns.process.rotation_only import DEPTH_PRIOR
from semflow_ns.process.sparse_depth import write_sparse_depths


@dataclass
class Geometry:
    """Frames kept after SfM and their cameras in the normalised world."""

    frames: list[InputFrame]
    kept: list[int]
    """Indices of ``frames`` into the frames read (SfM may drop unregistered frames at either end)."""
    images: list[Path]
    camera_to_world: np.ndarray
    intrinsics: list[Intrinsics]
    scene_box: np.ndarray
    near: float
    far: float
    transform: np.ndarray
    """[4, 4] similarity from the SfM / supplied world to the normalised one."""
    sparse_depths: list[dict[str, Path]] = dataclasses.field(default_factory=list)
    """Per kept frame, its sparse-depth file (FrameRecord keyword arguments; empty without an exact SfM pose)."""
    points: Optional[np.ndarray] = None
    """[M, 3] SfM / supplied points in the normalised world (None without points)."""


def _write_images(root: Path, frames: list[InputFrame]) -> list[Path]:
    """Writes the frames into ``root/images``: a copy of the input image when it is a PNG or JPEG kept at its size."""
    paths = []
    for frame in frames:
        unchanged = frame.source is not None and frame.source_size == (frame.rgb.shape[1], frame.rgb.shape[0])
        copy = unchanged and frame.source is not None and frame.source.suffix.lower() in (".jpg", ".jpeg", ".png")
        paths.append(write_frame_files(root, frame.name, frame.source if copy and frame.source else frame.rgb)["image"])
    return paths


def _static_masks(images: list[Path], labels: Optional[Labels]) -> list[Optional[np.ndarray]]:
    """Per frame, True where no moving class is (None: the frame has no label, everything counts as static)."""
    dynamic = [] if labels is None else [i for i, c in enumerate(labels.classes) if c.dynamic]
    out: list[Optional[np.ndarray]] = []
    for i in range(len(images)):
        ids = None if labels is None else labels.semantics[i]
        out.append(None if ids is None else ~np.isin(ids, dynamic))
    return out


def _colmap_masks(folder: Path, images: list[Path], static: list[Optional[np.ndarray]]) -> None:
    """COLMAP masks ``<image name>.png``: 0 on moving classes (no keypoints there), 255 elsewhere."""
    folder.mkdir(parents=True)
    for image, keep in zip(images, static, strict=True):
        if keep is None:
            with Image.open(image) as opened:
                width, height = opened.size
            keep = np.ones((height, width), bool)
        Image.fromarray(keep.astype(np.uint8) * 255).save(folder / f"{image.name}.png")


def _sfm_masks(
    images: list[Path], labels: Optional[Labels], motion: Optional[list[np.ndarray]]
) -> tuple[list[Optional[np.ndarray]], list[np.ndarray]]:
    """Per frame where SIFT features and rotation-only corners may be (the labels' static part; without labels,
    what the flow motion masks do not mark moving), and where flow tracks may be (both)."""
    static = _static_masks(images, labels)
    if motion is None:
        return static, []
    tracks = [static_for_tracking(m, s) for m, s in zip(motion, static, strict=True)]
    unlabelled = [static_for_tracking(m, None) if s is None else s for m, s in zip(motion, static, strict=True)]
    return unlabelled, tracks


def _sfm(
    root: Path,
    frames: list[InputFrame],
    images: list[Path],
    labels: Optional[Labels],
    options: ProcessOptions,
    console: Console,
    flow: tuple[list[FrameFlow], Optional[list[np.ndarray]]],
) -> tuple[np.ndarray, list[Intrinsics], Optional[np.ndarray], list[int], PoseStats, dict[int, Observations]]:
    """Runs the pose chain on the written frames; returns (c2w [K, 4, 4], intrinsics, points [M, 3] or None,
    kept frame indices, statistics, observations of the frames with an exact SfM pose)."""
    flows, motion = flow
    static, track_static = _sfm_masks(images, labels, motion)
    _colmap_masks(root / "colmap" / "masks", images, static)
    pycolmap.logging.minloglevel = 0 if options.verbose else 3
    console.print(f"Structure from motion (pycolmap {pycolmap.__version__}, {options.camera_model})...")
    inputs = ChainInputs(
        root / "images", root / "colmap" / "masks", [p.name for p in images], root / "colmap",
        [f.rgb for f in frames], static, flows if motion is not None else [], track_static,
    )  # fmt: skip
    settings = {
        "camera_model": options.camera_model,
        "num_threads": options.num_threads or -1,
        "max_num_features": options.max_num_features,
    }
    result = estimate_poses(inputs, settings, options.min_registered, options.pose_fallback, console)
    stats = PoseStats(
        pose_step=result.step,
        approximate_poses=result.approximate,
        pose_attempts=[a.as_dict() for a in result.attempts],
        registered=result.registered,
        trimmed=len(images) - (result.last - result.first + 1),
        interpolated=[images[i].stem for i in result.interpolated],
        reprojection_error_px=result.reprojection_error,
        points=None if result.points is None else len(result.points),
        parallax=result.parallax,
    )
    for leftover in ("database.db", "masks", "flow"):
        target = root / "colmap" / leftover
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    if result.points is None:
        shutil.rmtree(root / "colmap", ignore_errors=True)
    kept = list(range(result.first, result.last + 1))
    return result.camera_to_world, [result.intrinsics] * len(kept), result.points, kept, stats, result.observations


def _check_baseline(c2w: np.ndarray, bounds: np.ndarray, console: Console) -> None:
    centres = c2w[:, :3, 3]
    spread = float(np.linalg.norm(centres.max(0) - centres.min(0)))
    if spread < 0.02 * float(np.median(bounds[:, 0])):
        console.print(
            f"[yellow]The camera barely moves (path extent {spread:.3g} vs nearest depth "
            f"{np.median(bounds[:, 0]):.3g}): depth will be poorly constrained.[/yellow]"
        )


def estimate_geometry(
    root: Path,
    frames: list[InputFrame],
    labels: Optional[Labels],
    supplied: Optional[SuppliedPoses],
    options: ProcessOptions,
    console: Console,
    flow: tuple[list[FrameFlow], Optional[list[np.ndarray]]] = ([], None),
) -> tuple[Geometry, PoseStats]:
    """Writes the frames into ``root/images``, gets their cameras (SfM, or ``supplied``) and normalises the world.

    ``flow``: the optical flow of every frame and its flow motion masks (uint8 levels; None: not computed), for
    the flow-track SfM step and the masks of the SIFT steps. Frames that SfM could not register at either end of
    the video are dropped (see ``Geometry.kept``). Frames with an exact SfM pose get sparse-depth files.
    """
    images = _write_images(root, frames)
    points, bounds, observations = None, None, {}
    if supplied is None:
        c2w, intrinsics, points, kept, stats, observations = _sfm(root, frames, images, labels, options, console, flow)
        for index in sorted(set(range(len(frames))) - set(kept)):
            images[index].unlink()
    else:
        stats = PoseStats(pose_source=str(options.poses), pose_step="supplied")
        c2w, intrinsics, points, bounds = (
            supplied.camera_to_world,
            supplied.intrinsics,
            supplied.points,
            supplied.bounds,
        )
        kept = list(range(len(frames)))
    if bounds is None and points is not None:
        bounds = bounds_from_points(c2w, intrinsics, points)
    if bounds is None:
        prior = DEPTH_PRIOR if stats.pose_step == "rotation-only" else DEFAULT_BOUNDS
        if options.bounds is None:
            console.print(f"[yellow]No scene points or bounds: assuming depths {prior} (set --bounds).[/yellow]")
        bounds = np.tile(options.bounds or prior, (len(kept), 1)).astype(np.float64)
    _check_baseline(c2w, bounds, console)
    norm = forward_facing_normalization(c2w, bounds[:, 0])
    poses = norm.poses(c2w)
    scaled_points = None if points is None else norm.points(points)
    box, near, far = unbounded_scene_range(poses, intrinsics, bounds * norm.scale, scaled_points)
    kept_frames, kept_images = [frames[i] for i in kept], [images[i] for i in kept]
    seen = [observations.get(i) for i in kept]
    sparse = write_sparse_depths(root, [f.name for f in kept_frames], poses, intrinsics, seen, norm)
    geometry = Geometry(kept_frames, kept, kept_images, poses, intrinsics, box, near, far, norm.transform, sparse)
    geometry.points = scaled_points
    return geometry, stats


def kept_flows(geometry: Geometry, flows: list[FrameFlow]) -> list[FrameFlow]:
    """The flow of the kept frames (``flows``: of every frame read), without flow beyond the first and last."""
    kept = [dataclasses.replace(flows[i]) for i in geometry.kept]
    kept[0].bwd, kept[0].bwd_mask = None, None
    kept[-1].fwd, kept[-1].fwd_mask = None, None
    return kept


def write_flows(root: Path, geometry: Geometry, flows: list[FrameFlow]) -> tuple[list[dict[str, Path]], float]:
    """Writes the optical flow (``flows``: of every frame read) of the kept frames; returns the flow files of each
    frame (FrameRecord keyword arguments) and the share of their flow pixels that pass the forward-backward check."""
    kept = kept_flows(geometry, flows)
    return write_flow_files(root, [f.name for f in geometry.frames], kept), consistent_fraction(kept)


def write_motion_masks(root: Path, geometry: Geometry, motion: list[np.ndarray]) -> tuple[list[dict[str, Path]], float]:
    """Writes every kept frame's motion mask (``motion``: of every frame read, estimated from the flow, see
    :mod:`semflow_ns.process.motion`); returns the mask file of each frame (FrameRecord keyword arguments) and the
    mean share of pixels marked moving."""
    files, moving = [], []
    for index, frame in zip(geometry.kept, geometry.frames, strict=True):
        levels = motion[index]
        files.append(write_frame_files(root, frame.name, motion=levels))
        moving.append(float((levels == 255).mean()))
    return files, float(np.mean(moving))


def motion_labels(
    geometry: Geometry, flows: list[FrameFlow], motion: list[np.ndarray], console: Console
) -> Optional[Labels]:
    """Labels of a video without labels: the moving objects found in the motion masks
    (:mod:`semflow_ns.process.objects`) as instances of a ``moving`` class over a static ``background``; None
    (with a message) when nothing moves. ``flows`` and ``motion``: of every frame read."""
    options = ObjectOptions()
    console.print("Objects from motion: grouping the moving pixels of the motion masks into objects...")
    masks = [motion[i] for i in geometry.kept]
    ids = find_objects([f.rgb for f in geometry.frames], masks, kept_flows(geometry, flows), options)
    count = max(int(i.max()) for i in ids)
    if count == 0:
        console.print(
            "[yellow]Objects from motion: nothing in this video moves against the background for "
            f"{options.min_frames} frames or more; the scene has the static background class only.[/yellow]"
        )
        return None
    semantics: list[Optional[np.ndarray]] = [None] * (max(geometry.kept) + 1)
    instance_ids: list[Optional[np.ndarray]] = [None] * len(semantics)
    for index, levels, frame_ids in zip(geometry.kept, masks, ids, strict=True):
        semantics[index], instance_ids[index] = object_labels(levels, frame_ids)
    classes = [SemanticClass("background", (0, 0, 0)), SemanticClass("moving", palette(2)[1], dynamic=True)]
    instances = [InstanceInfo(k, "moving", f"moving {k}") for k in range(1, count + 1)]
    names = ", ".join(i.name for i in instances[:4]) + (f", ... {instances[-1].name}" if count > 4 else "")
    console.print(
        f'Objects from motion: {count} moving object(s): {names} (rename them in transforms.json, "instances")'
    )
    return Labels(classes, instances, semantics, instance_ids, "motion")


def _label_files(root: Path, name: str, labels: Labels, index: int, motion: bool) -> dict[str, Path]:
    """Label images of one frame, and with ``motion`` its motion mask made from the moving classes."""
    ids = labels.semantics[index]
    if ids is None:
        return {}
    moving = np.isin(ids, [i for i, c in enumerate(labels.classes) if c.dynamic]) if motion else None
    instances = None if labels.instance_ids is None else labels.instance_ids[index]
    return write_frame_files(root, name, semantics=ids, instances=instances, motion=moving)


def write_frames(
    root: Path, geometry: Geometry, labels: Optional[Labels], files: list[dict[str, Path]], label_motion: bool
) -> list[FrameRecord]:
    """Writes the labels (and with ``label_motion`` motion masks from their moving classes) of the kept frames;
    returns the records of the scene's frames, with the files already written (``files``, per frame)."""
    frames = []
    for i, (frame, time_, image) in enumerate(
        zip(geometry.frames, frame_times(geometry.frames), geometry.images, strict=True)
    ):
        extra: dict[str, Path] = {**files[i], **(geometry.sparse_depths[i] if geometry.sparse_depths else {})}
        if labels is not None:
            extra.update(_label_files(root, frame.name, labels, geometry.kept[i], label_motion))
        pose, intr = geometry.camera_to_world[i], geometry.intrinsics[i]
        frames.append(FrameRecord(image=image, camera_to_world=pose, time=time_, intrinsics=intr, **extra))
    return frames


def scene_classes(labels: Optional[Labels]) -> list[SemanticClass]:
    """The classes of the scene: those of the labels, else one static "background" class."""
    return labels.classes if labels is not None else [SemanticClass("background", (0, 0, 0))]


def _json_ready(report: ProcessReport) -> dict[str, Any]:
    values = dataclasses.asdict(report)
    values["output"] = str(values["output"])
    values["seconds"] = {k: round(v, 2) for k, v in values["seconds"].items()}
    return values


def _point_cloud(root: Path, geometry: Geometry) -> Optional[Path]:
    """Writes the points of ``geometry`` (if any) with their colours in the frames; returns the file."""
    if geometry.points is None or not len(geometry.points):
        return None
    images = [f.rgb for f in geometry.frames]
    colors = point_colors(geometry.points, geometry.camera_to_world, geometry.intrinsics, images)
    return write_point_cloud(root / POINT_CLOUD_FILE, geometry.points, colors)


def write_scene(
    root: Path,
    frames: list[FrameRecord],
    classes: list[SemanticClass],
    labels: Optional[Labels],
    geometry: Geometry,
    options: ProcessOptions,
    report: ProcessReport,
) -> None:
    """Writes the point cloud and transforms.json into ``root``, with ``report`` as its "processing" record, and
    validates the scene."""
    meta = {"processing": _json_ready(report)}
    meta["source"] = str(options.video or options.images)
    scene = SceneDescription(
        root, classes, frames, instances=labels.instances if labels is not None else [], scene_box=geometry.scene_box,
        near=geometry.near, far=geometry.far, extra=meta, unbounded=True, motion_masks_from_labels=report.motion_masks == "labels",
        approximate_poses=report.approximate_poses, applied_transform=geometry.transform,
        point_cloud=_point_cloud(root, geometry),
    )  # fmt: skip
    save_scene(scene)
    load_scene(root)
