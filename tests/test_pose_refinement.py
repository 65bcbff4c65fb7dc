"""Camera pose refinement: mode resolution, one pose correction for rays, projections and renders."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import tyro
from nerfstudio.cameras.camera_optimizers import CameraOptimizer
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion
from test_model import tiny_pipeline, train_step

from semflow_ns.configs.method_configs import semantic_flow_config
from semflow_ns.data.dataparsers.metadata import VIDEO_FRAME_KEY
from semflow_ns.field_components.flow_aggregation import VideoCameras
from semflow_ns.model_components.pose_refinement import (
    PoseRefinementConfig,
    VideoPoseOptimizer,
    corrected_camera_to_worlds,
    corrected_rays,
    refine_camera,
    untrained_blend,
)


def mark_approximate(scene: Path) -> Path:
    path = scene / "transforms.json"
    data = json.loads(path.read_text())
    data["approximate_poses"] = True
    path.write_text(json.dumps(data))
    return scene


def random_optimizer(num_cameras: int, mode: str = "SO3xR3", scale: float = 0.05) -> CameraOptimizer:
    optimizer = PoseRefinementConfig(mode=mode).setup(num_cameras=num_cameras, device="cpu")  # type: ignore[arg-type]
    with torch.no_grad():
        optimizer.pose_adjustment.normal_(0.0, scale)
    return optimizer


@pytest.fixture(scope="module")
def refining(tiny_scene):
    """A tiny pipeline that refines poses (forced on) with a nonzero correction on every frame."""
    config, pipeline = tiny_pipeline(tiny_scene, camera_optimizer=PoseRefinementConfig(mode="SO3xR3"))
    with torch.no_grad():
        pipeline.model.camera_optimizer.pose_adjustment.normal_(0.0, 0.05)
    return config, pipeline


# ----------------------------------------------------------------------------------------------
# configuration


def test_auto_mode_follows_the_scene_and_explicit_modes_win():
    assert PoseRefinementConfig().mode == "auto"
    assert PoseRefinementConfig().resolve(approximate_poses=True).mode == "SO3xR3"
    assert PoseRefinementConfig().resolve(approximate_poses=False).mode == "off"
    for mode in ("off", "SO3xR3", "SE3"):
        for approximate in (False, True):
            assert PoseRefinementConfig(mode=mode).resolve(approximate).mode == mode  # type: ignore[arg-type]


def test_default_is_on_for_approximate_scenes_and_off_otherwise(tiny_scene, scene_copy):
    config, exact = tiny_pipeline(tiny_scene)
    assert exact.model.camera_optimizer.config.mode == "off"
    assert "camera_opt" not in exact.model.get_param_groups()
    _, approximate = tiny_pipeline(mark_approximate(scene_copy))
    assert approximate.model.scene_info.approximate_poses
    assert approximate.model.camera_optimizer.config.mode == "SO3xR3"
    assert approximate.model.get_param_groups()["camera_opt"] == [approximate.model.camera_optimizer.pose_adjustment]
    _, forced_off = tiny_pipeline(scene_copy, camera_optimizer=PoseRefinementConfig(mode="off"))
    assert "camera_opt" not in forced_off.model.get_param_groups()
    assert "camera_opt" in config.optimizers


@pytest.mark.parametrize("mode", ["off", "SO3xR3", "SE3", "auto"])
def test_mode_parses_from_the_command_line(mode):
    args = ["semantic-flow", "--pipeline.model.camera-optimizer.mode", mode]
    config = tyro.cli(AnnotatedBaseConfigUnion, args=args)  # what ns-train parses
    assert config.pipeline.model.camera_optimizer.mode == mode
    assert tyro.cli(AnnotatedBaseConfigUnion, args=["semantic-flow"]).pipeline.model.camera_optimizer.mode == "auto"


def test_every_parameter_is_in_exactly_one_group_when_refining(refining):
    config, pipeline = refining
    groups = pipeline.model.get_param_groups()
    assert set(groups) == set(config.optimizers)
    seen = [id(p) for params in groups.values() for p in params]
    assert len(seen) == len(set(seen))
    assert {id(p) for p in pipeline.model.parameters() if p.numel() > 0} == set(seen)
    # the pose correction is saved once, under the model's camera optimizer
    assert [k for k in pipeline.model.state_dict() if "pose_adjustment" in k] == ["camera_optimizer.pose_adjustment"]


# ----------------------------------------------------------------------------------------------
# one correction rule, the same as nerfstudio's


def tiny_cameras(num: int = 3) -> Cameras:
    c2w = torch.eye(4)[None, :3, :].repeat(num, 1, 1)
    c2w[:, :3, 3] = torch.randn(num, 3)
    return Cameras(camera_to_worlds=c2w, fx=20.0, fy=22.0, cx=16.0, cy=12.0, width=32, height=24)


@pytest.mark.parametrize("mode", ["SO3xR3", "SE3"])
def test_correction_rule_matches_nerfstudio(mode):
    cameras = tiny_cameras()
    optimizer = random_optimizer(len(cameras), mode)
    correction = optimizer(torch.arange(len(cameras)))
    refined = corrected_camera_to_worlds(cameras.camera_to_worlds, correction)
    for i in range(len(cameras)):
        camera = cameras[i : i + 1]
        camera.metadata = {"cam_idx": i}
        assert torch.allclose(optimizer.apply_to_camera(camera)[0], refined[i], atol=1e-6)
    # rays: nerfstudio moves the training rays; rays of the refined cameras are the same rays
    indices, coords = torch.arange(3).repeat_interleave(5)[:, None], torch.rand(15, 2) * 20
    bundle = cameras.generate_rays(camera_indices=indices, coords=coords)
    origins, directions = corrected_rays(bundle.origins, bundle.directions, correction[bundle.camera_indices[:, 0]])
    optimizer.apply_to_raybundle(bundle)
    assert torch.allclose(bundle.origins, origins, atol=1e-6)
    assert torch.allclose(bundle.directions, directions, atol=1e-6)
    moved = Cameras(camera_to_worlds=refined, fx=20.0, fy=22.0, cx=16.0, cy=12.0, width=32, height=24)
    rays = moved.generate_rays(camera_indices=indices, coords=coords)
    assert torch.allclose(rays.origins, origins, atol=1e-5)
    assert torch.allclose(rays.directions, directions, atol=1e-5)


def test_projection_uses_the_refined_pose_and_passes_gradients():
    cameras = tiny_cameras()
    optimizer = random_optimizer(len(cameras))
    plain, refined = VideoCameras(cameras), VideoCameras(cameras, pose_correction=optimizer)
    frames = torch.tensor([0, 1, 2, 2])
    coords = torch.tensor([[3.5, 4.5], [12.5, 20.5], [0.5, 0.5], [23.5, 31.5]])  # (y, x) pixel centres
    bundle = cameras.generate_rays(camera_indices=frames[:, None], coords=coords)
    optimizer.apply_to_raybundle(bundle)  # the training rays of those pixels, as the model sees them
    points = bundle.origins + 2.5 * bundle.directions
    uv, depth = refined.project(points, frames)
    assert torch.allclose(uv, coords.flip(-1), atol=1e-3), "a point on a refined ray projects back to its pixel"
    assert torch.all(depth > 0)
    plain_uv, _ = plain.project(points.detach(), frames)
    assert (plain_uv - coords.flip(-1)).norm(dim=-1).min() > 0.1, "the correction must matter in this check"
    uv.sum().backward()
    assert optimizer.pose_adjustment.grad is not None and optimizer.pose_adjustment.grad[:3].abs().sum() > 0


def test_cameras_without_a_video_frame_are_not_moved():
    cameras = tiny_cameras()
    refined_poses = corrected_camera_to_worlds(cameras.camera_to_worlds, random_optimizer(3)(torch.arange(3)))
    viewer = cameras[0:1]
    viewer.metadata = {"cam_idx": 0}  # what nerfstudio's viewer sets on its free camera
    assert refine_camera(viewer, refined_poses) is viewer
    assert refine_camera(cameras[1:2], refined_poses) is not None
    held_out = cameras[1:2]
    held_out.metadata = {VIDEO_FRAME_KEY: torch.tensor([[-1]])}
    assert torch.equal(refine_camera(held_out, refined_poses).camera_to_worlds, held_out.camera_to_worlds)
    frame = cameras[1:2]
    frame.metadata = {VIDEO_FRAME_KEY: torch.tensor([[2]])}
    moved = refine_camera(frame, refined_poses)
    assert torch.equal(moved.camera_to_worlds[0], refined_poses[2])
    assert VIDEO_FRAME_KEY not in (moved.metadata or {}), "applied once: the rays must not be corrected again"


# ----------------------------------------------------------------------------------------------
# in the model


@pytest.mark.parametrize("options", [{}, {"label_frames": "first:50%", "eval_source": "video", "eval_interval": 3}])
def test_training_camera_indices_are_video_frames(tiny_scene, options):
    config = semantic_flow_config()
    config.pipeline.datamanager.dataparser.data = tiny_scene
    for key, value in options.items():
        setattr(config.pipeline.datamanager.dataparser, key, value)
    config.pipeline.datamanager.train_num_rays_per_batch = 64
    pipeline = config.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)
    video = pipeline.model.video_cameras
    train = pipeline.datamanager.train_dataset
    assert torch.equal(train.cameras.metadata[VIDEO_FRAME_KEY][:, 0], torch.arange(video.num_frames))
    assert torch.equal(train.cameras.camera_to_worlds, video.camera_to_worlds)
    bundle, _ = pipeline.datamanager.next_train(0)
    assert torch.equal(bundle.camera_indices[:, 0], bundle.metadata[VIDEO_FRAME_KEY][:, 0])
    evaluated = pipeline.datamanager.eval_dataset.cameras
    frames = evaluated.metadata[VIDEO_FRAME_KEY][:, 0]
    if options.get("eval_source") == "video":
        assert torch.equal(frames, torch.arange(0, video.num_frames, 3))
        assert torch.equal(evaluated.camera_to_worlds, video.camera_to_worlds[frames])
    else:
        assert torch.all(frames == -1), "held-out views are no video frames"


def test_training_step_refines_poses_through_rays_and_projections(refining):
    _, pipeline = refining
    model = pipeline.model
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_step(pipeline, optimizer)
    model.camera_optimizer.pose_adjustment.grad = None
    _, loss_dict, metrics = pipeline.get_train_loss_dict(1)
    assert "camera_opt_regularizer" in loss_dict and "camera_opt_rotation_mean" in metrics
    # gradients of the projection-only losses alone reach the correction (flow aggregation, induced flow)
    loss_dict["optical_flow_next"].backward(retain_graph=True)
    assert model.camera_optimizer.pose_adjustment.grad.abs().sum() > 0
    semantic = loss_dict["semantic_dynamic"]
    model.camera_optimizer.pose_adjustment.grad = None
    semantic.backward()
    assert model.camera_optimizer.pose_adjustment.grad.abs().sum() > 0


def test_renders_of_video_frames_use_refined_poses_and_other_cameras_do_not(refining):
    _, pipeline = refining
    model = pipeline.model
    model.eval()
    train_cameras = pipeline.datamanager.train_dataset.cameras
    refined_poses = model.video_cameras.refined_camera_to_worlds().detach()
    frame = train_cameras[3:4]
    rendered = model.get_outputs_for_camera(frame)
    at_refined = dataclasses.replace(frame, camera_to_worlds=refined_poses[3:4], metadata=None)
    expected = model.get_outputs_for_camera(at_refined)
    for name in ("rgb", "depth", "optical_flow"):
        assert torch.allclose(rendered[name], expected[name], atol=1e-5), name
    # a viewer camera at the frame's stored pose: no correction
    unrefined = model.get_outputs_for_camera(dataclasses.replace(frame, metadata={"cam_idx": 3}))
    assert not torch.allclose(unrefined["depth"], rendered["depth"], atol=1e-4)
    # evaluation batches and point-cloud export: rays of video frames are moved like training rays
    bundle = train_cameras.generate_rays(camera_indices=torch.tensor([[3], [3], [5]]), coords=torch.rand(3, 2) * 20)
    expected_bundle = bundle[torch.arange(3)]
    model.camera_optimizer.apply_to_raybundle(expected_bundle)
    with torch.no_grad():
        model(bundle)
    assert torch.allclose(bundle.origins, expected_bundle.origins, atol=1e-6)
    assert torch.allclose(bundle.directions, expected_bundle.directions, atol=1e-6)
    assert math.isfinite(float(rendered["rgb"].sum()))


# ----------------------------------------------------------------------------------------------
# frames left out of training


@pytest.mark.parametrize("mode", ["SO3xR3", "SE3"])
def test_untrained_frames_take_their_trained_neighbours_correction(mode):
    times = torch.tensor([0.0, 0.2, 0.3, 0.6, 0.8, 1.0])
    config = PoseRefinementConfig(mode=mode).resolve(approximate_poses=True)
    video = VideoPoseOptimizer(config, times, untrained=[2, 5])
    plain = config.setup(num_cameras=6, device="cpu")
    with torch.no_grad():
        video.pose_adjustment.normal_(0.0, 0.05)
        plain.pose_adjustment.copy_(video.pose_adjustment)
    frames = torch.arange(6)
    corrections, reference = video(frames), plain(frames)
    for trained in (0, 1, 3, 4):  # nerfstudio's own correction
        assert torch.allclose(corrections[trained], reference[trained], atol=1e-6)
    # frame 2 (t = 0.3) lies a quarter of the way from frame 1 (0.2) to frame 3 (0.6); frame 5 follows frame 4
    blended = video.pose_adjustment[1] * 0.75 + video.pose_adjustment[3] * 0.25
    with torch.no_grad():
        plain.pose_adjustment[2] = blended
        plain.pose_adjustment[5] = video.pose_adjustment[4]
    assert torch.allclose(corrections[2], plain(frames)[2], atol=1e-6)
    assert torch.allclose(corrections[5], reference[4], atol=1e-6)
    assert not torch.allclose(corrections[2], reference[2], atol=1e-4)
    # a loss on an untrained frame moves its neighbours' corrections, never its own unused row
    video(torch.tensor([2])).sum().backward()
    touched = video.pose_adjustment.grad.abs().sum(-1) > 0
    assert touched.tolist() == [False, True, False, True, False, False]


def test_with_every_frame_trained_the_optimizer_is_nerfstudios():
    times = torch.linspace(0.0, 1.0, 5)
    config = PoseRefinementConfig(mode="SO3xR3").resolve(approximate_poses=True)
    video, plain = VideoPoseOptimizer(config, times, untrained=[]), config.setup(num_cameras=5, device="cpu")
    with torch.no_grad():
        video.pose_adjustment.normal_(0.0, 0.05)
        plain.pose_adjustment.copy_(video.pose_adjustment)
    assert torch.equal(video(torch.arange(5)), plain(torch.arange(5)))
    with pytest.raises(ValueError, match="at least one video frame"):
        untrained_blend(times, untrained=list(range(5)))


def test_model_gives_withheld_frames_interpolated_corrections(tiny_scene):
    _, pipeline = tiny_pipeline(
        tiny_scene, dataparser={"withheld_frames": "every:4+2"}, camera_optimizer=PoseRefinementConfig(mode="SO3xR3")
    )
    optimizer = pipeline.model.camera_optimizer
    video = pipeline.datamanager.train_dataparser_outputs.metadata["semflow_video"]
    withheld = video.withheld
    assert withheld and optimizer.untrained == sorted(withheld)
    with torch.no_grad():
        optimizer.pose_adjustment.normal_(0.0, 0.05)
    refined = pipeline.model.video_cameras.refined_camera_to_worlds().detach()
    frame = withheld[0]
    expected = optimizer.blend[frame] @ optimizer.pose_adjustment
    assert optimizer.blend[frame, frame] == 0 and torch.isclose(optimizer.blend[frame].sum(), torch.tensor(1.0))
    assert not torch.allclose(expected, optimizer.pose_adjustment[frame])
    moved = corrected_camera_to_worlds(video.cameras.camera_to_worlds[frame], optimizer(torch.tensor([frame]))[0])
    assert torch.allclose(refined[frame], moved, atol=1e-6)
