"""Tests of SemanticFlowPixelSampler: few frames per batch, extra rays on moving pixels, masks respected."""

from typing import Optional

import pytest
import torch

from semflow_ns.data.datasets.pixel_sampler import (
    SemanticFlowPixelSampler,
    SemanticFlowPixelSamplerConfig,
    sample_indices,
)

F, H, W = 6, 8, 10
IMAGE_IDX = torch.arange(20, 20 + F)
"""Dataset indices of the images in the batch (not 0..F-1, to check the mapping)."""


def make_sampler(rays: int = 256, frames: int = 2, dynamic: float = 0.5, **kwargs: bool) -> SemanticFlowPixelSampler:
    config = SemanticFlowPixelSamplerConfig(
        num_rays_per_batch=rays, num_frames_per_batch=frames, dynamic_ray_fraction=dynamic, **kwargs
    )
    sampler = config.setup()
    assert isinstance(sampler, SemanticFlowPixelSampler)
    return sampler


def make_batch(motion: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None) -> dict:
    """An image batch as the datamanager hands it over; the image encodes (frame, y, x) of every pixel."""
    frame, y, x = torch.meshgrid(torch.arange(F), torch.arange(H), torch.arange(W), indexing="ij")
    batch = {"image": torch.stack([frame, y, x], dim=-1).float(), "image_idx": IMAGE_IDX.clone()}
    if motion is not None:
        batch["motion"] = motion
    if mask is not None:
        batch["mask"] = mask
    return batch


def moving_square() -> torch.Tensor:
    """A 2x3-pixel moving object in every frame (6 of 80 pixels)."""
    motion = torch.zeros(F, H, W, 1)
    motion[:, 3:5, 4:7] = 1.0
    return motion


def check_consistent(out: dict, rays: int) -> None:
    """Every ray's values were taken at the pixel its index names, and the index holds dataset image ids."""
    assert out["image"].shape == (rays, 3) and out["indices"].shape == (rays, 3)
    local = out["image"].long()
    assert torch.equal(out["indices"][:, 0], IMAGE_IDX[local[:, 0]])
    assert torch.equal(out["indices"][:, 1:], local[:, 1:])


@pytest.mark.parametrize("frames", [1, 2, 3])
def test_rays_come_from_at_most_num_frames_per_batch_images(frames: int) -> None:
    sampler = make_sampler(frames=frames)
    seen = set()
    for _ in range(60):
        out = sampler.sample(make_batch(moving_square()))
        check_consistent(out, 256)
        images = set(out["indices"][:, 0].tolist())
        assert len(images) <= frames
        seen |= images
    assert seen == set(IMAGE_IDX.tolist())  # over many batches every frame gets picked


def test_non_positive_num_frames_uses_every_frame() -> None:
    out = make_sampler(rays=2048, frames=0).sample(make_batch(moving_square()))
    assert set(out["indices"][:, 0].tolist()) == set(IMAGE_IDX.tolist())


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.9])
def test_dynamic_fraction_of_rays_lands_on_moving_pixels(fraction: float) -> None:
    sampler = make_sampler(rays=200, dynamic=fraction)
    for _ in range(10):
        out = sampler.sample(make_batch(moving_square()))
        check_consistent(out, 200)
        assert out["motion"].shape == (200, 1)
        assert int(out["motion"].sum()) >= round(200 * fraction)
    uniform = make_sampler(rays=2000, dynamic=0.0).sample(make_batch(moving_square()))
    assert float(uniform["motion"].mean()) < 0.15  # 6 / 80 = 7.5% of the pixels move


def test_dynamic_rays_only_from_the_chosen_frames() -> None:
    motion = torch.zeros(F, H, W, 1)
    motion[:, 0, 0] = 1.0  # one moving pixel per frame
    sampler = make_sampler(rays=100, frames=1, dynamic=0.5)
    for _ in range(10):
        out = sampler.sample(make_batch(motion))
        assert len(set(out["indices"][:, 0].tolist())) == 1
        assert float(out["motion"].sum()) >= 50


def test_without_motion_it_samples_uniformly() -> None:
    rays = 48000  # 100 per pixel on average
    sampler = make_sampler(rays=rays, frames=0, dynamic=0.5)
    out = sampler.sample(make_batch())
    check_consistent(out, rays)
    assert "motion" not in out
    counts = torch.zeros(F, H, W)
    index = out["indices"]
    counts.index_put_((index[:, 0] - IMAGE_IDX[0], index[:, 1], index[:, 2]), torch.ones(len(index)), accumulate=True)
    expected = rays / (F * H * W)
    assert float(counts.min()) > 0.5 * expected and float(counts.max()) < 1.5 * expected
    per_frame = counts.sum(dim=(1, 2)) / (rays / F)
    assert float(per_frame.min()) > 0.9 and float(per_frame.max()) < 1.1


