"""``benchmarks/process_sweep.py``: clip discovery in every layout, and the whole sweep on a tiny clip."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SWEEP = Path(__file__).resolve().parents[2] / "benchmarks" / "process_sweep.py"


def _sweep_module():
    spec = importlib.util.spec_from_file_location("process_sweep", SWEEP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["process_sweep"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _clip(root: Path, frames: Path, masks: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for source in sorted(frames.iterdir()):
        (root / "images" / source.name).symlink_to(source)
    for source in sorted(masks.iterdir()):
        (root / "masks" / source.name).symlink_to(source)
    return root


def test_clips_are_found_in_every_layout(demo_inputs, tmp_path: Path) -> None:
    sweep = _sweep_module()
    single = _clip(tmp_path / "one", demo_inputs.frames, demo_inputs.masks)
    group = tmp_path / "group"
    _clip(group / "b", demo_inputs.frames, demo_inputs.masks)
    _clip(group / "a", demo_inputs.frames, demo_inputs.masks)
    davis = tmp_path / "DAVIS"
    (davis / "JPEGImages" / "480p" / "kite").mkdir(parents=True)
    (davis / "Annotations" / "480p" / "kite").mkdir(parents=True)
    (davis / "JPEGImages" / "480p" / "nomask").mkdir(parents=True)

    clips = sweep.find_clips([single, group, davis], [])
    assert [c.name for c in clips] == ["one", "a", "b", "kite", "nomask"]
    assert clips[0].images == single / "images" and clips[0].masks == single / "masks"
    assert clips[3].masks == davis / "Annotations" / "480p" / "kite" and clips[4].masks is None
    assert [c.name for c in sweep.find_clips([group], ["b"])] == ["b"]
    with pytest.raises(SystemExit, match="no clip named"):
        sweep.find_clips([group], ["zebra"])
    with pytest.raises(SystemExit, match="no clips"):
        sweep.find_clips([tmp_path / "DAVIS" / "Annotations"], [])


@pytest.mark.slow
def test_sweep_processes_trains_and_scores_every_clip(demo_inputs, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    _clip(clips / "demo", demo_inputs.frames, demo_inputs.masks)
    broken = _clip(clips / "short", demo_inputs.frames, demo_inputs.masks)
    for extra in sorted((broken / "images").iterdir())[2:]:
        extra.unlink()  # two frames: semflow-process-data refuses it, the sweep goes on
    poses = ["--poses", str(demo_inputs.root / "transforms.json"), "--bounds", "0.4", "9"]
    result = subprocess.run(
        [sys.executable, str(SWEEP), str(clips), "--steps", "2", "--eval-every", "3", "--output", str(tmp_path / "out"),
         "--process-args=" + " ".join(poses + ["--allow-missing-labels"])],
        check=False, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["clip"]: row for row in json.loads((tmp_path / "out" / "results.json").read_text())}
    demo, short = rows["demo"], rows["short"]
    assert demo["error"] is None and demo["frames"] == 6 and demo["steps"] == 2
    assert np.isfinite(demo["psnr"]) and 0 <= demo["miou"] <= 1 and demo["process_s"] > 0
    assert short["frames"] == 0 and "frame" in short["error"]
    assert "1 of 2 clips processed and trained" in result.stdout
    assert (tmp_path / "out" / "runs" / "demo" / "semantic-flow" / "sweep" / "config.yml").is_file()
