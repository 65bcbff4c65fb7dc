"""A DynNeRF-layout scene (colour labels, no flow/ and no images_2/) trains through ``ns-train ... dynnerf-data``."""

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_ns_train_on_a_dynnerf_folder(make_dynnerf, snapshot, tmp_path: Path) -> None:
    root = make_dynnerf(flow=False, images_2=False)
    before = snapshot(root)
    cmd = [
        "ns-train", "semantic-flow", "--vis", "tensorboard", "--max-num-iterations", "3",
        "--pipeline.datamanager.train-num-rays-per-batch", "128", "--pipeline.model.eval-num-rays-per-chunk", "1024",
        "--steps-per-eval-image", "1000", "--steps-per-eval-batch", "1000", "--output-dir", str(tmp_path / "runs"),
        "dynnerf-data", "--data", str(root), "--cache-dir", str(tmp_path / "cache"), "--label-frames", "first:50%",
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "labels on 3/6 frames" in " ".join(result.stdout.split())
    assert list((tmp_path / "runs").glob("*/semantic-flow/*/nerfstudio_models/step-*.ckpt"))
    assert snapshot(root) == before and len(list((tmp_path / "cache").iterdir())) == 1