def test_full_batch_when_the_chosen_frames_do_not_move() -> None:
    sampler = make_sampler(rays=128, frames=2, dynamic=0.5)
    out = sampler.sample(make_batch(torch.zeros(F, H, W, 1)))
    check_consistent(out, 128)
    assert not out["motion"].any()
    motion = torch.zeros(F, H, W, 1)
    motion[0, 2, 2] = 1.0  # only frame 0 moves; batches drawn from other frames must still be full
    sampler = make_sampler(rays=128, frames=1, dynamic=0.5)
    for _ in range(12):
        out = sampler.sample(make_batch(motion))
        check_consistent(out, 128)
        from_first = bool(torch.all(out["indices"][:, 0] == IMAGE_IDX[0]))
        assert (float(out["motion"].sum()) >= 64) == from_first


def test_mask_restricts_sampling_through_the_parent() -> None:
    mask = torch.zeros(F, H, W, 1, dtype=torch.bool)
    mask[:, :2, :3] = True
    sampler = make_sampler(rays=300, frames=2, dynamic=0.5)
    out = sampler.sample(make_batch(moving_square(), mask))
    check_consistent(out, 300)
    assert bool(torch.all(out["indices"][:, 1] < 2)) and bool(torch.all(out["indices"][:, 2] < 3))
    assert bool(out["mask"].all()) and not out["motion"].any()  # the moving square lies outside the mask


def test_ignore_mask_returns_to_frame_sampling() -> None:
    mask = torch.zeros(F, H, W, 1, dtype=torch.bool)
    mask[:, :2, :3] = True
    sampler = make_sampler(rays=300, frames=2, dynamic=0.5, ignore_mask=True)
    out = sampler.sample(make_batch(moving_square(), mask))
    check_consistent(out, 300)
    assert len(set(out["indices"][:, 0].tolist())) <= 2 and float(out["motion"].mean()) >= 0.5


def test_sample_indices_is_a_function_of_its_arguments_and_the_random_state() -> None:
    motion = moving_square()
    torch.manual_seed(3)
    first = sample_indices(motion, 100, F, H, W, 2, 0.5)
    torch.manual_seed(3)
    assert torch.equal(sample_indices(motion, 100, F, H, W, 2, 0.5), first)
    assert first.shape == (100, 3) and len(set(first[:, 0].tolist())) <= 2
    assert int(motion[first[:, 0], first[:, 1], first[:, 2], 0].sum()) >= 50
    uniform = sample_indices(None, 100, F, H, W, 0, 0.5)
    assert uniform.shape == (100, 3) and int(motion[uniform[:, 0], uniform[:, 1], uniform[:, 2], 0].sum()) < 50


def test_the_sampler_keeps_no_batch_state() -> None:
    sampler = make_sampler()
    before = dict(vars(sampler))
    sampler.sample(make_batch(moving_square()))
    assert vars(sampler).keys() == before.keys()


def test_withheld_images_are_never_drawn():
    batch = make_batch(motion=moving_square())
    batch["withheld"] = torch.zeros(F, H, W, 1, dtype=torch.uint8)
    batch["withheld"][[1, 4]] = 1
    sampler = make_sampler(rays=512, frames=6)
    drawn = set()
    for _ in range(5):
        drawn |= set(sampler.sample(batch)["image"][:, 0].long().tolist())
    assert drawn == {0, 2, 3, 5}


def test_with_labels_on_some_frames_every_batch_draws_a_labelled_frame():
    batch = make_batch(motion=moving_square())
    batch["semantics"] = torch.full((F, H, W, 1), -1, dtype=torch.long)
    batch["semantics"][0] = 1  # only the first frame is labelled
    sampler = make_sampler(rays=64, frames=2, dynamic=0.0)
    for _ in range(10):
        assert 0 in set(sampler.sample(batch)["image"][:, 0].long().tolist())
    off = make_sampler(rays=64, frames=2, dynamic=0.0, labelled_frames_per_batch=0)
    seen = [0 in set(off.sample(batch)["image"][:, 0].long().tolist()) for _ in range(30)]
    assert not all(seen), "without the option frame 0 is one of six"
