"""Bad inputs to ``semflow-process-data``: exit code 1, a message naming the file (and line or field), no
traceback, nothing written to the input folder and no output folder left behind."""

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def frames_args(inputs) -> list[str]:
    return ["--images", str(inputs.frames), "--poses", str(inputs.root / "transforms.json")]


def undecodable_video(inputs) -> list[str]:
    (inputs.root / "broken.mp4").write_bytes(b"\x00\x01 definitely not a video" * 50)
    return ["--video", str(inputs.root / "broken.mp4")]


def label_missing(inputs) -> list[str]:
    (inputs.masks / "frame_004.png").unlink()
    return [*frames_args(inputs), "--labels", str(inputs.masks)]


def label_unmatched(inputs) -> list[str]:
    Image.new("L", (64, 48)).save(inputs.masks / "frame_999_extra.png")
    return [*frames_args(inputs), "--labels", str(inputs.masks)]


def label_size(inputs) -> list[str]:
    Image.new("L", (32, 24)).save(inputs.masks / "frame_002.png")
    return [*frames_args(inputs), "--labels", str(inputs.masks)]


def unknown_colour(inputs) -> list[str]:
    path = inputs.colour / "frame_001.png"
    rgb = np.asarray(Image.open(path).convert("RGB")).copy()
    rgb[5:7, 5:10] = (7, 8, 9)
    Image.fromarray(rgb).save(path)
    return [*frames_args(inputs), "--labels", str(inputs.colour), "--labelmap", str(inputs.root / "labelmap.txt")]


def bad_labelmap(inputs) -> list[str]:
    text = (inputs.root / "labelmap.txt").read_text().replace("crate:255,127,0::", "crate=255,127,0")
    (inputs.root / "labelmap.txt").write_text(text)
    return [*frames_args(inputs), "--labels", str(inputs.colour), "--labelmap", str(inputs.root / "labelmap.txt")]


def poses_shape(inputs) -> list[str]:
    np.save(inputs.root / "poses_bounds.npy", np.load(inputs.root / "poses_bounds.npy")[:, :16])
    return ["--images", str(inputs.frames), "--poses", str(inputs.root / "poses_bounds.npy")]


def poses_inf(inputs) -> list[str]:
    data = np.load(inputs.root / "poses_bounds.npy")
    data[1, 16] = np.inf
    np.save(inputs.root / "poses_bounds.npy", data)
    return ["--images", str(inputs.frames), "--poses", str(inputs.root / "poses_bounds.npy")]


def too_few_frames(inputs) -> list[str]:
    return [*frames_args(inputs), "--max-frames", "2"]


def both_inputs(inputs) -> list[str]:
    return [*frames_args(inputs), "--video", str(inputs.root / "clip.mp4")]


def output_in_input(inputs) -> list[str]:
    return [*frames_args(inputs), "--output", str(inputs.frames / "scene")]


def unknown_dynamic_class(inputs) -> list[str]:
    return [*frames_args(inputs), "--labels", str(inputs.masks), "--dynamic-classes", "car"]


CASES: list[tuple[Callable, str]] = [
    (undecodable_video, r"broken\.mp4: cannot decode the video"),
    (label_missing, r"masks: 1 frame\(s\) have no label images in .*: frame_004\.png \(5 files for 6 frames\)"),
    (label_unmatched, r"masks: 1 label images in .* match no frame by name: frame_999_extra\.png"),
    (
        label_size,
        r"masks/frame_002\.png: label is \(32, 24\) \(w, h\) but its frame .* is \(64, 48\); pass --resize-labels",
    ),
    (unknown_colour, r"colour/frame_001\.png: 1 colour\(s\) not in the label map .*labelmap\.txt: \(7, 8, 9\): 10 px"),
    (bad_labelmap, r"labelmap\.txt:4: cannot parse 'crate=255,127,0'"),
    (poses_shape, r"poses_bounds\.npy: expected an N x 17 array .* got shape \[6, 16\]"),
    (poses_inf, r"poses_bounds\.npy: row 1 \(image 1\) contains NaN or inf"),
    (too_few_frames, r"frames: 2 frame\(s\); a dynamic scene needs at least 3"),
    (both_inputs, r"give exactly one input: --video FILE or --images DIR"),
    (output_in_input, r"--output .*frames/scene: overlaps the input"),
    (unknown_dynamic_class, r"--dynamic-classes: \['car'\] are not classes"),
]


@pytest.mark.parametrize(("damage", "message"), CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_input(inputs_copy, cli, snapshot, tmp_path: Path, damage: Callable, message: str) -> None:
    args = damage(inputs_copy)
    if "--output" not in args:
        args += ["--output", str(tmp_path / "out")]
    before = snapshot(inputs_copy.root)
    code, text = cli(*args)
    flat = " ".join(text.split())
    assert code == 1 and flat.startswith("Error: ")
    assert re.search(message, flat), flat
    assert snapshot(inputs_copy.root) == before
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_resize_labels_on_request(inputs_copy, cli, tmp_path: Path) -> None:
    args = label_size(inputs_copy)
    assert cli(*args, "--resize-labels", "--output", str(tmp_path / "out"))[0] == 0


def test_allow_missing_labels(inputs_copy, cli, tmp_path: Path) -> None:
    args = label_missing(inputs_copy)
    assert cli(*args, "--allow-missing-labels", "--output", str(tmp_path / "out"))[0] == 0


def test_failed_sfm_is_a_clear_message_without_traceback(demo_inputs, snapshot, tmp_path: Path) -> None:
    """A static camera (the same frame repeated) has no parallax: SfM must fail with advice, not a traceback
    (with --pose-fallback sfm-only; the default chain would end in rotation-only poses)."""
    frames = tmp_path / "static"
    frames.mkdir()
    for i in range(5):
        Image.open(demo_inputs.scene.frames[0].image).save(frames / f"{i:05d}.png")
    cmd = ["semflow-process-data", "--images", str(frames), "--output", str(tmp_path / "out"), "--num-threads", "2",
           "--pose-fallback", "sfm-only"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    text = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, text
    assert "Traceback" not in text and "Error:" in text
    assert "structure from motion" in text and "What to try" in text and "--poses" in text
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
