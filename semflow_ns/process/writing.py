"""The slow stages of ``semflow-process-data``: camera geometry (SfM or supplied), optical flow, writing.

The world of the written scene is normalised like DynNeRF's (see :mod:`semflow_ns.data.scene_geometry`);
the similarity applied to the SfM / supplied world is stored as ``applied_transform`` in transforms.json.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pycolmap
from PIL import Image
from rich.console import Console

from semflow_ns.data.optical_flow import estimate_video_flow
from semflow_ns.data.scene_format import (
    FrameRecord,
    Intrinsics,
    SceneDescription,
    SemanticClass,
    load_scene,
    save_scene,
    write_flow,
    write_label_image,
)
from semflow_ns.data.scene_geometry import bounds_from_points, forward_facing_normalization, unbounded_scene_range
from semflow_ns.process.frames import InputFrame, frame_times
from semflow_ns.process.label_input import Labels
from semflow_ns.process.motion import motion_mask
from semflow_ns.process.pose_chain import ChainInputs, estimate_poses
from semflow_ns.process.poses_input import DEFAULT_BOUNDS, SuppliedPoses

if TYPE_CHECKING:
    from semflow_ns.process.pipeline import ProcessOptions, ProcessReport


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


def _write_images(root: Path, frames: list[InputFrame]) -> list[Path]:
    (root / "images").mkdir()
    paths = []
    for frame in frames:
        unchanged = frame.source is not None and frame.source_size == (frame.rgb.shape[1], frame.rgb.shape[0])
        if unchanged and frame.source is not None and frame.source.suffix.lower() in (".jpg", ".jpeg", ".png"):
            path = root / "images" / f"{frame.name}{frame.source.suffix.lower()}"
            shutil.copyfile(frame.source, path)
        else:
            path = root / "images" / f"{frame.name}.png"
            Image.fromarray(frame.rgb).save(path)
        paths.append(path)
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


def _sfm(
    root: Path,
    frames: list[InputFrame],
    images: list[Path],
    labels: Optional[Labels],
    options: "ProcessOptions",
    report: "ProcessReport",
    console: Console,
) -> tuple[np.ndarray, list[Intrinsics], Optional[np.ndarray], list[int]]:
    """Runs the pose chain on the written frames; returns (c2w [K, 4, 4], intrinsics, points [M, 3] or None,
    kept frame indices) and fills the pose fields of ``report``."""
    static = _static_masks(images, labels)
    _colmap_masks(root / "colmap" / "masks", images, static)
    pycolmap.logging.minloglevel = 0 if options.verbose else 3
    console.print(f"Structure from motion (pycolmap {pycolmap.__version__}, {options.camera_model}, sequential)...")
    inputs = ChainInputs(
        root / "images", root / "colmap" / "masks", [p.name for p in images], root / "colmap",
        [f.rgb for f in frames], static,
    )  # fmt: skip
    settings = {
        "camera_model": options.camera_model,
        "num_threads": options.num_threads or -1,
        "max_num_features": options.max_num_features,
    }
    result = estimate_poses(inputs, settings, options.min_registered, options.pose_fallback, console)
    report.pose_step, report.approximate_poses = result.step, result.approximate
    report.pose_attempts = [a.as_dict() for a in result.attempts]
    report.registered = result.registered
    report.points = None if result.points is None else len(result.points)
    report.reprojection_error_px = result.reprojection_error
    report.trimmed = len(images) - (result.last - result.first + 1)
    report.interpolated = [images[i].stem for i in result.interpolated]
    for leftover in ("database.db", "masks"):
        target = root / "colmap" / leftover
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    if result.points is None:
        shutil.rmtree(root / "colmap", ignore_errors=True)
    kept = list(range(result.first, result.last + 1))
    return result.camera_to_world, [result.intrinsics] * len(kept), result.points, kept


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
    options: "ProcessOptions",
    report: "ProcessReport",
    console: Console,
) -> Geometry:
    """Writes the frames into ``root/images``, gets their cameras (SfM, or ``supplied``) and normalises the world.

    Frames that SfM could not register at either end of the video are dropped (see ``Geometry.kept``).
    """
    start = time.perf_counter()
    images = _write_images(root, frames)
    points, bounds = None, None
    if supplied is None:
        c2w, intrinsics, points, kept = _sfm(root, frames, images, labels, options, report, console)
        for index in sorted(set(range(len(frames))) - set(kept)):
            images[index].unlink()
    else:
        report.pose_source, report.pose_step = str(options.poses), "supplied"
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
        if options.bounds is None:
            console.print(
                f"[yellow]No scene points or bounds: assuming depths {DEFAULT_BOUNDS} (set --bounds).[/yellow]"
            )
        bounds = np.tile(options.bounds or DEFAULT_BOUNDS, (len(kept), 1)).astype(np.float64)
    _check_baseline(c2w, bounds, console)
    norm = forward_facing_normalization(c2w, bounds[:, 0])
    poses = norm.poses(c2w)
    scaled_points = None if points is None else norm.points(points)
    box, near, far = unbounded_scene_range(poses, intrinsics, bounds * norm.scale, scaled_points)
    report.seconds["poses"] = time.perf_counter() - start
    return Geometry(
        [frames[i] for i in kept], kept, [images[i] for i in kept], poses, intrinsics, box, near, far, norm.transform
    )


def _flows(root: Path, geometry: Geometry, options: "ProcessOptions", report: "ProcessReport") -> list[dict[str, Path]]:
    start = time.perf_counter()
    flows = estimate_video_flow(
        [f.rgb for f in geometry.frames], options.flow_preset, True, options.num_threads or None
    )
    out: list[dict[str, Path]] = [{} for _ in flows]
    masks = []
    for i, (frame, flow) in enumerate(zip(geometry.frames, flows, strict=True)):
        for key, values, mask in (("flow_fwd", flow.fwd, flow.fwd_mask), ("flow_bwd", flow.bwd, flow.bwd_mask)):
            if values is not None and mask is not None:
                out[i][key] = root / "flow" / f"{frame.name}_{key[-3:]}.npz"
                write_flow(out[i][key], values, mask)
                masks.append(mask.ravel())
    report.flow_consistent_fraction = float(np.concatenate(masks).mean())
    report.seconds["flow"] = time.perf_counter() - start
    if options.motion_masks == "flow" and len(flows) > 1:
        start = time.perf_counter()
        moving = []
        for i, frame in enumerate(geometry.frames):
            out[i]["motion_mask"] = root / "motion_masks" / f"{frame.name}.png"
            out[i]["motion_mask"].parent.mkdir(parents=True, exist_ok=True)
            values = motion_mask(flows, i)
            Image.fromarray(values).save(out[i]["motion_mask"])
            moving.append(float((values == 255).mean()))
        report.motion_masks, report.moving_fraction = "flow", float(np.mean(moving))
        report.seconds["motion_masks"] = time.perf_counter() - start
    return out


def _label_files(root: Path, name: str, labels: Labels, index: int, motion: bool) -> dict[str, Path]:
    """Label images of one frame, and with ``motion`` its motion mask made from the moving classes."""
    ids = labels.semantics[index]
    if ids is None:
        return {}
    out = {"semantics": root / "semantics" / f"{name}.png"}
    write_label_image(out["semantics"], ids)
    if motion:
        out["motion_mask"] = root / "motion_masks" / f"{name}.png"
        moving = np.isin(ids, [i for i, c in enumerate(labels.classes) if c.dynamic])
        out["motion_mask"].parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(moving.astype(np.uint8) * 255).save(out["motion_mask"])
    if labels.instance_ids is not None and labels.instance_ids[index] is not None:
        out["instances"] = root / "instances" / f"{name}.png"
        write_label_image(out["instances"], labels.instance_ids[index])
    return out


def _json_ready(report: "ProcessReport") -> dict[str, Any]:
    values = dataclasses.asdict(report)
    values["output"] = str(values["output"])
    values["seconds"] = {k: round(v, 2) for k, v in values["seconds"].items()}
    return values


def write_scene(
    root: Path, geometry: Geometry, labels: Optional[Labels], options: "ProcessOptions", report: "ProcessReport"
) -> None:
    """Writes flow, labels, motion masks and transforms.json into ``root`` and validates the result."""
    flows = _flows(root, geometry, options, report)
    frames = []
    for i, (frame, time_, image) in enumerate(
        zip(geometry.frames, frame_times(geometry.frames), geometry.images, strict=True)
    ):
        extra: dict[str, Path] = dict(flows[i])
        if labels is not None:
            extra.update(_label_files(root, frame.name, labels, geometry.kept[i], options.motion_masks == "labels"))
        pose, intr = geometry.camera_to_world[i], geometry.intrinsics[i]
        frames.append(FrameRecord(image=image, camera_to_world=pose, time=time_, intrinsics=intr, **extra))
    classes = labels.classes if labels is not None else [SemanticClass("background", (0, 0, 0))]
    report.frames = len(frames)
    if options.motion_masks == "labels" and labels is not None:
        report.motion_masks = "labels"
    report.labelled_frames = sum(f.semantics is not None for f in frames)
    report.classes = [c.name + (" (moving)" if c.dynamic else "") for c in classes]
    meta = {"processing": _json_ready(report), "applied_transform": geometry.transform.tolist()}
    meta["source"] = str(options.video or options.images)
    scene = SceneDescription(
        root, classes, frames, instances=labels.instances if labels is not None else [], scene_box=geometry.scene_box,
        near=geometry.near, far=geometry.far, extra=meta, unbounded=True, motion_masks_from_labels=report.motion_masks == "labels",
        approximate_poses=report.approximate_poses,
    )  # fmt: skip
    save_scene(scene)
    load_scene(root)
