"""Tests of the procedural demo scene, its on-disk cache and the ``semflow-demo`` command."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from semflow_ns.data.demo import (
    DEMO_VERSION,
    DemoSceneConfig,
    DemoStatus,
    default_demo_dir,
    demo_status,
    ensure_demo_scene,
    generate_demo_scene,
)
from semflow_ns.data.demo import cache as demo_cache
from semflow_ns.data.demo.config import (
    MIN_NOVEL_ANGLE_DEGREES,
    eval_arc_positions,
    eval_time_indices,
    viewing_angle_degrees,
)
from semflow_ns.data.demo.scene import arc_position
from semflow_ns.data.format import SCENE_FILE, SceneDescription, load_scene, read_flow, read_label_image
from semflow_ns.scripts.demo import entrypoint

TINY = DemoSceneConfig(num_frames=8, width=32, height=24, num_eval_times=2)
"""Small enough to render in a fraction of a second."""
TINY_EPE_BOUND_PX = 2.0
"""Measured mean end-point error of the estimated flow for TINY: about 1.0 px (0.7 px where consistent)."""


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory: pytest.TempPathFactory) -> SceneDescription:
    return generate_demo_scene(tmp_path_factory.mktemp("demo") / "scene", TINY, progress=False)


def test_tiny_scene_passes_the_format_checks(tiny_scene: SceneDescription) -> None:
    scene = load_scene(tiny_scene.root, check_files=True)
    assert len(scene.frames) == TINY.num_frames
    assert scene.extra["demo_version"] == DEMO_VERSION
    assert scene.extra["demo_config"] == {**TINY.__dict__}
    assert scene.scene_box is not None and scene.near is not None and scene.far is not None
    assert scene.near < scene.far
    intr = scene.frames[0].intrinsics
    assert (intr.w, intr.h, intr.cx, intr.cy) == (32, 24, 16.0, 12.0) and intr.fl_x == intr.fl_y


def test_classes_and_instances(tiny_scene: SceneDescription) -> None:
    assert len(tiny_scene.classes) >= 5
    dynamic = {tiny_scene.classes[i].name for i in tiny_scene.dynamic_class_ids}
    assert dynamic
    per_class = {name: [inst.id for inst in tiny_scene.instances if inst.class_name == name] for name in dynamic}
    assert max(len(ids) for ids in per_class.values()) >= 2
    colours = [c.color for c in tiny_scene.classes]
    assert len(set(colours)) == len(colours)


def test_times_increase_over_the_unit_interval(tiny_scene: SceneDescription) -> None:
    times = np.array([f.time for f in tiny_scene.frames])
    assert times[0] == 0.0 and times[-1] == 1.0
    assert np.all(np.diff(times) > 0)


def test_labels_use_valid_ids_and_show_every_class(tiny_scene: SceneDescription) -> None:
    instance_ids = {0} | {inst.id for inst in tiny_scene.instances}
    seen = set()
    for frame in [*tiny_scene.frames, *tiny_scene.eval_frames]:
        assert frame.semantics is not None and frame.instances is not None
        semantics = read_label_image(frame.semantics)
        assert semantics.min() >= 0 and semantics.max() < len(tiny_scene.classes)
        assert set(np.unique(read_label_image(frame.instances))) <= instance_ids
        seen |= set(np.unique(semantics).tolist())
    assert seen == set(range(len(tiny_scene.classes)))


def test_moving_objects_move(tiny_scene: SceneDescription) -> None:
    first, last = tiny_scene.frames[0], tiny_scene.frames[-1]
    assert first.instances is not None and last.instances is not None
    first_ids, last_ids = read_label_image(first.instances), read_label_image(last.instances)
    dynamic_names = {tiny_scene.classes[i].name for i in tiny_scene.dynamic_class_ids}
    for inst in tiny_scene.instances:
        if inst.class_name in dynamic_names:
            assert (first_ids == inst.id).any(), f"{inst.name} is not visible in the first frame"
            assert not np.array_equal(first_ids == inst.id, last_ids == inst.id), f"{inst.name} did not move"


def test_eval_frames_have_depth_and_match_video_times(tiny_scene: SceneDescription) -> None:
    assert len(tiny_scene.eval_frames) == 4 * TINY.num_eval_times
    video_times = [f.time for f in tiny_scene.frames]
    for frame in tiny_scene.eval_frames:
        assert frame.time in video_times or frame.view_set == "novel"
        assert frame.depth is not None and frame.flow_fwd is None
        depth = np.load(frame.depth)
        assert depth.shape == (24, 32) and depth.dtype == np.float32
        assert np.all(np.isfinite(depth)) and depth.min() > 0 and depth.max() < (tiny_scene.far or np.inf)


def test_flow_files_and_missing_ends(tiny_scene: SceneDescription) -> None:
    frames = tiny_scene.frames
    assert frames[0].flow_bwd is None and frames[-1].flow_fwd is None
    for frame in frames[:-1]:
        assert frame.flow_fwd is not None and frame.flow_fwd.name.endswith("_fwd.npz")
        flow, mask = read_flow(frame.flow_fwd)
        assert flow.shape == (24, 32, 2) and mask.shape == (24, 32)
    assert all(frame.flow_bwd is not None for frame in frames[1:])


def test_estimated_flow_is_close_to_ground_truth(tiny_scene: SceneDescription) -> None:
    gt_dir = tiny_scene.root / tiny_scene.extra["gt_flow_dir"]
    errors = []
    for index, frame in enumerate(tiny_scene.frames[:-1]):
        assert frame.flow_fwd is not None
        gt = np.load(gt_dir / f"{index:05d}_fwd.npy")
        assert gt.shape == (24, 32, 2) and gt.dtype == np.float32
        errors.append(np.linalg.norm(read_flow(frame.flow_fwd)[0] - gt, axis=-1).mean())
    assert not (gt_dir / f"{len(tiny_scene.frames) - 1:05d}_fwd.npy").exists()
    assert float(np.mean(errors)) < TINY_EPE_BOUND_PX
    stats = tiny_scene.extra["flow_stats"]
    assert stats["epe_px"] < TINY_EPE_BOUND_PX and 0.5 < stats["consistent_fraction"] <= 1.0
    assert 0.05 < stats["moving_pixel_fraction"] < 0.3


def test_nearby_views_sit_on_the_arc_and_novel_views_far_from_every_training_camera(
    tiny_scene: SceneDescription,
) -> None:
    training = [f.camera_to_world for f in tiny_scene.frames]
    times = [f.time for f in tiny_scene.frames]
    nearby = [f for f in tiny_scene.eval_frames if f.view_set == "nearby"]
    novel = [f for f in tiny_scene.eval_frames if f.view_set == "novel"]
    assert tiny_scene.eval_frames == nearby + novel and len(nearby) == len(novel) == 4
    assert [f.image.name for f in novel] == ["t00002_n0.png", "t00002_n1.png", "t00006_n0.png", "t00006_n1.png"]
    # at frames 2 and 6, then halfway to the next frame: times no training frame has
    assert [f.time for f in novel] == pytest.approx(
        [times[2], (times[2] + times[3]) / 2, times[6], (times[6] + times[7]) / 2]
    )
    for frame in nearby:  # the same height as the arc, within one arc step of a training camera
        assert viewing_angle_degrees(frame.camera_to_world, training) < 10.0
    for frame in novel:
        assert viewing_angle_degrees(frame.camera_to_world, training) >= MIN_NOVEL_ANGLE_DEGREES
        assert frame.camera_to_world[2, 3] > max(p[2, 3] for p in training) + 0.5  # another height
    meta = json.loads((tiny_scene.root / SCENE_FILE).read_text())
    assert {f.get("view_set") for f in meta["eval_frames"]} == {"nearby", "novel"}
    assert all("view_set" not in f for f in meta["frames"])


def test_novel_views_can_be_left_out(tmp_path: Path) -> None:
    config = DemoSceneConfig(num_frames=4, width=16, height=12, num_eval_times=1, novel_views=False, supersample=1)
    scene = generate_demo_scene(tmp_path / "scene", config, progress=False)
    assert [f.view_set for f in scene.eval_frames] == ["nearby", "nearby"]


def test_viewing_angle() -> None:
    turned = np.eye(4)
    turned[:3, :3] = [[1, 0, 0], [0, np.cos(0.3), -np.sin(0.3)], [0, np.sin(0.3), np.cos(0.3)]]
    assert viewing_angle_degrees(turned, [np.eye(4), turned]) == pytest.approx(0.0, abs=1e-6)
    assert viewing_angle_degrees(turned, [np.eye(4)]) == pytest.approx(np.degrees(0.3))


def test_generation_is_deterministic(tiny_scene: SceneDescription, tmp_path: Path) -> None:
    again = generate_demo_scene(tmp_path / "again", TINY, progress=False)
    for a, b in zip([*tiny_scene.frames, *tiny_scene.eval_frames], [*again.frames, *again.eval_frames], strict=True):
        assert (
            a.semantics is not None and b.semantics is not None and a.instances is not None and b.instances is not None
        )
        np.testing.assert_array_equal(read_label_image(a.semantics), read_label_image(b.semantics))
        np.testing.assert_array_equal(read_label_image(a.instances), read_label_image(b.instances))
        np.testing.assert_array_equal(np.asarray(Image.open(a.image)), np.asarray(Image.open(b.image)))


def test_eval_time_and_camera_choice() -> None:
    assert eval_time_indices(48, 12) == list(range(2, 48, 4))
    assert eval_time_indices(8, 2) == [2, 6]
    assert eval_arc_positions(0.5, 0.1) == pytest.approx((0.4, 0.6))
    assert eval_arc_positions(0.05, 0.1) == pytest.approx((0.15, 0.25))  # no room before: both after
    assert eval_arc_positions(1.0, 0.1) == pytest.approx((0.8, 0.9))


def test_camera_sweeps_the_arc_back_and_forth() -> None:
    positions = [arc_position(t, 4) for t in (0.0, 0.125, 0.25, 0.375, 0.5, 1.0)]
    assert positions == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0, 0.0])
    assert arc_position(0.3, 1) == pytest.approx(0.3)  # one sweep: a one-way pan


def test_default_demo_dir_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEMFLOW_DEMO_DIR", str(tmp_path / "elsewhere"))
    assert default_demo_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("SEMFLOW_DEMO_DIR")
    assert default_demo_dir() == Path.home() / ".cache" / "semflow_ns" / "demo"


def test_ensure_reuses_then_regenerates_on_config_change(tmp_path: Path) -> None:
    path = ensure_demo_scene(tmp_path / "demo", TINY, progress=False)
    stamp = (path / SCENE_FILE).stat().st_mtime_ns
    assert ensure_demo_scene(path, TINY, progress=False) == path
    assert (path / SCENE_FILE).stat().st_mtime_ns == stamp
    other = DemoSceneConfig(num_frames=6, width=32, height=24, num_eval_times=1, seed=1)
    assert demo_status(path, other) is DemoStatus.OUTDATED
    ensure_demo_scene(path, other, progress=False)
    assert json.loads((path / SCENE_FILE).read_text())["demo_config"]["seed"] == 1
    assert len(load_scene(path).frames) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_ensure_fills_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    ensure_demo_scene(tmp_path / "empty", TINY, progress=False)
    assert demo_status(tmp_path / "empty", TINY) is DemoStatus.CURRENT


def test_ensure_refuses_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a semflow demo"):
        ensure_demo_scene(folder, TINY, progress=False)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    (folder / SCENE_FILE).write_text(json.dumps({"frames": []}))
    with pytest.raises(FileExistsError):
        ensure_demo_scene(folder, TINY, progress=False)


def test_interrupted_generation_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_cache, "generate_demo_scene", fail)
    with pytest.raises(KeyboardInterrupt):
        ensure_demo_scene(tmp_path / "demo", TINY, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_demo_written_by_another_process_during_generation_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes asking for a missing demo at once: the one that finishes second keeps the first one's."""
    path = tmp_path / "demo"
    generate = demo_cache.generate_demo_scene
    first: dict[str, int] = {}

    def generate_while_another_process_finishes(staging: Path, *args: object, **kwargs: object) -> None:
        generate(staging, *args, **kwargs)
        monkeypatch.setattr(demo_cache, "generate_demo_scene", generate)
        ensure_demo_scene(path, TINY, progress=False)  # the other process, done first
        first["stamp"] = (path / SCENE_FILE).stat().st_mtime_ns

    monkeypatch.setattr(demo_cache, "generate_demo_scene", generate_while_another_process_finishes)
    assert ensure_demo_scene(path, TINY, progress=False) == path
    assert demo_status(path, TINY) is DemoStatus.CURRENT
    assert (path / SCENE_FILE).stat().st_mtime_ns == first["stamp"]  # the first demo, not replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # no staging folder left behind


