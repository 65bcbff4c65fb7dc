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
    """Frame encoder size, and how often features of frames a batch only looks at are recomputed."""

    feature_dim: int = 16
    """Channels of the feature maps sampled by flow feature aggregation."""
    hidden_dim: int = 32
    """Channels of the first convolution (the second scale uses twice as many)."""
    max_input_size: int = 256
    """Frames are resized so that their long side is at most this many pixels before encoding."""
    neighbour_refresh_steps: int = 10
    """In training, only the frames of the batch's own rays are encoded with gradients; the frames a batch only
    looks at along the trajectories (its neighbours in time) take features kept from an earlier step, at most
    this many steps old (they are recomputed, without gradients, when older). 0: every frame a step looks at is
    encoded with gradients in that step (several times the encoder's cost on real clips)."""
    normalize_features: bool = True
    """Normalise each pixel's feature vector over its channels (zero mean, unit variance, then times
    ``feature_gain``; no learned scale), so that the features cannot grow without bound (unnormalised, they grew to
    a spatial spread of about 1000 on blackswan, seed 0, and the semantics collapsed). Runs saved before this
    option existed were trained without it and load without it."""
    feature_gain: float = 10.0
    """Fixed factor on the normalised features (with ``normalize_features``): the root-mean-square size of each
    pixel's feature channels. The features share the attention tokens with the displacement encoding (sines of
    unit size); unnormalised, they grew well above unit size (median per-pixel variance 27 on dog), and at 1 they
    weigh no more than the encoding: tracking-first lost 0.13-0.17 J&F on dog and breakdance. 10 won over 1 and 5
    on two seeds (README, "Label-subset tasks"). Runs saved before this option existed load with 1, as they were
    trained."""


class FrameEncoder(nn.Module):
    """Two-scale CNN: features at half the input resolution with a quarter-resolution context branch.

    The output is a 1x1 convolution of [fine, upsampled coarse]. It is computed as the convolution of the fine
    branch plus the upsampled convolution of the coarse one: the same values (both maps are linear, and bilinear
    upsampling works per channel), with ``feature_dim`` instead of ``2 * hidden_dim`` channels to upsample.
    """

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
        self.hidden_dim = hid
        # A config.yml written before the option existed comes back without it (YAML restores only the fields it
        # saved, and the class default would fill the gap); such an encoder was trained without normalisation.
        self.normalize = bool(vars(config).get("normalize_features", False))
        self.gain = float(vars(config).get("feature_gain", 1.0))

    def forward(self, images: Float[Tensor, "num_frames 3 H W"]) -> Float[Tensor, "num_frames feat_dim h w"]:
        images = ((images - 0.5) / 0.25).contiguous(memory_format=torch.channels_last)
        fine = self.fine(images)
        weight_fine, weight_coarse = self.out.weight.split([self.hidden_dim, 2 * self.hidden_dim], dim=1)
        coarse = F.conv2d(self.coarse(fine), weight_coarse)
        upsampled = F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        features = F.conv2d(fine, weight_fine, self.out.bias) + upsampled
        if self.normalize:  # over the channels of each pixel (layer_norm normalises the last dimension)
            features = self.gain * F.layer_norm(features.permute(0, 2, 3, 1), features.shape[1:2]).permute(0, 3, 1, 2)
        return features


