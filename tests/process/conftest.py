"""Fixtures of the ``semflow-process-data`` tests: inputs rendered from the demo scene, the shared DAVIS clip,
and a way to run the CLI in-process with its console output captured."""

import hashlib
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
import tyro
from PIL import Image
from rich.console import Console

from semflow_ns.data.demo import DemoSceneConfig, generate_demo_scene
from semflow_ns.data.dynnerf.llff import to_poses_bounds
from semflow_ns.data.format import SceneDescription, load_scene, read_label_image
from semflow_ns.process.options import ProcessOptions
from semflow_ns.scripts.process_data import run

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
"""``../shared/data`` next to the repository (real test data that is not part of the repository)."""
DAVIS = SHARED_DATA / "davis-car-shadow"
DAVIS_SWEEP = SHARED_DATA / "davis-sweep"
"""Five more DAVIS clips (``<clip>/images``, ``<clip>/masks``) on which plain SfM mostly fails."""


@dataclass
class DemoInputs:
    """Raw inputs written from a rendered demo scene: frames, masks, id and colour labels, poses, a video."""

    root: Path
    scene: SceneDescription

    def __getattr__(self, name: str) -> Path:
        return self.root / name


def _write_inputs(scene: SceneDescription, root: Path) -> None:
    colors = np.array([c.color for c in scene.classes], np.uint8)
    entries = []
    for sub in ("frames", "masks", "ids", "colour"):
        (root / sub).mkdir(parents=True)
    for i, frame in enumerate(scene.frames):
        name = f"frame_{i:03d}"
        shutil.copyfile(frame.image, root / "frames" / f"{name}.png")
        ids = read_label_image(frame.semantics)
        moving = np.isin(ids, scene.dynamic_class_ids)
        Image.fromarray(moving.astype(np.uint8) * 255).save(root / "masks" / f"{name}.png")
        instances = Image.fromarray(read_label_image(frame.instances).astype(np.uint8), mode="P")
        instances.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * 756)
        instances.save(root / "ids" / f"{name}.png")
        Image.fromarray(colors[ids]).save(root / "colour" / f"{name}.png")
        entries.append({"file_path": f"frames/{name}.png", "transform_matrix": frame.camera_to_world.tolist()})
    intr = scene.frames[0].intrinsics
    camera = {"fl_x": intr.fl_x, "fl_y": intr.fl_y, "cx": intr.cx, "cy": intr.cy, "w": intr.w, "h": intr.h}
    (root / "transforms.json").write_text(json.dumps({**camera, "frames": entries[::-1]}))
    c2w = np.stack([f.camera_to_world for f in scene.frames])
    np.save(root / "poses_bounds.npy", to_poses_bounds(c2w, [intr.h, intr.w, intr.fl_x], np.tile([0.4, 9.0], (6, 1))))
    lines = ["# label:color_rgb:parts:actions"] + [f"{c.name}:{','.join(map(str, c.color))}::" for c in scene.classes]
    (root / "labelmap.txt").write_text("\n".join(lines) + "\n")
    with av.open(str(root / "clip.mp4"), "w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = intr.w, intr.h, "yuv420p"
        for frame in scene.frames:
            rgb = np.asarray(Image.open(frame.image).convert("RGB"))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture(scope="session")
def demo_inputs(tmp_path_factory: pytest.TempPathFactory) -> DemoInputs:
    """Read-only raw inputs of a 6-frame 64x48 demo video (names ``frame_000`` ...)."""
    base = tmp_path_factory.mktemp("process_inputs")
    config = DemoSceneConfig(num_frames=6, width=64, height=48, num_eval_times=0, supersample=1)
    generate_demo_scene(base / "demo", config, progress=False)
    scene = load_scene(base / "demo")
    _write_inputs(scene, base / "inputs")
    return DemoInputs(base / "inputs", scene)


@pytest.fixture
def inputs_copy(demo_inputs: DemoInputs, tmp_path: Path) -> DemoInputs:
    """A private copy of ``demo_inputs`` that the test may damage."""
    return DemoInputs(Path(shutil.copytree(demo_inputs.root, tmp_path / "inputs")), demo_inputs.scene)


@pytest.fixture(scope="session")
def cli() -> Callable[..., tuple[int, str]]:
    """``cli(*args)``: runs semflow-process-data in-process; returns (exit code, console text)."""

    def call(*args: str) -> tuple[int, str]:
        buffer = io.StringIO()
        console = Console(file=buffer, width=400, force_terminal=False)
        code = run(tyro.cli(ProcessOptions, args=list(args)), console)
        return code, buffer.getvalue()

    return call


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): (hashlib.md5(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in files}


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, tuple[str, int]]]:
    """``snapshot(root)``: (content hash, mtime_ns) of every file below ``root``."""
    return _snapshot


@pytest.fixture
def davis() -> Path:
    """The shared DAVIS car-shadow clip; the test is skipped when ../shared/data is absent."""
    if not (DAVIS / "images").is_dir() or not (DAVIS / "masks").is_dir():
        pytest.skip(f"real test data not found: {DAVIS.resolve()} (../shared/data next to the repository) is absent")
    return DAVIS.resolve()


@pytest.fixture
def davis_sweep() -> Callable[[str], Path]:
    """``davis_sweep(clip)``: a shared DAVIS sweep clip folder; the test is skipped when it is absent."""

    def find(clip: str) -> Path:
        folder = DAVIS_SWEEP / clip
        if not (folder / "images").is_dir() or not (folder / "masks").is_dir():
            pytest.skip(
                f"real test data not found: {folder.resolve()} (../shared/data next to the repository) is absent"
            )
        return folder.resolve()

    return find
