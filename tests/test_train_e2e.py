"""`ns-train semantic-flow` as a user runs it: a subprocess on a tiny scene, then a resume."""

import math
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

QUICK = [
    "--vis",
    "tensorboard",
    "--logging.steps-per-log",
    "1",
    "--steps-per-eval-image",
    "2",
    "--steps-per-eval-batch",
    "2",
    "--pipeline.datamanager.train-num-rays-per-batch",
    "128",
    "--pipeline.model.eval-num-rays-per-chunk",
    "1024",
]


def ns_train(output: Path, scene: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        "ns-train",
        "semantic-flow",
        *QUICK,
        "--output-dir",
        str(output),
        *extra,
        "semflow-data",
        "--data",
        str(scene),
    ]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def train_losses(run_dir: Path) -> list:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [e.value for e in events.Scalars("Train Loss")]


def test_ns_train_writes_a_checkpoint_with_finite_losses_and_resumes(tiny_scene, tmp_path):
    ns_train(tmp_path, tiny_scene, "--max-num-iterations", "4")
    (run_dir,) = list(tmp_path.glob("*/semantic-flow/*"))
    assert (run_dir / "config.yml").is_file()
    assert sorted(p.name for p in (run_dir / "nerfstudio_models").iterdir()) == ["step-000000003.ckpt"]
    losses = train_losses(run_dir)
    assert len(losses) >= 4 and all(math.isfinite(v) for v in losses)

    resumed = ns_train(
        tmp_path / "resumed", tiny_scene, "--max-num-iterations", "2", "--load-dir", str(run_dir / "nerfstudio_models")
    )
    printed = (resumed.stdout + resumed.stderr).replace("\n", "")  # rich folds a path longer than the console
    assert "step-000000003.ckpt" in printed
    (resumed_dir,) = list((tmp_path / "resumed").glob("*/semantic-flow/*"))
    assert sorted(p.name for p in (resumed_dir / "nerfstudio_models").iterdir()) == ["step-000000005.ckpt"]
