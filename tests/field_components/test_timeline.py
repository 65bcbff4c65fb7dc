"""Video timeline: nearest frames, frame intervals and neighbours on an unevenly spaced video."""

import pytest
import torch

from semflow_ns.field_components.timeline import VideoTimeline

TIMES = torch.tensor([0.0, 0.2, 0.5, 1.0])
"""Intervals 0.2, 0.3, 0.5."""


def test_nearest_frame():
    timeline = VideoTimeline(TIMES)
    times = torch.tensor([[0.0], [0.09], [0.11], [0.3], [0.4], [0.74], [0.76], [1.0]])
    assert timeline.nearest_frame(times).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert timeline.num_frames == 4


def test_times_outside_the_video_belong_to_its_ends():
    timeline = VideoTimeline(TIMES)
    assert timeline.nearest_frame(torch.tensor([[-0.5], [1.5]])).tolist() == [0, 3]


def test_nearest_frame_keeps_batch_dimensions():
    timeline = VideoTimeline(TIMES)
    assert timeline.nearest_frame(torch.rand(2, 5, 1)).shape == (2, 5)


def test_intervals_toward_each_direction_and_at_the_ends():
    timeline = VideoTimeline(TIMES)
    frames = torch.tensor([0, 1, 2, 3])
    forward = timeline.interval(frames, +1)[:, 0]
    backward = timeline.interval(frames, -1)[:, 0]
    # beyond the last (first) frame, the nearest existing interval
    assert torch.allclose(forward, torch.tensor([0.2, 0.3, 0.5, 0.5]))
    assert torch.allclose(backward, torch.tensor([0.2, 0.2, 0.3, 0.5]))
    assert timeline.interval(frames, +1).shape == (4, 1)


def test_neighbours_are_clamped_and_flagged():
    timeline = VideoTimeline(TIMES)
    frames, exists = timeline.neighbour(torch.tensor([0, 3]), 1)
    assert frames.tolist() == [1, 3] and exists.tolist() == [True, False]
    frames, exists = timeline.neighbour(torch.tensor([[0], [2]]), torch.tensor([-1, 0, 1]))  # offsets broadcast
    assert frames.tolist() == [[0, 0, 1], [1, 2, 3]]
    assert exists.tolist() == [[False, True, True], [True, True, True]]


def test_a_video_needs_two_frames():
    with pytest.raises(ValueError, match="at least 2 frames"):
        VideoTimeline(torch.tensor([0.0]))


def test_times_are_buffers_that_follow_the_module_but_are_not_saved():
    timeline = VideoTimeline(TIMES.double())
    assert timeline.times.dtype == torch.float32
    assert dict(timeline.named_buffers()).keys() == {"times", "intervals"}
    assert timeline.state_dict() == {}