def test_a_demo_moved_into_place_between_the_last_check_and_the_rename_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The narrower race: the other process renames its demo into place after this one checked the folder
    (still missing) and before this one renames: that rename fails, and the other process's demo is kept."""
    path = tmp_path / "demo"
    move = demo_cache._move_into_place
    first: dict[str, int] = {}

    def another_process_wins_the_rename(staging: Path, *args: object) -> None:
        monkeypatch.setattr(demo_cache, "_move_into_place", move)
        ensure_demo_scene(path, TINY, progress=False)  # the other process, done just before this rename
        first["stamp"] = (path / SCENE_FILE).stat().st_mtime_ns
        move(staging, path, DemoStatus.MISSING, Console(quiet=True))  # the status this process checked

    monkeypatch.setattr(demo_cache, "_move_into_place", another_process_wins_the_rename)
    assert ensure_demo_scene(path, TINY, progress=False) == path
    assert demo_status(path, TINY) is DemoStatus.CURRENT
    assert (path / SCENE_FILE).stat().st_mtime_ns == first["stamp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_outdated_demo_with_user_files_is_kept_aside(tmp_path: Path) -> None:
    path = ensure_demo_scene(tmp_path / "demo", TINY, progress=False)
    (path / "my_results.txt").write_text("precious")
    ensure_demo_scene(path, DemoSceneConfig(num_frames=6, width=32, height=24, num_eval_times=1), progress=False)
    kept = [p for p in tmp_path.iterdir() if p.name != "demo"]
    assert len(kept) == 1 and (kept[0] / "my_results.txt").read_text() == "precious"


def test_cli_writes_reuses_and_refuses(tmp_path: Path) -> None:
    tiny_args = ["--num-frames", "8", "--width", "32", "--height", "24", "--num-eval-times", "2"]
    out = tmp_path / "cli"
    for _ in range(2):  # the second run finds the scene up to date
        with pytest.raises(SystemExit) as done:
            entrypoint(["--output", str(out), *tiny_args])
        assert done.value.code == 0
    assert demo_status(out, TINY) is DemoStatus.CURRENT
    with pytest.raises(SystemExit) as refused:
        entrypoint(["--output", str(out), *tiny_args, "--seed", "3"])
    assert refused.value.code == 1
    with pytest.raises(SystemExit) as replaced:
        entrypoint(["--output", str(out), *tiny_args, "--seed", "3", "--overwrite"])
    assert replaced.value.code == 0
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.bin").write_bytes(b"\0")
    for extra in ([], ["--overwrite"]):
        with pytest.raises(SystemExit) as refused:
            entrypoint(["--output", str(foreign), *tiny_args, *extra])
        assert refused.value.code == 1
    assert [p.name for p in foreign.iterdir()] == ["data.bin"]
