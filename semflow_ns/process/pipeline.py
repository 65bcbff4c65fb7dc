"""``semflow-process-data`` end to end: check every input, then SfM (or supplied poses), flow, and writing.

All inputs are read and checked (frames, label pairing, sizes, colours, poses files, output folder) before
the slow stages start, so a bad input fails within seconds and names the file at fault.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from rich.console import Console

from semflow_ns.data.files import check_frame_count, list_images, pair_files
from semflow_ns.data.optical_flow import PRESETS
from semflow_ns.data.scene_format import SceneFormatError
from semflow_ns.process import ProcessError
from semflow_ns.process.frames import InputFrame, read_folder, read_video
from semflow_ns.process.label_input import LabelOptions, Labels, read_labels
from semflow_ns.process.output import check_output, make_staging, publish
from semflow_ns.process.pose_chain import POSE_FALLBACKS
from semflow_ns.process.poses_input import SuppliedPoses, from_poses_bounds, from_transforms
from semflow_ns.process.sfm import CAMERA_MODELS
from semflow_ns.process.writing import Geometry, estimate_geometry, write_scene


@dataclass
class ProcessOptions:
    """Turn a monocular video (or a folder of frames) and optional per-frame masks or labels into a semflow
    scene: frames, camera poses (pycolmap SfM, or supplied), optical flow, labels and motion masks."""

    output: Path
    """Scene folder to write (refused if it exists and is not empty, unless --overwrite)."""
    video: Optional[Path] = None
    """Input video file (any format FFmpeg/PyAV decodes). Give this or --images."""
    images: Optional[Path] = None
    """Input folder of frames (png/jpg/...), in natural name order. Give this or --video."""
    labels: Optional[Path] = None
    """Folder of per-frame masks or label images, paired with frames by file name (video: frame number)."""
    label_format: Literal["auto", "binary", "ids", "color"] = "auto"
    """binary: 0/255 masks; ids: grey-level or palette PNGs of object/class ids; color: RGB PNGs + --labelmap;
    auto: color with --labelmap, else binary for 0/255 masks, else ids."""
    labelmap: Optional[Path] = None
    """CVAT / Pascal-VOC label map ('name:R,G,B::' lines after a header line) for colour-coded labels."""
    class_names: Optional[Path] = None
    """One name per line: name of id 0, 1, ... (ids; repeated names share a class) or of background/foreground."""
    dynamic_classes: Optional[str] = None
    """Comma-separated names of the moving classes (default: every class except id 0)."""
    resize_labels: bool = False
    """Resize labels whose size differs from their frame (nearest neighbour) instead of failing."""
    allow_missing_labels: bool = False
    """Frames without a label file are written unlabelled instead of failing."""
    poses: Optional[Path] = None
    """Known cameras instead of SfM: a nerfstudio transforms.json or an LLFF poses_bounds.npy."""
    bounds: Optional[tuple[float, float]] = None
    """NEAR FAR scene depth range in the units of --poses transforms.json when it has no point cloud, and of
    rotation-only poses (cameras at the origin; default 0.1 100)."""
    max_size: int = 960
    """Shrink frames so that the longer side is at most this many pixels (0: keep the input size)."""
    frame_step: int = 1
    """Keep every k-th input frame."""
    max_frames: int = 0
    """Keep at most this many frames (after --frame-step; 0: all)."""
    camera_model: Literal["SIMPLE_RADIAL", "SIMPLE_PINHOLE", "PINHOLE", "RADIAL", "OPENCV"] = "SIMPLE_RADIAL"
    """COLMAP camera model shared by all frames (SIMPLE_RADIAL was the most reliable on real clips)."""
    max_num_features: int = 8192
    """SIFT features per frame."""
    min_registered: float = 0.8
    """A pose step must register at least this fraction of the frames, else the next step of the fallback chain
    runs (--pose-fallback sfm-only: fail). Unregistered frames at the ends are dropped, interior ones get
    interpolated poses."""
    pose_fallback: Literal["auto", "sfm-only"] = "auto"
    """auto: when SfM registers too few frames, retry with relaxed thresholds on one frame in 3 and on all frames,
    join partial models, and as a last resort use rotation-only poses from static features (marked
    approximate_poses); sfm-only: fail."""
    flow_preset: Literal["ultrafast", "fast", "medium"] = "medium"
    """OpenCV DIS optical-flow preset."""
    motion_masks: Literal["flow", "labels", "none"] = "flow"
    """Moving pixels of the frames that train without labels. flow: estimated on every frame from the optical
    flow against the background's motion (never from the labels, so label subsets stay honest); labels: the
    moving classes of the labels (withheld together with them); none: no motion masks."""
    num_threads: int = 0
    """CPU threads for SfM and flow (0: all cores)."""
    overwrite: bool = False
    """Replace a non-empty output folder."""
    verbose: bool = False
    """Show pycolmap's log."""


@dataclass
class ProcessReport:
    """What ``semflow-process-data`` did, printed at the end and stored in transforms.json ("processing")."""

    output: Path
    input_frames: int
    frames: int
    labelled_frames: int = 0
    classes: list[str] = field(default_factory=list)
    pose_source: str = "sfm"
    pose_step: Optional[str] = None
    """Which step gave the poses: sfm, sfm-subsampled, sfm-relaxed, sfm-merged, rotation-only (see pose_chain),
    or supplied."""
    approximate_poses: bool = False
    """True for rotation-only poses: the model should refine them in training."""
    pose_attempts: list[dict] = field(default_factory=list)
    """Per step tried: step, registered (frames), seconds, and error when the step was not accepted."""
    registered: Optional[int] = None
    trimmed: int = 0
    interpolated: list[str] = field(default_factory=list)
    reprojection_error_px: Optional[float] = None
    """SfM: mean reprojection error; rotation-only: mean residual of the static tracks under the pair rotations."""
    points: Optional[int] = None
    flow_consistent_fraction: float = 0.0
    motion_masks: str = "none"
    """Where the motion masks came from: flow, labels or none."""
    moving_fraction: Optional[float] = None
    """flow motion masks: mean fraction of pixels marked moving (static and unknown are the rest)."""
    seconds: dict[str, float] = field(default_factory=dict)


