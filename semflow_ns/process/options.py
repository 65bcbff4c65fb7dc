"""Options and report of ``semflow-process-data``.

:class:`ProcessOptions` is the command line; :class:`ProcessReport` is what a run did, assembled by
:func:`semflow_ns.process.run.process` from the statistics each step returns (:class:`PoseStats` from the pose
step) and stored in transforms.json (``processing``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional


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
    """NEAR FAR scene depth range in the units of --poses transforms.json when it has no point cloud (default
    0.1 100), and of rotation-only poses (cameras at one point; default 1 20)."""
    max_size: int = 480
    """Shrink frames so that the longer side is at most this many pixels (0: keep the input size). 480 is what the
    benchmarks use: the frame encoder works at 256 px anyway, and SfM and flow time grow with the size."""
    frame_step: int = 0
    """Keep every k-th input frame. 0 (auto): every frame, or, for an input longer than --max-frames, the smallest
    step that keeps at most --max-frames frames spread over the whole input."""
    max_frames: int = 100
    """Keep at most this many frames (0: no limit). With a given --frame-step the frames after the limit are
    dropped (with a warning)."""
    frame_times: Literal["timestamps", "index"] = "timestamps"
    """Video only. timestamps: each frame's presentation time (right for variable frame rates); index: evenly
    spaced by the decoding index (for a file whose timestamps repeat or go back)."""
    camera_model: Literal["SIMPLE_RADIAL", "SIMPLE_PINHOLE", "PINHOLE", "RADIAL", "OPENCV"] = "SIMPLE_RADIAL"
    """COLMAP camera model shared by all frames (SIMPLE_RADIAL was the most reliable on real clips)."""
    max_num_features: int = 8192
    """SIFT features per frame."""
    min_registered: float = 0.8
    """A pose step must register at least this fraction of the frames, else the next step of the fallback chain
    runs (--pose-fallback sfm-only: fail). Unregistered frames at the ends are dropped, interior ones get
    interpolated poses."""
    pose_fallback: Literal["auto", "sfm-only", "sfm-flow-only", "rotation-only"] = "auto"
    """auto: SfM on tracks through the optical flow; when it gives no model, SIFT SfM, retried with relaxed
    thresholds on one frame in 3 and on all frames, and partial models joined; when the camera only turns, or as
    a last resort, rotation-only poses (marked approximate_poses). sfm-only / sfm-flow-only: that SfM step alone,
    failing when it fails. rotation-only: no SfM, every camera at one point (a tripod pan; or to compare)."""
    flow_preset: Literal["ultrafast", "fast", "medium"] = "medium"
    """OpenCV DIS optical-flow preset."""
    motion_masks: Literal["flow", "labels", "none"] = "flow"
    """Moving pixels of the frames that train without labels. flow: estimated on every frame from the optical
    flow against the background's motion (never from the labels, so label subsets stay honest); labels: the
    moving classes of the labels (withheld together with them); none: no motion masks."""
    objects_from_motion: bool = True
    """Without --labels: group the flow motion masks into moving objects, followed from frame to frame along the
    flow, and write them as labels: instances "moving 1", "moving 2", ... of a moving class over a static
    background class (pixels of unknown motion stay unlabelled). --no-objects-from-motion: one static class and
    no labels. Ignored with --labels."""
    num_threads: int = 0
    """CPU threads for SfM and flow (0: all cores)."""
    overwrite: bool = False
    """Replace a non-empty output folder."""
    verbose: bool = False
    """Show pycolmap's log."""


@dataclass
class PoseStats:
    """What the pose step (structure from motion, its fallbacks, or supplied poses) reports."""

    pose_source: str = "sfm"
    pose_step: Optional[str] = None
    """Which step gave the poses: sfm-flow, sfm, sfm-subsampled, sfm-relaxed, sfm-merged, rotation-only (see
    pose_chain), or supplied."""
    approximate_poses: bool = False
    """True for rotation-only poses and for SfM poses with interpolated frames: the model refines them."""
    pose_attempts: list[dict] = field(default_factory=list)
    """Per step tried: step, registered (frames), seconds, error when the step was not accepted, note, the
    parallax guard's figures of its model (parallax) and, for sfm-flow, where the time went (timing)."""
    registered: Optional[int] = None
    trimmed: int = 0
    interpolated: list[str] = field(default_factory=list)
    reprojection_error_px: Optional[float] = None
    """SfM: mean reprojection error; rotation-only: residual of the static tracks under the fitted rotations."""
    points: Optional[int] = None
    parallax: Optional[dict] = None
    """The parallax guard's figures of the model used (median_triangulation_deg, baseline_ratio,
    rotation_ratio); for rotation-only, of the flow-track model that failed the guard, when there was one."""


@dataclass(kw_only=True)
class ProcessReport(PoseStats):
    """What ``semflow-process-data`` did, printed at the end and stored in transforms.json ("processing"): the
    pose step's statistics (the fields of :class:`PoseStats`, so that the record stays flat) and the rest."""

    output: Path
    input_frames: int
    frames: int
    frame_step: int = 1
    """The frame step used (given, or chosen for --frame-step 0)."""
    rotation: int = 0
    """Video: clockwise degrees by which the frames were turned upright (display matrix or rotate tag)."""
    mirrored: bool = False
    """Video: the frames were also mirrored left-right (display matrix)."""
    time_source: str = "frame numbers"
    """timestamps (video presentation times), frame index (video without usable timestamps, or --frame-times
    index) or frame numbers (folder: numbers in the file names, else positions)."""
    warnings: list[str] = field(default_factory=list)
    """Warnings of the input step (unreadable rotation or timestamps, frames dropped by --max-frames)."""
    labelled_frames: int = 0
    classes: list[str] = field(default_factory=list)
    flow_consistent_fraction: float = 0.0
    """Share of the forward and backward flow pixels that pass the forward-backward check."""
    motion_masks: str = "none"
    """Where the motion masks came from: flow, labels or none."""
    moving_fraction: Optional[float] = None
    """flow motion masks: mean fraction of pixels marked moving (static and unknown are the rest)."""
    moving_objects: Optional[int] = None
    """Objects from motion: how many moving objects were found (None: the step did not run)."""
    seconds: dict[str, float] = field(default_factory=dict)
