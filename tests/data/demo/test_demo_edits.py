"""Removal ground truth: demo views rendered with objects taken out of the world."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semflow_ns.data.demo.edits import render_without
from semflow_ns.data.format import SCENE_FILE, load_scene, read_label_image


def test_removing_objects_reveals_what_is_behind_and_changes_nothing_else(tiny_scene: Path) -> None:
    scene = load_scene(tiny_scene)
    frame = scene.eval_frames[0]
    classes, instances = read_label_image(frame.semantics), read_label_image(frame.instances)
    ball = [c.name for c in scene.classes].index("ball")
    assert (classes == ball).any(), "the first held-out view shows a ball"

    view = render_without(scene, frame, classes=["ball"])
    removed = classes == ball
    assert not (view.semantics == ball).any()
    np.testing.assert_array_equal(view.semantics[~removed], classes[~removed])
    assert (view.depth[removed] > np.load(frame.depth)[removed]).all(), "the background lies behind the ball"
    # colour: identical away from the object's outline (pixels on it average rays that hit it)
    away = ~_grow(removed)
    np.testing.assert_array_equal(view.rgb[away], np.asarray(Image.open(frame.image))[away])

    small = render_without(scene, frame, instances=["rolling ball"])
    assert not (small.instances == 4).any() and (small.instances == 5).sum() >= (instances == 5).sum()
    unchanged = render_without(scene, frame)
    np.testing.assert_array_equal(unchanged.rgb, np.asarray(Image.open(frame.image)))


def test_bad_removals_are_refused(tiny_scene: Path, tmp_path: Path) -> None:
    scene = load_scene(tiny_scene)
    with pytest.raises(ValueError, match=r"cannot remove \['floor', 'dog'\]: removable classes are \['ball', "):
        render_without(scene, scene.eval_frames[0], classes=["floor"], instances=["dog"])
    copy = tmp_path / "scene"
    shutil.copytree(tiny_scene, copy)
    meta = json.loads((copy / SCENE_FILE).read_text())
    meta["demo_version"] = 1
    (copy / SCENE_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="demo_version 1 is not this generator's"):
        render_without(load_scene(copy), scene.eval_frames[0], classes=["ball"])
    del meta["demo_config"]
    (copy / SCENE_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not a generated demo scene"):
        render_without(load_scene(copy), scene.eval_frames[0], classes=["ball"])


def _grow(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one pixel in the 8 directions."""
    padded = np.pad(mask, 1)
    h, w = mask.shape
    return np.any([padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