def _check_options(options: ProcessOptions) -> None:
    if (options.video is None) == (options.images is None):
        raise ProcessError("give exactly one input: --video FILE or --images DIR")
    if options.video is not None and not Path(options.video).is_file():
        raise SceneFormatError(f"{options.video}: video file not found")
    checks = [
        (options.frame_step >= 1, f"--frame-step must be at least 1, got {options.frame_step}"),
        (options.max_frames >= 0, f"--max-frames must be 0 (all) or positive, got {options.max_frames}"),
        (options.max_size >= 0, f"--max-size must be 0 (keep) or positive, got {options.max_size}"),
        (0.0 < options.min_registered <= 1.0, f"--min-registered must lie in (0, 1], got {options.min_registered}"),
        (options.pose_fallback in POSE_FALLBACKS, f"--pose-fallback must be one of {POSE_FALLBACKS}"),
        (options.camera_model in CAMERA_MODELS, f"--camera-model must be one of {CAMERA_MODELS}"),
        (options.flow_preset in PRESETS, f"--flow-preset must be one of {sorted(PRESETS)}"),
        (options.bounds is None or 0 < options.bounds[0] < options.bounds[1], "--bounds needs 0 < NEAR < FAR"),
    ]
    for ok, message in checks:
        if not ok:
            raise ProcessError(message)
    for name in ("labels", "labelmap", "class_names", "poses"):
        path = getattr(options, name)
        if path is not None and not Path(path).exists():
            raise SceneFormatError(f"{path}: --{name.replace('_', '-')} not found")


def _video_label_files(files: list[Path], total: int, allow_missing: bool) -> list[Optional[Path]]:
    numbers = [re.fullmatch(r"\D*(\d+)", p.stem) for p in files]
    if all(numbers):
        by_index = {int(m.group(1)): p for m, p in zip(numbers, files, strict=True) if m}
        beyond = sorted(i for i in by_index if i >= total)
        if beyond:
            raise SceneFormatError(
                f"{by_index[beyond[0]]}: label for frame {beyond[0]}, but the video has {total} frames"
            )
        out = [by_index.get(i) for i in range(total)]
    elif len(files) == total:
        out = list(files)
    else:
        raise SceneFormatError(f"{files[0].parent}: {len(files)} label files for a video of {total} frames")
    missing = [i for i, p in enumerate(out) if p is None]
    if missing and not allow_missing:
        raise SceneFormatError(
            f"{files[0].parent}: no label for video frame(s) {missing[:5]} ({len(files)} labels for {total} frames); "
            "pass --allow-missing-labels to leave them unlabelled"
        )
    return out


def _read_inputs(options: ProcessOptions) -> tuple[list[InputFrame], int, list[Optional[Path]]]:
    """The kept frames, the number of input frames, and the label file of each kept frame (or None)."""
    args = (options.frame_step, options.max_frames, options.max_size)
    if options.video is not None:
        frames, total = read_video(Path(options.video), *args)
        inputs: list[Path] = []
    else:
        frames, inputs = read_folder(Path(options.images or "."), *args)
        total = len(inputs)
    check_frame_count(len(frames), Path(options.video or options.images or "."))
    if options.labels is None:
        return frames, total, [None] * len(frames)
    files = list_images(Path(options.labels), "label images")
    if options.video is not None:
        paired = _video_label_files(files, total, options.allow_missing_labels)
    else:
        paired = pair_files(inputs, files, f"label images in {options.labels}", options.allow_missing_labels)
    return frames, total, [paired[f.position] for f in frames]


def _supplied_poses(options: ProcessOptions, frames: list[InputFrame], total: int) -> Optional[SuppliedPoses]:
    if options.poses is None:
        return None
    path = Path(options.poses)
    if path.suffix == ".npy":
        return from_poses_bounds(path, frames, total)
    return from_transforms(path, frames, by_order=options.video is not None)


def process(options: ProcessOptions, console: Console) -> ProcessReport:
    """Runs ``semflow-process-data``; returns its report.

    Raises:
        SceneFormatError: an input file is unreadable or inconsistent (the message names it).
        ProcessError: an option is wrong, the output folder is occupied, or SfM failed (with advice).
    """
    start = time.perf_counter()
    _check_options(options)
    given = (options.video, options.images, options.labels, options.labelmap, options.class_names, options.poses)
    sources = [Path(p) for p in given if p is not None]
    output = check_output(options.output, sources, options.overwrite)
    frames, total, label_files = _read_inputs(options)
    label_options = LabelOptions(
        options.label_format, options.labelmap, options.class_names, options.dynamic_classes, options.resize_labels
    )
    labels: Optional[Labels] = read_labels(frames, label_files, label_options) if options.labels else None
    supplied = _supplied_poses(options, frames, total)
    report = ProcessReport(output=output, input_frames=total, frames=len(frames))
    report.seconds["read"] = time.perf_counter() - start
    console.print(f"Read {len(frames)} of {total} input frames at {frames[0].rgb.shape[1]}x{frames[0].rgb.shape[0]} px")
    staging = make_staging(output)
    try:
        geometry: Geometry = estimate_geometry(staging, frames, labels, supplied, options, report, console)
        write_scene(staging, geometry, labels, options, report)
        publish(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.seconds["total"] = time.perf_counter() - start
    return report
