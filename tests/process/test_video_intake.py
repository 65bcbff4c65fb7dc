"""Phone-video intake of ``semflow-process-data``: rotation flags, presentation timestamps, bad timestamps or
rotation, and the frame selection of a long input. Clips are tiny and written by the tests with PyAV."""

import io
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from semflow_ns.data.format import SceneFormatError, load_scene
from semflow_ns.process import run
from semflow_ns.process.frames import frame_times
from semflow_ns.process.options import ProcessOptions, ProcessReport
from semflow_ns.process.video import count_frames, read_video

COLOURS = np.array(
    [[230, 40, 40], [40, 200, 40], [40, 40, 230], [230, 230, 40], [40, 230, 230], [230, 40, 230], [250] * 3, [20] * 3],
    np.uint8,
)


def blocks() -> np.ndarray:
    """A 64 x 32 landscape image of 16 px blocks in 8 colours: each of its turns and mirrors looks different."""
    return np.repeat(np.repeat(COLOURS.reshape(2, 4, 3), 16, 0), 16, 1)


def write_clip(path: Path, images: list[np.ndarray], pts_ms: Optional[list[int]] = None, **stream_args) -> Path:
    """Encodes ``images`` (MPEG-4 part 2); ``pts_ms``: explicit timestamps in ms; ``stream_args``: ``rotation``
    and ``hflip`` (display matrix), ``matrix`` (a raw display matrix), ``tags`` (stream metadata), ``fmt``."""
    with av.open(str(path), "w", format=stream_args.get("fmt")) as container:
        stream = container.add_stream(stream_args.get("codec", "mpeg4"), rate=12)
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if "rotation" in stream_args:
            stream.set_display_rotation(stream_args["rotation"], hflip=stream_args.get("hflip", False))
        if "matrix" in stream_args:
            stream.set_display_matrix(stream_args["matrix"])
        stream.metadata.update(stream_args.get("tags", {}))
        if pts_ms is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i, rgb in enumerate(images):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_packet_pts(path: Path, images: list[np.ndarray], pts: list[int]) -> Path:
    """A clip whose packets carry ``pts`` (1/12 s units) as given, repeated or decreasing (damaged files)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        frames = [av.VideoFrame.from_ndarray(rgb, format="rgb24") for rgb in images]
        packets = [p for frame in frames for p in stream.encode(frame)] + list(stream.encode())
        for packet, value in zip(packets, pts, strict=True):
            packet.pts = value  # dts stays 0, 1, 2, ... <= pts, so the muxer accepts it
            container.mux(packet)
    return path


def closest_turn(image: np.ndarray, source: np.ndarray) -> tuple[int, bool]:
    """(counter-clockwise quarter turns, mirrored) of ``source`` that ``image`` looks like (codec noise aside)."""
    turns = {(k, m): np.rot90(source, k)[:, ::-1] if m else np.rot90(source, k) for k in range(4) for m in (0, 1)}
    errors = {
        (k, bool(m)): np.abs(t.astype(int) - image.astype(int)).mean()
        for (k, m), t in turns.items()
        if t.shape == image.shape
    }
    best = min(errors, key=errors.__getitem__)
    assert errors[best] < 10, errors
    return best


# display-matrix rotation as PyAV writes it (counter-clockwise, like ffprobe's "rotation") -> how the frames must
# come out, as FFmpeg's player-side autorotation shows them (checked against the ffmpeg binary)
TURNS = [
    (-90, False, (3, False), 90),  # a phone held upright: stored landscape, shown turned 90 degrees clockwise
    (90, False, (1, False), 270),
    (180, False, (2, False), 180),
    (90, True, (1, True), 270),
]


@pytest.mark.parametrize(("rotation", "hflip", "expected", "clockwise"), TURNS)
def test_rotated_clip_comes_out_upright(tmp_path: Path, rotation, hflip, expected, clockwise) -> None:
    source = blocks()
    clip = write_clip(tmp_path / "portrait.mp4", [source] * 3, rotation=rotation, hflip=hflip)
    video = read_video(clip, 1, 0, 0)
    assert closest_turn(video.frames[0].rgb, source) == expected and not video.warnings
    assert (video.orientation.clockwise_degrees, video.orientation.mirrored) == (clockwise, hflip)
    upright = (32, 64) if rotation % 180 else (64, 32)
    assert video.frames[0].source_size == upright and video.frames[0].rgb.shape[1::-1] == upright
    shrunk = read_video(clip, 1, 0, 32).frames[0]
    assert shrunk.rgb.shape[1::-1] == (upright[0] // 2, upright[1] // 2) and shrunk.source_size == upright


def test_legacy_rotate_tag_turns_clockwise(tmp_path: Path) -> None:
    source = blocks()
    clip = write_clip(tmp_path / "tagged.mkv", [source] * 3, tags={"rotate": "90"})  # Matroska reads it as ROTATE
    video = read_video(clip, 1, 0, 0)
    assert closest_turn(video.frames[0].rgb, source) == (3, False) and video.orientation.clockwise_degrees == 90


@pytest.mark.parametrize(
    ("name", "stream_args", "reason"),
    [
        ("tag.mkv", {"tags": {"rotate": "sideways"}}, "its rotate tag 'sideways' is not a number"),
        ("oblique.mp4", {"rotation": 45}, "its display matrix turns the frames by 45.0°, not a multiple of 90°"),
        ("zero.mp4", {"matrix": [0] * 9}, "its display matrix is degenerate"),
    ],
)
def test_unusable_rotation_keeps_the_frames_as_stored(tmp_path: Path, name, stream_args, reason) -> None:
    source = blocks()
    clip = write_clip(tmp_path / name, [source] * 3, **stream_args)
    video = read_video(clip, 1, 0, 0)
    assert video.warnings == [f"{clip}: cannot use the rotation: {reason}; the frames are kept as stored"]
    assert closest_turn(video.frames[0].rgb, source) == (0, False) and video.orientation.clockwise_degrees == 0


def test_variable_frame_rate_times_follow_the_timestamps(tmp_path: Path) -> None:
    pts = [0, 40, 80, 200, 240, 400]  # a stall after frame 2 and a dropped frame before the last
    clip = write_clip(tmp_path / "vfr.mp4", [blocks()] * 6, pts_ms=pts)
    video = read_video(clip, 1, 0, 0)
    assert video.time_source == "timestamps" and not video.warnings
    assert [f.timestamp for f in video.frames] == pytest.approx([t / 1000 for t in pts], abs=1e-4)
    assert frame_times(video.frames) == pytest.approx([t / 400 for t in pts], abs=1e-4)
    assert [f.name for f in video.frames] == [f"{i:05d}" for i in range(6)]
    every_other = read_video(clip, 2, 0, 0).frames
    assert frame_times(every_other) == pytest.approx([0, 80 / 240, 1], abs=1e-4)
    by_index = read_video(clip, 1, 0, 0, use_timestamps=False)
    assert by_index.time_source == "frame index" and frame_times(by_index.frames) == pytest.approx(np.arange(6) / 5)


@pytest.mark.skipif("libx264" not in av.codecs_available, reason="PyAV without the libx264 encoder")
def test_missing_timestamps_fall_back_to_the_index(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "raw.h264", [blocks()] * 4, codec="libx264", fmt="h264")  # no timestamps
    video = read_video(clip, 1, 0, 0)
    assert video.warnings == [f"{clip}: frame 0 has no timestamp; frame times come from the frame index instead"]
    assert video.time_source == "frame index" and all(f.timestamp is None for f in video.frames)
    assert frame_times(video.frames) == pytest.approx([0, 1 / 3, 2 / 3, 1])


@pytest.mark.parametrize(
    ("pts", "message"),
    [
        ([0, 2, 2, 4, 6], r"timestamp of frame 2 \(0\.1667 s\) repeats after frame 1 \(0\.1667 s\)"),
        ([0, 3, 2, 4, 5], r"timestamp of frame 2 \(0\.1667 s\) goes back after frame 1 \(0\.2500 s\)"),
    ],
)
def test_repeated_or_decreasing_timestamps_are_an_error(tmp_path: Path, pts, message) -> None:
    clip = write_packet_pts(tmp_path / "damaged.mp4", [blocks()] * 5, pts)
    with pytest.raises(SceneFormatError, match=rf"damaged\.mp4: the {message}, .*--frame-times index"):
        read_video(clip, 1, 0, 0)
    assert frame_times(read_video(clip, 1, 0, 0, use_timestamps=False).frames) == pytest.approx(np.arange(5) / 4)


def test_frames_are_counted_without_decoding(tmp_path: Path) -> None:
    images = [blocks()] * 7
    assert count_frames(write_clip(tmp_path / "a.mp4", images)) == 7  # from the container's frame count
    assert count_frames(write_clip(tmp_path / "a.mkv", images)) == 7  # Matroska has none: packets are counted


def read_inputs(options: ProcessOptions) -> tuple[list[str], ProcessReport, str]:
    """The names of the frames ``options`` keep, the report's input fields, and the console text."""
    report, buffer = ProcessReport(output=options.output, input_frames=0, frames=0), io.StringIO()
    frames, _ = run._read_inputs(options, report, Console(file=buffer, width=400))
    return [f.name for f in frames], report, " ".join(buffer.getvalue().split())


