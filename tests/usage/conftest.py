"""Fixtures of the usage tests: one tiny run trained with `ns-train` (a subprocess, as a person runs it),
shared by every test that loads, renders, evaluates or exports a checkpoint."""

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

TINY_MODEL = [
    "--pipeline.datamanager.train-num-rays-per-batch",
    "256",
    "--pipeline.model.eval-num-rays-per-chunk",
    "1024",
    "--pipeline.model.num-proposal-samples",
    "16",
    "--pipeline.model.num-samples",
    "8",
    "--pipeline.model.semantic-samples",
    "4",
    *(
        arg
        for grid in ("proposal-planes", "static-field.planes", "dynamic-field.planes", "scene-flow.planes")
        for arg in (f"--pipeline.model.{grid}.resolutions", "16")
    ),
]
"""A small model: few samples per ray and 16-cell grids."""

TRAIN_STEPS = 60
"""Enough for the tiny model to predict the moving classes on some pixels (the viewer test removes one)."""
LABEL_FRAMES = "first:50%"
"""Labels on video frames 0-3 of 8, so that evaluation also scores the unlabelled frames 4-7."""


def run_command(*cmd: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Runs a console script on the CPU; with ``check``, fails the test with its output unless it exits 0."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(list(cmd), check=False, capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def train_command(steps: int, output: Path, experiment: str) -> list[str]:
    """``ns-train semantic-flow`` of the tiny model for ``steps`` steps into ``output/experiment/semantic-flow/run``,
    without evaluations during training; the DataParser and its options follow."""
    evals = [
        "--steps-per-eval-image",
        "10000",
        "--steps-per-eval-batch",
        "10000",
        "--steps-per-eval-all-images",
        "100000",
    ]
    return [
        "ns-train", "semantic-flow", "--vis", "tensorboard", "--max-num-iterations", str(steps), *evals, *TINY_MODEL,
        "--output-dir", str(output), "--experiment-name", experiment, "--timestamp", "run",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def trained_run(tiny_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config.yml of a tiny semantic-flow run on ``tiny_scene`` (labels on the first half of the video)."""
    output = tmp_path_factory.mktemp("usage_runs")
    run_command(
        *train_command(TRAIN_STEPS, output, "tiny"),
        "semflow-data",
        "--data",
        str(tiny_scene),
        "--label-frames",
        LABEL_FRAMES,
    )
    config = output / "tiny" / "semantic-flow" / "run" / "config.yml"
    assert config.is_file()
    return config


@pytest.fixture(scope="session")
def tiny_model_args() -> list[str]:
    """:data:`TINY_MODEL`, for tests that build the tiny model themselves."""
    return list(TINY_MODEL)


@pytest.fixture(scope="session")
def tiny_train_command() -> Callable[[int, Path, str], list[str]]:
    """:func:`train_command`, for tests that train runs of their own."""
    return train_command


@pytest.fixture(scope="session")
def run_cli():
    """:func:`run_command`, for tests (and module fixtures) that run console scripts."""
    return run_command
