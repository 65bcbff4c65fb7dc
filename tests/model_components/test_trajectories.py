"""Paths through the video from the scene flow: frame by frame as the model integrates its trajectory windows,
partial first steps between frames, static points kept in place, the picked moment kept for drawing."""

from types import SimpleNamespace

import pytest
import torch
from nerfstudio.data.scene_box import SceneBox

from semflow_ns.field_components.scene_flow import SceneFlow, SceneFlowField, SceneFlowFieldConfig
from semflow_ns.field_components.timeline import VideoTimeline
from semflow_ns.fields.dynamic_branch import DynamicBranch
from semflow_ns.fields.encoding import PlaneEncodingConfig, SceneNormalizer
from semflow_ns.model_components.trajectories import integrate_paths, integrate_unit

NUM_FRAMES = 7


def random_flow(substeps: int = 1) -> SceneFlowField:
    """A scene-flow field whose displacements vary with position and time (random output layer)."""
    config = SceneFlowFieldConfig(planes=PlaneEncodingConfig(resolutions=(8,), num_components=4), hidden_dim=16)
    config.num_substeps = substeps
    flow = SceneFlowField(config, num_frames=NUM_FRAMES)
    torch.nn.init.normal_(flow.head.weight, std=0.5)
    return flow


def test_paths_from_a_frame_follow_the_models_own_trajectory_windows():
    """At a frame, the path over the neighbouring frames is the trajectory the model integrates in training
    (``DynamicBranch.trajectory``, a 5-frame window here), with sub-steps too."""
    timeline = VideoTimeline(torch.tensor([0.0, 0.1, 0.25, 0.4, 0.6, 0.8, 1.0]))  # uneven intervals
    for substeps in (1, 2):
        flow = random_flow(substeps)
        unit = torch.rand(5, 3) * 1.6 - 0.8
        frame = 3
        times = timeline.times[frame].expand(5, 1).clone()
        with torch.no_grad():
            window = DynamicBranch.trajectory(
                SimpleNamespace(scene_flow=flow, timeline=timeline, half_window=2),  # type: ignore[arg-type]
                unit,
                times,
                torch.full((5,), frame),
                flow(unit, times),
            )
            paths = integrate_unit(flow, timeline.times, unit, float(timeline.times[frame]))
        assert paths.shape == (5, NUM_FRAMES, 3)
        assert torch.allclose(paths[:, frame - 2 : frame + 3], window, atol=1e-6)


@pytest.mark.parametrize("time", [0.0, 2 / 6, 0.3, 1.0])
def test_a_constant_motion_gives_a_straight_path_from_any_moment(time):
    """Between frames the first step covers the part of the interval up to the next frame."""
    step = torch.tensor([0.05, -0.02, 0.0])

    class ConstantFlow(SceneFlowField):  # every point moves by ``step`` per frame
        def forward(self, unit, times):
            return SceneFlow(step.expand_as(unit), -step.expand_as(unit))

    flow = ConstantFlow(random_flow().config, NUM_FRAMES)
    frame_times = torch.linspace(0.0, 1.0, NUM_FRAMES)
    start = torch.tensor([[0.1, 0.2, 0.3]])
    paths = integrate_unit(flow, frame_times, start, time)
    expected = start + ((frame_times - time) * (NUM_FRAMES - 1))[:, None] * step
    assert torch.allclose(paths[0], expected, atol=1e-6)


def test_static_points_stay_and_the_picked_moment_is_a_vertex_of_the_drawn_path():
    box = SceneBox(aabb=torch.tensor([[-2.0, -2.0, 0.0], [2.0, 2.0, 2.0]]))
    flow = random_flow()
    timeline = VideoTimeline(torch.linspace(0.0, 1.0, NUM_FRAMES))
    model = SimpleNamespace(
        device=torch.device("cpu"),
        timeline=timeline,
        normalizer=SceneNormalizer(box, contract=False),
        dynamic=SimpleNamespace(scene_flow=flow),
    )
    points = torch.tensor([[0.5, -0.5, 1.0], [1.0, 1.0, 0.5]])
    with torch.no_grad():
        paths = integrate_paths(model, points, torch.tensor([True, False]), 0.3)  # type: ignore[arg-type]
    assert paths.points.shape == (2, NUM_FRAMES, 3)
    assert torch.equal(paths.points[1], points[1].expand(NUM_FRAMES, 3)), "a static point keeps its place"
    assert not torch.allclose(paths.points[0], points[0].expand(NUM_FRAMES, 3)), "a moving one moves"
    times, vertices = paths.polyline(0)
    assert len(times) == NUM_FRAMES + 1 and float(times[2]) == pytest.approx(0.3)
    assert torch.equal(vertices[2], points[0])
    assert torch.allclose(paths.at(0, 0.3), points[0])
    assert torch.allclose(paths.at(0, 1.0), paths.points[0, -1])
    midway = (float(times[2]) + float(times[3])) / 2
    assert torch.allclose(paths.at(0, midway), (vertices[2] + vertices[3]) / 2, atol=1e-6)
