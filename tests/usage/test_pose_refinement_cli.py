"""A run on a scene with approximate poses, through the commands a person types: it refines the poses, and
`ns-eval`, `ns-render` (dataset and camera path) and the viewer all work on its checkpoint."""

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import tyro
from nerfstudio.utils.eval_utils import eval_setup
from PIL import Image

from semflow_ns.scripts import camera_path
from semflow_ns.viewer.session import camera_state, render_view, start_viewer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def approximate_run(tiny_scene: Path, tiny_train_command, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """config.yml and console output of a 4-step run on a copy of the tiny scene marked approximate_poses."""
    root = tmp_path_factory.mktemp("approximate")
    scene = Path(shutil.copytree(tiny_scene, root / "scene"))
    transforms = json.loads((scene / "transforms.json").read_text())
    transforms["approximate_poses"] = True
    (scene / "transforms.json").write_text(json.dumps(transforms))
    cmd = [
        *tiny_train_command(4, root / "out", "approx"),
        "semflow-data",
        "--data",
        str(scene),
        "--eval-source",
        "video",
        "--eval-interval",
        "4",
    ]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root / "out" / "approx" / "semantic-flow" / "run" / "config.yml", result.stdout


def test_training_refines_the_poses_and_saves_the_corrections(approximate_run):
    config, stdout = approximate_run
    assert "refining the camera poses of the 8 video frames" in " ".join(stdout.split())
    (checkpoint,) = (config.parent / "nerfstudio_models").glob("*.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    correction = state["pipeline"]["_model.camera_optimizer.pose_adjustment"]
    assert correction.shape == (8, 6) and correction.abs().sum() > 0
    assert "camera_opt" in state["optimizers"]


def test_ns_eval_and_ns_render_work_on_training_frames_and_camera_paths(approximate_run, run_cli, tmp_path):
    config, _ = approximate_run
    metrics = tmp_path / "eval.json"
    run_cli("ns-eval", "--load-config", str(config), "--output-path", str(metrics))
    assert np.isfinite(json.loads(metrics.read_text())["results"]["psnr"])

    run_cli(
        "ns-render",
        "dataset",
        "--load-config",
        str(config),
        "--split",
        "train",
        "--rendered-output-names",
        "rgb",
        "--output-path",
        str(tmp_path / "dataset"),
    )
    images = sorted((tmp_path / "dataset").rglob("*.jpg")) + sorted((tmp_path / "dataset").rglob("*.png"))
    assert len(images) == 8
    assert np.asarray(Image.open(images[0])).shape[:2] == (24, 32)

    path = tmp_path / "path.json"
    run_cli("semflow-camera-path", "video", "--load-config", str(config), "--output-path", str(path))
    run_cli(
        "ns-render",
        "camera-path",
        "--load-config",
        str(config),
        "--camera-path-filename",
        str(path),
        "--output-format",
        "images",
        "--output-path",
        str(tmp_path / "path"),
    )
    assert len(list((tmp_path / "path").glob("*.jpg"))) == 8


def test_the_viewer_renders_free_cameras_and_shows_refined_training_cameras(approximate_run):
    config, _ = approximate_run
    train_config, pipeline, _, step = eval_setup(config, test_mode="test")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    viewer = start_viewer(train_config, pipeline, step, port=port)
    try:
        viewer.control_panel._max_res.value = 64
        cameras = pipeline.datamanager.train_dataset.cameras
        outputs = render_view(viewer, camera_state(cameras, 2))  # a free camera (metadata cam_idx only)
        assert torch.isfinite(outputs["rgb"]).all()
        viewer.update_camera_poses()  # nerfstudio moves the training-camera frustums by the model's corrections
    finally:
        viewer.viser_server.stop()

    # semflow-camera-path's training views sit at the learned poses, not at the stored ones
    shot = tyro.cli(camera_path.Command, args=["video", "--load-config", str(config), "--camera", "2"])
    path = camera_path.build_path(shot)  # type: ignore[arg-type]
    c2w = torch.tensor(path["camera_path"][0]["camera_to_world"]).reshape(4, 4)[:3]
    refined = pipeline.model.video_cameras.refined_camera_to_worlds()[2].detach()
    assert torch.allclose(c2w, refined, atol=1e-5)
    assert not torch.allclose(c2w, cameras.camera_to_worlds[2], atol=1e-7)
