"""The kept input frames: the frame folder reader, frame selection (step and cap), resizing and per-frame times.

Frames are named after their position in the input: ``00012`` is video frame 12 (0-based, in decoding
order; see :mod:`semflow_ns.process.video`) or, for a folder, keeps the image's own file name stem. Times are
``(t - t_first) / (t_last - t_first)`` over the kept frames, with ``t`` the video frame's timestamp when every
kept frame has one, else the frame number ``n`` (the video frame index, or the last number in the file name when
every name has one and they increase; else the position in the sorted folder), so a gap in the numbering or in
the timestamps stays a gap in time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from semflow_ns.data.format import SceneFormatError
from semflow_ns.data.producers.files import list_images
from semflow_ns.data.producers.scene_files import read_rgb


@dataclass
class InputFrame:
    """One frame kept for the scene."""

    name: str
    """Output file stem (and the key that pairs labels with frames)."""
    position: int
    """0-based position in the input (video frame index, or index in the sorted folder)."""
    number: int
    """Frame number used for the time (see the module docstring)."""
    rgb: np.ndarray
    """uint8 [H, W, 3] at the output resolution."""
    source: Optional[Path] = None
    """The input image file (None for video frames)."""
    source_size: tuple[int, int] = (0, 0)
    """(width, height) of the frame as read (a video frame turned upright), before resizing."""
    timestamp: Optional[float] = None
    """Presentation time in seconds of a video frame (None when the times come from the frame numbers)."""


def output_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """(width, height) after shrinking so that the longer side is at most ``max_size`` (0 = no limit)."""
    if max_size <= 0 or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def shrink(rgb: np.ndarray, max_size: int) -> np.ndarray:
    """The image shrunk (area interpolation) so that its longer side is at most ``max_size`` (0 = no limit)."""
    size = output_size(rgb.shape[1], rgb.shape[0], max_size)
    if size == (rgb.shape[1], rgb.shape[0]):
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def keep_frame(position: int, kept: int, frame_step: int, max_frames: int) -> bool:
    """Whether the input frame at ``position`` is kept, ``kept`` frames having been kept before it."""
    return position % frame_step == 0 and (max_frames <= 0 or kept < max_frames)


def pick_step(count: int, frame_step: int, max_frames: int) -> int:
    """The frame step: ``frame_step`` when given (at least 1); for 0 (auto), the smallest step that keeps at most
    ``max_frames`` (0: no limit) of ``count`` input frames, spread over the whole input."""
    if frame_step >= 1:
        return frame_step
    if max_frames <= 0 or count <= max_frames:
        return 1
    return -(-count // max_frames)


def selection_message(total: int, kept: int, step: int, auto: bool, max_frames: int) -> tuple[str, bool]:
    """A message on the frame selection ("" when there is nothing to say), and whether it dropped input frames that
    the step selects (``max_frames`` reached; a warning)."""
    selected = -(-total // step)
    if kept < selected:
        return (
            f"kept the first {kept} of the {selected} frames that --frame-step {step} selects (--max-frames "
            f"{max_frames}): input frames from {kept * step} on are dropped; raise --max-frames (0: no limit), or "
            "leave --frame-step at 0 (auto) to spread the frames over the whole input",
            True,
        )
    if auto and step > 1:
        return (
            f"{total} input frames: keeping one in {step} ({kept} frames; automatic --frame-step {step} for "
            f"--max-frames {max_frames}; --max-frames 0 keeps every frame)",
            False,
        )
    return "", False


def _numbers(paths: list[Path]) -> list[int]:
    found = [re.findall(r"\d+", p.stem) for p in paths]
    if all(found):
        numbers = [int(f[-1]) for f in found]
        if all(b > a for a, b in zip(numbers, numbers[1:], strict=False)):
            return numbers
    return list(range(len(paths)))


def read_folder(folder: Path, frame_step: int, max_frames: int, max_size: int) -> tuple[list[InputFrame], list[Path]]:
    """Reads the kept images of a folder (natural name order); returns them and every image file of the folder."""
    paths = list_images(folder, "frames")
    numbers = _numbers(paths)
    frames: list[InputFrame] = []
    for position, path in enumerate(paths):
        if keep_frame(position, len(frames), frame_step, max_frames):
            rgb = read_rgb(path)
            size = (rgb.shape[1], rgb.shape[0])
            frames.append(InputFrame(path.stem, position, numbers[position], shrink(rgb, max_size), path, size))
    sizes = {f.source_size for f in frames}
    if len(sizes) > 1:
        odd = next(f for f in frames if f.source_size != frames[0].source_size)
        raise SceneFormatError(
            f"{odd.source}: {odd.source_size} (w, h) differs from {frames[0].source} {frames[0].source_size}"
        )
    return frames, paths


def frame_times(frames: list[InputFrame]) -> list[float]:
    """Normalised times in [0, 1] from the timestamps, else the frame numbers (see the module docstring)."""
    stamps = [f.timestamp for f in frames]
    values = [float(t) for t in stamps if t is not None]
    if len(values) < len(frames):
        values = [float(f.number) for f in frames]
    first, last = values[0], values[-1]
    span = last - first if last > first else 1.0
    return [(v - first) / span for v in values]
