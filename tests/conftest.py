"""Shared fixtures: a tiny demo scene generated once per session, and seeded random generators."""

import dataclasses
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from semflow_ns.data.demo import DemoSceneConfig, generate_demo_scene

TINY_DEMO = DemoSceneConfig(num_frames=8, width=32, height=24, num_eval_times=2)
"""8 video frames of 32x24 pixels and 8 held-out views (4 nearby, 4 novel); renders in a fraction of a second."""


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a tiny, valid demo scene (labels, instances, flow, held-out views). Treat it as read-only:
    tests that modify a scene work on a copy (see ``scene_copy``)."""
    root = tmp_path_factory.mktemp("tiny_scene") / "scene"
    generate_demo_scene(root, TINY_DEMO, progress=False)
    return root.resolve()


@pytest.fixture(scope="session")
def tiny_scene_variants(tiny_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """``tiny_scene`` and two more tiny demo scenes with other textures (seeds 1, 2; same classes): the
    scenes of a multi-scene run. Read-only."""
    root = tmp_path_factory.mktemp("tiny_variants")
    variants = [tiny_scene]
    for seed in (1, 2):
        generate_demo_scene(root / f"seed{seed}", dataclasses.replace(TINY_DEMO, seed=seed), progress=False)
        variants.append((root / f"seed{seed}").resolve())
    return variants


@pytest.fixture
def scene_copy(tiny_scene: Path, tmp_path: Path) -> Path:
    """A private copy of ``tiny_scene`` that the test may edit."""
    return Path(shutil.copytree(tiny_scene, tmp_path / "scene")).resolve()


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
