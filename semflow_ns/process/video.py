"""Decoding an input video with PyAV: frames turned upright, and each frame's presentation time.

**Rotation.** Phones store a portrait clip as landscape frames plus a display matrix that players apply. The
matrix is read from the first decoded frame's side data (FFmpeg attaches the stream's matrix to every frame);
without one, the legacy ``rotate`` stream tag (clockwise degrees, written by old FFmpeg versions, found in some
Matroska files) is used. Quarter turns and mirrors are applied as FFmpeg's own autorotation applies them, and
the frame size (for labels, intrinsics and the report) is the upright size. Any other angle, or a matrix or tag
that cannot be read, leaves the frames as stored, with a warning.

**Times.** A frame's time is its presentation timestamp (``pts × time_base``, in seconds), so a clip with a
variable frame rate keeps its real spacing. When a frame has no timestamp (raw streams such as ``.h264``),
every frame falls back to its index, with a warning. Timestamps that repeat or go back (a damaged or badly
muxed file) stop the command: no repair could know the true times; ``--frame-times index`` spaces the frames
evenly by index instead. Frame names are the decoding index either way (``00012`` is decoded frame 12).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import av
import numpy as np
from av.sidedata.sidedata import Type

from semflow_ns.data.format import SceneFormatError
from semflow_ns.process.frames import InputFrame, keep_frame, shrink


@dataclass(frozen=True)
class Orientation:
    """How a stored frame is turned upright: ``quarter_turns`` counter-clockwise (as ``np.rot90``), then a
    left-right mirror."""

    quarter_turns: int = 0
    mirrored: bool = False

    @property
    def clockwise_degrees(self) -> int:
        """The turn as a clockwise angle: 0, 90, 180 or 270."""
        return (-90 * self.quarter_turns) % 360

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """The upright image of a stored [H, W, C] image."""
        out = np.rot90(rgb, self.quarter_turns) if self.quarter_turns else rgb
        return np.ascontiguousarray(out[:, ::-1] if self.mirrored else out)

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The upright (width, height) of a stored frame of that size."""
        return (height, width) if self.quarter_turns % 2 else (width, height)


def orientation_from_matrix(matrix: np.ndarray) -> Orientation:
    """The orientation an FFmpeg display matrix (9 int32, 16.16 fixed point, row-major) asks for.

    Raises:
        ValueError: the matrix is degenerate or does not turn by a multiple of 90 degrees (the message says which).
    """
    a, b, c, d = (float(matrix[i]) / 65536 for i in (0, 1, 3, 4))
    scale_x, scale_y = math.hypot(a, c), math.hypot(b, d)
    if scale_x < 1e-6 or scale_y < 1e-6:
        raise ValueError("its display matrix is degenerate")
    unit = np.array([[a / scale_x, b / scale_y], [c / scale_x, d / scale_y]])
    signs = np.round(unit)
    if np.abs(unit - signs).max() > 1e-3 or np.abs(signs).sum() != 2 or abs(np.linalg.det(signs)) != 1:
        angle = -math.degrees(math.atan2(unit[0, 1], unit[0, 0]))
        raise ValueError(f"its display matrix turns the frames by {angle:.1f}°, not a multiple of 90°")
    mirrored = bool(np.linalg.det(signs) < 0)
    turn = math.degrees(math.atan2(-signs[0, 1], -signs[0, 0] if mirrored else signs[0, 0]))
    return Orientation(round(turn / 90) % 4, mirrored)


def _tag_orientation(metadata: dict[str, str]) -> Optional[Orientation]:
    """The orientation of a legacy ``rotate`` tag (clockwise degrees; any letter case), None without one."""
    value = next((v for k, v in metadata.items() if k.lower() == "rotate"), None)
    if value is None:
        return None
    try:
        degrees = float(value)
    except ValueError:
        raise ValueError(f"its rotate tag {value!r} is not a number") from None
    if not math.isfinite(degrees) or degrees % 90:
        raise ValueError(f"its rotate tag {value!r} is not a multiple of 90°")
    return Orientation(round(-degrees / 90) % 4)


def read_orientation(frame: av.VideoFrame, metadata: dict[str, str]) -> Orientation:
    """The orientation of a decoded frame: its display matrix, else the stream's ``rotate`` tag, else upright.

    Raises:
        ValueError: the matrix or tag cannot be read or is not a quarter turn (the message says which).
    """
    side_data = frame.side_data.get(Type.DISPLAYMATRIX)
    if side_data is not None:
        raw = bytes(side_data)
        if len(raw) != 36:
            raise ValueError(f"its display matrix has {len(raw)} bytes instead of 36")
        return orientation_from_matrix(np.frombuffer(raw, np.int32))
    return _tag_orientation(metadata) or Orientation()