def test_long_inputs_are_spread_over_at_most_max_frames(demo_inputs, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "long.mp4", [blocks()] * 130)
    names, report, text = read_inputs(ProcessOptions(output=tmp_path / "s", video=clip))  # the defaults
    assert len(names) == 65 and names[-1] == "00128" and report.frame_step == 2 and not report.warnings
    assert "130 input frames: keeping one in 2 (65 frames; automatic --frame-step 2 for --max-frames 100" in text
    names, report, _ = read_inputs(ProcessOptions(output=tmp_path / "s", images=demo_inputs.frames, max_frames=3))
    assert names == ["frame_000", "frame_002", "frame_004"] and report.frame_step == 2
    options = ProcessOptions(output=tmp_path / "s", video=clip, frame_step=1, max_frames=20)
    names, report, text = read_inputs(options)
    assert names == [f"{i:05d}" for i in range(20)] and report.input_frames == 130
    assert report.warnings[0].startswith("kept the first 20 of the 130 frames that --frame-step 1 selects")
    assert "Warning: kept the first 20" in text and "input frames from 20 on are dropped" in text


def test_upside_down_variable_rate_clip_end_to_end(demo_inputs, cli, tmp_path: Path) -> None:
    """The demo video stored upside down with a 180° display matrix and uneven timestamps: the scene gets the
    upright frames and the timestamps' times."""
    upright = [np.asarray(Image.open(f.image).convert("RGB")) for f in demo_inputs.scene.frames]
    pts = [0, 50, 100, 250, 300, 500]
    clip = write_clip(tmp_path / "phone.mp4", [np.rot90(f, 2) for f in upright], pts_ms=pts, rotation=180)
    code, text = cli("--video", str(clip), "--poses", str(demo_inputs.root / "transforms.json"),
                     "--output", str(tmp_path / "s"))  # fmt: skip
    assert code == 0, text
    assert "Read 6 of 6 input frames at 64x48 px, turned 180° clockwise" in text
    scene = load_scene(tmp_path / "s")
    assert [f.time for f in scene.frames] == pytest.approx([t / 500 for t in pts], abs=1e-4)
    for frame, expected in zip(scene.frames, upright, strict=True):
        image = np.asarray(Image.open(frame.image).convert("RGB")).astype(int)
        assert np.abs(image - expected).mean() < np.abs(image - np.rot90(expected, 2)).mean() / 3
    report = scene.extra["processing"]
    assert (report["rotation"], report["mirrored"], report["time_source"]) == (180, False, "timestamps")


def test_damaged_timestamps_stop_the_command_unless_index_times(demo_inputs, cli, tmp_path: Path) -> None:
    images = [np.asarray(Image.open(f.image).convert("RGB")) for f in demo_inputs.scene.frames]
    clip = write_packet_pts(tmp_path / "damaged.mp4", images, [0, 2, 4, 4, 6, 8])
    args = ["--video", str(clip), "--poses", str(demo_inputs.root / "transforms.json")]
    code, text = cli(*args, "--output", str(tmp_path / "s"))
    flat = " ".join(text.split())
    assert code == 1 and flat.startswith("Error: ") and "Traceback" not in flat, flat
    assert "the timestamp of frame 3 (0.3333 s) repeats after frame 2" in flat and "--frame-times index" in flat
    assert not (tmp_path / "s").exists()
    code, text = cli(*args, "--frame-times", "index", "--output", str(tmp_path / "s"))
    assert code == 0, text
    scene = load_scene(tmp_path / "s")
    assert [f.time for f in scene.frames] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert scene.extra["processing"]["time_source"] == "frame index"
