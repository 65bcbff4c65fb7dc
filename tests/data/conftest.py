"""Fixtures of the data tests: small DynNeRF/NSFF-layout scenes written from a rendered demo scene."""

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from semflow_ns.data.demo import DemoSceneConfig, generate_demo_scene
from semflow_ns.data.dynnerf.llff import to_poses_bounds
from semflow_ns.data.format import SceneDescription, load_scene, read_flow, read_label_image

DYNNERF_DEMO = DemoSceneConfig(num_frames=6, width=64, height=48, num_eval_times=0, supersample=1)
"""6 frames of 64x48: images/ at 64x48, images_2/ at 32x24."""
NEAR, FAR = 0.4, 9.0
"""Depth bounds written into poses_bounds.npy (the demo room is about 8 m across)."""


@pytest.fixture(scope="session")
def dynnerf_source(tmp_path_factory: pytest.TempPathFactory) -> SceneDescription:
    """The rendered demo scene the DynNeRF folders are written from (read-only)."""
    root = tmp_path_factory.mktemp("dynnerf_source") / "demo"
    generate_demo_scene(root, DYNNERF_DEMO, progress=False)
    return load_scene(root)


def write_dynnerf(
    scene: SceneDescription,
    root: Path,
    flow: bool = True,
    images_2: bool = True,
    labels: bool = True,
    motion_masks: bool = False,
    maps_in_parent: bool = False,
) -> Path:
    """Writes ``scene`` in the DynNeRF layout under ``root`` (a new folder) and returns ``root``.

    Label PNGs are colour-coded with the class colours; labelmap.txt and foreground_object.txt go into the
    scene folder, or into its parent (the dataset root) with ``maps_in_parent``.
    """
    (root / "images").mkdir(parents=True)
    intr = scene.frames[0].intrinsics
    c2w = np.stack([f.camera_to_world for f in scene.frames])
    bounds = np.tile([NEAR, FAR], (len(c2w), 1))
    np.save(root / "poses_bounds.npy", to_poses_bounds(c2w, [intr.h, intr.w, intr.fl_x], bounds))
    colors = np.array([c.color for c in scene.classes], dtype=np.uint8)
    for i, frame in enumerate(scene.frames):
        name = f"{i:03d}.png"
        shutil.copyfile(frame.image, root / "images" / name)
        if images_2:
            (root / "images_2").mkdir(exist_ok=True)
            rgb = np.asarray(Image.open(frame.image).convert("RGB"))
            small = cv2.resize(rgb, (intr.w // 2, intr.h // 2), interpolation=cv2.INTER_AREA)
            Image.fromarray(small).save(root / "images_2" / name)
        ids = read_label_image(frame.semantics)
        if labels:
            (root / "SegmentationClass_train").mkdir(exist_ok=True)
            Image.fromarray(colors[ids]).save(root / "SegmentationClass_train" / name)
        if motion_masks:
            (root / "motion_masks").mkdir(exist_ok=True)
            moving = np.isin(ids, scene.dynamic_class_ids).astype(np.uint8) * 255
            Image.fromarray(moving).save(root / "motion_masks" / name)
        for key, path in (("fwd", frame.flow_fwd), ("bwd", frame.flow_bwd)):
            if flow and path is not None:
                (root / "flow").mkdir(exist_ok=True)
                values, mask = read_flow(path)
                np.savez(root / "flow" / f"{i:03d}_{key}.npz", flow=values, mask=mask)
    maps = root.parent if maps_in_parent else root
    lines = ["# label:color_rgb:parts:actions"] + [f"{c.name}:{','.join(map(str, c.color))}::" for c in scene.classes]
    (maps / "labelmap.txt").write_text("\n".join(lines) + "\n")
    (maps / "foreground_object.txt").write_text("".join(f"{c.name}\n" for c in scene.classes if c.dynamic))
    return root


@pytest.fixture
def make_dynnerf(dynnerf_source: SceneDescription, tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_dynnerf(name="scene", **variant)`` writes a DynNeRF folder (see ``write_dynnerf``)."""

    def make(name: str = "scene", **variant: bool) -> Path:
        return write_dynnerf(dynnerf_source, tmp_path / "dataset" / name, **variant)

    return make


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): (hashlib.md5(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in files}


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, tuple[str, int]]]:
    """``snapshot(root)``: (content hash, mtime_ns) of every file below ``root``, to check that a tool left its
    input untouched."""
    return _snapshot