@dataclass
class VideoFrames:
    """What :func:`read_video` read."""

    frames: list[InputFrame]
    """The kept frames, upright, with their timestamps (None when the times come from the index)."""
    total: int
    """Frames in the video."""
    orientation: Orientation = field(default_factory=Orientation)
    time_source: str = "timestamps"
    """timestamps (each frame's presentation time) or frame index."""
    warnings: list[str] = field(default_factory=list)


@contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Turns PyAV's errors into a SceneFormatError naming the file."""
    try:
        yield
    except SceneFormatError:
        raise
    except (av.FFmpegError, OSError, ValueError) as err:
        raise SceneFormatError(f"{path}: cannot decode the video ({err})") from err


def count_frames(path: Path) -> int:
    """Frames in the video: the container's count when it has one, else its video packets (no decoding)."""
    with _decoding(path), av.open(str(path)) as container:
        if not container.streams.video:
            raise SceneFormatError(f"{path}: no video stream in this file")
        stream = container.streams.video[0]
        if stream.frames > 0:
            return stream.frames
        return sum(1 for packet in container.demux(stream) if packet.size)


def _checked_times(path: Path, times: list[Optional[float]]) -> tuple[Optional[list[float]], Optional[str]]:
    """Every frame's timestamp, or None and a warning when one is missing.

    Raises:
        SceneFormatError: a timestamp repeats or goes back.
    """
    missing = next((i for i, t in enumerate(times) if t is None), None)
    if missing is not None:
        return None, f"{path}: frame {missing} has no timestamp; frame times come from the frame index instead"
    values = [float(t) for t in times if t is not None]
    for i in range(1, len(values)):
        if values[i] <= values[i - 1]:
            kind = "repeats" if values[i] == values[i - 1] else "goes back"
            raise SceneFormatError(
                f"{path}: the timestamp of frame {i} ({values[i]:.4f} s) {kind} after frame {i - 1} "
                f"({values[i - 1]:.4f} s), so the frame times are unknown (damaged or badly muxed file); re-encode "
                "the video, or pass --frame-times index to space the frames evenly by their index"
            )
    return values, None


def read_video(path: Path, frame_step: int, max_frames: int, max_size: int, use_timestamps: bool = True) -> VideoFrames:
    """Decodes a video with PyAV: keeps every ``frame_step``-th frame, at most ``max_frames`` (0: all), shrunk to
    ``max_size`` (0: kept) and turned upright; times from the timestamps unless ``use_timestamps`` is False.

    Raises:
        SceneFormatError: naming the file when it cannot be opened or decoded, holds no video stream, or its
            timestamps repeat or go back.
    """
    frames: list[InputFrame] = []
    times: list[Optional[float]] = []
    orientation, warnings = Orientation(), []
    with _decoding(path), av.open(str(path)) as container:
        if not container.streams.video:
            raise SceneFormatError(f"{path}: no video stream in this file")
        metadata = dict(container.streams.video[0].metadata)
        for position, frame in enumerate(container.decode(video=0)):
            if position == 0:
                try:
                    orientation = read_orientation(frame, metadata)
                except ValueError as err:
                    warnings.append(f"{path}: cannot use the rotation: {err}; the frames are kept as stored")
            times.append(frame.time)
            if keep_frame(position, len(frames), frame_step, max_frames):
                rgb = frame.to_ndarray(format="rgb24")
                size = orientation.size(rgb.shape[1], rgb.shape[0])
                upright = orientation.apply(shrink(rgb, max_size))
                frames.append(InputFrame(f"{position:05d}", position, position, upright, None, size))
    if not times:
        raise SceneFormatError(f"{path}: the video holds no decodable frame")
    if not use_timestamps:
        return VideoFrames(frames, len(times), orientation, "frame index", warnings)
    stamps, warning = _checked_times(path, times)
    if stamps is None:
        return VideoFrames(frames, len(times), orientation, "frame index", [*warnings, str(warning)])
    for frame in frames:
        frame.timestamp = stamps[frame.position]
    return VideoFrames(frames, len(times), orientation, "timestamps", warnings)
