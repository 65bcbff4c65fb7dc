"""Bad input gets a clear message naming what to change, never a traceback."""

import json

import pytest
import torch
import tyro
from nerfstudio.cameras.camera_paths import get_path_from_json
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.utils.eval_utils import eval_setup
from rich.console import Console

from semflow_ns.scripts import camera_path, render

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(trained_run):
    _, pipeline, _, _ = eval_setup(trained_run, test_mode="test")
    return pipeline.model


def _console() -> Console:
    return Console(record=True, width=200)


def test_unknown_output_names_are_listed(trained_run, run_cli, tmp_path):
    path = tmp_path / "one.json"
    args = ["bullet-time", "--num-frames", "1", "--load-config", str(trained_run), "--output-path", str(path)]
    assert camera_path.run(tyro.cli(camera_path.Command, args=args)) == 0  # type: ignore[arg-type]
    result = run_cli(
        "ns-render",
        "camera-path",
        "--load-config",
        str(trained_run),
        "--camera-path-filename",
        str(path),
        "--downscale-factor",
        "4",
        "--rendered-output-names",
        "semantic",
        "--output-path",
        str(tmp_path / "x.mp4"),
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Could not find semantic in the model outputs" in output and "semantics_colormap" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("option", "name", "expected"),
    [
        ("--remove-classes", "balloon", "the scene's classes are: floor, wall, crate, pillar, ball, cube"),
        ("--remove-instances", "red ball", "'rolling ball' (id 4, ball)"),
        ("--highlight-classes", "sky", "unknown class 'sky'"),
    ],
)
def test_unknown_class_or_instance_names_stop_semflow_render(trained_run, tmp_path, option, name, expected):
    args = ["camera-path", "--load-config", str(trained_run), "--camera-path-filename", str(tmp_path / "p.json")]
    console = _console()
    assert render.run(tyro.cli(render.Command, args=[*args, option, name]), console) == 1  # type: ignore[arg-type]
    text = " ".join(console.export_text().split())
    assert f"{option}: unknown" in text and expected in text and "Traceback" not in text


def _small_camera(model, times: torch.Tensor | None) -> Cameras:
    """Video camera 0 at a quarter of its resolution, with ``times`` ([1, 1]) or none."""
    video = model.kwargs["metadata"]["semflow_video"].cameras
    return Cameras(
        camera_to_worlds=video.camera_to_worlds[:1],
        fx=video.fx[:1] / 4,
        fy=video.fy[:1] / 4,
        cx=video.cx[:1] / 4,
        cy=video.cy[:1] / 4,
        width=video.width[:1] // 4,
        height=video.height[:1] // 4,
        times=times,
    )


def test_a_camera_without_times_is_rendered_at_the_default_time_and_said_once(model, capsys):
    untimed = _small_camera(model, None)
    first = model.get_outputs_for_camera(untimed)
    model.get_outputs_for_camera(untimed)
    said = capsys.readouterr().out
    assert said.count("the camera has no time") == 1 and "rendering at t = 0" in said
    at_zero = model.get_outputs_for_camera(_small_camera(model, torch.zeros(1, 1)))
    assert torch.allclose(first["semantics"], at_zero["semantics"], atol=1e-5)


def test_times_outside_the_video_are_clamped_and_said_once(model, capsys):
    late = model.get_outputs_for_camera(_small_camera(model, torch.full((1, 1), 1.7)))
    model.get_outputs_for_camera(_small_camera(model, torch.full((1, 1), -0.5)))
    said = capsys.readouterr().out
    assert said.count("lies outside the video's [0, 1]") == 1 and "camera time 1.7" in said
    end = model.get_outputs_for_camera(_small_camera(model, torch.ones(1, 1)))
    assert torch.allclose(late["semantics"], end["semantics"], atol=1e-5)


def test_semflow_camera_path_rejects_times_outside_the_video_and_fills_missing_ones(trained_run, tmp_path):
    console = _console()
    args = ["novel", "--end", "1.5", "--load-config", str(trained_run), "--output-path", str(tmp_path / "p.json")]
    assert camera_path.run(tyro.cli(camera_path.Command, args=args), console) == 1  # type: ignore[arg-type]
    assert "--end must lie in [0, 1]" in console.export_text()

    viewer_path = tmp_path / "viewer.json"
    poses = [[1.0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 0, 0, 0, 1]] * 3
    viewer_path.write_text(
        json.dumps(
            {
                "render_height": 12,
                "render_width": 16,
                "seconds": 1.0,
                "camera_path": [{"camera_to_world": p, "fov": 50, "aspect": 4 / 3} for p in poses],
            }
        )
    )
    timed_path = tmp_path / "timed.json"
    args = [
        "add-times",
        "--input",
        str(viewer_path),
        "--output-path",
        str(timed_path),
        "--start",
        "0.2",
        "--end",
        "0.8",
    ]
    assert camera_path.run(tyro.cli(camera_path.Command, args=args), _console()) == 0  # type: ignore[arg-type]
    times = get_path_from_json(json.loads(timed_path.read_text())).times
    assert times is not None and torch.allclose(times.flatten(), torch.tensor([0.2, 0.5, 0.8]))
