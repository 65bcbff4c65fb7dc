"""Reading the input video or frame folder: decoding, subsampling, resizing and per-frame times.

Frames are named after their position in the input: ``00012`` is video frame 12 (0-based, in decoding
order) or, for a folder, keeps the image's own file name stem. Times are ``(n - n_first) / (n_last - n_first)``
with ``n`` the frame number (the video frame index, or the last number in the file name when every name has
one and they increase; else the position in the sorted folder), so a gap in the numbering stays a gap in time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import av
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
    """(width, height) of the frame as read, before resizing."""


def output_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """(width, height) after shrinking so that the longer side is at most ``max_size`` (0 = no limit)."""
    if max_size <= 0 or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resized(rgb: np.ndarray, max_size: int) -> np.ndarray:
    size = output_size(rgb.shape[1], rgb.shape[0], max_size)
    if size == (rgb.shape[1], rgb.shape[0]):
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _keep(position: int, kept: int, frame_step: int, max_frames: int) -> bool:
    return position % frame_step == 0 and (max_frames <= 0 or kept < max_frames)


def read_video(path: Path, frame_step: int, max_frames: int, max_size: int) -> tuple[list[InputFrame], int]:
    """Decodes a video with PyAV; returns the kept frames and the number of frames in the video.

    Raises:
        SceneFormatError: naming the file when it cannot be opened or decoded or holds no video stream.
    """
    frames: list[InputFrame] = []
    total = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SceneFormatError(f"{path}: no video stream in this file")
            for total, frame in enumerate(container.decode(video=0), 1):
                if _keep(total - 1, len(frames), frame_step, max_frames):
                    rgb = frame.to_ndarray(format="rgb24")
                    size = (rgb.shape[1], rgb.shape[0])
                    frames.append(
                        InputFrame(f"{total - 1:05d}", total - 1, total - 1, _resized(rgb, max_size), None, size)
                    )
    except (av.FFmpegError, OSError, ValueError) as err:
        if isinstance(err, SceneFormatError):
            raise
        raise SceneFormatError(f"{path}: cannot decode the video ({err})") from err
    if total == 0:
        raise SceneFormatError(f"{path}: the video holds no decodable frame")
    return frames, total


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
        if _keep(position, len(frames), frame_step, max_frames):
            rgb = read_rgb(path)
            size = (rgb.shape[1], rgb.shape[0])
            frames.append(InputFrame(path.stem, position, numbers[position], _resized(rgb, max_size), path, size))
    sizes = {f.source_size for f in frames}
    if len(sizes) > 1:
        odd = next(f for f in frames if f.source_size != frames[0].source_size)
        raise SceneFormatError(
            f"{odd.source}: {odd.source_size} (w, h) differs from {frames[0].source} {frames[0].source_size}"
        )
    return frames, paths


def frame_times(frames: list[InputFrame]) -> list[float]:
    """Normalised times in [0, 1] from the frame numbers (see the module docstring)."""
    first, last = frames[0].number, frames[-1].number
    return [(f.number - first) / max(1, last - first) for f in frames]
