"""Pixel sampler that draws each batch from a few video frames, with extra rays on moving pixels.

Two reasons, both from the method:
- the frame encoder runs on the frames a batch touches (and their neighbours in time), so drawing a
  batch from a handful of frames bounds its cost per step (the paper draws one frame per step);
- moving objects cover a small part of most images; the paper fills half of each batch from
  dynamic pixels so that the dynamic field and the scene flow see enough of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import torch
from jaxtyping import Int
from nerfstudio.data.pixel_samplers import PixelSampler, PixelSamplerConfig
from torch import Tensor


@dataclass
class SemanticFlowPixelSamplerConfig(PixelSamplerConfig):
    """Samples rays from `num_frames_per_batch` random frames, a fraction of them on moving pixels."""

    _target: type = field(default_factory=lambda: SemanticFlowPixelSampler)
    num_frames_per_batch: int = 4
    """Frames each batch is drawn from (<= 0: all frames)."""
    dynamic_ray_fraction: float = 0.25
    """Fraction of the rays drawn from pixels whose `motion` value is 1, when the chosen frames have any."""
    depth_ray_fraction: float = 0.0625
    """Fraction of the rays drawn from pixels with depth to supervise (SfM points, depth maps), when the scene has
    depth and the chosen frames have any (sparse SfM points cover about 1 % of the pixels)."""
    labelled_frames_per_batch: int = 1
    """When only some frames have labels (a label subset), at least this many of each batch's frames are labelled
    ones (as many as there are, if fewer): with uniform draws a video labelled on its first frame only would see
    its labels in one batch of ten (4 of 40 frames)."""


def sample_indices(
    motion: Optional[Tensor],
    batch_size: int,
    num_images: int,
    image_height: int,
    image_width: int,
    num_frames_per_batch: int,
    dynamic_ray_fraction: float,
    device: Union[torch.device, str] = "cpu",
    groups: Optional[Int[Tensor, "num_images"]] = None,
    allowed: Optional[Tensor] = None,
    depth: Optional[Tensor] = None,
    depth_ray_fraction: float = 0.0,
    labelled: Optional[Tensor] = None,
    labelled_frames: int = 0,
) -> Int[Tensor, "batch_size 3"]:
    """(image, y, x) indices of a batch: ``num_frames_per_batch`` random images (<= 0: all), a
    ``dynamic_ray_fraction`` of the rays on pixels whose ``motion`` [num_images, H, W, 1] is 1 (none when
    ``motion`` is None or the chosen images have no moving pixel), the rest uniform over the chosen images.
    With ``groups`` (the scene of each image in a multi-scene run) the images are spread over the groups: one
    from each group before a second from any. With ``allowed`` (bool per image) only those images are drawn.
    With ``depth`` ([num_images, H, W, 2] depth targets and confidences) a ``depth_ray_fraction`` of the rays go
    to pixels with depth. With ``labelled`` (bool per image) at least ``labelled_frames`` of the chosen images are
    labelled ones, where there are (single-scene batches)."""
    candidates = num_images if allowed is None else int(allowed.sum())
    num_frames = candidates if num_frames_per_batch <= 0 else min(num_frames_per_batch, candidates)
    frames = torch.randperm(num_images, device=device)
    if allowed is not None:
        frames = frames[allowed.to(device)[frames]]
    if labelled is not None and labelled_frames > 0 and groups is None:
        is_labelled = labelled.to(device)[frames]
        first = is_labelled & (torch.cumsum(is_labelled.long(), 0) <= labelled_frames)  # the first k labelled ones
        frames = frames[torch.argsort((~first).long(), stable=True)]
    if groups is not None:
        member = torch.nn.functional.one_hot(groups.to(device)[frames].long())
        rank = (member.cumsum(0) * member).sum(-1)  # 1 for a group's first image in the random order, 2 ...
        frames = frames[torch.argsort(rank, stable=True)]
    frames = frames[:num_frames]
    num_dynamic = int(round(batch_size * dynamic_ray_fraction)) if motion is not None else 0
    dynamic = _pixels_where(None if motion is None else motion[..., 0] > 0.5, frames, num_dynamic, device)
    num_depth = int(round(batch_size * depth_ray_fraction)) if depth is not None else 0
    with_depth = _pixels_where(None if depth is None else depth[..., 1] > 0, frames, num_depth, device)
    num_uniform = batch_size - len(dynamic) - len(with_depth)
    uniform = torch.stack(
        [
            frames[torch.randint(num_frames, (num_uniform,), device=device)],
            torch.randint(image_height, (num_uniform,), device=device),
            torch.randint(image_width, (num_uniform,), device=device),
        ],
        dim=-1,
    )
    return torch.cat([uniform, dynamic, with_depth], dim=0)


def _pixels_where(where: Optional[Tensor], frames: Tensor, count: int, device: Union[torch.device, str]) -> Tensor:
    """`count` random (image, y, x) indices on pixels of `frames` where `where` ([num_images, H, W] bool) is
    true; none if there are none."""
    if count == 0 or where is None:
        return torch.zeros(0, 3, dtype=torch.long, device=device)
    candidates = torch.nonzero(where[frames.to(where.device)]).to(device)
    if len(candidates) == 0:
        return torch.zeros(0, 3, dtype=torch.long, device=device)
    chosen = candidates[torch.randint(len(candidates), (count,), device=device)]
    chosen[:, 0] = frames[chosen[:, 0]]
    return chosen


class _ChosenIndices(PixelSampler):
    """A throwaway sampler whose ``sample_method`` returns indices chosen beforehand, so that nerfstudio's own
    ``collate_image_dataset_batch`` gathers one batch at them (no state is kept on the real sampler)."""

    def __init__(self, config: PixelSamplerConfig, indices: Tensor) -> None:
        super().__init__(config)
        self.indices = indices

    def sample_method(self, *args, **kwargs) -> Tensor:
        return self.indices


class SemanticFlowPixelSampler(PixelSampler):
    """See :class:`SemanticFlowPixelSamplerConfig`. The choice of pixels is :func:`sample_indices`."""

    config: SemanticFlowPixelSamplerConfig

    def _uses_mask(self, mask: Optional[Tensor]) -> bool:
        return mask is not None and not self.config.ignore_mask

    def _labelled(self, batch: dict) -> Optional[Tensor]:
        """Which images have labels, when only some have (computed once per image batch)."""
        semantics = batch.get("semantics")
        if semantics is None:
            return None
        key = (id(semantics), semantics.shape)
        if getattr(self, "_labelled_key", None) != key:
            has = (semantics >= 0).flatten(1).any(dim=1)
            self._labelled_key, self._labelled_images = key, has if bool(has.any()) and not bool(has.all()) else None
        return self._labelled_images

    def collate_image_dataset_batch(self, batch: dict, num_rays_per_batch: int, keep_full_image: bool = False):
        config = self.config
        if config.is_equirectangular or config.fisheye_crop_radius is not None or self._uses_mask(batch.get("mask")):
            return super().collate_image_dataset_batch(batch, num_rays_per_batch, keep_full_image)
        num_images, image_height, image_width, _ = batch["image"].shape
        indices = sample_indices(
            batch.get("motion"), num_rays_per_batch, num_images, image_height, image_width,
            config.num_frames_per_batch, config.dynamic_ray_fraction, batch["image"].device,
            batch["scene"][:, 0, 0, 0].long() if "scene" in batch else None,
            batch["withheld"][:, 0, 0, 0] == 0 if "withheld" in batch else None,
            batch.get("depth"), config.depth_ray_fraction, self._labelled(batch), config.labelled_frames_per_batch,
        )  # fmt: skip
        return _ChosenIndices(config, indices).collate_image_dataset_batch(batch, num_rays_per_batch, keep_full_image)

    def sample_method(
        self,
        batch_size: int,
        num_images: int,
        image_height: int,
        image_width: int,
        mask: Optional[Tensor] = None,
        device: Union[torch.device, str] = "cpu",
    ) -> Int[Tensor, "batch_size 3"]:
        """Used by nerfstudio's other sampling paths (masks, image lists): no motion is known there."""
        if self._uses_mask(mask):
            return super().sample_method(batch_size, num_images, image_height, image_width, mask, device)
        config = self.config
        return sample_indices(
            None, batch_size, num_images, image_height, image_width,
            config.num_frames_per_batch, config.dynamic_ray_fraction, device,
        )  # fmt: skip
