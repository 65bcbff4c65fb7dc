"""The shared real DAVIS clip through ``semflow-process-data`` (subprocess, real CLI), then ``ns-train``."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from semflow_ns.data.format import load_scene

pytestmark = pytest.mark.slow

TRAIN_QUICK = [
    "--vis", "tensorboard", "--max-num-iterations", "3",
    "--pipeline.datamanager.train-num-rays-per-batch", "128", "--pipeline.model.eval-num-rays-per-chunk", "1024",
    "--steps-per-eval-image", "1000", "--steps-per-eval-batch", "1000",
]  # fmt: skip


def test_davis_car_shadow_is_processed_and_trains(davis: Path, snapshot, tmp_path: Path) -> None:
    before = snapshot(davis)
    scene_dir = tmp_path / "car-shadow"
    cmd = ["semflow-process-data", "--images", str(davis / "images"), "--labels", str(davis / "masks"),
           "--max-size", "480", "--output", str(scene_dir)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert snapshot(davis) == before
    assert "frames registered by SfM" in result.stdout and "mean reprojection error" in result.stdout

    scene = load_scene(scene_dir)
    report = scene.extra["processing"]
    # flow-track SfM registers every frame and its model passes the parallax guard (rotation ratio 3.2)
    assert report["pose_step"] == "sfm-flow" and [a["step"] for a in report["pose_attempts"]] == ["sfm-flow"]
    assert report["registered"] == 40 and len(scene.frames) == 40 and not scene.approximate_poses
    assert report["reprojection_error_px"] < 1.0 and report["points"] > 500
    assert report["parallax"]["rotation_ratio"] > 2.5 and report["parallax"]["median_triangulation_deg"] > 2
    assert all(f.sparse_depth is not None for f in scene.frames)
    assert report["flow_consistent_fraction"] > 0.8
    assert scene.unbounded and scene.frames[0].intrinsics.w == 480
    assert [(c.name, c.dynamic) for c in scene.classes] == [("background", False), ("object", True)]
    print(json.dumps(report))  # the measured numbers, visible with pytest -s

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    train = ["ns-train", "semantic-flow", *TRAIN_QUICK, "--output-dir", str(tmp_path / "runs"),
             "semflow-data", "--data", str(scene_dir)]  # fmt: skip
    result = subprocess.run(train, capture_output=True, text=True, timeout=900, check=False, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert list((tmp_path / "runs").glob("*/semantic-flow/*/nerfstudio_models/step-*.ckpt"))
