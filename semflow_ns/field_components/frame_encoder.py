"""Per-frame image features from a small CNN trained from scratch with the model.

The paper samples frozen, pretrained SlowOnly/ResNet features; needing downloaded weights is exactly
what this plugin avoids. A four-layer CNN learns, end to end through the semantic losses, the
appearance cues the semantic head needs; it runs only on the frames a batch touches.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int, UInt8
from PIL import Image
from torch import Tensor, nn


@dataclass
class FrameEncoderConfig:
    """Frame encoder size."""

    feature_dim: int = 16
    """Channels of the feature maps sampled by flow feature aggregation."""
    hidden_dim: int = 32
    """Channels of the first convolution (the second scale uses twice as many)."""
    max_input_size: int = 256
    """Frames are resized so that their long side is at most this many pixels before encoding."""


class FrameEncoder(nn.Module):
    """Two-scale CNN: features at half the input resolution with a quarter-resolution context branch."""

    def __init__(self, config: FrameEncoderConfig) -> None:
        super().__init__()
        hid = config.hidden_dim
        self.fine = nn.Sequential(
            nn.Conv2d(3, hid, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(hid, hid, 3, padding=1), nn.ReLU()
        )
        self.coarse = nn.Sequential(
            nn.Conv2d(hid, 2 * hid, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * hid, 2 * hid, 3, padding=1),
            nn.ReLU(),
        )
        self.out = nn.Conv2d(3 * hid, config.feature_dim, 1)

    def forward(self, images: Float[Tensor, "num_frames 3 H W"]) -> Float[Tensor, "num_frames feat_dim h w"]:
        fine = self.fine((images - 0.5) / 0.25)
        coarse = F.interpolate(self.coarse(fine), size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return self.out(torch.cat([fine, coarse], dim=1))


class FrameFeatureBank(nn.Module):
    """The video frames and their encoder; gives feature maps for any set of frames.

    With gradients enabled (training) features are computed fresh for the requested frames. Without
    them (evaluation, viewer, rendering), or when the encoder is frozen (scene adaptation), the features of
    the whole video are computed once and cached until the next training step that changes the encoder.
    """

    def __init__(self, config: FrameEncoderConfig, frames: UInt8[Tensor, "num_frames H W 3"]) -> None:
        super().__init__()
        self.encoder = FrameEncoder(config)
        images = frames.permute(0, 3, 1, 2).float() / 255.0
        scale = min(1.0, config.max_input_size / max(images.shape[-2:]))
        if scale < 1.0:
            size = (round(images.shape[-2] * scale), round(images.shape[-1] * scale))
            images = F.interpolate(images, size=size, mode="area")
        self.register_buffer("images", images, persistent=False)
        self._cache: Optional[Tensor] = None

    def invalidate(self) -> None:
        """Forgets cached features (call after the encoder's weights change)."""
        self._cache = None

    def forward(self, frame_ids: Int[Tensor, "num_ids"]) -> Float[Tensor, "num_ids feat_dim h w"]:
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.encoder.parameters()):
            self._cache = None
            return self.encoder(self.images[frame_ids])
        if self._cache is None:
            self._cache = torch.cat([self.encoder(chunk) for chunk in self.images.split(8)])
        return self._cache[frame_ids]


def load_frames(image_filenames: Sequence[Path]) -> UInt8[Tensor, "num_frames height width 3"]:
    """The video's images as one uint8 tensor (the frame encoder's input)."""
    frames = []
    for path in image_filenames:
        with Image.open(path) as image:
            frames.append(np.asarray(image.convert("RGB")))
    sizes = {f.shape for f in frames}
    if len(sizes) != 1:
        raise ValueError(f"the video frames must all have the same size, got {sorted(sizes)}")
    return torch.from_numpy(np.stack(frames))
