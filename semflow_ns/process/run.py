"""``semflow-process-data`` end to end: check every input, then flow, poses (SfM or supplied), objects from
motion (videos without labels), and writing.

All inputs are read and checked (frames, label pairing, sizes, colours, poses files, output folder) before
the slow stages start, so a bad input fails within seconds and names the file at fault. The optical flow and
the flow motion masks of every frame are computed before the poses (the first SfM step tracks points through
the flow, and the SIFT steps mask what the flow marks as moving) and written afterwards for the frames kept.
Each step returns its statistics; :func:`process` assembles them into the
:class:`~semflow_ns.process.options.ProcessReport`.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
from pathlib import Path
from typing import Optional

from rich.console import Console

from semflow_ns.data.format import SceneFormatError
from semflow_ns.data.producers.files import check_frame_count, list_images, pair_files
from semflow_ns.data.producers.optical_flow import PRESETS, FrameFlow, estimate_video_flow
from semflow_ns.process import ProcessError
from semflow_ns.process.frames import InputFrame, pick_step, read_folder, selection_message
from semflow_ns.process.label_input import LabelOptions, Labels, read_labels
from semflow_ns.process.motion import motion_mask
from semflow_ns.process.options import ProcessOptions, ProcessReport
from semflow_ns.process.output import check_output, make_staging, publish
from semflow_ns.process.pose_chain import POSE_FALLBACKS
from semflow_ns.process.poses_input import SuppliedPoses, from_poses_bounds, from_transforms
from semflow_ns.process.sfm import CAMERA_MODELS
from semflow_ns.process.video import count_frames, read_video
from semflow_ns.process.writing import (
    Geometry,
    estimate_geometry,
    motion_labels,
    scene_classes,
    write_flows,
    write_frames,
    write_motion_masks,
    write_scene,
)


def _check_options(options: ProcessOptions) -> None:
    if (options.video is None) == (options.images is None):
        raise ProcessError("give exactly one input: --video FILE or --images DIR")
    if options.video is not None and not Path(options.video).is_file():
        raise SceneFormatError(f"{options.video}: video file not found")
    checks = [
        (options.frame_step >= 0, f"--frame-step must be 0 (auto) or positive, got {options.frame_step}"),
        (options.max_frames >= 0, f"--max-frames must be 0 (no limit) or positive, got {options.max_frames}"),
        (options.frame_times in ("timestamps", "index"), "--frame-times must be timestamps or index"),
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


def _read_frames(
    options: ProcessOptions, report: ProcessReport, console: Console
) -> tuple[list[InputFrame], list[Path]]:
    """The kept frames and (folder) every input image; records the frame step, rotation, time source and warnings
    in ``report`` and prints the warnings."""
    path = Path(options.video or options.images or ".")
    auto = options.frame_step == 0
    count = 0
    if auto and options.max_frames > 0:
        count = count_frames(path) if options.video is not None else len(list_images(path, "frames"))
    report.frame_step = pick_step(count, options.frame_step, options.max_frames)
    args = (report.frame_step, options.max_frames, options.max_size)
    inputs: list[Path] = []
    if options.video is not None:
        video = read_video(path, *args, use_timestamps=options.frame_times == "timestamps")
        frames, report.input_frames, report.time_source = video.frames, video.total, video.time_source
        report.rotation, report.mirrored = video.orientation.clockwise_degrees, video.orientation.mirrored
        report.warnings = list(video.warnings)
    else:
        frames, inputs = read_folder(path, *args)
        report.input_frames = len(inputs)
    check_frame_count(len(frames), path)
    report.frames = len(frames)
    message, dropped = selection_message(report.input_frames, len(frames), report.frame_step, auto, options.max_frames)
    if dropped:
        report.warnings.append(message)
    elif message:
        console.print(message, highlight=False)
    for warning in report.warnings:
        console.print(f"[yellow]Warning:[/yellow] {warning}", highlight=False)
    return frames, inputs


def _read_inputs(
    options: ProcessOptions, report: ProcessReport, console: Console
) -> tuple[list[InputFrame], list[Optional[Path]]]:
    """The kept frames and the label file of each (or None); fills the input fields of ``report``."""
    frames, inputs = _read_frames(options, report, console)
    if options.labels is None:
        return frames, [None] * len(frames)
    files = list_images(Path(options.labels), "label images")
    if options.video is not None:
        paired = _video_label_files(files, report.input_frames, options.allow_missing_labels)
    else:
        paired = pair_files(inputs, files, f"label images in {options.labels}", options.allow_missing_labels)
    return frames, [paired[f.position] for f in frames]


def _supplied_poses(options: ProcessOptions, frames: list[InputFrame], total: int) -> Optional[SuppliedPoses]:
    if options.poses is None:
        return None
    path = Path(options.poses)
    if path.suffix == ".npy":
        return from_poses_bounds(path, frames, total)
    return from_transforms(path, frames, by_order=options.video is not None)


def _flow(
    frames: list[InputFrame], options: ProcessOptions, need_motion: bool, report: ProcessReport
) -> tuple[list[FrameFlow], Optional[list]]:
    """Optical flow of every frame read and, when ``need_motion``, its flow motion masks (timed in ``report``)."""
    step = time.perf_counter()
    flows = estimate_video_flow([f.rgb for f in frames], options.flow_preset, True, options.num_threads or None)
    report.seconds["flow"] = time.perf_counter() - step
    if not need_motion:
        return flows, None
    step = time.perf_counter()
    motion = [motion_mask(flows, i) for i in range(len(frames))]
    report.seconds["motion_masks"] = time.perf_counter() - step
    return flows, motion


def _motion_steps(
    staging: Path,
    geometry: Geometry,
    flows: list[FrameFlow],
    motion: Optional[list],
    files: list[dict[str, Path]],
    labels: Optional[Labels],
    options: ProcessOptions,
    report: ProcessReport,
    console: Console,
) -> tuple[list[dict[str, Path]], Optional[Labels]]:
    """Writes the motion masks from the flow and, for a video without labels, finds objects from motion; returns
    the files of each frame with the motion masks added, and the labels (those given, or those found from
    motion). ``flows`` and ``motion``: of every frame read."""
    from_motion = labels is None and options.objects_from_motion
    if motion is None or len(geometry.frames) < 2 or not (options.motion_masks == "flow" or from_motion):
        report.motion_masks = "labels" if options.motion_masks == "labels" and labels is not None else "none"
        return files, labels
    if options.motion_masks == "flow":
        written, report.moving_fraction = write_motion_masks(staging, geometry, motion)
        files = [{**f, **m} for f, m in zip(files, written, strict=True)]
        report.motion_masks = "flow"
    elif options.motion_masks == "labels" and labels is not None:
        report.motion_masks = "labels"
    if from_motion:
        step = time.perf_counter()
        labels = motion_labels(geometry, flows, motion, console)
        report.moving_objects = 0 if labels is None else len(labels.instances)
        report.seconds["objects"] = time.perf_counter() - step
    return files, labels


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
    report = ProcessReport(output=output, input_frames=0, frames=0)
    frames, label_files = _read_inputs(options, report, console)
    label_options = LabelOptions(
        options.label_format, options.labelmap, options.class_names, options.dynamic_classes, options.resize_labels
    )
    labels: Optional[Labels] = read_labels(frames, label_files, label_options) if options.labels else None
    supplied = _supplied_poses(options, frames, report.input_frames)
    report.seconds["read"] = time.perf_counter() - start
    turned = f", turned {report.rotation}° clockwise" if report.rotation else ""
    size = f"{frames[0].rgb.shape[1]}x{frames[0].rgb.shape[0]} px{turned}{', mirrored' if report.mirrored else ''}"
    console.print(f"Read {len(frames)} of {report.input_frames} input frames at {size}")
    staging = make_staging(output)
    try:
        from_motion = labels is None and options.objects_from_motion
        need_motion = supplied is None or options.motion_masks == "flow" or from_motion
        flows, motion = _flow(frames, options, need_motion, report)
        step = time.perf_counter()
        geometry, poses = estimate_geometry(staging, frames, labels, supplied, options, console, (flows, motion))
        report = dataclasses.replace(report, **{f.name: getattr(poses, f.name) for f in dataclasses.fields(poses)})
        report.seconds["poses"] = time.perf_counter() - step
        step = time.perf_counter()
        files, report.flow_consistent_fraction = write_flows(staging, geometry, flows)
        files, labels = _motion_steps(staging, geometry, flows, motion, files, labels, options, report, console)
        report.seconds["write"] = time.perf_counter() - step
        scene_frames = write_frames(staging, geometry, labels, files, report.motion_masks == "labels")
        classes = scene_classes(labels)
        report.frames = len(scene_frames)
        report.labelled_frames = sum(f.semantics is not None for f in scene_frames)
        report.classes = [c.name + (" (moving)" if c.dynamic else "") for c in classes]
        write_scene(staging, scene_frames, classes, labels, geometry, options, report)
        publish(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.seconds["total"] = time.perf_counter() - start
    return report
