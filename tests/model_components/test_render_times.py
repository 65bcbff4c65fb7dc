"""Cameras without times, or with times outside [0, 1]: a documented time, said once."""

import pytest
import torch
from nerfstudio.cameras.cameras import Cameras

from semflow_ns.model_components.render_times import RenderTimes


def camera(times: torch.Tensor | None) -> Cameras:
    return Cameras(camera_to_worlds=torch.eye(4)[None, :3], fx=8.0, fy=8.0, cx=4.0, cy=3.0, times=times)


def test_missing_times_get_the_default_time_and_one_message(capsys):
    policy = RenderTimes(0.25)
    untimed = camera(None)
    for _ in range(3):
        filled = policy.resolve(untimed)
        assert filled.times is not None and torch.equal(filled.times, torch.full((1, 1), 0.25))
    assert untimed.times is None, "the caller's camera is not modified"
    assert capsys.readouterr().out.count("rendering at t = 0.25") == 1


def test_times_outside_the_video_are_clamped_with_one_message(capsys):
    policy = RenderTimes(0.0)
    assert float(policy.resolve(camera(torch.tensor([[1.5]]))).times) == 1.0
    assert float(policy.resolve(camera(torch.tensor([[-0.2]]))).times) == 0.0
    out = capsys.readouterr().out
    assert out.count("lies outside") == 1 and "camera time 1.5" in out


def test_valid_times_pass_unchanged(capsys):
    timed = camera(torch.tensor([[0.5]]))
    assert RenderTimes(0.0).resolve(timed) is timed
    assert capsys.readouterr().out == ""


def test_the_default_time_must_lie_in_the_video():
    with pytest.raises(ValueError, match=r"default_render_time must lie in \[0, 1\]"):
        RenderTimes(2.0)
