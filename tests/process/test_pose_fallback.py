"""The pose fallback chain of ``semflow-process-data``: rotation-only poses on a synthetic panning camera,
joining partial SfM models, bad inputs for the last resort, and ``--pose-fallback sfm-only``."""

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pycolmap
import pytest
from PIL import Image
from rich.console import Console
from scipy.spatial.transform import Rotation

from semflow_ns.data.format import Intrinsics, load_scene
from semflow_ns.data.producers.optical_flow import FrameFlow
from semflow_ns.process import ProcessError, pose_chain, sift_steps
from semflow_ns.process.parallax import MIN_ROTATION_RATIO
from semflow_ns.process.pose_chain import POSE_STEPS
from semflow_ns.process.rotation_only import _static_mask, prior_intrinsics, rotation_only_poses, track_static_points
from semflow_ns.process.sfm import opengl_camera_to_world
from semflow_ns.process.sift_steps import merge_models

WIDTH, HEIGHT, FOCAL = 160, 120, 140.0
OPENGL = np.diag([1.0, -1.0, -1.0])


def _texture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A static background with structure at several scales (corners to track everywhere)."""
    image = np.zeros((height, width), np.float32)
    for cell in (4, 9, 23):
        noise = rng.random((height // cell + 2, width // cell + 2)).astype(np.float32)
        image += cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)[:height, :width] / 3
    for _ in range(60):
        x, y = rng.integers(0, width - 12), rng.integers(0, height - 12)
        image[y : y + rng.integers(4, 12), x : x + rng.integers(4, 12)] = rng.random()
    grey = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    return np.stack([grey, np.roll(grey, 7, axis=1), np.roll(grey, 5, axis=0)], axis=2)


def panning_clip(folder: Path, count: int = 8, degrees_per_frame: float = 1.5) -> list[np.ndarray]:
    """Writes ``frames/`` and ``masks/`` of a camera turning on the spot (mostly yaw, some pitch and roll) in
    front of a static textured background, with a masked square moving across it; returns the true
    world-to-camera rotations (OpenCV axes, world = the reference view)."""
    rng = np.random.default_rng(7)
    canvas_w, canvas_h = 2 * WIDTH, 2 * HEIGHT
    canvas = _texture(rng, canvas_w, canvas_h)
    # pixel-index intrinsics (pixel centres at integer positions, as warpPerspective uses them)
    k_frame = np.array([[FOCAL, 0, WIDTH / 2 - 0.5], [0, FOCAL, HEIGHT / 2 - 0.5], [0, 0, 1]])
    k_canvas = np.array([[FOCAL, 0, canvas_w / 2 - 0.5], [0, FOCAL, canvas_h / 2 - 0.5], [0, 0, 1]])
    (folder / "frames").mkdir(parents=True)
    (folder / "masks").mkdir()
    rotations = []
    for t in range(count):
        angles = [0.3 * t * degrees_per_frame, (t - count / 2) * degrees_per_frame, 0.2 * t]
        rotation = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
        homography = k_frame @ rotation @ np.linalg.inv(k_canvas)
        frame = cv2.warpPerspective(canvas, homography, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        x0 = 20 + 8 * t
        frame[40:80, x0 : x0 + 40] = _texture(np.random.default_rng(100 + t), 40, 40)  # moves and changes
        mask[40:80, x0 : x0 + 40] = 255
        Image.fromarray(frame).save(folder / "frames" / f"{t:05d}.png")
        Image.fromarray(mask).save(folder / "masks" / f"{t:05d}.png")
        rotations.append(rotation)
    return rotations


def angle_degrees(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(a.T @ b).magnitude()))


def check_rotations(camera_to_world: np.ndarray, truth: list[np.ndarray], tolerance: float) -> None:
    """Recovered camera-to-world rotations (OpenGL, world = frame 0) against the true ones."""
    for t, rotation in enumerate(truth):
        expected = (rotation @ truth[0].T).T  # camera-to-world of frame t in frame 0's camera axes (OpenCV)
        recovered = camera_to_world[t, :3, :3] @ OPENGL
        assert angle_degrees(expected, recovered) < tolerance, (t, angle_degrees(expected, recovered))


def read_clip(folder: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    names = sorted((folder / "frames").iterdir())
    rgb = [np.asarray(Image.open(p).convert("RGB")) for p in names]
    static = [np.asarray(Image.open(folder / "masks" / p.name)) == 0 for p in names]
    return rgb, static


@pytest.fixture(scope="module")
def panning(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    folder = tmp_path_factory.mktemp("panning")
    return folder, panning_clip(folder)


def test_rotation_only_recovers_known_rotations(panning) -> None:
    folder, truth = panning
    rgb, static = read_clip(folder)
    intrinsics = Intrinsics(fl_x=FOCAL, fl_y=FOCAL, cx=WIDTH / 2, cy=HEIGHT / 2, w=WIDTH, h=HEIGHT)
    result = rotation_only_poses(rgb, static, intrinsics)
    assert result.bridged == [] and min(result.pair_inliers) >= 50
    check_rotations(result.camera_to_world, truth, tolerance=0.15)
    assert np.allclose(result.camera_to_world[:, :3, 3], 0.0) and result.residual_px < 0.5
    # total turn is about 10 degrees, so a broken estimate (e.g. identity) cannot pass
    assert angle_degrees(truth[0], truth[-1]) > 8


def test_rotation_only_tracks_only_static_points(panning) -> None:
    """No track starts or ends on the moving square (masks), while the unmasked tracker does use it."""
    folder, _ = panning
    rgb, static = read_clip(folder)
    grey = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in rgb]
    masks = [_static_mask(s, (HEIGHT, WIDTH)) for s in static]
    a, b = track_static_points(grey[2], grey[3], masks[2], masks[3])
    assert len(a) >= 50
    for points, keep in ((a, static[2]), (b, static[3])):
        x, y = np.round(points).astype(int).T
        assert keep[y, x].all()
    everywhere = np.full((HEIGHT, WIDTH), 255, np.uint8)
    a_all, _ = track_static_points(grey[2], grey[3], everywhere, everywhere)
    x, y = np.round(a_all).astype(int).T
    assert (~static[2][y, x]).sum() > 5  # the square has corners: the masks are what removes them


def test_rotation_only_with_a_wrong_focal_prior_is_approximate(panning) -> None:
    """The field-of-view prior (57 deg instead of the true 59.5 deg) still gives rotations within a degree."""
    folder, truth = panning
    rgb, static = read_clip(folder)
    result = rotation_only_poses(rgb, static, prior_intrinsics(WIDTH, HEIGHT))
    check_rotations(result.camera_to_world, truth, tolerance=1.0)


def test_rotation_only_bad_inputs_fail_clearly() -> None:
    rng = np.random.default_rng(0)
    frames = [_texture(rng, WIDTH, HEIGHT) for _ in range(4)]
    intrinsics = prior_intrinsics(WIDTH, HEIGHT)
    covered = [np.zeros((HEIGHT, WIDTH), bool)] * 4
    with pytest.raises(ProcessError, match=r"rotation-only poses: the masks leave less than 2% .* in 4 of 4 frames"):
        rotation_only_poses(frames, covered, intrinsics)
    flat = [np.full((HEIGHT, WIDTH, 3), 128, np.uint8)] * 4
    with pytest.raises(ProcessError, match=r"only 0 of 3 consecutive frame pairs share 20 or more static"):
        rotation_only_poses(flat, [None] * 4, intrinsics)
    with pytest.raises(ProcessError, match=r"2 frame\(s\); at least 3 are needed"):
        rotation_only_poses(frames[:2], [None] * 2, intrinsics)


def test_panning_clip_through_the_cli_ends_in_rotation_only(panning, cli, tmp_path: Path) -> None:
    """The pure pan: flow-track SfM returns a model of all 8 frames, the parallax guard rejects it (rotation alone
    explains its tracks), the SIFT steps are skipped and the rotations and focal length of the guard's
    rotation-only fit are used."""
    folder, truth = panning
    out = tmp_path / "scene"
    code, text = cli("--images", str(folder / "frames"), "--labels", str(folder / "masks"),
                     "--num-threads", "2", "--output", str(out))  # fmt: skip
    assert code == 0, text
    flat = " ".join(text.split())
    assert "rotation-only" in flat and "approximate" in flat and "rotation residual" in flat and "no parallax" in flat
    meta = json.loads((out / "transforms.json").read_text())
    assert meta["approximate_poses"] is True
    report = meta["processing"]
    assert report["pose_step"] == "rotation-only" and report["approximate_poses"] is True
    flow, rotation = report["pose_attempts"]
    assert flow["step"] == "sfm-flow" and flow["registered"] == 8 and flow["error"].startswith("no parallax")
    assert flow["parallax"]["rotation_ratio"] < MIN_ROTATION_RATIO and report["parallax"] == flow["parallax"]
    assert rotation["step"] == "rotation-only" and "error" not in rotation and "sfm-flow tracks" in rotation["note"]
    assert report["registered"] == 8 and report["points"] is None and report["reprojection_error_px"] < 0.5
    scene = load_scene(out)
    assert scene.approximate_poses and len(scene.frames) == 8 and not (out / "colmap").exists()
    assert scene.frames[0].intrinsics.fl_x == pytest.approx(FOCAL, rel=0.03)  # the fit finds the focal length
    assert all(f.sparse_depth is None for f in scene.frames)
    c2w = np.stack([f.camera_to_world for f in scene.frames])
    relative = OPENGL @ np.einsum("ji,njk->nik", c2w[0, :3, :3], c2w[:, :3, :3])  # undo the normalisation
    check_rotations(np.concatenate([relative, np.zeros((8, 3, 1))], axis=2), truth, tolerance=0.3)
    assert np.allclose(c2w[:, :3, 3], c2w[0, :3, 3])  # no translation
    # a bounded world from the rotation-only depth prior (1 to 20), not the +-900 units of a 0.1-100 range
    assert scene.near == pytest.approx(1.0) and scene.far == pytest.approx(2 * 20 / 0.9)
    assert scene.scene_box is not None and np.abs(scene.scene_box).max() < 40


def test_sfm_only_keeps_the_old_failure(panning, cli, snapshot, tmp_path: Path) -> None:
    folder, _ = panning
    before = snapshot(folder)
    code, text = cli("--images", str(folder / "frames"), "--labels", str(folder / "masks"), "--num-threads", "2",
                     "--pose-fallback", "sfm-only", "--output", str(tmp_path / "out"))  # fmt: skip
    flat = " ".join(text.split())
    assert code == 1 and "Error: structure from motion registered no frames" in flat, flat
    assert "What to try" in flat and "rotation-only" not in flat
    assert snapshot(folder) == before
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_masks_covering_everything_stop_with_nothing_written(panning, cli, tmp_path: Path) -> None:
    folder, _ = panning
    masks = tmp_path / "all_masked"
    masks.mkdir()
    for path in sorted((folder / "masks").iterdir()):
        Image.fromarray(np.full((HEIGHT, WIDTH), 255, np.uint8)).save(masks / path.name)
    code, text = cli("--images", str(folder / "frames"), "--labels", str(masks), "--num-threads", "2",
                     "--output", str(tmp_path / "out"))  # fmt: skip
    flat = " ".join(text.split())
    assert code == 1 and "Error: rotation-only poses" in flat and "Traceback" not in flat, flat
    assert "rotation-only poses: the masks leave less than 2%" in flat and "What to try" in flat
    assert "frames registered by the earlier steps" in flat
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_partial_models_are_joined_through_shared_frames() -> None:
    """Two overlapping parts of a synthetic model, one moved by a similarity, join back into the whole."""
    options = pycolmap.SyntheticDatasetOptions()
    options.num_rigs, options.num_cameras_per_rig, options.num_frames_per_rig = 1, 1, 8
    options.num_points3D = 150
    whole = pycolmap.synthesize_dataset(options)
    images = sorted(whole.images.values(), key=lambda im: im.image_id)
    names = [im.name for im in images]
    first, second = pycolmap.Reconstruction(whole), pycolmap.Reconstruction(whole)
    for image in images[6:]:
        first.deregister_frame(image.frame_id)  # frames 0-5
    for image in images[:3]:
        second.deregister_frame(image.frame_id)  # frames 3-7: 3 shared
    quaternion = np.array([0.1, 0.2, 0.3, 0.9]) / np.linalg.norm([0.1, 0.2, 0.3, 0.9])
    second.transform(pycolmap.Sim3d(2.5, pycolmap.Rotation3d(quaternion), np.array([1.0, -2.0, 3.0])))
    merged = merge_models([second, first], names)
    assert merged is not None and merged.registered.all() and merged.num_models == 2
    truth = np.stack([opengl_camera_to_world(im) for im in images])
    np.testing.assert_allclose(merged.camera_to_world, truth, atol=1e-6)  # in the largest model's world
    assert len(merged.points) > 150

    lone = pycolmap.Reconstruction(whole)
    for image in images[:5]:
        lone.deregister_frame(image.frame_id)  # frames 5-7: only 1 shared with `first`
    alone = merge_models([first, lone], names)
    assert alone is not None and alone.registered.tolist() == [True] * 6 + [False] * 2


@pytest.fixture(scope="module")
def synthetic_model() -> pycolmap.Reconstruction:
    options = pycolmap.SyntheticDatasetOptions()
    options.num_rigs, options.num_cameras_per_rig, options.num_frames_per_rig = 1, 1, 8
    options.num_points3D = 150
    options.camera_width, options.camera_height = 160, 120
    options.camera_params = [140.0, 80.0, 60.0, 0.0]
    return pycolmap.synthesize_dataset(options)


def _part(whole: pycolmap.Reconstruction, keep: range) -> pycolmap.Reconstruction:
    part = pycolmap.Reconstruction(whole)
    for position, image in enumerate(sorted(whole.images.values(), key=lambda im: im.image_id)):
        if position not in keep:
            part.deregister_frame(image.frame_id)
    return part


@pytest.mark.parametrize(
    ("default", "relaxed", "step", "registered"),
    [
        ([range(8)], [], "sfm", 8),
        ([range(0, 3)], [range(0, 8)], "sfm-relaxed", 8),
        ([range(0, 6)], [range(3, 8)], "sfm-merged", 8),
        ([], [range(0, 7)], "sfm-relaxed", 7),
    ],
    ids=["sfm", "relaxed", "merged", "no-initial-pair-then-relaxed"],
)
def test_chain_takes_the_first_step_that_registers_enough(
    synthetic_model, monkeypatch, tmp_path: Path, default, relaxed, step: str, registered: int
) -> None:
    """The chain's decisions with mapping replaced by parts of a synthetic model (pycolmap's own mapping is not
    deterministic): which step is used, what is recorded, which SfM model ends up in ``colmap/sparse``."""
    calls = []

    def fake_map(database, image_dir, output, threads, configure=None):
        options = pycolmap.IncrementalPipelineOptions()
        if configure is not None:
            configure(options)
        calls.append(options.mapper.init_min_tri_angle)
        output.mkdir()
        parts = relaxed if configure is not None else default
        return {i: _part(synthetic_model, keep) for i, keep in enumerate(parts)}

    monkeypatch.setattr(sift_steps, "prepare_database", lambda *args: tmp_path / "database.db")
    monkeypatch.setattr(sift_steps, "map_database", fake_map)
    names = [im.name for im in sorted(synthetic_model.images.values(), key=lambda im: im.image_id)]
    inputs = pose_chain.ChainInputs(
        tmp_path, tmp_path, names, tmp_path, [np.zeros((120, 160, 3), np.uint8)] * 8, [None] * 8
    )
    settings = {"camera_model": "SIMPLE_RADIAL", "num_threads": 1, "max_num_features": 100}
    result = pose_chain.estimate_poses(inputs, settings, 0.8, "auto", Console(file=io.StringIO()))
    assert (result.step, result.registered, result.approximate) == (step, registered, False)
    assert [a.step for a in result.attempts] == list(POSE_STEPS[: POSE_STEPS.index(step) + 1])
    assert all(a.error for a in result.attempts[:-1]) and result.attempts[-1].error is None
    assert calls == [16.0] if step == "sfm" else calls == [16.0, sift_steps.RELAXED["init_min_tri_angle"]]
    assert result.camera_to_world.shape == (registered, 4, 4) and len(result.points) >= 50
    assert (tmp_path / "sparse").is_dir() and not (tmp_path / "sparse-relaxed").exists() or step == "sfm-merged"


def test_chain_sfm_only_fails_like_plain_sfm(synthetic_model, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pose_chain, "prepare_database", lambda *args: tmp_path / "database.db")
    monkeypatch.setattr(pose_chain, "map_database", lambda *args, **kw: {0: _part(synthetic_model, range(3))})
    names = [im.name for im in sorted(synthetic_model.images.values(), key=lambda im: im.image_id)]
    inputs = pose_chain.ChainInputs(tmp_path, tmp_path, names, tmp_path, [], [])
    settings = {"camera_model": "SIMPLE_RADIAL", "num_threads": 1, "max_num_features": 100}
    with pytest.raises(ProcessError, match=r"^structure from motion registered only 3 of 8 frames .*What to try"):
        pose_chain.estimate_poses(inputs, settings, 0.8, "sfm-only", Console(file=io.StringIO()))


@pytest.mark.slow
def test_real_panning_clip_gets_a_full_scene(davis_sweep, cli, snapshot, tmp_path: Path) -> None:
    """DAVIS kite-surf (a camera following a surfer over the sea): the chain writes a scene whatever it decides,
    starting with flow-track SfM, and reports why a step was not used."""
    clip = davis_sweep("kite-surf")
    before = snapshot(clip)
    out = tmp_path / "scene"
    code, text = cli("--images", str(clip / "images"), "--labels", str(clip / "masks"), "--max-size", "240",
                     "--frame-step", "1", "--max-frames", "20", "--num-threads", "2", "--output", str(out))  # fmt: skip
    assert code == 0, text
    assert snapshot(clip) == before
    report = json.loads((out / "transforms.json").read_text())["processing"]
    attempts = report["pose_attempts"]
    assert attempts[0]["step"] == "sfm-flow" and report["pose_step"] == attempts[-1]["step"]
    assert all("error" in a for a in attempts[:-1]) and "error" not in attempts[-1]
    if report["pose_step"] == "rotation-only" and "parallax" in attempts[0]:
        assert "parallax" in attempts[0]["error"] and len(attempts) == 2  # SIFT steps skipped
    scene = load_scene(out)
    approximate = report["pose_step"] == "rotation-only" or bool(report["interpolated"])
    assert scene.approximate_poses == approximate == report["approximate_poses"]
    assert len(scene.frames) >= 16 and report["registered"] >= 3
    assert sum(a["seconds"] for a in attempts) < 300


def test_subsampled_step_maps_one_frame_in_three_and_interpolates(monkeypatch, tmp_path: Path) -> None:
    """Plain SfM registers 5 of 24 frames; relaxed SfM on frames 0, 3, ..., 21 registers all 8 of them; the
    frames in between are interpolated and 22, 23 (after the last mapped frame) are dropped."""
    options = pycolmap.SyntheticDatasetOptions()
    options.num_rigs, options.num_cameras_per_rig, options.num_frames_per_rig = 1, 1, 24
    options.num_points3D = 150
    whole = pycolmap.synthesize_dataset(options)
    names = [im.name for im in sorted(whole.images.values(), key=lambda im: im.image_id)]
    mapped = []

    def fake_map(database, image_dir, output, threads, configure=None):
        output.mkdir()
        if output.parent.name == "subsampled":
            mapped.append(output)
            return {0: whole}
        return {0: _part(whole, range(5))}

    databases = []
    monkeypatch.setattr(
        sift_steps,
        "prepare_database",
        lambda work, images, masks, subset, settings: databases.append(subset) or work / "database.db",
    )
    monkeypatch.setattr(sift_steps, "map_database", fake_map)
    inputs = pose_chain.ChainInputs(tmp_path, tmp_path, names, tmp_path, [], [])
    settings = {"camera_model": "SIMPLE_RADIAL", "num_threads": 1, "max_num_features": 100}
    result = pose_chain.estimate_poses(inputs, settings, 0.8, "auto", Console(file=io.StringIO()))
    assert databases == [names, names[::3]] and len(mapped) == 1
    assert (result.step, result.registered, result.first, result.last) == ("sfm-subsampled", 8, 0, 21)
    # interpolated poses are approximate: the scene is marked so and the model refines the poses
    assert result.interpolated == [i for i in range(22) if i % 3] and result.approximate
    assert sorted(result.observations) == list(range(0, 22, 3))  # sparse depths only where the pose is exact
    assert [a.step for a in result.attempts] == ["sfm-flow", "sfm", "sfm-subsampled"]
    assert result.attempts[2].note == "8 frames mapped (one in 3)"
    truth = np.stack([opengl_camera_to_world(whole.images[whole.find_image_with_name(n).image_id]) for n in names])
    np.testing.assert_allclose(result.camera_to_world[::3], truth[:22:3], atol=1e-9)
    assert (tmp_path / "sparse").is_dir() and not (tmp_path / "subsampled").exists()


def test_flow_step_without_a_static_region_falls_through_to_sift(synthetic_model, monkeypatch, tmp_path: Path) -> None:
    """Flow everywhere but nothing static to track: sfm-flow records why and the SIFT steps take over."""
    monkeypatch.setattr(sift_steps, "prepare_database", lambda *args: tmp_path / "database.db")
    monkeypatch.setattr(
        sift_steps, "map_database", lambda db, images, output, *a, **k: output.mkdir() or {0: synthetic_model}
    )
    names = [im.name for im in sorted(synthetic_model.images.values(), key=lambda im: im.image_id)]
    flow = np.zeros((120, 160, 2), np.float32)
    valid = np.ones((120, 160), bool)
    flows = [FrameFlow(flow, valid, flow, valid) for _ in names]
    rgb = [np.zeros((120, 160, 3), np.uint8)] * len(names)
    nothing = [np.zeros((120, 160), bool)] * len(names)
    inputs = pose_chain.ChainInputs(tmp_path, tmp_path, names, tmp_path, rgb, [None] * len(names), flows, nothing)
    settings = {"camera_model": "SIMPLE_RADIAL", "num_threads": 1, "max_num_features": 100}
    result = pose_chain.estimate_poses(inputs, settings, 0.8, "auto", Console(file=io.StringIO()))
    assert [a.step for a in result.attempts] == ["sfm-flow", "sfm"] and result.step == "sfm"
    assert result.attempts[0].error == "only 0 static tracks (at least 100 needed): no usable static region"
    with pytest.raises(ProcessError, match="sfm-flow failed: only 0 static tracks"):
        pose_chain.estimate_poses(inputs, settings, 0.8, "sfm-flow-only", Console(file=io.StringIO()))
