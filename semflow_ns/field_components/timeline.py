"""Video timeline: which frame a time belongs to, and how long a frame interval is around it."""

from typing import Union

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn


class VideoTimeline(nn.Module):
    """Times of the training video frames (increasing, in [0, 1])."""

    def __init__(self, times: Float[Tensor, "num_frames"]) -> None:
        super().__init__()
        if times.numel() < 2:
            raise ValueError("a video needs at least 2 frames")
        self.register_buffer("times", times.float().clone(), persistent=False)
        self.register_buffer("intervals", (times[1:] - times[:-1]).float().clone(), persistent=False)

    @property
    def num_frames(self) -> int:
        return self.times.numel()

    def nearest_frame(self, times: Float[Tensor, "*bs 1"]) -> Int[Tensor, "*bs"]:
        """Index of the video frame closest in time."""
        idx = torch.searchsorted(self.times, times[..., 0].contiguous().clamp(0.0, 1.0))
        idx = idx.clamp(1, self.num_frames - 1)
        closer_left = (times[..., 0] - self.times[idx - 1]) < (self.times[idx] - times[..., 0])
        return idx - closer_left.long()

    def interval(self, frame: Int[Tensor, "*bs"], direction: int) -> Float[Tensor, "*bs 1"]:
        """Duration of the frame interval from ``frame`` toward ``direction`` (+1 next, -1 previous).

        At the ends of the video the nearest existing interval is used, so the flow field can still
        extrapolate one frame beyond them.
        """
        slot = frame if direction > 0 else frame - 1
        return self.intervals[slot.clamp(0, self.num_frames - 2)][..., None]

    def neighbour(
        self, frame: Int[Tensor, "*#bs"], offset: Union[int, Int[Tensor, "*#bs"]]
    ) -> tuple[Int[Tensor, "..."], Bool[Tensor, "..."]]:
        """Frame ``offset`` frames away (offsets broadcast against frames), clamped into the video, and
        whether it exists."""
        target = frame + offset
        inside = (target >= 0) & (target < self.num_frames)
        return target.clamp(0, self.num_frames - 1), inside
