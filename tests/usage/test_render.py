"""`ns-render` and `semflow-render` on a trained run, run as subprocesses the way a person types them."""

import json
from pathlib import Path

import av
import numpy as np
import pytest
import tyro
from PIL import Image

from semflow_ns.scripts import camera_path

pytestmark = pytest.mark.slow


def _write_path(trained_run: Path, output: Path, *shot: str) -> Path:
    args = [*shot, "--load-config", str(trained_run), "--output-path", str(output)]
    assert camera_path.run(tyro.cli(camera_path.Command, args=args)) == 0  # type: ignore[arg-type]
    return output


def _video_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_ns_render_renders_a_time_sweep_from_semflow_camera_path(trained_run, run_cli, tmp_path):
    path = tmp_path / "video.json"
    run_cli("semflow-camera-path", "video", "--load-config", str(trained_run), "--output-path", str(path))
    entries = json.loads(path.read_text())["camera_path"]
    times = [e["render_time"] for e in entries]
    assert len(entries) == 8 and times == sorted(times) and times[0] == 0.0 and times[-1] == 1.0
    assert len({tuple(e["camera_to_world"]) for e in entries}) == 1, "the video shot keeps one camera"

    video = tmp_path / "video.mp4"
    run_cli(
        "ns-render",
        "camera-path",
        "--load-config",
        str(trained_run),
        "--camera-path-filename",
        str(path),
        "--rendered-output-names",
        "rgb",
        "semantics_colormap",
        "--downscale-factor",
        "2",
        "--output-path",
        str(video),
    )
    frames = _video_frames(video)
    assert len(frames) == 8
    assert frames[0].shape == (12, 32, 3), "rgb and semantics side by side, at half the training resolution"
    assert np.abs(frames[0].astype(float) - frames[-1].astype(float)).mean() > 1.0, "time does not move"


def test_semflow_render_removes_a_class_in_one_command(trained_run, run_cli, tmp_path):
    path = _write_path(trained_run, tmp_path / "bullet.json", "bullet-time", "--time", "0", "--num-frames", "2")
    common = ["--load-config", str(trained_run), "--camera-path-filename", str(path), "--downscale-factor", "2"]
    images = ["--output-format", "images", "--image-format", "png", "--rendered-output-names", "rgb"]
    run_cli("ns-render", "camera-path", *common, *images, "--output-path", str(tmp_path / "plain.mp4"))
    run_cli(
        "semflow-render",
        "camera-path",
        *common,
        *images,
        "--remove-classes",
        "ball",
        "cube",
        "--output-path",
        str(tmp_path / "removed.mp4"),
    )
    plain = [np.asarray(Image.open(p), dtype=float) for p in sorted((tmp_path / "plain").glob("*.png"))]
    removed = [np.asarray(Image.open(p), dtype=float) for p in sorted((tmp_path / "removed").glob("*.png"))]
    assert len(plain) == len(removed) == 2
    assert max(np.abs(a - b).max() for a, b in zip(plain, removed, strict=True)) > 30, "nothing was removed"


def test_ns_render_interpolate_says_which_time_it_renders_at(trained_run, run_cli, tmp_path):
    result = run_cli(
        "ns-render",
        "interpolate",
        "--load-config",
        str(trained_run),
        "--interpolation-steps",
        "1",
        "--downscale-factor",
        "2",
        "--output-format",
        "images",
        "--output-path",
        str(tmp_path / "interp.mp4"),
    )
    output = result.stdout + result.stderr
    assert output.count("the camera has no time") == 1, output[-2000:]
    assert "rendering at t = 0" in output
    assert len(list((tmp_path / "interp").glob("*.jpg"))) >= 3


@pytest.mark.parametrize("mode", ["spiral", "dataset"])
def test_ns_render_spiral_and_dataset_render_semantics(trained_run, run_cli, tmp_path, mode):
    names = ["--rendered-output-names", "rgb", "semantics_colormap", "optical_flow"]
    if mode == "spiral":
        extra = ["--seconds", "0.25", "--frame-rate", "8", "--output-format", "images", *names]
        run_cli(
            "ns-render", "spiral", "--load-config", str(trained_run), *extra, "--output-path", str(tmp_path / "s.mp4")
        )
        assert len(list((tmp_path / "s").glob("*.jpg"))) == 2
    else:
        run_cli("ns-render", "dataset", "--load-config", str(trained_run), *names, "--output-path", str(tmp_path))
        for name in ("rgb", "semantics_colormap", "optical_flow"):  # the tiny demo's 4 nearby and 4 novel views
            assert len(list((tmp_path / "test" / name).glob("*"))) == 8, name