class FrameFeatureBank(nn.Module):
    """The video frames and their encoder; gives feature maps for any set of frames.

    Evaluation, viewer and rendering (no gradients), or a frozen encoder (scene adaptation): the features of the
    whole video are computed once and kept until a training step changes the encoder.

    Training: the frames named ``fresh`` (the frames of the batch's own rays) are encoded with gradients. Other
    frames (those the trajectories reach in time) take the features last computed for them, detached, unless
    those are more than ``neighbour_refresh_steps`` steps old: then they are encoded again without gradients.
    Every frame's features are refreshed whenever the frame is in a batch, so with a few frames per batch most
    are a few steps old. The step count comes from :meth:`set_step` (a training callback of the model).
    """

    def __init__(self, config: FrameEncoderConfig, frames: UInt8[Tensor, "num_frames H W 3"]) -> None:
        super().__init__()
        self.encoder = FrameEncoder(config)
        self.refresh_steps = config.neighbour_refresh_steps
        images = frames.permute(0, 3, 1, 2).float() / 255.0
        scale = min(1.0, config.max_input_size / max(images.shape[-2:]))
        if scale < 1.0:
            size = (round(images.shape[-2] * scale), round(images.shape[-1] * scale))
            images = F.interpolate(images, size=size, mode="area")
        self.register_buffer("images", images, persistent=False)
        self._cache: Optional[Tensor] = None
        self._kept: Optional[Tensor] = None
        """Training: the last features computed for each frame (detached)."""
        self._kept_step: Optional[Tensor] = None
        """Training: the step at which each frame's kept features were computed (-1: never)."""
        self.step = 0

    def set_step(self, step: int) -> None:
        """The training step about to run (for the age of kept features)."""
        self.step = step

    def invalidate(self) -> None:
        """Forgets every computed feature (call after the encoder's weights change outside training)."""
        self._cache = None
        self._kept = None
        self._kept_step = None

    def lookup(
        self,
        frames: Int[Tensor, "*bs"],
        uv: Float[Tensor, "*bs 2"],
        image_size: Float[Tensor, "*bs 2"],
        fresh: Optional[Int[Tensor, "num_fresh"]] = None,
    ) -> Float[Tensor, "*bs feat_dim"]:
        """Features of video frames ``frames`` at pixel coordinates ``uv`` of images of ``image_size`` (bilinear;
        see :func:`sample_feature_maps`). In training, ``fresh`` names the frames encoded with gradients (None: every
        frame looked up); the kept maps are read in place and written in place by the next such call, so call it
        once per training step (the model's one semantic pass) and run the backward pass before the next call."""
        if not (torch.is_grad_enabled() and any(p.requires_grad for p in self.encoder.parameters())):
            if self._cache is None:
                maps = torch.cat([self.encoder(chunk) for chunk in self.images.split(8)])
                self._cache = maps.transpose(0, 1).contiguous()
            return sample_feature_maps(self._cache, frames, uv, image_size)
        self._cache = None  # the encoder is about to change
        used, slots = compact_ids(frames, self.images.shape[0])
        if fresh is None or self.refresh_steps <= 0:
            return sample_feature_maps(self.encoder(self.images[used]).transpose(0, 1), slots, uv, image_size)
        is_fresh = torch.isin(used, fresh)
        stale = self._stale(used[~is_fresh])
        if stale.numel():
            with torch.no_grad():
                self._keep(stale, self.encoder(self.images[stale]))
        fresh_ids = used[is_fresh]
        computed = self.encoder(self.images[fresh_ids])
        self._keep(fresh_ids, computed.detach())
        assert self._kept is not None
        # Lookups in a fresh frame read its new maps (with gradients); the others read the kept maps of every
        # frame in place, which need no copy and no gradient buffer.
        fresh_slot = torch.cumsum(is_fresh.long(), dim=0) - 1
        slot = torch.where(is_fresh, fresh_slot, -1)[slots].flatten()
        from_fresh = (slot >= 0).nonzero()[:, 0]
        from_kept = (slot < 0).nonzero()[:, 0]
        flat_frames, flat_uv, flat_size = frames.flatten(), uv.reshape(-1, 2), image_size.reshape(-1, 2)
        channels = self._kept.shape[0]
        out = uv.new_zeros(flat_frames.shape[0], channels)
        if from_kept.numel():
            kept = sample_feature_maps(self._kept, flat_frames[from_kept], flat_uv[from_kept], flat_size[from_kept])
            out = out.index_put((from_kept,), kept)
        if from_fresh.numel():
            new = sample_feature_maps(
                computed.transpose(0, 1), slot[from_fresh], flat_uv[from_fresh], flat_size[from_fresh]
            )
            out = out.index_put((from_fresh,), new)
        return out.reshape(*frames.shape, channels)

    def _stale(self, frame_ids: Int[Tensor, "num_ids"]) -> Int[Tensor, "num_stale"]:
        """The frames among ``frame_ids`` whose kept features are missing or too old."""
        if self._kept_step is None:
            return frame_ids
        age = self.step - self._kept_step[frame_ids]
        return frame_ids[(self._kept_step[frame_ids] < 0) | (age > self.refresh_steps) | (age < 0)]

    def _keep(self, frame_ids: Int[Tensor, "num_ids"], features: Float[Tensor, "num_ids feat_dim h w"]) -> None:
        if self._kept is None or self._kept_step is None:
            self._kept = features.new_zeros(features.shape[1], self.images.shape[0], *features.shape[2:])
            self._kept_step = torch.full((self.images.shape[0],), -1, dtype=torch.long, device=features.device)
        self._kept[:, frame_ids] = features.transpose(0, 1)
        self._kept_step[frame_ids] = self.step


def sample_feature_maps(
    maps: Float[Tensor, "feat_dim num_maps h w"],
    slots: Int[Tensor, "*bs"],
    uv: Float[Tensor, "*bs 2"],
    image_size: Float[Tensor, "*bs 2"],
) -> Float[Tensor, "*bs feat_dim"]:
    """Bilinear lookup of ``maps[:, slot]`` at pixel coordinates ``uv`` (x right, y down, pixel centres at +0.5) of
    an image of ``image_size``.

    The maps, channel first (the layout the bank keeps them in), are viewed as one tall atlas and sampled with a
    single ``grid_sample``; coordinates are clamped inside their own map first, so that no lookup bleeds into a
    neighbouring frame.
    """
    channels, num_maps, height, width = maps.shape
    size = torch.tensor([width, height], dtype=uv.dtype, device=uv.device)
    pix = uv * size / image_size - 0.5  # feature-map pixel coordinates, centres at integers
    pix = torch.minimum(pix.clamp(min=0.0), size - 1)
    rows = pix[..., 1] + slots.to(pix.dtype) * height
    grid = torch.stack(
        [2.0 * pix[..., 0] / max(width - 1, 1) - 1.0, 2.0 * rows / max(num_maps * height - 1, 1) - 1.0], dim=-1
    )
    atlas = maps.reshape(1, channels, num_maps * height, width)  # frames stacked along H
    sampled = F.grid_sample(atlas, grid.reshape(1, 1, -1, 2), mode="bilinear", align_corners=True)
    return sampled.reshape(channels, -1).T.reshape(*slots.shape, channels)


def compact_ids(ids: Int[Tensor, "*bs"], num_ids: int) -> tuple[Int[Tensor, "num_used"], Int[Tensor, "*bs"]]:
    """The distinct values of ``ids`` (all in [0, num_ids)) and each entry's position among them.

    Same result as ``torch.unique(ids, return_inverse=True)`` without sorting all entries.
    """
    present = torch.zeros(num_ids, dtype=torch.bool, device=ids.device)
    present[ids] = True
    position = torch.cumsum(present.long(), dim=0) - 1
    return torch.nonzero(present)[:, 0], position[ids]


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
