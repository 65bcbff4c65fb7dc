"""The argument presets in ``configs/`` parse as ``ns-train semantic-flow`` arguments and change what they say."""

import shlex
from pathlib import Path

import pytest
import tyro
from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion

from semflow_ns.method_config import semantic_flow_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPECTED = {
    "ablation-point-semantics.txt": lambda c: c.pipeline.model.semantic_source == "point",
    "ablation-no-attention.txt": lambda c: c.pipeline.model.attention.enabled is False,
    "window-5.txt": lambda c: c.pipeline.model.scene_flow.window == 5,
}


def test_every_preset_is_checked() -> None:
    assert sorted(p.name for p in CONFIGS.glob("*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_parses_and_applies(name: str) -> None:
    default = semantic_flow_config()
    assert not EXPECTED[name](default)
    args = shlex.split((CONFIGS / name).read_text())
    config = tyro.cli(AnnotatedBaseConfigUnion, args=["semantic-flow", *args])  # what ns-train parses
    assert EXPECTED[name](config)
